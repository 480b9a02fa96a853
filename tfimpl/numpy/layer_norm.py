"""Layer normalisation (Ba, Kiros & Hinton 2016) over the last axis.

    y = (x - μ) / √(σ² + ε) · γ + β,   μ = mean(x),  σ² = mean((x - μ)²)   (biased variance)
"""

from __future__ import annotations

import numpy as np


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """Normalise each position's feature vector, then scale by γ=`weight` and shift by β=`bias`."""
    if weight.shape != x.shape[-1:] or bias.shape != x.shape[-1:]:
        raise ValueError(f"weight and bias must have shape ({x.shape[-1]},) to match x's last "
                         f"dimension, got {weight.shape} and {bias.shape}")
    mean = x.mean(axis=-1, keepdims=True)                  # (..., 1)
    y = np.subtract(x, mean)                               # (..., D)  x - μ, the only new array
    var = np.einsum("...d,...d->...", y, y)[..., None]     # (..., 1)  Σ (x - μ)²
    var /= x.shape[-1]                                     #           σ²
    var += eps
    np.sqrt(var, out=var)
    y /= var                                               # (x - μ) / √(σ² + ε)
    y *= weight                                            # · γ
    y += bias                                              # + β
    return y
