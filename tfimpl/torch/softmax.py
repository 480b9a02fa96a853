"""Numerically stable softmax (mirrors tfimpl.numpy.softmax).

    softmax(x)_i = exp(x_i) / Σ_j exp(x_j) = exp(x_i - m) / Σ_j exp(x_j - m),   m = max_j x_j

Subtracting the row maximum keeps exp() from overflowing: every exponent is <= 0.
A row that is entirely -inf (a query allowed to attend to nothing) gives all zeros, not NaN.
"""

from __future__ import annotations

import torch


def softmax(x: torch.Tensor, axis: int = -1, out: torch.Tensor | None = None, *,
            dim: int | None = None) -> torch.Tensor:
    """softmax along `axis` (or `dim`, PyTorch's name), one step per line; `out` may be `x`
    itself (in place, no autograd).

    Equal to torch.softmax(x, axis) (the tests check it) except on all -inf rows (zeros here).
    """
    axis = axis if dim is None else dim
    row_max = x.amax(dim=axis, keepdim=True)                          # (..., 1, ...)
    row_max = row_max.masked_fill(row_max == float("-inf"), 0.0)      # all -inf row: exp(-inf) = 0
    if out is None:                                                   # autograd-friendly
        exps = torch.exp(x - row_max)                                 # in (0, 1]
        return exps / _safe_sum(exps, axis)
    torch.sub(x, row_max, out=out).exp_()                             # in place
    return out.div_(_safe_sum(out, axis))


def _safe_sum(exps: torch.Tensor, axis: int) -> torch.Tensor:
    total = exps.sum(dim=axis, keepdim=True)                          # (..., 1, ...)
    return total.masked_fill(total == 0, 1.0)                         # all -inf row: 0 / 1 = 0


def softmax_(x: torch.Tensor) -> torch.Tensor:
    """In-place softmax over the last axis with PyTorch's fused kernel (reads x, writes x).

    Same values as softmax(x, -1) except that an all -inf row becomes NaN (PyTorch's
    convention); the attention code, which knows its mask, zeroes such rows itself.
    """
    return torch.softmax(x, dim=-1, out=x)
