"""Scaled dot-product attention and multi-head attention (mirrors tfimpl.numpy.attention).

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) · V
    MultiHead(x_q, x_kv) = Concat(head_1 .. head_H) · W_Oᵀ + b_O,
        head_h = Attention(x_q W_Q,hᵀ, x_kv W_K,hᵀ, x_kv W_V,hᵀ)

Masks are boolean, True = may attend, broadcastable to (B, H, Tq, Tk); a key padding mask is
(B, Tk) with True = real token. Causal masking lets query i see keys j <= i + causal_offset
(0: top-left aligned; Tk - Tq: bottom-right aligned, the queries after a KV cache).

Two ways to compute the same thing (`attn_impl`):
  "explicit" (default): matmul, softmax, matmul, as written above. The (B, H, Tq, Tk) score
      matrix is made once (Q is scaled first, it is the small side) and, when no gradient is
      needed, masked and soft-maxed in place, so the weights reuse its memory: peak
      B·H·Tq·(Tk + d_v) elements (scores and output). Under autograd each step is out of
      place instead (autograd keeps the intermediates it needs).
  "sdpa": torch.nn.functional.scaled_dot_product_attention, PyTorch's fused kernel (flash
      attention on CPU), which never holds the full score matrix. It cannot return the weights,
      so return_weights=True always takes the explicit path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tfimpl.numpy._checks import (check_heads, check_key_padding_mask, check_mask, check_ndim,
                                  check_qkv, check_same_batch)
from tfimpl.tiling import MASK_BLOCK_ELEMENTS
from tfimpl.torch.linear import linear
from tfimpl.torch.softmax import softmax_

ATTN_IMPLS = ("explicit", "sdpa")
NEG_INF = float("-inf")


def _check_attn_impl(attn_impl: str) -> None:
    if attn_impl not in ATTN_IMPLS:
        raise ValueError(f"attn_impl must be one of {ATTN_IMPLS}, got {attn_impl!r}")


def causal_mask(seq_len_q: int, seq_len_k: int, device="cpu", offset: int = 0) -> torch.Tensor:
    """(Tq, Tk) boolean, True where query i may see key j, i.e. j <= i + offset (0: top-left
    aligned; Tk - Tq: bottom-right aligned, the queries after a KV cache)."""
    return torch.ones(seq_len_q, seq_len_k, dtype=torch.bool, device=device).tril_(offset)


def _allowed(mask, causal, seq_q, seq_k, device, offset=0):
    """The one boolean mask (or None) that says which keys each query may see."""
    if not causal or offset >= seq_k - 1:                # every query sees every key
        return mask
    tri = causal_mask(seq_q, seq_k, device, offset)                           # (Tq, Tk)
    return tri if mask is None else mask & tri


def scaled_dot_product_attention(q, k, v, mask=None, causal=False, return_weights=False,
                                 attn_impl="explicit", causal_offset=0):
    """softmax(Q Kᵀ / √d_k + mask) · V for q: (B, H, Tq, d_k), k: (B, H, Tk, d_k), v: (B, H, Tk, d_v).

    Returns out (B, H, Tq, d_v), or (out, weights (B, H, Tq, Tk)) when return_weights.
    A query row with no allowed key gets all-zero weights (and a zero output).
    With causal, query i sees keys j <= i + causal_offset (see causal_mask).
    """
    _check_attn_impl(attn_impl)
    check_qkv(q, k, v)
    batch, heads, seq_q, d_k = q.shape
    seq_k = k.shape[2]
    if mask is not None:
        check_mask(mask, (batch, heads, seq_q, seq_k))
    if attn_impl == "sdpa" and not return_weights:
        if mask is None and causal_offset == 0:
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        allowed = _allowed(mask, causal, seq_q, seq_k, q.device, causal_offset)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    scale = 1.0 / math.sqrt(d_k)                            # scale q (small), not the scores (large)
    scores = (q * scale) @ k.transpose(-2, -1)              # (B, H, Tq, d_k) @ (B, H, d_k, Tk) -> (B, H, Tq, Tk)
    in_place = not (torch.is_grad_enabled() and scores.requires_grad)
    if mask is not None:                                    # masked_fill (in place when no grad)
        scores = scores.masked_fill_(~mask, NEG_INF) if in_place else scores.masked_fill(~mask, NEG_INF)
    if causal and causal_offset < seq_k - 1:               # else no key lies in any query's future
        scores = (_mask_future_(scores, causal_offset) if in_place
                  else scores.masked_fill(~causal_mask(seq_q, seq_k, q.device, causal_offset), NEG_INF))
    weights = softmax_(scores) if in_place else torch.softmax(scores, dim=-1)  # (B, H, Tq, Tk)
    if mask is not None:
        no_key = weights[..., :1].isnan()                   # (B, H, Tq, 1) rows that saw only -inf
        if bool(no_key.any()):                              # came out NaN: give them zero weights
            weights = weights.masked_fill_(no_key, 0.0) if in_place else weights.masked_fill(no_key, 0.0)
    out = weights @ v                                       # (B, H, Tq, Tk) @ (B, H, Tk, d_v) -> (B, H, Tq, d_v)
    return (out, weights) if return_weights else out


def _mask_future_(scores: torch.Tensor, offset: int = 0) -> torch.Tensor:
    """scores[..., i, j] = -inf where j > i + offset, in place, a block of query rows at a time.

    Only a (rows, Tk) causal pattern exists at any moment, never a (Tq, Tk) mask.
    """
    seq_q, seq_k = scores.shape[-2:]
    rows = max(1, MASK_BLOCK_ELEMENTS // seq_k)
    for start in range(0, seq_q, rows):
        block = scores[..., start:start + rows, :]                             # (B, H, r, Tk) view
        future = torch.ones(block.shape[-2], seq_k, dtype=torch.bool,
                            device=scores.device).triu_(start + 1 + offset)    # (r, Tk)  j > i+o
        block.masked_fill_(future, NEG_INF)
    return scores


def split_heads(x: torch.Tensor, n_heads: int) -> torch.Tensor:
    """(B, T, D) -> (B, H, T, d_k), a view (no copy)."""
    check_ndim("x", x, 3, "(B, T, D)")
    check_heads(x.shape[-1], n_heads)
    batch, seq, d_model = x.shape
    return x.view(batch, seq, n_heads, d_model // n_heads).transpose(1, 2)    # (B, H, T, d_k)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, d_k) -> (B, T, H·d_k), the inverse of split_heads (one copy)."""
    check_ndim("x", x, 4, "(B, H, T, d_k)")
    batch, heads, seq, d_k = x.shape
    return x.transpose(1, 2).reshape(batch, seq, heads * d_k)                 # (B, T, H, d_k) -> (B, T, D)


