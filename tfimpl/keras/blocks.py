"""The Keras layers of tfimpl.keras, built without weights (tfimpl.keras.loaders fills them).

    activations              relu, gelu (exact), gelu_tanh: keras.activations
    keras_attention_mask     our masks -> Keras' (B|1, Tq|1, Tk) attention_mask
    multi_head_attention_layer   layers.MultiHeadAttention(num_heads=H, key_dim=D/H)
    feed_forward_layer       keras.Sequential([Dense(d_ff, act), Dense(D)])
    EncoderLayer, Encoder    the Keras examples' TransformerBlock (post- or pre-norm) and a stack
    BertEmbeddings, Bert     a BERT from Keras layers (Embedding, LayerNormalization, Dense)

The block files (attention.py, feed_forward.py, layers.py, bert.py) re-export these and add the
functional entry points that mirror tfimpl.numpy; see their docstrings for the math and the
mask conventions. Kept apart so that loaders can build them without importing the entry points
that call loaders.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.keras._backend import keras, ops
from tfimpl.numpy._checks import check_activation, check_heads


# ---- activations -----------------------------------------------------------------------

def relu(x):
    """max(x, 0)."""
    return keras.activations.relu(x)


def gelu(x):
    """½ x (1 + erf(x / √2)), the exact GELU (Keras' default for "gelu")."""
    return keras.activations.gelu(x, approximate=False)


def gelu_tanh(x):
    """½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))."""
    return keras.activations.gelu(x, approximate=True)


ACTIVATION_FNS = {"relu": relu, "gelu": gelu, "gelu_tanh": gelu_tanh}


def feed_forward_layer(d_model: int, d_ff: int, activation: str = "gelu", dtype=None,
                       name: str = "ffn"):
    """An unbuilt keras.Sequential: Dense(d_ff, act) then Dense(d_model); dtype: a Keras dtype policy."""
    check_activation(activation)
    return keras.Sequential([
        keras.layers.Dense(d_ff, activation=ACTIVATION_FNS[activation], dtype=dtype, name="ff1"),
        keras.layers.Dense(d_model, dtype=dtype, name="ff2"),
    ], name=name)


# ---- attention -----------------------------------------------------------------------------

def _check_bool(name: str, mask) -> None:
    if keras.backend.standardize_dtype(mask.dtype) != "bool":
        raise ValueError(f"{name} must be boolean (True = may attend), got dtype {mask.dtype}")


def keras_attention_mask(mask, key_padding_mask, batch: int, seq_q: int, seq_k: int):
    """Our mask (head axis of size 1) and (B, Tk) key padding mask -> Keras' (B|1, Tq|1, Tk) or None."""
    keras_mask = None
    if mask is not None:
        _check_bool("mask", mask)
        if len(mask.shape) == 4:
            if mask.shape[1] != 1:
                raise ValueError(f"mask: Keras' MultiHeadAttention takes one mask for all heads "
                                 f"(B, 1, Tq, Tk), got shape {tuple(mask.shape)}")
            mask = ops.squeeze(mask, 1)                                     # (B, Tq, Tk)
        keras_mask = mask
    if key_padding_mask is not None:
        _check_bool("key_padding_mask", key_padding_mask)
        if tuple(key_padding_mask.shape) != (batch, seq_k):
            raise ValueError(f"key_padding_mask must have shape (B, Tk) = {(batch, seq_k)}, "
                             f"got {tuple(key_padding_mask.shape)}")
        padding = ops.expand_dims(key_padding_mask, 1)                      # (B, 1, Tk)
        keras_mask = padding if keras_mask is None else ops.logical_and(keras_mask, padding)
    return keras_mask


def multi_head_attention_layer(d_model: int, n_heads: int, dtype=None, name: str = "self_attn"):
    """An unbuilt keras.layers.MultiHeadAttention with H heads of d_head = D / H, no dropout."""
    check_heads(d_model, n_heads)
    return keras.layers.MultiHeadAttention(num_heads=n_heads, key_dim=d_model // n_heads,
                                           dtype=dtype, name=name)


# ---- encoder layer and stack ---------------------------------------------------------------

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


# ---- BERT ----------------------------------------------------------------------------------

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
