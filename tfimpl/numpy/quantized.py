"""int8 from first principles: symmetric quantization, integer matmul, dequantization.

Weights, per output channel (one scale per row of W: (out, in)), symmetric (no zero point):

    s_w[o] = max_i |W[o, i]| / 127,   W_q[o, i] = round(W[o, i] / s_w[o]) ∈ [-127, 127]  (int8)

Activations, dynamically per token (one scale per row of x: (N, in), computed at run time):

    s_x[n] = max_i |x[n, i]| / 127,   x_q[n, i] = round(x[n, i] / s_x[n])                 (int8)

The product in integers, then one rescale per output element:

    acc[n, o] = Σ_i x_q[n, i] · W_q[o, i]            int8 × int8 → int32 (exact: |acc| ≤ in·127²)
    y[n, o]   = acc[n, o] · s_x[n] · s_w[o] + b[o]   (float32)

Rounding is half to even (np.round, torch.round agree), scales are float32 and the divisions are
IEEE float32 in both backends, so tfimpl.torch.quantized gives the same integers bit for bit.
Error of one element: |x_q s_x − x| ≤ s_x/2 and |W_q s_w − W| ≤ s_w/2, hence

    |y − x·Wᵀ| ≤ Σ_i (s_x/2 |W[o, i]| + |x[n, i]| s_w/2 + s_x s_w / 4)        (`error_bound`)

plus float32 rounding of the rescale. Only the Linear layers are quantized (q, k, v, o, ff1,
ff2: the standard dynamic-quantization recipe for BERT); attention's QKᵀ and PV matmuls, softmax,
layer norm and the residual adds stay float32. Cost model: tfimpl.costs.quantized.
"""

from __future__ import annotations

import numpy as np

from tfimpl.config import ModelConfig
from tfimpl.numpy._checks import check_ndim
from tfimpl.numpy.attention import merge_heads, scaled_dot_product_attention, split_heads
from tfimpl.numpy.feed_forward import gelu, gelu_tanh, relu
from tfimpl.numpy.layer_norm import layer_norm

QMAX = 127                                    # symmetric int8: [-127, 127], -128 unused
LINEARS = ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "ffn.ff1", "ffn.ff2")
_ACTIVATIONS = {"relu": relu, "gelu": gelu, "gelu_tanh": gelu_tanh}


def _scales(absmax: np.ndarray) -> np.ndarray:
    """absmax / 127 as float32, 1 where a row is all zeros (its integers are then 0)."""
    scale = (absmax.astype(np.float32) / np.float32(QMAX)).astype(np.float32)
    return np.where(scale > 0, scale, np.float32(1.0)).astype(np.float32)


