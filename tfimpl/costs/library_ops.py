"""FLOPs of the libraries' fused operators, per sequence, in the same 2·m·n·k convention.

A FLOP counter that sees one fused op (torch.nn's inference fast path) cannot see its matmuls,
so it needs their count from the op's shapes. For one sequence, D = embed_dim, Tq query and Tk
key tokens:

    self_attention_flops(Tq, Tk, D)
        Q projection 2·Tq·D²  +  K, V projections 2·2·Tk·D²
        + QKᵀ and weights·V   2·2·Tq·Tk·D   (summed over heads: H·d_k = D)
        + output projection   2·Tq·D²
      (`_native_multi_head_attention`, nn.MultiheadAttention's fast path)

    encoder_layer_flops(T, D, d_ff) = self_attention_flops(T, T, D) + 2·2·T·D·d_ff
      (`_transformer_encoder_layer_fwd`, nn.TransformerEncoderLayer's fast path)

These equal tfimpl.costs.forward_flops("mha" / "encoder_layer", ...)["total"] at batch 1, which
the tests check.
"""

from __future__ import annotations

from tfimpl.costs.flops import matmul_flops


def self_attention_flops(t_q: int, t_k: int, d_model: int) -> int:
    projections = matmul_flops(t_q, d_model, d_model) + 2 * matmul_flops(t_k, d_model, d_model)
    attention = matmul_flops(t_q, d_model, t_k) + matmul_flops(t_q, t_k, d_model)
    output = matmul_flops(t_q, d_model, d_model)
    return projections + attention + output


def encoder_layer_flops(seq_len: int, d_model: int, d_ff: int) -> int:
    ffn = matmul_flops(seq_len, d_model, d_ff) + matmul_flops(seq_len, d_ff, d_model)
    return self_attention_flops(seq_len, seq_len, d_model) + ffn
