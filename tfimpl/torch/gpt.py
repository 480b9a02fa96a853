"""A GPT-2-style decoder-only language model with a KV cache (mirrors tfimpl.numpy.gpt).

    h_0 = word[input_ids] + position[p_0 .. p_0 + T - 1]          learned positions
    h   = h + MHA(LN_1(h))          causal self-attention          (pre-norm, each block)
    h   = h + FFN(LN_2(h))          GELU (tanh form)
    hidden = LN_f(h_L)
    logits = hidden · wordᵀ                                         LM head tied to the token table

KV cache. A decode step adds one token; its query must see the keys and values of every earlier
token, which do not change. So each block keeps them: keys[l], values[l] of shape
(B, H, capacity, d_k), the first `length` positions filled. One call with T new tokens at
position n = length:
    k_new, v_new = LN_1(h) · W_Kᵀ, LN_1(h) · W_Vᵀ                  (B, H, T, d_k)
    keys[l][:, :, n:n+T] = k_new                                   append (in place)
    attend the T queries over keys[l][:, :, :n+T] with query i seeing keys j <= n + i
    (causal_offset = n: bottom-right aligned; a single decode query sees every key)
Prefill is the T = prompt-length call on an empty cache; a decode step is T = 1. Without a
cache (decode-recompute) the whole prefix is run again: O(n²·d) work instead of O(n·d).

Padding as HuggingFace does it: `attention_mask` (B, n + T), 1 = real token, covers the cached
tokens and the new ones; a 0 key is never attended to. Positions default to n .. n+T-1 whatever
the padding; pass `position_ids` (B, T) to shift them (HF's generate uses cumsum(mask) - 1).

Parameter names (tfimpl.params kind "gpt"): embeddings.word.weight (V, D),
embeddings.position.weight (P, D), layers.{i}.{self_attn,ffn,norm1,norm2}.*, norm.* (LN_f).

attn_impl: "explicit" (matmul, softmax, matmul) or "sdpa" (torch's fused kernel), as in
tfimpl.torch.attention. Call under torch.inference_mode()/no_grad() to decode: the cache is
written in place.
"""

from __future__ import annotations

import torch

from tfimpl.config import ModelConfig
from tfimpl.numpy._checks import check_ndim
from tfimpl.params import subtree
from tfimpl.torch.attention import merge_heads, scaled_dot_product_attention, split_heads
from tfimpl.torch.feed_forward import ACTIVATION_FNS, feed_forward
from tfimpl.torch.layer_norm import layer_norm
from tfimpl.torch.linear import linear
from tfimpl.torch.positional import learned_positional_embedding

LOGITS = ("all", "last", "none")


class KVCache:
    """Per-layer keys and values, (B, H, capacity, d_k) each; positions [0, length) are filled."""

    def __init__(self, keys: list, values: list, length: int = 0):
        self.keys, self.values, self.length = keys, values, length

    @property
    def capacity(self) -> int:
        return self.keys[0].shape[2]

    @property
    def nbytes(self) -> int:
        """Bytes of the filled part: 2·L·B·length·D·itemsize (tfimpl.costs.kv_cache_bytes)."""
        b, h, _, dk = self.keys[0].shape
        return 2 * len(self.keys) * b * h * self.length * dk * self.keys[0].element_size()

    @property
    def allocated_bytes(self) -> int:
        return sum((k.numel() + v.numel()) * k.element_size() for k, v in zip(self.keys, self.values))

    def reserve(self, total: int) -> None:
        """Room for `total` positions: grow (to at least twice the capacity) by copying."""
        if total <= self.capacity:
            return
        new_capacity = max(total, 2 * self.capacity)
        for store in (self.keys, self.values):
            for i, old in enumerate(store):
                b, h, _, dk = old.shape
                grown = old.new_empty((b, h, new_capacity, dk))             # (B, H, capacity', d_k)
                grown[:, :, :self.length] = old[:, :, :self.length]
                store[i] = grown


