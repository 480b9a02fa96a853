"""Backward of scaled dot-product attention and multi-head attention.

Forward (per batch entry and head; masked scores are −∞, so their weights are exactly 0):
    S = (Q/√d_k) Kᵀ           (Tq, Tk)
    P = softmax(S)            (Tq, Tk)       a row with no allowed key: P = 0
    O = P V                   (Tq, d_v)

Backward, given G = ∂L/∂O:
    ∂L/∂V = Pᵀ G                               (Tk, d_v)
    ∂L/∂P = G Vᵀ                               (Tq, Tk)
    ∂L/∂S = P ⊙ (∂L/∂P − rowsum(∂L/∂P ⊙ P))    softmax's product; 0 where masked (P = 0)
    ∂L/∂Q = ∂L/∂S K / √d_k                     (Tq, d_k)
    ∂L/∂K = ∂L/∂Sᵀ Q / √d_k                    (Tk, d_k)

Multi-head attention, Q = x_q W_Qᵀ + b_Q, K = x_kv W_Kᵀ + b_K, V = x_kv W_Vᵀ + b_V, split into
H heads, attention per head, heads merged, Y = C W_Oᵀ + b_O: the backward runs the same steps in
reverse (linear, merge⁻¹ = split, attention, split⁻¹ = merge, the three linears) and
∂L/∂x_kv = ∂L/∂x_kv|_K + ∂L/∂x_kv|_V (for self-attention the caller also adds ∂L/∂x_q).
"""

from __future__ import annotations

import numpy as np

from tfimpl.numpy.attention import (combine_masks, merge_heads, scaled_dot_product_attention,
                                    split_heads)
from tfimpl.numpy.grad.primitives import linear_backward, linear_forward, prefixed


def sdpa_forward(q, k, v, mask=None, causal=False):
    """O = softmax(Q Kᵀ/√d_k + mask) V for (B, H, T, d_k) inputs; cache = (q, k, v, P)."""
    out, weights = scaled_dot_product_attention(q, k, v, mask=mask, causal=causal,
                                                return_weights=True)   # (B, H, Tq, d_v), (B, H, Tq, Tk)
    return out, {"q": q, "k": k, "v": v, "weights": weights}


def sdpa_backward(cache, grad_out):
    """((∂L/∂Q, ∂L/∂K, ∂L/∂V), {}) from G = ∂L/∂O (B, H, Tq, d_v); the mask lives in P's zeros."""
    q, k, v, p = cache["q"], cache["k"], cache["v"], cache["weights"]
    scale = float(1.0 / np.sqrt(q.shape[-1]))      # a Python float keeps float32 float32
    grad_v = p.swapaxes(-1, -2) @ grad_out                  # (B, H, Tk, Tq) @ (B, H, Tq, d_v) -> (B, H, Tk, d_v)
    grad_p = grad_out @ v.swapaxes(-1, -2)                  # (B, H, Tq, d_v) @ (B, H, d_v, Tk) -> (B, H, Tq, Tk)
    grad_s = p * (grad_p - np.sum(grad_p * p, axis=-1, keepdims=True))   # (B, H, Tq, Tk)
    grad_q = (grad_s @ k) * scale                           # (B, H, Tq, Tk) @ (B, H, Tk, d_k) -> (B, H, Tq, d_k)
    grad_k = (grad_s.swapaxes(-1, -2) @ q) * scale          # (B, H, Tk, Tq) @ (B, H, Tq, d_k) -> (B, H, Tk, d_k)
    return (grad_q, grad_k, grad_v), {}


def mha_forward(p, x_q, x_kv, n_heads, mask=None, key_padding_mask=None, causal=False):
    """MultiHead(x_q, x_kv) (B, Tq, D) as tfimpl.numpy.attention.multi_head_attention computes it."""
    batch, seq_q, _ = x_q.shape
    mask = combine_masks(mask, key_padding_mask, batch, n_heads, seq_q, x_kv.shape[1])
    caches = {}
    heads = []
    for name, x in (("q", x_q), ("k", x_kv), ("v", x_kv)):
        projected, caches[name] = linear_forward(x, p[f"{name}.weight"], p[f"{name}.bias"])  # (B, T, D)
        heads.append(split_heads(projected, n_heads))       # (B, H, T, d_k)
    context, caches["attention"] = sdpa_forward(*heads, mask=mask, causal=causal)  # (B, H, Tq, d_k)
    out, caches["o"] = linear_forward(merge_heads(context), p["o.weight"], p["o.bias"])  # (B, Tq, D)
    caches["n_heads"] = n_heads
    return out, caches


def mha_backward(cache, grad_out):
    """((∂L/∂x_q, ∂L/∂x_kv), grads in the mha layout q.* k.* v.* o.*)."""
    n_heads = cache["n_heads"]
    grad_merged, grads_o = linear_backward(cache["o"], grad_out)        # (B, Tq, D)
    grads = prefixed("o", grads_o)
    grad_context = split_heads(grad_merged, n_heads)                    # (B, H, Tq, d_k)
    head_grads, _ = sdpa_backward(cache["attention"], grad_context)
    grad_inputs = {}
    for name, grad_head in zip("qkv", head_grads):
        grad_x, g = linear_backward(cache[name], merge_heads(grad_head))   # (B, T, D)
        grad_inputs[name] = grad_x
        grads.update(prefixed(name, g))
    return (grad_inputs["q"], grad_inputs["k"] + grad_inputs["v"]), grads
