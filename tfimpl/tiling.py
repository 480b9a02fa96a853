"""Work-partition sizes shared by the code that uses them and the cost model that predicts them.

The NumPy attention runs tile by tile, element-wise passes run row block by row block, and the
torch causal mask is built a block of rows at a time; each holds its own temporaries, so the
analytic peak-memory model (tfimpl/costs/_peak_numpy.py, _peak_torch.py) needs the same sizes.
They are defined here once and imported by both sides.
"""

from __future__ import annotations

# Scores per NumPy attention tile: 256 Ki elements (1 MiB in float32), about one core's L2.
TILE_ELEMENTS = 1 << 18
# Elements per row block of NumPy's element-wise passes (tfimpl/numpy/_threads.for_row_blocks).
ROW_BLOCK_ELEMENTS = 1 << 16
# Elements per block of rows when tfimpl.torch builds a causal pattern.
MASK_BLOCK_ELEMENTS = 1 << 16


def tile_shape(heads: int, seq_q: int, seq_k: int) -> tuple[int, int]:
    """(heads per tile, query rows per tile) so that a tile holds about TILE_ELEMENTS scores."""
    if seq_q * seq_k >= TILE_ELEMENTS:
        return 1, min(seq_q, max(1, TILE_ELEMENTS // seq_k))
    return max(1, min(heads, TILE_ELEMENTS // (seq_q * seq_k))), seq_q
# Query rows per block of the sliding-window and block-sparse attention (tfimpl/*/sparse_attention.py):
# a block of c queries scores c + w - 1 keys, so smaller blocks waste less work (w/(c + w - 1) is
# useful) and larger ones make fewer, larger matmuls. min(SPARSE_BLOCK, w) rows per block.
SPARSE_BLOCK = 64
# Positions per chunk of the causal linear attention's running sum (tfimpl/*/sparse_attention.py).
LINEAR_CHUNK = 64


def sparse_block(window: int) -> int:
    """Query rows per block of a sliding window of width `window` (tfimpl/*/sparse_attention.py)."""
    return max(1, min(SPARSE_BLOCK, window))


def window_bounds(window: int, causal: bool) -> tuple[int, int]:
    """(left, right): query i of a sliding window of width w sees keys i - left .. i + right.

    causal: the w keys i - w + 1 .. i; bidirectional: (w - 1) // 2 before i and the rest after
    (symmetric for odd w). Either way left + right + 1 = w keys away from the sequence's ends.
    """
    if causal:
        return window - 1, 0
    left = (window - 1) // 2
    return left, window - 1 - left
