"""Position-wise feed-forward network (Vaswani et al. 2017, section 3.3) and its activations.

    FFN(x) = act(x W_1ᵀ + b_1) W_2ᵀ + b_2,   W_1: (d_ff, D),  W_2: (D, d_ff)

    relu(x)      = max(x, 0)                                         (the 2017 paper)
    gelu(x)      = x · Φ(x) = ½ x (1 + erf(x / √2))                  (exact; BERT)
    gelu_tanh(x) = ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))          (Hendrycks & Gimpel's approximation)

Each activation is written for one block of rows (`_relu_block`, ...) and run over the rows in
cache-sized blocks that threads share (tfimpl.numpy._threads): NumPy's element-wise loops use
one core, BLAS uses several. erf is SciPy's (exact to the last bit, but scalar code, so the
slowest step of a NumPy GELU layer).
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf

from tfimpl.numpy._checks import check_activation
from tfimpl.numpy._threads import for_row_blocks
from tfimpl.numpy.linear import linear

_SQRT_HALF = 1.0 / np.sqrt(2.0)
_SQRT_2_OVER_PI = np.sqrt(2.0 / np.pi)


def _relu_block(x: np.ndarray, out: np.ndarray) -> None:
    np.maximum(x, 0, out=out)


def _gelu_block(x: np.ndarray, out: np.ndarray) -> None:
    phi = np.multiply(x, x.dtype.type(_SQRT_HALF))         # x / √2
    erf(phi, out=phi)                                      # erf(x / √2)
    phi += 1
    phi *= 0.5                                             # Φ(x)
    np.multiply(x, phi, out=out)


def _gelu_tanh_block(x: np.ndarray, out: np.ndarray) -> None:
    inner = np.square(x)                                   # x²
    inner *= 0.044715
    inner += 1
    inner *= x                                             # x + 0.044715 x³
    inner *= inner.dtype.type(_SQRT_2_OVER_PI)      # a float32 scalar keeps float32 math
    np.tanh(inner, out=inner)
    inner += 1
    inner *= 0.5
    np.multiply(x, inner, out=out)


_BLOCKS = {"relu": _relu_block, "gelu": _gelu_block, "gelu_tanh": _gelu_tanh_block}


def _apply(block_fn, x: np.ndarray, out: np.ndarray | None) -> np.ndarray:
    """block_fn over row blocks of x into out (new if None; may be x itself)."""
    x = np.ascontiguousarray(x)
    target = out if out is not None and out.flags.c_contiguous else np.empty_like(x)
    for_row_blocks(block_fn, x, target)
    if out is not None and target is not out:
        out[...] = target
    return out if out is not None else target


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0); `out` may be `x` (in place)."""
    return _apply(_relu_block, x, out)


def gelu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """½ x (1 + erf(x / √2)); `out` may be `x` (in place)."""
    return _apply(_gelu_block, x, out)


def gelu_tanh(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """½ x (1 + tanh(√(2/π) (x + 0.044715 x³))); `out` may be `x` (in place)."""
    return _apply(_gelu_tanh_block, x, out)


def feed_forward(p, x: np.ndarray, activation: str = "gelu") -> np.ndarray:
    """(B, T, D) -> (B, T, D) through the (B, T, d_ff) hidden layer."""
    check_activation(activation)
    hidden = linear(x, p["ff1.weight"])                     # (B, T, D) @ (D, d_ff) -> (B, T, d_ff)
    bias, act = p["ff1.bias"], _BLOCKS[activation]

    def bias_and_activation(h):                             # one pass per block, in place
        h += bias
        act(h, h)

    for_row_blocks(bias_and_activation, hidden)
    return linear(hidden, p["ff2.weight"], p["ff2.bias"])   # (B, T, d_ff) @ (d_ff, D) -> (B, T, D)
