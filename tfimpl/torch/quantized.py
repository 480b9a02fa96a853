"""int8 from first principles in PyTorch (mirrors tfimpl.numpy.quantized name for name).

Symmetric per-channel weights, dynamic symmetric per-token activations, int8 × int8 → int32,
one rescale per output element (the formulas and the error bound: tfimpl.numpy.quantized). The
integers are those of the NumPy version bit for bit (same float32 divisions, half-to-even
rounding). The int32 product is torch's integer matmul (exact), not a fast kernel: this is the
arithmetic written out, and torch.ao.quantization.quantize_dynamic (bench.impls.quantize) is the
library's fast path the parity test holds it against.
"""

from __future__ import annotations

import torch

from tfimpl.config import ModelConfig
from tfimpl.numpy._checks import check_ndim
from tfimpl.torch.attention import merge_heads, scaled_dot_product_attention, split_heads
from tfimpl.torch.feed_forward import ACTIVATION_FNS
from tfimpl.torch.layer_norm import layer_norm

QMAX = 127
LINEARS = ("self_attn.q", "self_attn.k", "self_attn.v", "self_attn.o", "ffn.ff1", "ffn.ff2")


def _scales(absmax: torch.Tensor) -> torch.Tensor:
    scale = absmax.to(torch.float32) / QMAX
    return torch.where(scale > 0, scale, torch.ones_like(scale))


def quantize_per_channel(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """W (out, in) -> (W_q int8 (out, in), s_w float32 (out,)), symmetric per output channel."""
    w = weight.to(torch.float32)
    scale = _scales(w.abs().amax(dim=1))                            # (out,)
    q = torch.round(w / scale[:, None]).clamp_(-QMAX, QMAX)         # (out, in)
    return q.to(torch.int8), scale


def quantize_per_token(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x (N, in) -> (x_q int8 (N, in), s_x float32 (N,)), symmetric per row (token), dynamic."""
    x = x.to(torch.float32)
    scale = _scales(x.abs().amax(dim=1))                            # (N,)
    q = torch.round(x / scale[:, None]).clamp_(-QMAX, QMAX)         # (N, in)
    return q.to(torch.int8), scale


def int8_matmul(x_q: torch.Tensor, w_q: torch.Tensor) -> torch.Tensor:
    """(N, in) int8 @ (out, in)ᵀ int8 -> (N, out) int32, exact."""
    return x_q.to(torch.int32) @ w_q.to(torch.int32).T             # (N, in) @ (in, out)


def dequantize(acc: torch.Tensor, x_scale: torch.Tensor, w_scale: torch.Tensor) -> torch.Tensor:
    """acc (N, out) int32 -> float32: acc · s_x[n] · s_w[o]."""
    return acc.to(torch.float32) * x_scale[:, None] * w_scale[None, :]


def linear_int8(x: torch.Tensor, w_q: torch.Tensor, w_scale: torch.Tensor,
                bias: torch.Tensor | None = None, return_acc: bool = False):
    """(..., in) -> (..., out) float32 through an int8 × int8 → int32 matmul."""
    if x.shape[-1] != w_q.shape[1]:
        raise ValueError(f"x must have last dimension {w_q.shape[1]}, got shape {tuple(x.shape)}")
    rows = x.reshape(-1, x.shape[-1])                               # (N, in)
    x_q, x_scale = quantize_per_token(rows)                         # (N, in) int8, (N,)
    acc = int8_matmul(x_q, w_q)                                     # (N, out) int32
    y = dequantize(acc, x_scale, w_scale)                           # (N, out) float32
    if bias is not None:
        y += bias.to(torch.float32)
    y = y.reshape(*x.shape[:-1], w_q.shape[0])                      # (..., out)
    return (y, acc) if return_acc else y


def quantize_params(p, names=LINEARS) -> dict:
    """A copy of `p` with each Linear `name` as name.weight_q (int8) and name.weight_scale."""
    out = {k: torch.as_tensor(v).to(torch.float32) for k, v in p.items()
           if not any(k == f"{n}.weight" for n in names)}
    for name in names:
        out[f"{name}.weight_q"], out[f"{name}.weight_scale"] = quantize_per_channel(
            torch.as_tensor(p[f"{name}.weight"]))
    return out


def _linear(q, name, x):
    return linear_int8(x, q[f"{name}.weight_q"], q[f"{name}.weight_scale"], q.get(f"{name}.bias"))


def feed_forward_int8(q, x: torch.Tensor, activation: str = "gelu", prefix: str = "") -> torch.Tensor:
    """(B, T, D) -> (B, T, D): int8 ff1, activation in float32, int8 ff2."""
    hidden = _linear(q, f"{prefix}ff1", x)                          # (B, T, d_ff)
    hidden = ACTIVATION_FNS[activation](hidden)
    return _linear(q, f"{prefix}ff2", hidden)                       # (B, T, D)


def self_attention_int8(q, x: torch.Tensor, n_heads: int, prefix: str = "self_attn.") -> torch.Tensor:
    """(B, T, D) -> (B, T, D): int8 projections, float32 softmax(QKᵀ/√d_k)·V."""
    heads = [split_heads(_linear(q, f"{prefix}{n}", x), n_heads) for n in "qkv"]  # (B, H, T, d_k)
    context = scaled_dot_product_attention(*heads)                  # (B, H, T, d_k)
    return _linear(q, f"{prefix}o", merge_heads(context))           # (B, T, D)


def encoder_layer_int8(q, x: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """(B, T, D) -> (B, T, D): tfimpl.torch.layers.encoder_layer with its six Linears in int8."""
    check_ndim("x", x, 3, "(B, T, D)")
    x = x.to(torch.float32)

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


class Int8Linear(torch.nn.Module):
    """An nn.Linear's drop-in with int8 weights (quantize_per_channel) and linear_int8's
    per-token activations: the first-principles scheme on a whole HF / torch.nn model."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        weight_q, weight_scale = quantize_per_channel(linear.weight.detach())
        self.register_buffer("weight_q", weight_q)                  # (out, in) int8
        self.register_buffer("weight_scale", weight_scale)          # (out,) float32
        bias = None if linear.bias is None else linear.bias.detach().to(torch.float32)
        self.register_buffer("bias", bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear_int8(x, self.weight_q, self.weight_scale, self.bias).to(x.dtype)


def quantize_module(module: torch.nn.Module) -> torch.nn.Module:
    """A deep copy of `module` with every nn.Linear (type exactly) an Int8Linear."""
    import copy

    out = copy.deepcopy(module)
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is torch.nn.Linear:
                setattr(parent, name, Int8Linear(child))
    return out