def quantize_per_channel(weight: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """W (out, in) -> (W_q int8 (out, in), s_w float32 (out,)), symmetric per output channel."""
    w = np.asarray(weight, dtype=np.float32)
    scale = _scales(np.abs(w).max(axis=1))                          # (out,)
    q = np.clip(np.round(w / scale[:, None]), -QMAX, QMAX)          # (out, in)
    return q.astype(np.int8), scale


def quantize_per_token(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x (N, in) -> (x_q int8 (N, in), s_x float32 (N,)), symmetric per row (token), dynamic."""
    x = np.asarray(x, dtype=np.float32)
    scale = _scales(np.abs(x).max(axis=1))                          # (N,)
    q = np.clip(np.round(x / scale[:, None]), -QMAX, QMAX)          # (N, in)
    return q.astype(np.int8), scale


def int8_matmul(x_q: np.ndarray, w_q: np.ndarray) -> np.ndarray:
    """(N, in) int8 @ (out, in)ᵀ int8 -> (N, out) int32, exact."""
    return x_q.astype(np.int32) @ w_q.astype(np.int32).T           # (N, in) @ (in, out)


def dequantize(acc: np.ndarray, x_scale: np.ndarray, w_scale: np.ndarray) -> np.ndarray:
    """acc (N, out) int32 -> float32: acc · s_x[n] · s_w[o]."""
    return acc.astype(np.float32) * x_scale[:, None] * w_scale[None, :]


def linear_int8(x: np.ndarray, w_q: np.ndarray, w_scale: np.ndarray,
                bias: np.ndarray | None = None, return_acc: bool = False):
    """(..., in) -> (..., out) float32 through an int8 × int8 → int32 matmul.

    return_acc: also the int32 accumulator (N, out), the integer part the parity test compares.
    """
    if x.shape[-1] != w_q.shape[1]:
        raise ValueError(f"x must have last dimension {w_q.shape[1]}, got shape {x.shape}")
    rows = x.reshape(-1, x.shape[-1])                               # (N, in)
    x_q, x_scale = quantize_per_token(rows)                         # (N, in) int8, (N,)
    acc = int8_matmul(x_q, w_q)                                     # (N, out) int32
    y = dequantize(acc, x_scale, w_scale)                           # (N, out) float32
    if bias is not None:
        y += np.asarray(bias, dtype=np.float32)
    y = y.reshape(*x.shape[:-1], w_q.shape[0])                      # (..., out)
    return (y, acc) if return_acc else y


def error_bound(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per-element bound of |linear_int8(x) − x·Wᵀ| (module docstring), before float32 rounding."""
    rows = np.asarray(x, dtype=np.float64).reshape(-1, x.shape[-1])          # (N, in)
    w = np.asarray(weight, dtype=np.float64)                                  # (out, in)
    s_x = _scales(np.abs(rows).max(axis=1)).astype(np.float64)[:, None]       # (N, 1)
    s_w = _scales(np.abs(w).max(axis=1)).astype(np.float64)[None, :]          # (1, out)
    return (s_x / 2 * np.abs(w).sum(axis=1)[None, :] + np.abs(rows) @ np.abs(w).T * s_w / 2
            + s_x * s_w / 4 * w.shape[1])                                     # (N, out)


def quantize_params(p, names=LINEARS) -> dict:
    """A copy of `p` with each Linear `name` in `names` as name.weight_q (int8) and
    name.weight_scale (float32); biases, norms and everything else kept as float32."""
    out = {k: np.asarray(v, dtype=np.float32) for k, v in p.items()
           if not any(k == f"{n}.weight" for n in names)}
    for name in names:
        out[f"{name}.weight_q"], out[f"{name}.weight_scale"] = quantize_per_channel(
            p[f"{name}.weight"])
    return out


def _linear(q, name, x):
    return linear_int8(x, q[f"{name}.weight_q"], q[f"{name}.weight_scale"], q.get(f"{name}.bias"))


def feed_forward_int8(q, x: np.ndarray, activation: str = "gelu", prefix: str = "") -> np.ndarray:
    """(B, T, D) -> (B, T, D): int8 ff1, activation in float32, int8 ff2."""
    hidden = _linear(q, f"{prefix}ff1", x)                          # (B, T, d_ff)
    hidden = _ACTIVATIONS[activation](hidden, hidden)
    return _linear(q, f"{prefix}ff2", hidden)                       # (B, T, D)


def self_attention_int8(q, x: np.ndarray, n_heads: int, prefix: str = "self_attn.") -> np.ndarray:
    """(B, T, D) -> (B, T, D): int8 projections, float32 softmax(QKᵀ/√d_k)·V."""
    heads = [split_heads(_linear(q, f"{prefix}{n}", x), n_heads) for n in "qkv"]  # (B, H, T, d_k)
    context = scaled_dot_product_attention(*heads)                  # (B, H, T, d_k)
    return _linear(q, f"{prefix}o", merge_heads(context))           # (B, T, D)


def encoder_layer_int8(q, x: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    """(B, T, D) -> (B, T, D): tfimpl.numpy.layers.encoder_layer with its six Linears in int8."""
    check_ndim("x", x, 3, "(B, T, D)")
    x = np.asarray(x, dtype=np.float32)

    def norm(name, h, residual=None):
        return layer_norm(h, q[f"{name}.weight"], q[f"{name}.bias"], cfg.layer_norm_eps,
                          residual=residual)

    attn = lambda h: self_attention_int8(q, h, cfg.n_heads)                 # noqa: E731
    ffn = lambda h: feed_forward_int8(q, h, cfg.activation, prefix="ffn.")  # noqa: E731
    for name, fn in (("norm1", attn), ("norm2", ffn)):
        if cfg.norm_first:
            x = x + fn(norm(name, x))                               # x + f(LN(x))
        else:
            x = norm(name, fn(x), residual=x)                       # LN(f(x) + x)
    return x
