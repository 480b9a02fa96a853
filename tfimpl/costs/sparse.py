"""Costs of the attentions that do less work than n² (tfimpl/*/sparse_attention.py).

Self-attention on (B, H, n, d) with d = d_k = d_v; a matmul (m, k)·(k, n) costs 2·m·n·k FLOPs
(tfimpl.costs.flops). Every FLOP of these kernels is a matmul FLOP (the softmax and φ = elu + 1
are element-wise, kept apart as in tfimpl.costs.flops), so the totals are what torch's
FlopCounterMode counts.

Sliding window of width w, blocks of c = tiling.sparse_block(w) queries, nb = ⌈n/c⌉, each block
against L = c + w - 1 keys (tiling.window_bounds: left + right = w - 1):

    window_scores        (c, d)·(d, L) per block        2·B·H·nb·c·L·d
    window_weighted_sum  (c, L)·(L, d) per block        2·B·H·nb·c·L·d       -> 4·B·H·n·(c + w)·d

Window + g global tokens adds, per block, the g global keys, and g dense rows:

    global_scores, global_weighted_sum    2·B·H·nb·c·g·d each
    global_rows (scores, weighted sum)    2·B·H·g·n·d each                   -> O(n·(w + g)·d)

Linear attention (φ(Q)·(φ(K)ᵀ·[V 1]), the ones column carrying the normaliser):

    bidirectional   kv_state 2·B·H·n·d·(d + 1), query_state 2·B·H·n·d·(d + 1)  -> 4·B·H·n·d·(d + 1)
    causal, chunks of c = min(LINEAR_CHUNK, n), N = nb·c positions after padding:
                    kv_state 2·B·H·N·d·(d + 1) (per chunk), query_state the same (running sum),
                    chunk_scores 2·B·H·N·c·d, chunk_weighted_sum 2·B·H·N·c·(d + 1)

The useful work: `pattern_pairs` counts the (query, key) pairs a pattern allows; a dense
attention computes n² pairs at 4·d FLOPs each (scores and weighted sum), so
`useful_fraction` = pairs / n² is the share of a dense count that the pattern needs, and
pairs / (nb·c·L) the share of the blockwise kernel's own work that is not masked away.

Peak bytes above the inputs (e bytes per element), from the kernels' allocation schedule in
tfimpl/*/sparse_attention.py, per (B·H), with N = nb·c:

    window   N·d (blocked q) + 2·(N + w - 1)·d (padded K, V) + nb·c·L (scores)
             + N·d (out) + nb·L·d (torch: a window's contiguous copy inside matmul; NumPy's
             BLAS reads the strided view and makes none)
    global   max of the three phases of global_window_attention (below); an estimate: torch's
             copies of the strided probability slices inside matmul are left out (~20% low)
    linear   bidirectional: 3·n·d + n·(d + 1) (φ(q), φ(k), v1) + n·(d + 1) + d·(d + 1)
             causal: φ's and v1, their padded blocks, 2 chunk states, c·c scores per chunk, and
             three (N, d + 1) products alive at once (inter, intra, their sum)
    banded   the dense path's peak (tfimpl.costs.predicted_peak_bytes) plus the (n, n) boolean
             mask and its negation (2·n² bytes; SDPA: the mask and its float form, (1 + e)·n²):
             masking keeps the n² memory, even on the fused path

Tests: tests/tfimpl/test_sparse_attention.py (FLOPs == FlopCounterMode, peaks against the
memory tracker).
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.costs.memory import predicted_peak_bytes
from tfimpl.tiling import LINEAR_CHUNK, sparse_block, window_bounds

PATTERNS = ("window", "global", "linear", "dense")


def _tri(k: int) -> int:
    """k·(k + 1) / 2 for k > 0, else 0."""
    return k * (k + 1) // 2 if k > 0 else 0


def _sum_positive(a: int, n: int) -> int:
    """Σ_{i=0}^{n-1} max(0, i + a)."""
    return _tri(n - 1 + a) - _tri(a - 1)


def band_pairs(n: int, left: int, right: int) -> int:
    """(i, j) pairs of an n-long sequence with -left <= j - i <= right (0 <= i, j < n).

    Σ_i (min(n-1, i+right) - max(0, i-left) + 1), in closed form.
    """
    if n <= 0:
        return 0
    upper = n * (n - 1) // 2 + n * right - _sum_positive(right - n + 1, n)   # Σ min(n-1, i+right)
    lower = _sum_positive(-left, n)                                          # Σ max(0, i-left)
    return upper - lower + n


def pattern_pairs(n: int, window: int, global_tokens: int = 0, causal: bool = False) -> int:
    """(query, key) pairs the window (+ global) pattern allows (tfimpl.*.sparse_attention.window_mask)."""
    left, right = window_bounds(window, causal)
    g = global_tokens
    if causal:
        return _tri(g) + (n - g) * g + band_pairs(n - g, left, right)
    return g * n + (n - g) * g + band_pairs(n - g, left, right)


def dense_pairs(n: int, causal: bool = False) -> int:
    return _tri(n) if causal else n * n


def useful_fraction(n: int, window: int, global_tokens: int = 0, causal: bool = False) -> float:
    """Share of a dense attention's n² pairs (4·d FLOPs each) the pattern needs."""
    return pattern_pairs(n, window, global_tokens, causal) / (n * n)


