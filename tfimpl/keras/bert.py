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
from tfimpl.keras import loaders
from tfimpl.keras.blocks import Bert, BertEmbeddings  # noqa: F401
from tfimpl.numpy._checks import check_ndim


def bert_embeddings(p, input_ids, cfg: ModelConfig, token_type_ids=None, dtype="float64"):
    """Embeddings (B, T, D) of token ids (B, T), weights p (tfimpl's `bert` layout, embeddings.*)."""
    check_ndim("input_ids", input_ids, 2, "(B, T)")
    return loaders.build_bert_embeddings(p, cfg, dtype=dtype)(input_ids, token_type_ids)


def bert(p, input_ids, cfg: ModelConfig, token_type_ids=None, attention_mask=None, dtype="float64"):
    """-> (hidden (B, T, D), pooled (B, D)). dtype: the Keras dtype policy (ids carry none)."""
    check_ndim("input_ids", input_ids, 2, "(B, T)")
    layer = loaders.build_bert(p, cfg, dtype=dtype)
    return layer(input_ids, token_type_ids=token_type_ids, attention_mask=attention_mask)