def new_cache(cfg: ModelConfig, batch: int, capacity: int, dtype=torch.float32,
              device="cpu") -> KVCache:
    """An empty cache with room for `capacity` positions (it grows if more come)."""
    if capacity <= 0 or batch <= 0:
        raise ValueError(f"batch and capacity must be positive, got {batch} and {capacity}")
    shape = (batch, cfg.n_heads, capacity, cfg.d_head)                    # (B, H, capacity, d_k)
    return KVCache([torch.empty(shape, dtype=dtype, device=device) for _ in range(cfg.n_layers)],
                   [torch.empty(shape, dtype=dtype, device=device) for _ in range(cfg.n_layers)])


def gpt_embeddings(p, input_ids, cfg: ModelConfig, offset: int = 0, position_ids=None):
    """Token ids (B, T) -> word + position embeddings (B, T, D); positions offset .. offset+T-1."""
    check_ndim("input_ids", input_ids, 2, "(B, T)")
    table = p["embeddings.position.weight"]
    x = p["embeddings.word.weight"][input_ids]                                    # (B, T, D)
    if position_ids is None:
        return x + learned_positional_embedding(table, input_ids.shape[1], offset)  # + (T, D)
    if tuple(position_ids.shape) != tuple(input_ids.shape):
        raise ValueError(f"position_ids must have the shape of input_ids {tuple(input_ids.shape)}, "
                         f"got {tuple(position_ids.shape)}")
    if position_ids.numel() and (int(position_ids.min()) < 0
                                 or int(position_ids.max()) >= table.shape[0]):
        raise ValueError(f"position_ids must lie in [0, max_position={table.shape[0]})")
    return x + table[position_ids]                                                # + (B, T, D)


def _key_mask(attention_mask, batch: int, seq_k: int):
    """(B, Tk) 1/True = real token -> (B, 1, 1, Tk) boolean, or None."""
    if attention_mask is None:
        return None
    mask = attention_mask.bool()
    if tuple(mask.shape) != (batch, seq_k):
        raise ValueError(f"attention_mask must have shape (B, cached + new tokens) = "
                         f"{(batch, seq_k)}, got {tuple(mask.shape)}")
    return mask[:, None, None, :]                                                # (B, 1, 1, Tk)


PACKED = "packed.qkv.weight"      # the key that marks a pack_for_inference layout


def pack_for_inference(p) -> dict:
    """The same weights in the layout a generation loop wants: per layer one fused Q/K/V weight
    and every projection stored (in, out), contiguous, plus the (D, V) transpose of the tied
    token table for the LM head. Numbers are unchanged; only the layout is.

    Why: a decode step multiplies one row per layer by every weight (a matrix-vector product,
    bound by reading the weight). With (out, in) weights F.linear streams W against x·Wᵀ; with
    (in, out) weights and Q, K, V fused it is three matrix-vector products fewer per layer and
    x·W reads the weight row by row (measured here: the 50257×768 LM head 10.9 ms as x·Wᵀ on the
    (V, D) table, 6.2 ms as x·W on its (D, V) copy, 2 threads). HuggingFace's GPT-2 keeps its
    Conv1D weights (in, out) for the same reason. The weights it replaces are left out, so it
    costs one extra (D, V) copy of the token table.
    """
    superseded = {f"self_attn.{n}.{w}" for n in "qkv" for w in ("weight", "bias")} | {
        "self_attn.o.weight", "ffn.ff1.weight", "ffn.ff2.weight"}
    out = {k: v for k, v in p.items()
           if not (k.startswith("layers.") and k.split(".", 2)[2] in superseded)}
    for layer in range(_n_layers(p)):
        pre = f"layers.{layer}."
        a = f"{pre}self_attn."
        out[f"{pre}{PACKED}"] = torch.cat([p[a + "q.weight"], p[a + "k.weight"],
                                           p[a + "v.weight"]]).t().contiguous()   # (D, 3D)
        out[f"{pre}packed.qkv.bias"] = torch.cat([p[a + "q.bias"], p[a + "k.bias"],
                                                  p[a + "v.bias"]])               # (3D,)
        for name in ("self_attn.o", "ffn.ff1", "ffn.ff2"):
            out[f"{pre}packed.{name}.weight"] = p[f"{pre}{name}.weight"].t().contiguous()
    out["packed.head.weight"] = p["embeddings.word.weight"].t().contiguous()    # (D, V)
    return out