def window_geometry(n: int, window: int) -> tuple[int, int, int]:
    """(c, nb, L): queries per block, blocks, keys per block."""
    c = sparse_block(window)
    return c, -(-n // c), c + window - 1


def window_flops(batch: int, heads: int, n: int, d: int, window: int,
                 global_tokens: int = 0) -> dict[str, int]:
    """Matmul FLOPs of sliding_window_attention (g = 0) or global_window_attention."""
    c, nb, L = window_geometry(n, window)
    bh, g = batch * heads, global_tokens
    out = {"window_scores": 2 * bh * nb * c * L * d, "window_weighted_sum": 2 * bh * nb * c * L * d}
    if g:
        out.update(global_scores=2 * bh * nb * c * g * d, global_weighted_sum=2 * bh * nb * c * g * d,
                   global_rows=4 * bh * g * n * d)
    out["total"] = sum(out.values())
    return out


def linear_flops(batch: int, heads: int, n: int, d: int, causal: bool = False) -> dict[str, int]:
    """Matmul FLOPs of linear_attention."""
    bh = batch * heads
    if not causal:
        out = {"kv_state": 2 * bh * n * d * (d + 1), "query_state": 2 * bh * n * d * (d + 1)}
    else:
        c = min(LINEAR_CHUNK, n)
        big_n = -(-n // c) * c
        out = {"kv_state": 2 * bh * big_n * d * (d + 1), "query_state": 2 * bh * big_n * d * (d + 1),
               "chunk_scores": 2 * bh * big_n * c * d, "chunk_weighted_sum": 2 * bh * big_n * c * (d + 1)}
    out["total"] = sum(out.values())
    return out


def dense_flops(batch: int, heads: int, n: int, d: int) -> dict[str, int]:
    """Dense attention (masked or not: the mask removes no work): 4·B·H·n²·d."""
    bh = batch * heads
    out = {"attn_scores": 2 * bh * n * n * d, "attn_weighted_sum": 2 * bh * n * n * d}
    out["total"] = sum(out.values())
    return out


def window_peak_bytes(batch: int, heads: int, n: int, d: int, window: int, e: int,
                      global_tokens: int = 0, backend: str = "torch") -> int:
    """Peak bytes above the inputs of sliding_window_attention / global_window_attention."""
    c, nb, L = window_geometry(n, window)
    big_n, g = nb * c, global_tokens
    copy = nb * L * d if backend == "torch" else 0        # torch's matmul copies the window view
    padded = (big_n + window - 1) * d
    if not g:
        return e * batch * heads * (2 * big_n * d + 2 * padded + copy + big_n * L)
    held = n * d + big_n * d                               # scaled q, its blocks
    loc = held + big_n * g + padded + copy + big_n * L     # the window's scores being made
    cat = held + 2 * big_n * (g + L)                       # the scores joined
    mix = held + big_n * (g + L) + padded + copy + 3 * big_n * d   # the two weighted sums
    return e * batch * heads * max(loc, cat, mix)


def linear_peak_bytes(batch: int, heads: int, n: int, d: int, e: int, causal: bool = False) -> int:
    """Peak bytes above the inputs of linear_attention."""
    features = 2 * n * d + n * (d + 1)                     # φ(q), φ(k), [v 1]
    if not causal:
        return e * batch * heads * (features + n * d + n * (d + 1) + d * (d + 1))
    c = min(LINEAR_CHUNK, n)
    nb = -(-n // c)
    big_n = nb * c
    blocks = 2 * big_n * d + big_n * (d + 1)
    states = 2 * nb * d * (d + 1)
    return e * batch * heads * (features + blocks + states + nb * c * c + 3 * big_n * (d + 1))


def banded_peak_bytes(cfg: ModelConfig, batch: int, n: int, e: int, attn_impl: str,
                      causal: bool = False, threads: int = 1, backend: str = "torch") -> int:
    """Dense attention with an (n, n) boolean mask: the dense path's peak plus the mask and
    what each path makes of it: explicit 2·n² bytes (the mask, its negation for masked_fill);
    torch's SDPA (1 + e)·n² (the mask, and the additive float mask it turns it into on CPU)."""
    dense = predicted_peak_bytes("attention", cfg, batch, n, e, attn_impl, "forward",
                                 causal=causal, threads=threads, backend=backend)
    return dense + (2 if attn_impl != "sdpa" else 1 + e) * n * n
