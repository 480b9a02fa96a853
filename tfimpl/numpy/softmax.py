"""Numerically stable softmax.

    softmax(x)_i = exp(x_i) / Σ_j exp(x_j) = exp(x_i - m) / Σ_j exp(x_j - m),   m = max_j x_j

Subtracting the row maximum changes nothing mathematically but keeps exp() from overflowing:
every exponent is <= 0, so every term is in (0, 1] and the sum is in [1, n].
A row that is entirely -inf (a query allowed to attend to nothing) gives all zeros, not NaN.
"""

from __future__ import annotations

import numpy as np

from tfimpl.numpy._threads import for_row_blocks
from tfimpl.tiling import ROW_BLOCK_ELEMENTS

# Rows per block of `softmax_`: about 256 KiB of float32, so a block stays in L2 cache while its
# four passes (max, subtract+exp, sum, divide) run over it.


def softmax(x: np.ndarray, axis: int = -1, out: np.ndarray | None = None) -> np.ndarray:
    """softmax along `axis`; `out` may be `x` itself (then x is overwritten, no new array)."""
    row_max = np.max(x, axis=axis, keepdims=True)          # (..., 1, ...)
    np.copyto(row_max, 0, where=np.isneginf(row_max))      # all -inf row: exp(-inf - 0) = 0
    out = np.subtract(x, row_max, out=out)                 # x - m  <= 0
    np.exp(out, out=out)                                   # in (0, 1]
    total = _row_sums(out, axis)                           # (..., 1, ...)  Σ_j exp(x_j - m)
    np.copyto(total, 1, where=total == 0)                  # all -inf row: 0 / 1 = 0
    np.reciprocal(total, out=total)
    np.multiply(out, total, out=out)                       # one divide per row, then multiplies
    return out


def _row_sums(x: np.ndarray, axis: int) -> np.ndarray:
    """Σ over `axis`, keeping it; along the last axis as x · 1 (BLAS), about 2x np.sum's speed."""
    if axis in (-1, x.ndim - 1) and x.dtype in (np.float32, np.float64):
        return (x @ np.ones(x.shape[-1], x.dtype))[..., None]        # (..., n) @ (n,) -> (...,)
    return np.sum(x, axis=axis, keepdims=True)


def softmax_(x: np.ndarray) -> np.ndarray:
    """In-place softmax over the last axis of `x`, in cache-sized row blocks, blocks in parallel.

    Same result as softmax(x, -1, out=x); the blocking only changes the order of the work, so
    each block is read from memory once instead of four times, and the cores share the blocks.
    """
    if not x.flags.c_contiguous:
        return softmax(x, axis=-1, out=x)
    for_row_blocks(lambda block: softmax(block, axis=-1, out=block), x, block_elements=ROW_BLOCK_ELEMENTS)
    return x
