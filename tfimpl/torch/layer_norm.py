"""Layer normalisation over the last axis (mirrors tfimpl.numpy.layer_norm).

    y = (x - μ) / √(σ² + ε) · γ + β,   μ = mean(x),  σ² = mean((x - μ)²)   (biased variance)

With `residual`, the normalised input is x + residual: the paper's "Add & Norm".
The NumPy file spells the steps out; here PyTorch's fused kernel computes the same formula
(the parity tests hold the two together).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def layer_norm(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5,
               residual: torch.Tensor | None = None) -> torch.Tensor:
    """LayerNorm(x) (or LayerNorm(x + residual)), scaled by γ=`weight` and shifted by β=`bias`."""
    if tuple(weight.shape) != tuple(x.shape[-1:]) or tuple(bias.shape) != tuple(x.shape[-1:]):
        raise ValueError(f"weight and bias must have shape ({x.shape[-1]},) to match x's last "
                         f"dimension, got {tuple(weight.shape)} and {tuple(bias.shape)}")
    if residual is not None:
        if residual.shape != x.shape:
            raise ValueError(f"residual must have the shape of x {tuple(x.shape)}, "
                             f"got {tuple(residual.shape)}")
        x = x + residual
    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)
