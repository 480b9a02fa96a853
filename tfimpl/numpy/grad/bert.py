"""Backward of the BERT model: embeddings (word, position, token type, norm), encoder, pooler.

Forward:
    e      = word[ids] + position[0..T-1] + token_type[tt]       (B, T, D)
    E      = LN(e)
    hidden = Encoder(E)                                           (B, T, D)
    pooled = tanh(hidden[:, 0] W_poolᵀ + b_pool)                  (B, D)

Backward, given ∂L/∂hidden and/or ∂L/∂pooled (either may be None = no loss on it):
    ∂L/∂hidden[:, 0] += (∂L/∂pooled ⊙ (1 − pooled²)) W_pool        (tanh, then linear)
    ∂L/∂E = Encoderᵀ(∂L/∂hidden);  ∂L/∂e = LNᵀ(∂L/∂E)
    ∂L/∂word[i]       = Σ_{(b,t): ids[b,t] = i} ∂L/∂e[b, t]        (a scatter-add: a lookup's
    ∂L/∂token_type[j] = Σ_{(b,t): tt[b,t] = j}  ∂L/∂e[b, t]         transpose; unused rows 0)
    ∂L/∂position[t]   = Σ_b ∂L/∂e[b, t] for t < T, 0 beyond
The ids are integers: there is no input gradient, the tables' gradients stand for it.
"""

from __future__ import annotations

import numpy as np

from tfimpl.config import ModelConfig
from tfimpl.numpy.grad.layers import encoder_backward, encoder_forward
from tfimpl.numpy.grad.primitives import (layer_norm_backward, layer_norm_forward,
                                          linear_backward, linear_forward, prefixed, tanh_backward,
                                          tanh_forward)
from tfimpl.numpy.positional import learned_positional_embedding
from tfimpl.params import subtree


def bert_embeddings_forward(p, input_ids, cfg: ModelConfig, token_type_ids=None):
    """(B, T) ids -> (B, T, D) as tfimpl.numpy.bert.bert_embeddings; cache = ids and the norm."""
    if token_type_ids is None:
        token_type_ids = np.zeros_like(input_ids)
    seq_len = input_ids.shape[1]
    e = p["embeddings.word.weight"][input_ids]                                       # (B, T, D)
    e = e + learned_positional_embedding(p["embeddings.position.weight"], seq_len)   # + (T, D)
    e = e + p["embeddings.token_type.weight"][token_type_ids]                        # + (B, T, D)
    out, c_norm = layer_norm_forward(e, p["embeddings.norm.weight"], p["embeddings.norm.bias"],
                                     cfg.layer_norm_eps)
    shapes = {name: p[f"embeddings.{name}.weight"].shape for name in ("word", "position", "token_type")}
    return out, {"ids": input_ids, "token_type_ids": token_type_ids, "norm": c_norm, "shapes": shapes}


def bert_embeddings_backward(cache, grad_out):
    """(None, grads embeddings.*): the three tables by scatter-add, and the norm."""
    grad_e, g_norm = layer_norm_backward(cache["norm"], grad_out)                   # (B, T, D)
    shapes = cache["shapes"]
    word = np.zeros(shapes["word"], grad_e.dtype)                                   # (V, D)
    np.add.at(word, cache["ids"], grad_e)
    token_type = np.zeros(shapes["token_type"], grad_e.dtype)                       # (n_types, D)
    np.add.at(token_type, cache["token_type_ids"], grad_e)
    position = np.zeros(shapes["position"], grad_e.dtype)                           # (max_position, D)
    position[:grad_e.shape[1]] = grad_e.sum(axis=0)                                 # Σ_b, rows 0..T-1
    grads = {"embeddings.word.weight": word, "embeddings.position.weight": position,
             "embeddings.token_type.weight": token_type, **prefixed("embeddings.norm", g_norm)}
    return None, grads


def bert_forward(p, input_ids, cfg: ModelConfig, token_type_ids=None, attention_mask=None):
    """-> ((hidden (B, T, D), pooled (B, D)), cache), as tfimpl.numpy.bert.bert."""
    x, c_emb = bert_embeddings_forward(p, input_ids, cfg, token_type_ids)
    key_padding_mask = None if attention_mask is None else np.asarray(attention_mask).astype(bool)
    hidden, c_enc = encoder_forward(subtree(p, "encoder"), x, cfg, key_padding_mask=key_padding_mask)
    pre, c_pool = linear_forward(hidden[:, 0], p["pooler.weight"], p["pooler.bias"])   # (B, D)
    pooled, c_tanh = tanh_forward(pre)
    cache = {"embeddings": c_emb, "encoder": c_enc, "pooler": c_pool, "tanh": c_tanh,
             "hidden_shape": hidden.shape}
    return (hidden, pooled), cache


def bert_backward(cache, grad_hidden, grad_pooled, cfg: ModelConfig):
    """(None, grads in the bert layout) from ∂L/∂hidden and ∂L/∂pooled (None = zero)."""
    dtype = cache["pooler"]["x"].dtype
    grad = (np.zeros(cache["hidden_shape"], dtype) if grad_hidden is None
            else np.array(grad_hidden, dtype=dtype))                                 # (B, T, D), a copy
    grads = {}
    if grad_pooled is not None:
        grad_pre, _ = tanh_backward(cache["tanh"], grad_pooled)                      # (B, D)
        grad_cls, g_pool = linear_backward(cache["pooler"], grad_pre)                # (B, D)
        grad[:, 0] += grad_cls
        grads.update(prefixed("pooler", g_pool))
    else:
        d = cache["pooler"]["weight"].shape
        grads.update({"pooler.weight": np.zeros(d, dtype), "pooler.bias": np.zeros(d[0], dtype)})
    grad_x, g_enc = encoder_backward(cache["encoder"], grad, cfg)
    grads.update(prefixed("encoder", g_enc))
    _, g_emb = bert_embeddings_backward(cache["embeddings"], grad_x)
    grads.update(g_emb)
    return None, grads
