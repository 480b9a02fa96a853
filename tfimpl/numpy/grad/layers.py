"""Backward of the feed-forward network, the encoder layer and the encoder stack.

Feed-forward, h = x W_1ᵀ + b_1, a = act(h), y = a W_2ᵀ + b_2, backward in reverse order:
    ∂L/∂a = G W_2,  ∂L/∂h = ∂L/∂a ⊙ act'(h),  ∂L/∂x = ∂L/∂h W_1   (+ the weight grads)

A residual sub-layer with function f:
    post-norm  z = LN(x + f(x)):   u = ∂L/∂(x + f(x)) = LN'ᵀ G;   ∂L/∂x = u + f'ᵀ u
    pre-norm   z = x + f(LN(x)):   ∂L/∂x = G + LN'ᵀ (f'ᵀ G)
The identity path adds G (or u) untouched: that is why gradients reach the first layers of a
deep residual stack. Post-norm passes every gradient through each layer norm on the way down,
pre-norm only through the residual additions (plus the branches).

Encoder stack: layers last to first, then the final norm's backward first if cfg.final_norm.
Parameter gradients come back in tfimpl.params' layout (`self_attn.q.weight`, `layers.3.*`).
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.numpy.grad.attention import mha_backward, mha_forward
from tfimpl.numpy.grad.primitives import (activation_backward, activation_forward,
                                          layer_norm_backward, layer_norm_forward,
                                          linear_backward, linear_forward, prefixed)
from tfimpl.params import subtree


def feed_forward_forward(p, x, activation="gelu"):
    """FFN(x) (B, T, D) through the (B, T, d_ff) hidden layer; cache per step."""
    hidden, c1 = linear_forward(x, p["ff1.weight"], p["ff1.bias"])      # (B, T, d_ff)
    act, c_act = activation_forward(activation, hidden)                  # (B, T, d_ff)
    out, c2 = linear_forward(act, p["ff2.weight"], p["ff2.bias"])       # (B, T, D)
    return out, {"ff1": c1, "act": c_act, "ff2": c2}


def feed_forward_backward(cache, grad_out):
    """(∂L/∂x, grads ff1.* ff2.*)."""
    grad_act, g2 = linear_backward(cache["ff2"], grad_out)              # (B, T, d_ff)
    grad_hidden, _ = activation_backward(cache["act"], grad_act)        # (B, T, d_ff)
    grad_x, g1 = linear_backward(cache["ff1"], grad_hidden)             # (B, T, D)
    return grad_x, {**prefixed("ff1", g1), **prefixed("ff2", g2)}


def _norm_forward(p, name, x, cfg, residual=None):
    return layer_norm_forward(x, p[f"{name}.weight"], p[f"{name}.bias"], cfg.layer_norm_eps,
                              residual=residual)


def _sublayer_forward(p, norm_name, x, cfg, forward, residual=True):
    """One residual sub-layer (post- or pre-norm); forward(h) -> (f(h), cache_f).
    residual=False drops the identity path (LN(f(x)) or f(LN(x))): the gradient-flow study."""
    if cfg.norm_first:
        normed, c_norm = _norm_forward(p, norm_name, x, cfg)
        out, c_f = forward(normed)
        return (out + x if residual else out), {"norm": c_norm, "f": c_f, "residual": residual}
    out, c_f = forward(x)                                                # LN(f(x) + x)
    z, c_norm = _norm_forward(p, norm_name, out, cfg, residual=x if residual else None)
    return z, {"norm": c_norm, "f": c_f, "residual": residual}


def _sublayer_backward(cache, grad_out, cfg, backward, norm_name):
    """∂L/∂x through one residual sub-layer; backward(cache_f, g) -> (∂L/∂h, grads_f)."""
    if cfg.norm_first:
        grad_normed, grads_f = backward(cache["f"], grad_out)
        grad_x, grads_norm = layer_norm_backward(cache["norm"], grad_normed)
        if cache["residual"]:
            grad_x = grad_x + grad_out                                   # the identity path
    else:
        grad_sum, grads_norm = layer_norm_backward(cache["norm"], grad_out)
        grad_x, grads_f = backward(cache["f"], grad_sum)
        if cache["residual"]:
            grad_x = grad_x + grad_sum                                   # identity + branch
    return grad_x, {**grads_f, **prefixed(norm_name, grads_norm)}


def _self_attention_backward(cache, grad_out):
    (grad_q, grad_kv), grads = mha_backward(cache, grad_out)
    return grad_q + grad_kv, prefixed("self_attn", grads)                # x is both x_q and x_kv


def _ffn_backward(cache, grad_out):
    grad_x, grads = feed_forward_backward(cache, grad_out)
    return grad_x, prefixed("ffn", grads)


def encoder_layer_forward(p, x, cfg: ModelConfig, key_padding_mask=None, residual=True,
                          causal=False):
    """(B, T, D) -> (B, T, D) as tfimpl.numpy.layers.encoder_layer; cache per sub-layer.
    residual=False: both sub-layers without their identity path (not a real model);
    causal=True: query i sees keys j <= i (a GPT block is a pre-norm causal layer)."""
    attn, ffn = subtree(p, "self_attn"), subtree(p, "ffn")
    h, c1 = _sublayer_forward(p, "norm1", x, cfg, lambda a: mha_forward(
        attn, a, a, cfg.n_heads, key_padding_mask=key_padding_mask, causal=causal), residual)
    out, c2 = _sublayer_forward(p, "norm2", h, cfg,
                                lambda a: feed_forward_forward(ffn, a, cfg.activation), residual)
    return out, {"attn": c1, "ffn": c2}


def encoder_layer_backward(cache, grad_out, cfg: ModelConfig):
    """(∂L/∂x, grads in the encoder_layer layout)."""
    grad_h, grads_ffn = _sublayer_backward(cache["ffn"], grad_out, cfg, _ffn_backward, "norm2")
    grad_x, grads_attn = _sublayer_backward(cache["attn"], grad_h, cfg, _self_attention_backward,
                                            "norm1")
    return grad_x, {**grads_attn, **grads_ffn}


def encoder_forward(p, x, cfg: ModelConfig, key_padding_mask=None, residual=True):
    """cfg.n_layers layers (+ the final norm when cfg.final_norm); cache per layer."""
    caches = []
    for i in range(cfg.n_layers):
        x, c = encoder_layer_forward(subtree(p, f"layers.{i}"), x, cfg, key_padding_mask, residual)
        caches.append(c)
    final = None
    if cfg.final_norm:
        x, final = _norm_forward(p, "norm", x, cfg)
    return x, {"layers": caches, "final": final}


def encoder_backward(cache, grad_out, cfg: ModelConfig, on_layer=None):
    """(∂L/∂x, grads layers.{i}.* (+ norm.*)). on_layer(i, ∂L/∂(input of layer i)), if given,
    sees each layer's input gradient as it is computed (the gradient-flow figure reads them)."""
    grads = {}
    if cache["final"] is not None:
        grad_out, g = layer_norm_backward(cache["final"], grad_out)
        grads.update(prefixed("norm", g))
    for i in reversed(range(len(cache["layers"]))):
        grad_out, g = encoder_layer_backward(cache["layers"][i], grad_out, cfg)
        grads.update(prefixed(f"layers.{i}", g))
        if on_layer is not None:
            on_layer(i, grad_out)
    return grad_out, grads
