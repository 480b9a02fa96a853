"""The affine map every projection uses (mirrors tfimpl.numpy.linear).

    y = x · Wᵀ + b,   W: (out, in),  b: (out,)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """(..., in) -> (..., out), one fused GEMM + bias (torch.addmm under F.linear)."""
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"x must have last dimension {weight.shape[1]} (the weight's input size), "
                         f"got shape {tuple(x.shape)}")
    return F.linear(x, weight, bias)
