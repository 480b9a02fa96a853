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

Fake tensors (`fake=True`): the same counter with the call run under torch's FakeTensorMode,
which propagates shapes and dtypes through every op without computing anything (real tensors
the call holds are converted on the way in, never written). FLOPs depend on shapes only, so the
count is the real call's (tests/trackers/test_flops.py checks equality on every built-in torch
block), at ~30-100 ms of dispatch whatever the size: the main job's FLOP counts went from a
real call of each case (~10 s of a 2-core run, most of it the largest cases) to ~3 s.
`count_flops_as_run` uses it for a call that takes longer than FAKE_ABOVE_S and falls back to a
real call where the fake one cannot run (an op with data-dependent output shapes, a nested
tensor, a compiled graph), saying which it used.
"""

from __future__ import annotations

from typing import Callable

from tfimpl.costs import library_ops

FAKE_ABOVE_S = 0.05        # a call slower than this is counted on fake tensors (module docstring)
REAL, FAKE = "counted", "counted on fake tensors"


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


def count_flops_by_op(fn: Callable[[], object], fake: bool = False) -> dict[str, int]:
    """FLOPs of one `fn()` call per op, e.g. {"aten.mm": ..., "aten._scaled_dot_..._for_cpu": ...}.

    fake: run the call on fake tensors (shapes only, nothing computed; module docstring)."""
    import contextlib

    from torch.utils.flop_counter import FlopCounterMode

    outer = contextlib.nullcontext()
    if fake:
        from torch._subclasses.fake_tensor import FakeTensorMode

        outer = FakeTensorMode(allow_non_fake_inputs=True)
    with outer, FlopCounterMode(display=False, custom_mapping=custom_mapping()) as counter:
        fn()
    per_op = counter.get_flop_counts().get("Global", {})
    return {str(op): int(n) for op, n in per_op.items()}


def count_flops(fn: Callable[[], object], fake: bool = False) -> int:
    """Total FLOPs of one `fn()` call (the sum of count_flops_by_op)."""
    return sum(count_flops_by_op(fn, fake=fake).values())


def count_flops_as_run(fn: Callable[[], object], call_s: float | None) -> tuple[int, str]:
    """(FLOPs of one call, how: REAL or FAKE): on fake tensors when a call takes longer than
    FAKE_ABOVE_S (`call_s`, e.g. the budget probe's), a real call otherwise or where the fake
    run raises."""
    if call_s is not None and call_s > FAKE_ABOVE_S:
        try:
            return count_flops(fn, fake=True), FAKE
        except Exception:                          # an op fake tensors cannot run: count it for real
            pass
    return count_flops(fn), REAL
