"""Scaled dot-product attention and multi-head attention (Vaswani et al. 2017, section 3.2).

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) · V
    MultiHead(x_q, x_kv) = Concat(head_1 .. head_H) · W_Oᵀ + b_O,
        head_h = Attention(x_q W_Q,hᵀ, x_kv W_K,hᵀ, x_kv W_V,hᵀ)

Masks are boolean, True = may attend, broadcastable to (B, H, Tq, Tk); a key padding mask is
(B, Tk) with True = real token. Causal masking lets query i see keys j <= i + causal_offset:
offset 0 is the square (top-left aligned) case; with a KV cache the Tq new queries sit at the end
of Tk = n + Tq keys, so causal_offset = Tk - Tq (bottom-right aligned, as in FlashAttention 2).

Memory: the (B, H, Tq, Tk) score matrix is the only large array. It is made once (by the
Q·Kᵀ matmuls, with the small Q scaled beforehand) and then masked and soft-maxed in place, so
the weights reuse its memory. Peak: B·H·Tq·(Tk + d_v) elements (scores and output) plus a
workspace of a few tiles (under 2 MiB), whatever the sizes.
"""

from __future__ import annotations

import numpy as np

from tfimpl.numpy._checks import (check_heads, check_key_padding_mask, check_mask, check_ndim,
                                  check_qkv, check_same_batch)
from tfimpl.numpy._threads import map_tiles
from tfimpl.numpy.linear import linear
from tfimpl.numpy.softmax import softmax
from tfimpl.tiling import tile_shape


def causal_mask(seq_len_q: int, seq_len_k: int, offset: int = 0) -> np.ndarray:
    """(Tq, Tk) boolean, True where query i may see key j, i.e. j <= i + offset.

    offset 0: top-left aligned (square attention); offset Tk - Tq: bottom-right aligned (the
    queries are the last Tq positions of the keys, as after a KV cache of Tk - Tq tokens).
    """
    return np.tri(seq_len_q, seq_len_k, k=offset, dtype=bool)


def scaled_dot_product_attention(q, k, v, mask=None, causal=False, return_weights=False, out=None,
                                 causal_offset=0):
    """softmax(Q Kᵀ / √d_k + mask) · V for q: (B, H, Tq, d_k), k: (B, H, Tk, d_k), v: (B, H, Tk, d_v).

    Returns out (B, H, Tq, d_v), or (out, weights (B, H, Tq, Tk)) when return_weights.
    `out`, if given, receives the result: any (B, H, Tq, d_v) array, e.g. the transposed view
    of a (B, Tq, H, d_v) buffer, so that merging the heads afterwards needs no copy.
    A query row with no allowed key gets all-zero weights (and a zero output).
    With causal, query i sees keys j <= i + causal_offset (see causal_mask).

    The work goes tile by tile (one batch entry, some heads, a block of query rows); each tile's
    steps run back to back while its scores are in cache, and the tiles are shared by threads:
        scores[tile] = (q[tile] / √d_k) · kᵀ ;  -inf where masked ;  soft-max in place
        out[tile]    = scores[tile] · v
    The (B, H, Tq, Tk) score matrix is still made in full, once: the result is the same as
    running each step over the whole matrix, which is what `return_weights` hands back.
    """
    check_qkv(q, k, v)
    batch, heads, seq_q, d_k = q.shape
    seq_k = k.shape[2]
    if mask is not None:
        check_mask(mask, (batch, heads, seq_q, seq_k))
        mask = np.broadcast_to(mask, (batch, heads, seq_q, seq_k))        # a view, no copy
    dtype = np.result_type(q, k, v)
    scale = dtype.type(1.0 / np.sqrt(d_k))                               # scale q (small), not scores
    scores = np.empty((batch, heads, seq_q, seq_k), dtype)              # (B, H, Tq, Tk) the one big array
    if out is None:
        out = np.empty((batch, heads, seq_q, v.shape[-1]), dtype)       # (B, H, Tq, d_v)

    def attend(tile):
        b, hs, rs = tile                                                # batch entry, head and row slices
        s = scores[b, hs, rs]                                           # (g, r, Tk) view
        np.matmul(q[b, hs, rs] * scale, k[b, hs].swapaxes(-1, -2), out=s)   # (g, r, d_k) @ (g, d_k, Tk)
        if mask is not None:
            np.copyto(s, -np.inf, where=~mask[b, hs, rs])              # masked_fill in place
        if causal:
            future = np.tri(s.shape[1], seq_k, k=rs.start + causal_offset, dtype=bool)  # (r, Tk) j <= i+o
            np.logical_not(future, out=future)                          # ... now j > i
            np.copyto(s, -np.inf, where=future)
        softmax(s, axis=-1, out=s)                                      # in place: the weights
        np.matmul(s, v[b, hs], out=out[b, hs, rs])                      # (g, r, Tk) @ (g, Tk, d_v)

    group, rows = tile_shape(heads, seq_q, seq_k)
    map_tiles(attend, [(b, slice(h, h + group), slice(r, r + rows))
                       for b in range(batch) for h in range(0, heads, group)
                       for r in range(0, seq_q, rows)])
    return (out, scores) if return_weights else out


