"""Sizes of what a measured call touches: its working set, its inputs, what it hands back.

These are not peaks (tfimpl/costs/memory.py) but the plain sizes a harness needs to place a
measurement and to budget memory, `e` bytes per element, N = B·T:

working_set_bytes: the bytes a block streams through at once, to place a point against the
caches (an estimate of what must stay resident for the block to run at cache speed):
    attention, materialised   B·H·T²·e                 the score matrix
    attention, fused          4·N·D·e                  q, k, v and the output
    mha                       attention + 4·N·D·e + 4·D²·e     (+ x, q, k, v; the 4 weights)
    ffn                       N·(D + d_ff)·e + 2·D·d_ff·e      (x and the hidden; 2 weights)
    encoder_layer, encoder, model   max(mha, ffn): the sub-layers run one after the other

input_elements: the float inputs the harness allocates: q, k, v (3·N·D) for the bare attention
block, x (N·D) for the others (token ids for the model are integers: N·D is an upper bound).

attention_weights_bytes: B·H·Tq·Tk·e, the probabilities an explicit path can hand back.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig

MIXED_BLOCKS = ("encoder_layer", "encoder", "model")


def attention_weights_bytes(cfg: ModelConfig, batch: int, seq_q: int, seq_k: int, e: float) -> float:
    return batch * cfg.n_heads * seq_q * seq_k * e                  # (B, H, Tq, Tk)


def working_set_bytes(block: str, cfg: ModelConfig, batch: int, seq_len: int, e: float,
                      materialised: bool | None = True) -> float:
    """See the module docstring. `materialised` False = a fused attention kernel."""
    b, t, d, f = batch, seq_len, cfg.d_model, cfg.d_ff
    attn = (4 * b * t * d * e if materialised is False
            else attention_weights_bytes(cfg, b, t, t, e))
    mha = attn + 4 * b * t * d * e + 4 * d * d * e
    ffn = b * t * (d + f) * e + 2 * d * f * e
    if block == "attention":
        return attn
    if block == "mha":
        return mha
    if block == "ffn":
        return ffn
    if block in MIXED_BLOCKS:
        return max(mha, ffn)
    raise ValueError(f"block: expected attention, mha, ffn or {', '.join(MIXED_BLOCKS)}, "
                     f"got {block!r}")


def input_elements(block: str, cfg: ModelConfig, batch: int, seq_len: int) -> int:
    per_token = 3 * cfg.d_model if block == "attention" else cfg.d_model
    return batch * seq_len * per_token
