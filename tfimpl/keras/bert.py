"""A BERT-shaped encoder from Keras layers (mirrors tfimpl.numpy.bert) (Devlin et al. 2019).

    E = LayerNorm(word[input_ids] + position[0..T-1] + token_type[token_type_ids])
    hidden = Encoder(E)                   (post-norm layers, GELU, padding mask from attention_mask)
    pooled = tanh(hidden[:, 0] · W_pool + b_pool)          (the [CLS] position)

Keras 3 itself has no BERT: KerasHub's `BertBackbone` is a separate package (keras-hub, which
pulls the full `tensorflow` build and tensorflow-text beside tensorflow-cpu). This is the same
architecture written with Keras' own layers: three layers.Embedding tables, LayerNormalization,
tfimpl.keras.layers.Encoder and a Dense(tanh) pooler, weights from tfimpl's `bert` layout.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.keras._backend import keras, ops
from tfimpl.keras.attention import keras_attention_mask
from tfimpl.keras.layers import Encoder
from tfimpl.numpy._checks import check_ndim


class BertEmbeddings(keras.layers.Layer):
    """Token ids (B, T) -> (B, T, D): word + position + token type, then layer norm."""

    def __init__(self, cfg: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        self.cfg = cfg
        policy = self.dtype_policy
        self.word = keras.layers.Embedding(cfg.vocab_size, cfg.d_model, dtype=policy, name="word")
        self.position = keras.layers.Embedding(cfg.max_position, cfg.d_model, dtype=policy,
                                               name="position")
        self.token_type = keras.layers.Embedding(cfg.type_vocab_size, cfg.d_model, dtype=policy,
                                                 name="token_type")
        self.norm = keras.layers.LayerNormalization(epsilon=cfg.layer_norm_eps, dtype=policy,
                                                    name="norm")

    def build(self, input_shape):
        for table in (self.word, self.position, self.token_type):
            table.build(input_shape)
        self.norm.build((*input_shape, self.cfg.d_model))

    def call(self, input_ids, token_type_ids=None):
        seq_len = ops.shape(input_ids)[1]
        if token_type_ids is None:
            token_type_ids = ops.zeros_like(input_ids)
        x = self.word(input_ids)                                            # (B, T, D)
        x = x + self.position(ops.arange(seq_len))[None]                    # + (1, T, D)
        x = x + self.token_type(token_type_ids)                             # + (B, T, D)
        return self.norm(x)


class Bert(keras.layers.Layer):
    """-> (hidden (B, T, D), pooled (B, D)); attention_mask (B, T), 1/True = real token."""

    def __init__(self, cfg: ModelConfig, **kwargs):
        super().__init__(**kwargs)
        policy = self.dtype_policy
        self.embeddings = BertEmbeddings(cfg, dtype=policy, name="embeddings")
        self.encoder = Encoder(cfg, dtype=policy, name="encoder")
        self.pooler = keras.layers.Dense(cfg.d_model, activation="tanh", dtype=policy,
                                         name="pooler")
        self.cfg = cfg

    def build(self, input_shape):
        self.embeddings.build(input_shape)
        self.encoder.build((*input_shape, self.cfg.d_model))
        self.pooler.build((input_shape[0], self.cfg.d_model))

    def call(self, input_ids, token_type_ids=None, attention_mask=None):
        x = self.embeddings(input_ids, token_type_ids)                      # (B, T, D)
        keras_mask = None
        if attention_mask is not None:
            batch, seq = input_ids.shape
            keras_mask = keras_attention_mask(None, ops.cast(attention_mask, "bool"), batch, seq, seq)
        hidden = self.encoder(x, attention_mask=keras_mask)                 # (B, T, D)
        return hidden, self.pooler(hidden[:, 0])                            # (B, D)


def bert_embeddings(p, input_ids, cfg: ModelConfig, token_type_ids=None, dtype="float64"):
    """Embeddings (B, T, D) of token ids (B, T), weights p (tfimpl's `bert` layout, embeddings.*)."""
    from tfimpl.keras.loaders import build_bert_embeddings

    check_ndim("input_ids", input_ids, 2, "(B, T)")
    return build_bert_embeddings(p, cfg, dtype=dtype)(input_ids, token_type_ids)


def bert(p, input_ids, cfg: ModelConfig, token_type_ids=None, attention_mask=None, dtype="float64"):
    """-> (hidden (B, T, D), pooled (B, D)). dtype: the Keras dtype policy (ids carry none)."""
    from tfimpl.keras.loaders import build_bert

    check_ndim("input_ids", input_ids, 2, "(B, T)")
    layer = build_bert(p, cfg, dtype=dtype)
    return layer(input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
