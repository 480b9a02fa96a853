"""tfimpl.torch's forward, one marked step at a time (the steps of tfimpl.costs.components).

The same primitives in the same order as tfimpl.torch.attention / layers / bert (linear, the
fused q/k/v GEMM on concatenated weights, split into heads by views, Q scaled before Q·Kᵀ,
softmax_ in place, merge_heads, layer_norm with the residual, the activation), so the output is
the same to the last bit (tests/profile/test_profile_steps.py holds them together in float64). Each
step runs inside `mark(name)`: torch.profiler.record_function while profiling, a no-op
otherwise. Every line of the forward is inside some step, so nothing is left unattributed
but Python's own glue between them.

Forward only, no mask, no grad (profiles run under torch.inference_mode()).

Tests: tests/profile/test_profile_steps.py.
"""

from __future__ import annotations

import contextlib
import math

import torch

from tfimpl.params import subtree
from tfimpl.torch.attention import (merge_heads, multi_head_attention, project_qkv,
                                    scaled_dot_product_attention)
from tfimpl.torch.bert import bert, bert_embeddings
from tfimpl.torch.feed_forward import ACTIVATION_FNS, feed_forward
from tfimpl.torch.layer_norm import layer_norm
from tfimpl.torch.layers import encoder, encoder_layer
from tfimpl.torch.linear import linear
from tfimpl.torch.softmax import softmax_


def no_marks(name: str):
    return contextlib.nullcontext()


def attention_steps(q, k, v, attn_impl, mark=no_marks):
    """softmax(Q Kᵀ / √d_k) · V as three steps (explicit) or one fused kernel (sdpa)."""
    if attn_impl == "sdpa":
        with mark("attention_fused"):
            return scaled_dot_product_attention(q, k, v, attn_impl="sdpa")  # (B, H, T, d_k)
    with mark("scores"):
        scale = 1.0 / math.sqrt(q.shape[-1])
        scores = (q * scale) @ k.transpose(-2, -1)           # (B, H, T, d_k) @ (B, H, d_k, T) -> (B, H, T, T)
    with mark("softmax"):
        weights = softmax_(scores)                           # (B, H, T, T), in place
    with mark("weighted_sum"):
        return weights @ v                                   # (B, H, T, T) @ (B, H, T, d_k) -> (B, H, T, d_k)


def mha_steps(p, x, n_heads, attn_impl, mark=no_marks):
    """Self-attention of x (B, T, D): fused q/k/v projection, attention, output projection."""
    with mark("qkv_proj"):
        q, k, v = project_qkv(p, x, x, n_heads)                                # 3 x (B, H, T, d_k)
    context = attention_steps(q, k, v, attn_impl, mark)                        # (B, H, T, d_k)
    with mark("o_proj"):
        return linear(merge_heads(context), p["o.weight"], p["o.bias"])        # (B, T, D)


def ffn_steps(p, x, activation, mark=no_marks):
    """act(x W_1ᵀ + b_1) W_2ᵀ + b_2 as ffn1, activation, ffn2."""
    with mark("ffn1"):
        hidden = linear(x, p["ff1.weight"], p["ff1.bias"])   # (B, T, D) -> (B, T, d_ff)
    with mark("activation"):
        if activation == "relu":                             # in place, as tfimpl without grad
            hidden = torch.relu_(hidden)
        else:
            hidden = ACTIVATION_FNS[activation](hidden)      # (B, T, d_ff)
    with mark("ffn2"):
        return linear(hidden, p["ff2.weight"], p["ff2.bias"])  # (B, T, d_ff) -> (B, T, D)


def encoder_layer_steps(p, x, cfg, attn_impl, mark=no_marks):
    """Post-norm: x = LN(x + MHA(x)); x = LN(x + FFN(x))."""
    attn = mha_steps(subtree(p, "self_attn"), x, cfg.n_heads, attn_impl, mark)
    with mark("add_norm1"):
        x = layer_norm(attn, p["norm1.weight"], p["norm1.bias"], cfg.layer_norm_eps, residual=x)
    hidden = ffn_steps(subtree(p, "ffn"), x, cfg.activation, mark)
    with mark("add_norm2"):
        return layer_norm(hidden, p["norm2.weight"], p["norm2.bias"], cfg.layer_norm_eps,
                          residual=x)


def encoder_steps(p, x, cfg, attn_impl, mark=no_marks):
    for i in range(cfg.n_layers):
        x = encoder_layer_steps(subtree(p, f"layers.{i}"), x, cfg, attn_impl, mark)
    return x


def bert_steps(p, input_ids, cfg, attn_impl, mark=no_marks):
    """-> (hidden (B, T, D), pooled (B, D)), as tfimpl.torch.bert.bert without a mask."""
    with mark("embeddings"):
        x = bert_embeddings(p, input_ids, cfg)                                 # (B, T, D)
    hidden = encoder_steps(subtree(p, "encoder"), x, cfg, attn_impl, mark)
    with mark("pooler"):
        pooled = torch.tanh(linear(hidden[:, 0], p["pooler.weight"], p["pooler.bias"]))  # (B, D)
    return hidden, pooled


def block_steps(block: str, p, inputs: dict, cfg, attn_impl: str, mark=no_marks):
    """One marked forward of `block` on `inputs` (bench.profile.spec.float64_inputs' keys)."""
    if block == "attention":
        return attention_steps(inputs["q"], inputs["k"], inputs["v"], attn_impl, mark)
    if block == "mha":
        return mha_steps(p, inputs["x"], cfg.n_heads, attn_impl, mark)
    if block == "ffn":
        return ffn_steps(p, inputs["x"], cfg.activation, mark)
    if block == "encoder_layer":
        return encoder_layer_steps(p, inputs["x"], cfg, attn_impl, mark)
    if block == "encoder":
        return encoder_steps(p, inputs["x"], cfg, attn_impl, mark)
    return bert_steps(p, inputs["input_ids"], cfg, attn_impl, mark)


def block_forward(block: str, p, inputs: dict, cfg, attn_impl: str):
    """tfimpl.torch's own forward of `block` (unmarked): what `bench run` times."""
    if block == "attention":
        return scaled_dot_product_attention(inputs["q"], inputs["k"], inputs["v"],
                                            attn_impl=attn_impl)
    if block == "mha":
        x = inputs["x"]
        return multi_head_attention(p, x, x, cfg.n_heads, attn_impl=attn_impl)
    if block == "ffn":
        return feed_forward(p, inputs["x"], cfg.activation)
    if block == "encoder_layer":
        return encoder_layer(p, inputs["x"], cfg, attn_impl=attn_impl)
    if block == "encoder":
        return encoder(p, inputs["x"], cfg, attn_impl=attn_impl)
    return bert(p, inputs["input_ids"], cfg, attn_impl=attn_impl)
