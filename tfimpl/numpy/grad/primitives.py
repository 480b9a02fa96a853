"""Forward-with-cache and backward of the small pieces: softmax, layer norm, linear, activations.

Every backward is a vector-Jacobian product: given g = ∂L/∂y for a scalar loss L, it returns
∂L/∂x = Jᵀ g (and ∂L/∂θ for the parameters) without ever forming the Jacobian J = ∂y/∂x.

    softmax       y = softmax(x)                 ∂L/∂x = y ⊙ (g − Σ_j g_j y_j)
    layer norm    x̂ = (x − μ)·r,  r = 1/√(σ²+ε),  y = γ ⊙ x̂ + β
                  ∂L/∂γ = Σ_rows g ⊙ x̂,   ∂L/∂β = Σ_rows g,
                  ∂L/∂x = r · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)),   ĝ = g ⊙ γ
    linear        y = x Wᵀ + b                   ∂L/∂x = g W,  ∂L/∂W = gᵀ x,  ∂L/∂b = Σ_rows g
    relu          y = max(x, 0)                  ∂L/∂x = g · [x > 0]
    gelu          y = x Φ(x)                     ∂L/∂x = g · (Φ(x) + x φ(x)),  φ = e^{−x²/2}/√(2π)
    gelu_tanh     y = ½ x (1 + t),  t = tanh(u),  u = √(2/π)(x + 0.044715 x³)
                  ∂L/∂x = g · (½(1 + t) + ½ x (1 − t²) √(2/π)(1 + 3·0.044715 x²))
    tanh          y = tanh(x)                    ∂L/∂x = g · (1 − y²)

Each `*_forward` returns (output, cache) where the cache holds exactly what the backward reads;
each `*_backward(cache, grad_out)` returns (grad_input, grads), grads a dict keyed like the
parameters (`{"weight": .., "bias": ..}`; empty for the parameter-free pieces).
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from tfimpl.numpy.feed_forward import gelu, gelu_tanh, relu
from tfimpl.numpy.linear import linear
from tfimpl.numpy.softmax import softmax

# Python floats: NumPy promotes a float32 array by an np.float64 scalar, not by a Python float
_SQRT_2_OVER_PI = float(np.sqrt(2.0 / np.pi))
_INV_SQRT_2PI = float(1.0 / np.sqrt(2.0 * np.pi))
_SQRT_HALF = float(np.sqrt(0.5))
_GELU_TANH_C = 0.044715


# ---- softmax ----------------------------------------------------------------------------------

def softmax_forward(x: np.ndarray):
    """y = softmax(x) over the last axis; cache = y (all the backward needs)."""
    y = softmax(x, axis=-1)
    return y, {"y": y}


def softmax_backward(cache, grad_y: np.ndarray):
    """∂L/∂x = y ⊙ (g − Σ_j g_j y_j): J = diag(y) − y yᵀ applied to g, row by row.

    A row with no allowed entry (y = 0 everywhere) gets a zero gradient.
    """
    y = cache["y"]
    dot = np.sum(grad_y * y, axis=-1, keepdims=True)                    # (..., 1)  Σ_j g_j y_j
    return y * (grad_y - dot), {}


# ---- layer norm -------------------------------------------------------------------------------

def layer_norm_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float = 1e-5,
                       residual: np.ndarray | None = None):
    """y = LN(x) (or LN(x + residual)) = γ ⊙ x̂ + β; cache = (x̂, r, γ, has_residual)."""
    if residual is not None:
        x = x + residual                                                # "Add & Norm"
    mean = x.mean(axis=-1, keepdims=True)                               # (..., 1)  μ
    centred = x - mean                                                  # (..., D)
    rstd = 1.0 / np.sqrt(np.mean(centred * centred, axis=-1, keepdims=True) + eps)   # (..., 1)  r
    x_hat = centred * rstd                                              # (..., D)  x̂
    y = x_hat * weight + bias
    return y, {"x_hat": x_hat, "rstd": rstd, "weight": weight, "residual": residual is not None}


def layer_norm_backward(cache, grad_y: np.ndarray):
    """(∂L/∂x, {"weight": ∂L/∂γ, "bias": ∂L/∂β}); with a residual, ∂L/∂x is also ∂L/∂residual.

    x̂ = (x − μ) r depends on x directly and through μ and σ²; with ĝ = g ⊙ γ,
        ∂L/∂x = r · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂))        (mean over the normalised axis)
    """
    x_hat, rstd = cache["x_hat"], cache["rstd"]
    rows = grad_y.reshape(-1, grad_y.shape[-1])                         # (N, D)
    grads = {"weight": np.einsum("nd,nd->d", rows, x_hat.reshape(rows.shape)),
             "bias": rows.sum(axis=0)}
    g_hat = grad_y * cache["weight"]                                    # (..., D)  ĝ
    grad_x = rstd * (g_hat - g_hat.mean(axis=-1, keepdims=True)
                     - x_hat * np.mean(g_hat * x_hat, axis=-1, keepdims=True))
    return grad_x, grads


# ---- linear -----------------------------------------------------------------------------------

def linear_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None):
    """y = x Wᵀ + b; cache = (x, W, whether there is a bias)."""
    return linear(x, weight, bias), {"x": x, "weight": weight, "bias": bias is not None}


def linear_backward(cache, grad_y: np.ndarray):
    """∂L/∂x = g W (..., in);  ∂L/∂W = Σ_positions gᵀ x (out, in);  ∂L/∂b = Σ_positions g."""
    x, weight = cache["x"], cache["weight"]
    g_rows = grad_y.reshape(-1, grad_y.shape[-1])                       # (N, out)
    x_rows = x.reshape(-1, x.shape[-1])                                 # (N, in)
    grads = {"weight": g_rows.T @ x_rows}                               # (out, N) @ (N, in) -> (out, in)
    if cache["bias"]:
        grads["bias"] = g_rows.sum(axis=0)                              # (out,)
    grad_x = (g_rows @ weight).reshape(x.shape)                         # (N, out) @ (out, in) -> (..., in)
    return grad_x, grads


# ---- activations ------------------------------------------------------------------------------

ACTIVATION_FORWARD = {"relu": relu, "gelu": gelu, "gelu_tanh": gelu_tanh}


def activation_forward(name: str, x: np.ndarray):
    """y = act(x) for act in relu | gelu | gelu_tanh; cache = (name, x)."""
    return ACTIVATION_FORWARD[name](x), {"name": name, "x": x}


def activation_derivative(name: str, x: np.ndarray) -> np.ndarray:
    """act'(x), element-wise (the Jacobian is diagonal)."""
    if name == "relu":
        return (x > 0).astype(x.dtype)                                  # 0 at x = 0, as torch
    if name == "gelu":
        cdf = 0.5 * (1.0 + erf(x * _SQRT_HALF))                       # Φ(x)
        return cdf + x * _INV_SQRT_2PI * np.exp(-0.5 * x * x)           # Φ(x) + x φ(x)
    if name == "gelu_tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x + _GELU_TANH_C * x ** 3))      # tanh(u)
        du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_TANH_C * x * x)       # du/dx
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du
    raise ValueError(f"activation must be one of {tuple(ACTIVATION_FORWARD)}, got {name!r}")


def activation_backward(cache, grad_y: np.ndarray):
    """∂L/∂x = g ⊙ act'(x)."""
    return grad_y * activation_derivative(cache["name"], cache["x"]), {}


def tanh_forward(x: np.ndarray):
    """y = tanh(x); cache = y."""
    y = np.tanh(x)
    return y, {"y": y}


def tanh_backward(cache, grad_y: np.ndarray):
    """∂L/∂x = g ⊙ (1 − y²)."""
    y = cache["y"]
    return grad_y * (1.0 - y * y), {}


def prefixed(prefix: str, grads: dict) -> dict:
    """{"weight": g} -> {"<prefix>.weight": g}: a piece's grads in its owner's layout."""
    return {f"{prefix}.{name}": value for name, value in grads.items()}
