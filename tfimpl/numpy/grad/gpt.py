"""Backward of the GPT-2-style decoder (tfimpl.numpy.gpt) in training form: no KV cache.

Forward:
    h_0    = word[ids] + position[0..T-1]
    h_l+1  = pre-norm causal block(h_l)        (tfimpl.numpy.grad.layers, norm_first, causal)
    hidden = LN_f(h_L)
    logits = hidden · wordᵀ                     (the LM head tied to the token table)

Backward, given ∂L/∂logits (B, T, V) and/or ∂L/∂hidden:
    ∂L/∂hidden += ∂L/∂logits · word             (B, T, V) @ (V, D)
    ∂L/∂word    = ∂L/∂logitsᵀ · hidden          the head's share (V, D) ...
                + scatter-add of ∂L/∂h_0 over ids    ... plus the lookup's: one tied table
    ∂L/∂position[t] = Σ_b ∂L/∂h_0[b, t]  (t < T)
and the blocks and LN_f in reverse, as in layers.py.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tfimpl.config import ModelConfig
from tfimpl.numpy.grad.layers import encoder_layer_backward, encoder_layer_forward
from tfimpl.numpy.grad.primitives import (layer_norm_backward, layer_norm_forward,
                                          linear_backward, linear_forward, prefixed)
from tfimpl.numpy.positional import learned_positional_embedding
from tfimpl.params import subtree


def _block_cfg(cfg: ModelConfig) -> ModelConfig:
    return dataclasses.replace(cfg, norm_first=True)          # every GPT block is pre-norm


def gpt_forward(p, input_ids, cfg: ModelConfig, attention_mask=None):
    """-> ((hidden (B, T, D), logits (B, T, V)), cache), as tfimpl.numpy.gpt.gpt without a cache."""
    word = p["embeddings.word.weight"]
    seq_len = input_ids.shape[1]
    x = word[input_ids] + learned_positional_embedding(p["embeddings.position.weight"], seq_len)
    kpm = None if attention_mask is None else np.asarray(attention_mask).astype(bool)
    block_cfg = _block_cfg(cfg)
    caches = []
    for i in range(cfg.n_layers):
        x, c = encoder_layer_forward(subtree(p, f"layers.{i}"), x, block_cfg,
                                     key_padding_mask=kpm, causal=True)
        caches.append(c)
    hidden, c_norm = layer_norm_forward(x, p["norm.weight"], p["norm.bias"], cfg.layer_norm_eps)
    logits, c_head = linear_forward(hidden, word)                     # (B, T, V)
    cache = {"ids": input_ids, "layers": caches, "norm": c_norm, "head": c_head,
             "position_shape": p["embeddings.position.weight"].shape}
    return (hidden, logits), cache


def gpt_backward(cache, grad_hidden, grad_logits, cfg: ModelConfig):
    """(None, grads in the gpt layout) from ∂L/∂hidden and ∂L/∂logits (None = zero)."""
    head = cache["head"]
    grad = np.zeros(head["x"].shape, head["x"].dtype) if grad_hidden is None else \
        np.array(grad_hidden, dtype=head["x"].dtype)                  # (B, T, D), a copy
    word = np.zeros(head["weight"].shape, head["x"].dtype)            # (V, D)
    if grad_logits is not None:
        grad_h, g_head = linear_backward(head, grad_logits)           # tied head: W = word
        grad += grad_h
        word += g_head["weight"]
    grad, g_norm = layer_norm_backward(cache["norm"], grad)
    grads = prefixed("norm", g_norm)
    block_cfg = _block_cfg(cfg)
    for i in reversed(range(len(cache["layers"]))):
        grad, g = encoder_layer_backward(cache["layers"][i], grad, block_cfg)
        grads.update(prefixed(f"layers.{i}", g))
    np.add.at(word, cache["ids"], grad)                               # the lookup's share
    position = np.zeros(cache["position_shape"], grad.dtype)
    position[:grad.shape[1]] = grad.sum(axis=0)
    grads.update({"embeddings.word.weight": word, "embeddings.position.weight": position})
    return None, grads
