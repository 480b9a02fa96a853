"""Count the FLOPs a torch call actually dispatches, with `torch.utils.flop_counter.FlopCounterMode`.

Convention (torch's and tfimpl.costs'): a matmul of (m, k) by (k, n) is 2·m·n·k; only matmul-like
ops are counted (mm, addmm, bmm, baddbmm, convolutions, fused attention), not element-wise work.

FlopCounterMode knows the CUDA fused attention kernels but not these, which count 0 without help:

- `aten._scaled_dot_product_flash_attention_for_cpu` (+ backward): the CPU path of
  `F.scaled_dot_product_attention`. Counted with torch's own `sdpa_flop_count`:
  QKᵀ and (softmax)·V, each 2·B·H·Tq·Tk·d_k, so 4·B·H·Tq·Tk·d_k in all (a causal mask is not
  subtracted, as torch does not). Backward: torch's `sdpa_backward_flop_count` (5 matmuls).
- `aten._scaled_dot_product_fused_attention_overrideable` (+ backward): same formulas.
- `aten._native_multi_head_attention`: the `nn.MultiheadAttention` inference fast path, one op
  doing projections + attention + output projection;
- `aten._transformer_encoder_layer_fwd`: the `nn.TransformerEncoderLayer` fast path: that
  self-attention plus the feed-forward. Both counted per sequence with
  tfimpl.costs.library_ops (the formulas live there); a nested (padding-removed) input counts
  each sequence at its own length.

Autocast or bf16 change dtypes, not shapes, so the count does not change.
"""

from __future__ import annotations

from typing import Callable

from tfimpl.costs import library_ops



def _sdpa_forward(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """4·B·H·Tq·Tk·d_k (torch's sdpa_flop_count: two batched matmuls)."""
    from torch.utils.flop_counter import sdpa_flop_count

    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _sdpa_backward(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None,
                   **kwargs) -> int:
    """torch's sdpa_backward_flop_count: recomputed scores + four gradient matmuls."""
    from torch.utils.flop_counter import sdpa_backward_flop_count

    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _sequence_lengths(x) -> list[int]:
    """Tokens per sequence of a (B, T, D) tensor, dense or nested (padding removed)."""
    if getattr(x, "is_nested", False):
        return [int(n) for n in x._nested_tensor_size()[:, 0].tolist()]
    return [int(x.shape[-2])] * (int(x.shape[0]) if x.dim() == 3 else 1)


def self_attention_block_flops(t_q: int, t_k: int, d_model: int) -> int:
    """Projections + attention + output projection for one sequence (tfimpl.costs)."""
    return library_ops.self_attention_flops(t_q, t_k, d_model)


def _native_mha_flops(query, key, value, embed_dim, num_head, *args, out_val=None, **kwargs) -> int:
    lengths_q, lengths_k = _sequence_lengths(query), _sequence_lengths(key)
    return sum(self_attention_block_flops(tq, tk, int(embed_dim))
               for tq, tk in zip(lengths_q, lengths_k))


def _encoder_layer_fast_flops(src, embed_dim, num_heads, *args, out_val=None, **kwargs) -> int:
    ffn_weight_1 = kwargs.get("ffn_weight_1", args[11] if len(args) > 11 else None)
    d_ff = int(ffn_weight_1.shape[0])                       # (d_ff, D)
    d_model = int(embed_dim)
    return sum(library_ops.encoder_layer_flops(t, d_model, d_ff) for t in _sequence_lengths(src))


_native_mha_flops._get_raw = True
_encoder_layer_fast_flops._get_raw = True


def custom_mapping() -> dict:
    """Op packet -> formula for the ops FlopCounterMode does not know (those that exist here)."""
    import torch

    aten = torch.ops.aten
    wanted = {
        "_scaled_dot_product_flash_attention_for_cpu": _sdpa_forward,
        "_scaled_dot_product_flash_attention_for_cpu_backward": _sdpa_backward,
        "_scaled_dot_product_fused_attention_overrideable": _sdpa_forward,
        "_scaled_dot_product_fused_attention_overrideable_backward": _sdpa_backward,
        "_native_multi_head_attention": _native_mha_flops,
        "_transformer_encoder_layer_fwd": _encoder_layer_fast_flops,
    }
    return {getattr(aten, name): formula for name, formula in wanted.items()
            if hasattr(aten, name)}


def count_flops_by_op(fn: Callable[[], object]) -> dict[str, int]:
    """FLOPs of one `fn()` call per op, e.g. {"aten.mm": ..., "aten._scaled_dot_..._for_cpu": ...}."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, custom_mapping=custom_mapping()) as counter:
        fn()
    per_op = counter.get_flop_counts().get("Global", {})
    return {str(op): int(n) for op, n in per_op.items()}


def count_flops(fn: Callable[[], object]) -> int:
    """Total FLOPs of one `fn()` call (the sum of count_flops_by_op)."""
    return sum(count_flops_by_op(fn).values())