def project_qkv(p, x_q, x_kv, n_heads):
    """Q, K, V as (B, H, T, d_k) views. Self-attention (x_kv is x_q) uses one fused GEMM."""
    if x_kv is x_q:
        w = torch.cat([p["q.weight"], p["k.weight"], p["v.weight"]])           # (3D, D)
        b = torch.cat([p["q.bias"], p["k.bias"], p["v.bias"]])                 # (3D,)
        qkv = linear(x_q, w, b)                                                # (B, T, 3D)
        batch, seq, three_d = qkv.shape
        qkv = qkv.view(batch, seq, 3, n_heads, three_d // (3 * n_heads))       # (B, T, 3, H, d_k)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)                         # 3 x (B, H, T, d_k)
        return q, k, v
    q = split_heads(linear(x_q, p["q.weight"], p["q.bias"]), n_heads)          # (B, H, Tq, d_k)
    w = torch.cat([p["k.weight"], p["v.weight"]])                               # (2D, D)
    b = torch.cat([p["k.bias"], p["v.bias"]])
    kv = linear(x_kv, w, b)                                                     # (B, Tk, 2D)
    batch, seq, two_d = kv.shape
    kv = kv.view(batch, seq, 2, n_heads, two_d // (2 * n_heads))               # (B, Tk, 2, H, d_k)
    k, v = kv.permute(2, 0, 3, 1, 4).unbind(0)                                  # 2 x (B, H, Tk, d_k)
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
                         return_weights=False, attn_impl="explicit"):
    """MultiHead(x_q, x_kv): x_q (B, Tq, D) attends over x_kv (B, Tk, D) -> (B, Tq, D).

    Pass the same tensor as x_q and x_kv for self-attention; a different one for cross-attention.
    With return_weights, also the (B, H, Tq, Tk) attention weights.
    """
    _check_attn_impl(attn_impl)
    check_ndim("x_q", x_q, 3, "(B, T, D)")
    d_model = p["q.weight"].shape[1]
    if x_q.shape[-1] != d_model:
        raise ValueError(f"x_q must have last dimension d_model={d_model}, got shape {tuple(x_q.shape)}")
    check_same_batch("x_kv", x_kv, x_q.shape[0], d_model)
    check_heads(d_model, n_heads)
    batch, seq_q, _ = x_q.shape
    mask = combine_masks(mask, key_padding_mask, batch, n_heads, seq_q, x_kv.shape[1])
    q, k, v = project_qkv(p, x_q, x_kv, n_heads)                               # (B, H, T, d_k)
    result = scaled_dot_product_attention(q, k, v, mask=mask, causal=causal,
                                          return_weights=return_weights, attn_impl=attn_impl)
    context, weights = result if return_weights else (result, None)           # (B, H, Tq, d_k)
    out = linear(merge_heads(context), p["o.weight"], p["o.bias"])             # (B, Tq, D)
    return (out, weights) if return_weights else out