def _n_layers(p) -> int:
    return len({k.split(".")[1] for k in p if k.startswith("layers.")})


def _packed_linear(x, weight_in_out, bias):
    """x · W + b with W stored (in, out): one addmm over all positions."""
    flat = x.reshape(-1, x.shape[-1])                                            # (B·T, in)
    return torch.addmm(bias, flat, weight_in_out).reshape(*x.shape[:-1], -1)     # (B, T, out)


def _packed_block_parts(p, h, cfg: ModelConfig):
    """q, k, v (B, H, T, d_k) from one fused (D, 3D) product."""
    qkv = _packed_linear(h, p[PACKED], p["packed.qkv.bias"])                     # (B, T, 3D)
    q, k, v = qkv.split(cfg.d_model, dim=-1)
    return (split_heads(q, cfg.n_heads), split_heads(k, cfg.n_heads),
            split_heads(v, cfg.n_heads))


def gpt_block(p, x, cfg: ModelConfig, cache: KVCache | None = None, layer: int = 0, mask=None,
              attn_impl="explicit"):
    """One pre-norm block, (B, T, D) -> (B, T, D). With a cache, the T tokens follow its
    `length` cached ones: their keys/values are written at [length, length + T) of layer `layer`
    and the queries attend over all length + T (the caller advances `length`). Takes the
    parameter layout or pack_for_inference's."""
    packed = PACKED in p
    attn = subtree(p, "self_attn")
    h = layer_norm(x, p["norm1.weight"], p["norm1.bias"], cfg.layer_norm_eps)    # (B, T, D)
    if packed:
        q, k, v = _packed_block_parts(p, h, cfg)                                 # (B, H, T, d_k)
    else:
        q = split_heads(linear(h, attn["q.weight"], attn["q.bias"]), cfg.n_heads)   # (B, H, T, d_k)
        k = split_heads(linear(h, attn["k.weight"], attn["k.bias"]), cfg.n_heads)
        v = split_heads(linear(h, attn["v.weight"], attn["v.bias"]), cfg.n_heads)
    offset = 0
    if cache is not None:
        offset, end = cache.length, cache.length + x.shape[1]
        cache.keys[layer][:, :, offset:end] = k                                 # append (B, H, T, d_k)
        cache.values[layer][:, :, offset:end] = v
        k, v = cache.keys[layer][:, :, :end], cache.values[layer][:, :, :end]   # (B, H, n+T, d_k)
    context = scaled_dot_product_attention(q, k, v, mask=mask, causal=True, causal_offset=offset,
                                           attn_impl=attn_impl)                 # (B, H, T, d_k)
    if packed:
        x = x + _packed_linear(merge_heads(context), p["packed.self_attn.o.weight"],
                               attn["o.bias"])                                   # (B, T, D)
        h = layer_norm(x, p["norm2.weight"], p["norm2.bias"], cfg.layer_norm_eps)
        hidden = ACTIVATION_FNS[cfg.activation](
            _packed_linear(h, p["packed.ffn.ff1.weight"], p["ffn.ff1.bias"]))    # (B, T, d_ff)
        return x + _packed_linear(hidden, p["packed.ffn.ff2.weight"], p["ffn.ff2.bias"])
    x = x + linear(merge_heads(context), attn["o.weight"], attn["o.bias"])     # (B, T, D)
    h = layer_norm(x, p["norm2.weight"], p["norm2.bias"], cfg.layer_norm_eps)
    return x + feed_forward(subtree(p, "ffn"), h, cfg.activation)              # (B, T, D)


def _layers(p, n_layers: int) -> list[dict]:
    """[subtree(p, "layers.i") for each i], in one pass over the names (a decode step is short:
    a pass per layer would be a measurable part of it)."""
    layers: list[dict] = [{} for _ in range(n_layers)]
    for name, value in p.items():
        if name.startswith("layers."):
            index, _, rest = name[len("layers."):].partition(".")
            layers[int(index)][rest] = value
    return layers


