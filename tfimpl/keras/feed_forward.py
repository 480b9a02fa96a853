"""Position-wise feed-forward network as Keras builds it (mirrors tfimpl.numpy.feed_forward).

    FFN(x) = act(x W_1 + b_1) W_2 + b_2,   Keras kernels W_1: (D, d_ff), W_2: (d_ff, D)

Keras' Dense keeps its kernel as (in, out), y = x @ kernel + bias: the transpose of our (out, in)
`weight` (tfimpl.keras.loaders does the mapping). The network is what Keras' own examples write,
keras.Sequential([layers.Dense(d_ff, activation=act), layers.Dense(D)]).

    relu(x)      = max(x, 0)
    gelu(x)      = ½ x (1 + erf(x / √2))                      keras.activations.gelu(approximate=False)
    gelu_tanh(x) = ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))   keras.activations.gelu(approximate=True)

In float64, tf.nn.gelu builds its constants 1/√2 and 0.044715 as float32 and casts them, so
Keras' float64 GELU is the formula with those constants rounded to float32 (relative error
~1e-8 in the output, not 1e-16; the parity tests check exactly this).
"""

from __future__ import annotations

from tfimpl.keras import loaders
from tfimpl.keras._backend import keras
from tfimpl.keras.blocks import (ACTIVATION_FNS, feed_forward_layer, gelu,  # noqa: F401
                                 gelu_tanh, relu)


def feed_forward(p, x, activation: str = "gelu"):
    """(B, T, D) -> (B, T, D) through the (B, T, d_ff) hidden layer, weights p in tfimpl's layout."""
    layer = loaders.build_ffn(p, activation, dtype=_dtype_of(x))
    return layer(x)


def _dtype_of(x) -> str:
    """The Keras dtype name of an array or tensor (float64 stays float64)."""
    return keras.backend.standardize_dtype(x.dtype)
