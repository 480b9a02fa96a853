"""Encoder and decoder layers, their stacks, the encoder-decoder (mirrors tfimpl.numpy.layers).

Post-norm (the 2017 paper, BERT; cfg.norm_first=False), each sub-layer f:
    x = LayerNorm(x + f(x))
Pre-norm (cfg.norm_first=True; GPT-2 and most later models):
    x = x + f(LayerNorm(x))

Encoder layer: f1 = self-attention, f2 = feed-forward                     (norm1, norm2)
Decoder layer: f1 = masked (causal) self-attention, f2 = cross-attention
               over the encoder output `memory`, f3 = feed-forward        (norm1, norm2, norm3)
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.numpy._checks import check_ndim
from tfimpl.torch.attention import multi_head_attention
from tfimpl.torch.feed_forward import feed_forward
from tfimpl.torch.layer_norm import layer_norm
from tfimpl.params import subtree


def _norm(p, name, x, cfg, residual=None):
    return layer_norm(x, p[f"{name}.weight"], p[f"{name}.bias"], cfg.layer_norm_eps, residual=residual)


def _sublayer(p, norm_name, x, cfg, fn):
    """One residual sub-layer, post-norm or pre-norm as cfg.norm_first says."""
    if cfg.norm_first:
        out = fn(_norm(p, norm_name, x, cfg))              # (B, T, D)
        out += x                                           # x + f(LN(x))
        return out
    return _norm(p, norm_name, fn(x), cfg, residual=x)     # LN(f(x) + x), "Add & Norm"


def encoder_layer(p, x, cfg: ModelConfig, key_padding_mask=None, attn_impl="explicit"):
    """(B, T, D) -> (B, T, D): self-attention then feed-forward, each with residual and norm."""
    check_ndim("x", x, 3, "(B, T, D)")
    attn, ffn = subtree(p, "self_attn"), subtree(p, "ffn")
    x = _sublayer(p, "norm1", x, cfg, lambda h: multi_head_attention(
        attn, h, h, cfg.n_heads, key_padding_mask=key_padding_mask, attn_impl=attn_impl))
    return _sublayer(p, "norm2", x, cfg, lambda h: feed_forward(ffn, h, cfg.activation))


def decoder_layer(p, x, memory, cfg: ModelConfig, causal=True, key_padding_mask=None,
                  memory_key_padding_mask=None, attn_impl="explicit"):
    """x (B, Tt, D), memory (B, Ts, D) -> (B, Tt, D): masked self-attn, cross-attn, feed-forward."""
    check_ndim("x", x, 3, "(B, T, D)")
    check_ndim("memory", memory, 3, "(B, T, D)")
    self_attn, cross_attn = subtree(p, "self_attn"), subtree(p, "cross_attn")
    ffn = subtree(p, "ffn")
    x = _sublayer(p, "norm1", x, cfg, lambda h: multi_head_attention(
        self_attn, h, h, cfg.n_heads, key_padding_mask=key_padding_mask, causal=causal,
        attn_impl=attn_impl))
    x = _sublayer(p, "norm2", x, cfg, lambda h: multi_head_attention(
        cross_attn, h, memory, cfg.n_heads, key_padding_mask=memory_key_padding_mask, attn_impl=attn_impl))
    return _sublayer(p, "norm3", x, cfg, lambda h: feed_forward(ffn, h, cfg.activation))


def _final_norm(p, x, cfg):
    return _norm(p, "norm", x, cfg) if cfg.final_norm else x


def encoder(p, x, cfg: ModelConfig, key_padding_mask=None, attn_impl="explicit"):
    """cfg.n_layers encoder layers (+ a final layer norm when cfg.final_norm)."""
    for i in range(cfg.n_layers):
        x = encoder_layer(subtree(p, f"layers.{i}"), x, cfg, key_padding_mask=key_padding_mask,
                          attn_impl=attn_impl)
    return _final_norm(p, x, cfg)


def decoder(p, x, memory, cfg: ModelConfig, causal=True, key_padding_mask=None,
            memory_key_padding_mask=None, attn_impl="explicit"):
    """cfg.n_decoder_layers decoder layers (+ a final layer norm when cfg.final_norm)."""
    for i in range(cfg.n_decoder_layers):
        x = decoder_layer(subtree(p, f"layers.{i}"), x, memory, cfg, causal=causal,
                          key_padding_mask=key_padding_mask,
                          memory_key_padding_mask=memory_key_padding_mask, attn_impl=attn_impl)
    return _final_norm(p, x, cfg)


def transformer(p, src, tgt, cfg: ModelConfig, src_key_padding_mask=None,
                tgt_key_padding_mask=None, memory_key_padding_mask=None, causal=True,
                attn_impl="explicit"):
    """The encoder-decoder: src (B, Ts, D) and tgt (B, Tt, D) embeddings -> (B, Tt, D).

    The decoder's cross-attention ignores padded source positions: memory_key_padding_mask
    defaults to src_key_padding_mask.
    """
    memory = encoder(subtree(p, "encoder"), src, cfg, key_padding_mask=src_key_padding_mask,
                     attn_impl=attn_impl)
    if memory_key_padding_mask is None:
        memory_key_padding_mask = src_key_padding_mask
    return decoder(subtree(p, "decoder"), tgt, memory, cfg, causal=causal,
                   key_padding_mask=tgt_key_padding_mask,
                   memory_key_padding_mask=memory_key_padding_mask, attn_impl=attn_impl)
