"""tfimpl.numpy's forward, one timed step at a time (the steps of tfimpl.costs.components).

The same primitives in the same order as tfimpl.numpy.attention / feed_forward / layers / bert,
so the output is the same to the last bit (tests/profile/test_profile_steps.py checks it in float64).
Each step runs inside `marks(name)`, a context manager that times it (bench.profile.timing's
StepTimer) or does nothing (`NoMarks`).

Two places where the NumPy code fuses what the steps name apart, kept as the code does them:
- attention works tile by tile (a batch entry, some heads, a block of query rows), each tile's
  scores, softmax and weighted sum back to back while its scores are in cache, tiles shared by
  threads (tfimpl.numpy._threads.map_tiles). The three steps are timed inside every tile on
  the thread that runs it; the attention's wall time is then split among them in proportion
  to their summed thread time (`marks.add`). Their sum is the measured wall time exactly.
- the FFN adds ffn1's bias in the activation's pass (one pass per row block), so "activation"
  here is bias + activation, and "ffn1" is its GEMM alone.

Tests: tests/profile/test_profile_steps.py.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np

from tfimpl.numpy._threads import for_row_blocks, map_tiles
from tfimpl.numpy.attention import (multi_head_attention, project_qkv,
                                    scaled_dot_product_attention)
from tfimpl.numpy.bert import bert, bert_embeddings
from tfimpl.numpy.feed_forward import _BLOCKS as ACTIVATION_BLOCKS
from tfimpl.numpy.feed_forward import feed_forward
from tfimpl.numpy.layer_norm import layer_norm
from tfimpl.numpy.layers import encoder, encoder_layer
from tfimpl.numpy.linear import linear
from tfimpl.numpy.softmax import softmax
from tfimpl.params import subtree
from tfimpl.tiling import tile_shape


class NoMarks:
    """marks(name) does nothing; add() drops what it is given."""
    def __call__(self, name: str):
        return contextlib.nullcontext()

    def add(self, name: str, seconds: float) -> None:
        pass


def attention_steps(q, k, v, out=None, marks=NoMarks(), clock=time.perf_counter):
    """softmax(Q Kᵀ/√d_k)·V into `out` (B, H, Tq, d_v), tiled as tfimpl.numpy does it."""
    batch, heads, seq_q, d_k = q.shape
    seq_k = k.shape[2]
    started = clock()
    dtype = np.result_type(q, k, v)
    scale = dtype.type(1.0 / np.sqrt(d_k))
    scores = np.empty((batch, heads, seq_q, seq_k), dtype)             # (B, H, Tq, Tk)
    if out is None:
        out = np.empty((batch, heads, seq_q, v.shape[-1]), dtype)      # (B, H, Tq, d_v)
    spent: list[tuple[float, float, float]] = []                        # per tile, any thread

    def attend(tile):
        b, hs, rs = tile
        s = scores[b, hs, rs]                                           # (g, r, Tk) view
        t0 = clock()
        np.matmul(q[b, hs, rs] * scale, k[b, hs].swapaxes(-1, -2), out=s)   # (g, r, d_k) @ (g, d_k, Tk)
        t1 = clock()
        softmax(s, axis=-1, out=s)                                      # in place: the weights
        t2 = clock()
        np.matmul(s, v[b, hs], out=out[b, hs, rs])                      # (g, r, Tk) @ (g, Tk, d_v)
        spent.append((t1 - t0, t2 - t1, clock() - t2))

    group, rows = tile_shape(heads, seq_q, seq_k)         # tfimpl's own tiles
    map_tiles(attend, [(b, slice(h, h + group), slice(r, r + rows))
                       for b in range(batch) for h in range(0, heads, group)
                       for r in range(0, seq_q, rows)])
    wall = clock() - started
    thread_s = [sum(column) for column in zip(*spent)]
    total = sum(thread_s) or 1.0
    for name, part in zip(("scores", "softmax", "weighted_sum"), thread_s):
        marks.add(name, wall * part / total)
    return out


def mha_steps(p, x, n_heads, marks=NoMarks()):
    """Self-attention of x (B, T, D), as tfimpl.numpy.attention.multi_head_attention."""
    with marks("qkv_proj"):
        q, k, v = project_qkv(p, x, x, n_heads)                                # 3 x (B, H, T, d_k)
        batch, seq, d_model = x.shape
        context = np.empty((batch, seq, n_heads, q.shape[-1]), np.result_type(q, v))  # (B, T, H, d_k)
    attention_steps(q, k, v, out=context.transpose(0, 2, 1, 3), marks=marks)  # as (B, H, T, d_k)
    with marks("o_proj"):
        merged = context.reshape(batch, seq, d_model)                          # (B, T, D), no copy
        return linear(merged, p["o.weight"], p["o.bias"])                      # (B, T, D)


def ffn_steps(p, x, activation, marks=NoMarks()):
    """As tfimpl.numpy.feed_forward: GEMM, then bias + activation in one pass, then GEMM + bias."""
    with marks("ffn1"):
        hidden = linear(x, p["ff1.weight"])                  # (B, T, D) @ (D, d_ff) -> (B, T, d_ff)
    with marks("activation"):
        bias, act = p["ff1.bias"], ACTIVATION_BLOCKS[activation]

        def bias_and_activation(h):
            h += bias
            act(h, h)

        for_row_blocks(bias_and_activation, hidden)
    with marks("ffn2"):
        return linear(hidden, p["ff2.weight"], p["ff2.bias"])  # (B, T, d_ff) -> (B, T, D)


def encoder_layer_steps(p, x, cfg, marks=NoMarks()):
    """Post-norm: x = LN(x + MHA(x)); x = LN(x + FFN(x))."""
    attn = mha_steps(subtree(p, "self_attn"), x, cfg.n_heads, marks)
    with marks("add_norm1"):
        x = layer_norm(attn, p["norm1.weight"], p["norm1.bias"], cfg.layer_norm_eps, residual=x)
    hidden = ffn_steps(subtree(p, "ffn"), x, cfg.activation, marks)
    with marks("add_norm2"):
        return layer_norm(hidden, p["norm2.weight"], p["norm2.bias"], cfg.layer_norm_eps,
                          residual=x)


def encoder_steps(p, x, cfg, marks=NoMarks()):
    for i in range(cfg.n_layers):
        x = encoder_layer_steps(subtree(p, f"layers.{i}"), x, cfg, marks)
    return x


def bert_steps(p, input_ids, cfg, marks=NoMarks()):
    """-> (hidden (B, T, D), pooled (B, D)), as tfimpl.numpy.bert.bert without a mask."""
    with marks("embeddings"):
        x = bert_embeddings(p, input_ids, cfg)                                 # (B, T, D)
    hidden = encoder_steps(subtree(p, "encoder"), x, cfg, marks)
    with marks("pooler"):
        pooled = np.tanh(linear(hidden[:, 0], p["pooler.weight"], p["pooler.bias"]))  # (B, D)
    return hidden, pooled


def block_steps(block: str, p, inputs: dict, cfg, marks=NoMarks()):
    """One timed forward of `block` on `inputs` (bench.profile.spec.float64_inputs' keys)."""
    if block == "attention":
        return attention_steps(inputs["q"], inputs["k"], inputs["v"], marks=marks)
    if block == "mha":
        return mha_steps(p, inputs["x"], cfg.n_heads, marks)
    if block == "ffn":
        return ffn_steps(p, inputs["x"], cfg.activation, marks)
    if block == "encoder_layer":
        return encoder_layer_steps(p, inputs["x"], cfg, marks)
    if block == "encoder":
        return encoder_steps(p, inputs["x"], cfg, marks)
    return bert_steps(p, inputs["input_ids"], cfg, marks)


def block_forward(block: str, p, inputs: dict, cfg):
    """tfimpl.numpy's own forward of `block` (unmarked): what `bench run` times."""
    if block == "attention":
        return scaled_dot_product_attention(inputs["q"], inputs["k"], inputs["v"])
    if block == "mha":
        x = inputs["x"]
        return multi_head_attention(p, x, x, cfg.n_heads)
    if block == "ffn":
        return feed_forward(p, inputs["x"], cfg.activation)
    if block == "encoder_layer":
        return encoder_layer(p, inputs["x"], cfg)
    if block == "encoder":
        return encoder(p, inputs["x"], cfg)
    return bert(p, inputs["input_ids"], cfg)