def split_heads(x: np.ndarray, n_heads: int) -> np.ndarray:
    """(B, T, D) -> (B, H, T, d_k), a view (no copy)."""
    check_ndim("x", x, 3, "(B, T, D)")
    check_heads(x.shape[-1], n_heads)
    batch, seq, d_model = x.shape
    x = x.reshape(batch, seq, n_heads, d_model // n_heads)  # (B, T, H, d_k)
    return x.transpose(0, 2, 1, 3)                         # (B, H, T, d_k)


def merge_heads(x: np.ndarray) -> np.ndarray:
    """(B, H, T, d_k) -> (B, T, H·d_k), the inverse of split_heads (one copy)."""
    check_ndim("x", x, 4, "(B, H, T, d_k)")
    batch, heads, seq, d_k = x.shape
    return x.transpose(0, 2, 1, 3).reshape(batch, seq, heads * d_k)  # (B, T, H, d_k) -> (B, T, D)


def project_qkv(p, x_q, x_kv, n_heads):
    """Q, K, V as (B, H, T, d_k) views. Self-attention (x_kv is x_q) uses one fused GEMM."""
    if x_kv is x_q:
        w = np.concatenate([p["q.weight"], p["k.weight"], p["v.weight"]])      # (3D, D)
        b = np.concatenate([p["q.bias"], p["k.bias"], p["v.bias"]])            # (3D,)
        qkv = linear(x_q, w, b)                                                # (B, T, 3D)
        batch, seq, three_d = qkv.shape
        qkv = qkv.reshape(batch, seq, 3, n_heads, three_d // (3 * n_heads))    # (B, T, 3, H, d_k)
        q, k, v = qkv.transpose(2, 0, 3, 1, 4)                                 # 3 x (B, H, T, d_k)
        return q, k, v
    q = split_heads(linear(x_q, p["q.weight"], p["q.bias"]), n_heads)          # (B, H, Tq, d_k)
    w = np.concatenate([p["k.weight"], p["v.weight"]])                          # (2D, D)
    b = np.concatenate([p["k.bias"], p["v.bias"]])
    kv = linear(x_kv, w, b)                                                     # (B, Tk, 2D)
    batch, seq, two_d = kv.shape
    kv = kv.reshape(batch, seq, 2, n_heads, two_d // (2 * n_heads))            # (B, Tk, 2, H, d_k)
    k, v = kv.transpose(2, 0, 3, 1, 4)                                          # 2 x (B, H, Tk, d_k)
    return q, k, v


def combine_masks(mask, key_padding_mask, batch, heads, seq_q, seq_k):
    """One boolean mask (or None) from an attention mask and a (B, Tk) key padding mask."""
    if mask is not None:
        check_mask(mask, (batch, heads, seq_q, seq_k))
    if key_padding_mask is None:
        return mask
    check_key_padding_mask("key_padding_mask", key_padding_mask, batch, seq_k)
    padding = key_padding_mask[:, None, None, :]                               # (B, 1, 1, Tk)
    return padding if mask is None else mask & padding


def multi_head_attention(p, x_q, x_kv, n_heads, mask=None, key_padding_mask=None, causal=False,
                         return_weights=False):
    """MultiHead(x_q, x_kv): x_q (B, Tq, D) attends over x_kv (B, Tk, D) -> (B, Tq, D).

    Pass the same array as x_q and x_kv for self-attention; a different one for cross-attention.
    With return_weights, also the (B, H, Tq, Tk) attention weights.
    """
    check_ndim("x_q", x_q, 3, "(B, T, D)")
    d_model = p["q.weight"].shape[1]
    if x_q.shape[-1] != d_model:
        raise ValueError(f"x_q must have last dimension d_model={d_model}, got shape {x_q.shape}")
    check_same_batch("x_kv", x_kv, x_q.shape[0], d_model)
    check_heads(d_model, n_heads)
    batch, seq_q, _ = x_q.shape
    mask = combine_masks(mask, key_padding_mask, batch, n_heads, seq_q, x_kv.shape[1])
    q, k, v = project_qkv(p, x_q, x_kv, n_heads)                               # (B, H, T, d_k)
    context = np.empty((batch, seq_q, n_heads, q.shape[-1]), np.result_type(q, v))  # (B, Tq, H, d_k)
    result = scaled_dot_product_attention(q, k, v, mask=mask, causal=causal, return_weights=return_weights,
                                          out=context.transpose(0, 2, 1, 3))  # written as (B, H, Tq, d_k)
    weights = result[1] if return_weights else None
    merged = context.reshape(batch, seq_q, d_model)                            # (B, Tq, D) merge_heads, no copy
    out = linear(merged, p["o.weight"], p["o.bias"])                           # (B, Tq, D)
    return (out, weights) if return_weights else out