def lm_logits(p, hidden):
    """(B, T, D) -> (B, T, V): hidden · wordᵀ, the LM head tied to the token embedding."""
    if "packed.head.weight" in p:                                                # (D, V) copy
        return torch.matmul(hidden, p["packed.head.weight"])
    return linear(hidden, p["embeddings.word.weight"])                           # (B, T, D) @ (D, V)


def gpt(p, input_ids, cfg: ModelConfig, attention_mask=None, position_ids=None,
        cache: KVCache | None = None, logits: str = "all", attn_impl="explicit"):
    """-> (hidden (B, T, D), logits (B, T, V) | (B, 1, V) for "last" | None, cache).

    Without a cache: a causal forward over the T tokens. With one: the T tokens come after its
    `length` cached tokens, their keys and values are appended, and `length` grows by T.
    attention_mask: (B, cached + T), 1 = real token (HuggingFace's convention).
    """
    if logits not in LOGITS:
        raise ValueError(f"logits must be one of {LOGITS}, got {logits!r}")
    check_ndim("input_ids", input_ids, 2, "(B, T)")
    batch, seq = input_ids.shape
    past = 0 if cache is None else cache.length
    if past + seq > cfg.max_position and position_ids is None:
        raise ValueError(f"context {past} + {seq} tokens exceeds max_position={cfg.max_position}")
    x = gpt_embeddings(p, input_ids, cfg, offset=past, position_ids=position_ids)
    mask = _key_mask(attention_mask, batch, past + seq)
    if cache is not None:
        cache.reserve(past + seq)
    for i, block in enumerate(_layers(p, cfg.n_layers)):
        x = gpt_block(block, x, cfg, cache=cache, layer=i, mask=mask,
                      attn_impl=attn_impl)
    if cache is not None:
        cache.length += seq
    hidden = layer_norm(x, p["norm.weight"], p["norm.bias"], cfg.layer_norm_eps)  # LN_f
    out = None if logits == "none" else lm_logits(p, hidden if logits == "all" else hidden[:, -1:])
    return hidden, out, cache


def prefill(p, input_ids, cfg: ModelConfig, attention_mask=None, capacity: int | None = None,
            attn_impl="explicit"):
    """The prompt through the model once: -> (last-token logits (B, V), filled cache).
    capacity: positions to allocate (prompt + tokens to come); default the prompt length."""
    batch, seq = input_ids.shape
    word = p["embeddings.word.weight"]
    cache = new_cache(cfg, batch, max(seq, capacity or seq), word.dtype, word.device)
    _, logits, cache = gpt(p, input_ids, cfg, attention_mask=attention_mask, cache=cache,
                           logits="last", attn_impl=attn_impl)
    return logits[:, 0], cache


def decode_step(p, token_ids, cfg: ModelConfig, cache: KVCache, attention_mask=None,
                position_ids=None, attn_impl="explicit"):
    """One new token per sequence, (B,) ids, against the cache -> (logits (B, V), cache)."""
    ids = token_ids.reshape(-1, 1)                                                # (B, 1)
    _, logits, cache = gpt(p, ids, cfg, attention_mask=attention_mask, position_ids=position_ids,
                           cache=cache, logits="last", attn_impl=attn_impl)
    return logits[:, 0], cache


def greedy_generate(p, input_ids, cfg: ModelConfig, max_new_tokens: int, use_cache: bool = True,
                    attn_impl="explicit"):
    """Greedy decoding (argmax, no sampling): -> (B, T + max_new_tokens) ids. use_cache=False
    recomputes the whole prefix for every new token."""
    ids = input_ids
    if use_cache:
        logits, cache = prefill(p, ids, cfg, capacity=ids.shape[1] + max_new_tokens,
                                attn_impl=attn_impl)
    for step in range(max_new_tokens):
        if not use_cache:
            logits = gpt(p, ids, cfg, logits="last", attn_impl=attn_impl)[1][:, 0]
        token = logits.argmax(dim=-1)                                             # (B,)
        ids = torch.cat([ids, token[:, None]], dim=1)                             # (B, T + step + 1)
        if use_cache and step + 1 < max_new_tokens:
            logits, cache = decode_step(p, token, cfg, cache, attn_impl=attn_impl)
    return ids
