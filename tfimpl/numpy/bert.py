"""A BERT-style encoder model (Devlin et al. 2019).

    E = LayerNorm(word[input_ids] + position[0..T-1] + token_type[token_type_ids])
    hidden = Encoder(E)                   (post-norm layers, GELU, padding mask from attention_mask)
    pooled = tanh(hidden[:, 0] · W_poolᵀ + b_pool)        (the [CLS] position)
"""

from __future__ import annotations

import numpy as np

from tfimpl.config import ModelConfig
from tfimpl.numpy._checks import check_ndim
from tfimpl.numpy.layer_norm import layer_norm
from tfimpl.numpy.layers import encoder
from tfimpl.numpy.linear import linear
from tfimpl.numpy.positional import learned_positional_embedding
from tfimpl.params import subtree


def bert_embeddings(p, input_ids, cfg: ModelConfig, token_type_ids=None):
    """Token ids (B, T) -> embeddings (B, T, D): word + position + token type, then layer norm."""
    check_ndim("input_ids", input_ids, 2, "(B, T)")
    seq_len = input_ids.shape[1]
    if token_type_ids is None:
        token_type_ids = np.zeros_like(input_ids)
    elif token_type_ids.shape != input_ids.shape:
        raise ValueError(f"token_type_ids must have the shape of input_ids {input_ids.shape}, "
                         f"got {token_type_ids.shape}")
    x = p["embeddings.word.weight"][input_ids]                                        # (B, T, D)
    x += learned_positional_embedding(p["embeddings.position.weight"], seq_len)       # + (T, D)
    x += p["embeddings.token_type.weight"][token_type_ids]                            # + (B, T, D)
    return layer_norm(x, p["embeddings.norm.weight"], p["embeddings.norm.bias"], cfg.layer_norm_eps)


def bert(p, input_ids, cfg: ModelConfig, token_type_ids=None, attention_mask=None):
    """-> (hidden (B, T, D), pooled (B, D)). attention_mask: (B, T), 1/True = real token."""
    x = bert_embeddings(p, input_ids, cfg, token_type_ids)                            # (B, T, D)
    key_padding_mask = None if attention_mask is None else np.asarray(attention_mask).astype(bool)
    hidden = encoder(subtree(p, "encoder"), x, cfg, key_padding_mask=key_padding_mask)
    pooled = np.tanh(linear(hidden[:, 0], p["pooler.weight"], p["pooler.bias"]))      # (B, D)
    return hidden, pooled
