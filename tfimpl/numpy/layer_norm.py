"""Layer normalisation (Ba, Kiros & Hinton 2016) over the last axis.

    y = (x - μ) / √(σ² + ε) · γ + β,   μ = mean(x),  σ² = mean((x - μ)²)   (biased variance)

With `residual`, the normalised input is x + residual: the paper's "Add & Norm",
LayerNorm(x + Sublayer(x)), in one pass. The rows are independent, so they are done in blocks
that fit in cache (each block's passes then never touch main memory), shared between threads.
"""

from __future__ import annotations

import numpy as np

from tfimpl.numpy._threads import for_row_blocks


def layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5,
               residual: np.ndarray | None = None) -> np.ndarray:
    """LayerNorm(x) (or LayerNorm(x + residual)), scaled by γ=`weight` and shifted by β=`bias`."""
    if weight.shape != x.shape[-1:] or bias.shape != x.shape[-1:]:
        raise ValueError(f"weight and bias must have shape ({x.shape[-1]},) to match x's last "
                         f"dimension, got {weight.shape} and {bias.shape}")
    if residual is not None and residual.shape != x.shape:
        raise ValueError(f"residual must have the shape of x {x.shape}, got {residual.shape}")
    x = np.ascontiguousarray(x)
    inputs = (x,) if residual is None else (x, np.ascontiguousarray(residual))
    y = np.empty(x.shape, np.result_type(*inputs, weight, bias))           # (..., D)

    def normalise(y_rows, x_rows, residual_rows=None):                     # (n, D) blocks
        if residual_rows is not None:
            x_rows = np.add(x_rows, residual_rows, out=y_rows)             # x + residual
        mean = x_rows.mean(axis=-1, keepdims=True)                         # (n, 1)  μ
        np.subtract(x_rows, mean, out=y_rows)                              # x - μ
        var = np.einsum("nd,nd->n", y_rows, y_rows)[:, None]               # (n, 1)  Σ (x - μ)²
        var /= x_rows.shape[-1]                                            #         σ²
        var += eps
        np.sqrt(var, out=var)
        y_rows /= var                                                      # (x - μ) / √(σ² + ε)
        y_rows *= weight                                                   # · γ
        y_rows += bias                                                     # + β

    for_row_blocks(normalise, y, *inputs)
    return y
