"""Position-wise feed-forward network (Vaswani et al. 2017, section 3.3) and its activations.

    FFN(x) = act(x W_1ᵀ + b_1) W_2ᵀ + b_2,   W_1: (d_ff, D),  W_2: (D, d_ff)

    relu(x)      = max(x, 0)                                         (the 2017 paper)
    gelu(x)      = x · Φ(x) = ½ x (1 + erf(x / √2))                  (exact; BERT)
    gelu_tanh(x) = ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))          (Hendrycks & Gimpel's approximation)
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from tfimpl.numpy._checks import check_activation
from tfimpl.numpy._threads import for_row_blocks
from tfimpl.numpy.linear import linear

_SQRT_HALF = 1.0 / np.sqrt(2.0)
_SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0); `out` may be `x` (in place)."""
    return np.maximum(x, 0, out=out)


def gelu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """½ x (1 + erf(x / √2)); `out` may be `x` (in place).

    erf is SciPy's (accurate to the last bit, but scalar code: the slowest step of a NumPy GELU
    layer), so the work is split into row blocks that the BLAS threads' worth of cores share.
    """
    x = np.ascontiguousarray(x)
    target = out if out is not None and out.flags.c_contiguous else np.empty_like(x)
    for_row_blocks(_gelu_block, x, target)
    if out is not None and target is not out:
        out[...] = target
    return out if out is not None else target


def _gelu_block(x: np.ndarray, out: np.ndarray) -> None:
    phi = np.multiply(x, x.dtype.type(_SQRT_HALF))         # x / √2
    erf(phi, out=phi)                                      # erf(x / √2)
    phi += 1
    phi *= 0.5                                             # Φ(x)
    np.multiply(x, phi, out=out)


def gelu_tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """½ x (1 + tanh(√(2/π) (x + 0.044715 x³))); `out` may be `x` (in place)."""
    inner = np.square(x)                                   # x²
    inner *= 0.044715
    inner += 1
    inner *= x                                             # x + 0.044715 x³
    inner *= _SQRT_2_OVER_PI
    np.tanh(inner, out=inner)
    inner += 1
    inner *= 0.5
    return np.multiply(x, inner, out=out)


ACTIVATION_FNS = {"relu": relu, "gelu": gelu, "gelu_tanh": gelu_tanh}


def feed_forward(p, x: np.ndarray, activation: str = "gelu") -> np.ndarray:
    """(B, T, D) -> (B, T, D) through the (B, T, d_ff) hidden layer."""
    check_activation(activation)
    hidden = linear(x, p["ff1.weight"], p["ff1.bias"])      # (B, T, D) @ (D, d_ff) -> (B, T, d_ff)
    ACTIVATION_FNS[activation](hidden, out=hidden)          # in place
    return linear(hidden, p["ff2.weight"], p["ff2.bias"])   # (B, T, d_ff) @ (d_ff, D) -> (B, T, D)
