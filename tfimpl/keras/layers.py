"""The encoder layer and stack built from Keras layers (mirrors tfimpl.numpy.layers).

EncoderLayer is the `TransformerBlock` of Keras' own examples ("Text classification with
Transformer" on keras.io): layers.MultiHeadAttention, a Sequential of two Dense layers and two
LayerNormalization layers, with the residual adds written out in call(). It takes both orders:

    post-norm (cfg.norm_first=False; the 2017 paper, BERT, the Keras example):
        x = LayerNorm1(x + MHA(x, x));   x = LayerNorm2(x + FFN(x))
    pre-norm  (cfg.norm_first=True; the Keras time-series Transformer example):
        x = x + MHA(LN1(x), LN1(x));     x = x + FFN(LN2(x))

No dropout (inference and the parity tests need a deterministic layer). Keras' LayerNormalization
defaults to epsilon=1e-3; here it is cfg.layer_norm_eps, like ours and torch's.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.keras import loaders
from tfimpl.keras._backend import keras
from tfimpl.keras.blocks import Encoder, EncoderLayer, keras_attention_mask  # noqa: F401
from tfimpl.numpy._checks import check_ndim


def _padding_mask(x, key_padding_mask):
    batch, seq, _ = x.shape
    return keras_attention_mask(None, key_padding_mask, batch, seq, seq)      # (B, 1, T)


def encoder_layer(p, x, cfg: ModelConfig, key_padding_mask=None):
    """Build an EncoderLayer with weights p (tfimpl's layout) and run x (B, T, D) through it."""
    check_ndim("x", x, 3, "(B, T, D)")
    layer = loaders.build_encoder_layer(p, cfg, dtype=keras.backend.standardize_dtype(x.dtype))
    return layer(x, attention_mask=_padding_mask(x, key_padding_mask))


def encoder(p, x, cfg: ModelConfig, key_padding_mask=None):
    """Build an Encoder (cfg.n_layers layers) with weights p and run x (B, T, D) through it."""
    check_ndim("x", x, 3, "(B, T, D)")
    layer = loaders.build_encoder(p, cfg, dtype=keras.backend.standardize_dtype(x.dtype))
    return layer(x, attention_mask=_padding_mask(x, key_padding_mask))
