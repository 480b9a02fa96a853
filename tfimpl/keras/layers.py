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
from tfimpl.keras._backend import keras
from tfimpl.keras.attention import keras_attention_mask, multi_head_attention_layer
from tfimpl.keras.feed_forward import feed_forward_layer
from tfimpl.numpy._checks import check_ndim


class EncoderLayer(keras.layers.Layer):
    """(B, T, D) -> (B, T, D): self-attention then feed-forward, each with residual and norm."""

    def __init__(self, cfg: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        policy = self.dtype_policy
        self.self_attn = multi_head_attention_layer(cfg.d_model, cfg.n_heads, dtype=policy)
        self.ffn = feed_forward_layer(cfg.d_model, cfg.d_ff, cfg.activation, dtype=policy)
        self.norm1 = keras.layers.LayerNormalization(epsilon=cfg.layer_norm_eps, dtype=policy,
                                                     name="norm1")
        self.norm2 = keras.layers.LayerNormalization(epsilon=cfg.layer_norm_eps, dtype=policy,
                                                     name="norm2")

    def build(self, input_shape):
        self.self_attn.build(input_shape, input_shape)
        self.ffn.build(input_shape)
        self.norm1.build(input_shape)
        self.norm2.build(input_shape)

    def call(self, x, attention_mask=None):
        """attention_mask: Keras' (B, Tq|1, Tk) boolean, True = may attend (or None)."""
        if self.cfg.norm_first:
            h = self.norm1(x)
            x = x + self.self_attn(h, h, attention_mask=attention_mask)     # x + MHA(LN(x))
            return x + self.ffn(self.norm2(x))                              # x + FFN(LN(x))
        x = self.norm1(x + self.self_attn(x, x, attention_mask=attention_mask))  # LN(x + MHA(x))
        return self.norm2(x + self.ffn(x))                                  # LN(x + FFN(x))


class Encoder(keras.layers.Layer):
    """cfg.n_layers EncoderLayers (+ a final LayerNormalization when cfg.final_norm)."""

    def __init__(self, cfg: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        policy = self.dtype_policy
        self.blocks = [EncoderLayer(cfg, dtype=policy, name=f"layers_{i}")
                       for i in range(cfg.n_layers)]
        self.norm = (keras.layers.LayerNormalization(epsilon=cfg.layer_norm_eps, dtype=policy,
                                                     name="norm") if cfg.final_norm else None)

    def build(self, input_shape):
        for block in self.blocks:
            block.build(input_shape)
        if self.norm is not None:
            self.norm.build(input_shape)

    def call(self, x, attention_mask=None):
        for block in self.blocks:
            x = block(x, attention_mask=attention_mask)
        return x if self.norm is None else self.norm(x)


def _padding_mask(x, key_padding_mask):
    batch, seq, _ = x.shape
    return keras_attention_mask(None, key_padding_mask, batch, seq, seq)      # (B, 1, T)


def encoder_layer(p, x, cfg: ModelConfig, key_padding_mask=None):
    """Build an EncoderLayer with weights p (tfimpl's layout) and run x (B, T, D) through it."""
    from tfimpl.keras.loaders import build_encoder_layer

    check_ndim("x", x, 3, "(B, T, D)")
    layer = build_encoder_layer(p, cfg, dtype=keras.backend.standardize_dtype(x.dtype))
    return layer(x, attention_mask=_padding_mask(x, key_padding_mask))


def encoder(p, x, cfg: ModelConfig, key_padding_mask=None):
    """Build an Encoder (cfg.n_layers layers) with weights p and run x (B, T, D) through it."""
    from tfimpl.keras.loaders import build_encoder

    check_ndim("x", x, 3, "(B, T, D)")
    layer = build_encoder(p, cfg, dtype=keras.backend.standardize_dtype(x.dtype))
    return layer(x, attention_mask=_padding_mask(x, key_padding_mask))
