"""`torch`: tfimpl.torch with the explicit attention path (materialised softmax(QKᵀ/√d_k)·V).

The same module builds `torch-sdpa` (bench/impls/torch_sdpa.py), whose attention goes through
torch's fused F.scaled_dot_product_attention: `build_tfimpl_torch(case, attn_impl)`.

Tests: tests/tfimpl/test_costs_counted.py, tests/test_precision.py, tests/run/test_runner.py.
"""

from __future__ import annotations

from bench.blocks import gpt as decode
from bench.impls import options as tricks
from bench.case import Case
from bench.impls import gpt_ours
from bench.impls import sparse_ours
from bench.blocks import sparse
from bench.impls import recurrent
from bench.impls.base import Impl, Prepared
from bench.impls.common import (as_float64, make_params, model_config, needs_grad,
                                tfimpl_modules, torch_device, torch_inputs, torch_precision,
                                torch_runner)
from tfimpl.params import to_torch

BLOCKS = ("attention", "mha", "ffn", "encoder_layer", "encoder", "model") + decode.GPT_BLOCKS
PRECISIONS = ("fp64", "fp32", "tf32", "bf16", "fp16", "amp-bf16", "amp-fp16")


def build_tfimpl_torch(case: Case, attn_impl: str) -> Prepared:
    import torch

    if case.block in decode.GPT_BLOCKS:
        return gpt_ours.build_torch(case, attn_impl)
    if case.block in sparse.SPARSE_BLOCKS:
        return sparse_ours.build_torch(case, attn_impl)
    if case.block in recurrent.RECURRENT_BLOCKS:              # lstm, gru: no attention
        return recurrent.build_torch(case)
    attention, feed_forward, layers, bert = tfimpl_modules("tfimpl.torch")
    cfg = model_config(case)
    device = torch_device(case)
    dtype, autocast = torch_precision(case)
    grad = needs_grad(case)
    p = to_torch(make_params(case, cfg), dtype=dtype, device=device, requires_grad=grad)
    inputs = torch_inputs(case, dtype, device, requires_grad=grad and case.mode != "train")
    block = case.block
    if block == "attention":
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        call = lambda: attention.scaled_dot_product_attention(   # noqa: E731
            q, k, v, causal=case.causal, attn_impl=attn_impl)
    elif block == "mha":
        x = inputs["x"]
        call = lambda: attention.multi_head_attention(            # noqa: E731
            p, x, x, case.n_heads, causal=case.causal, attn_impl=attn_impl)
    elif block == "ffn":
        x = inputs["x"]
        call = lambda: feed_forward.feed_forward(p, x, activation=case.activation)  # noqa: E731
    elif block == "encoder_layer":
        x = inputs["x"]
        call = lambda: layers.encoder_layer(p, x, cfg, attn_impl=attn_impl)  # noqa: E731
    elif block == "encoder":
        x = inputs["x"]
        call = lambda: layers.encoder(p, x, cfg, attn_impl=attn_impl)        # noqa: E731
    else:
        ids = inputs["input_ids"]
        call = lambda: tuple(bert.bert(p, ids, cfg, attn_impl=attn_impl))   # noqa: E731
    leaves = [t for t in list(p.values()) + list(inputs.values()) if t.requires_grad]
    call, compile_first = tricks.apply(case, call, layers, p, inputs, cfg, attn_impl)
    fn, output = torch_runner(case, call, leaves)
    fn, compile_s, flops_fn = compile_first(fn, lambda: torch_runner(case, call.raw, leaves)[0])

    def with_weights():
        with torch.inference_mode(), autocast():            # same autocast as timed
            if block == "attention":
                return attention.scaled_dot_product_attention(
                    inputs["q"], inputs["k"], inputs["v"], causal=case.causal,
                    return_weights=True, attn_impl="explicit")
            return attention.multi_head_attention(
                p, inputs["x"], inputs["x"], case.n_heads, causal=case.causal,
                return_weights=True, attn_impl="explicit")

    explicit_attention = attn_impl == "explicit" and block in ("attention", "mha")

    def weights():
        if not explicit_attention:
            return None
        return with_weights()[1].detach().cpu()   # bench.trackers.accuracy widens it chunk by chunk

    def evaluate():                               # output and weights from one call
        out, w = with_weights()
        return as_float64(out), w.detach().cpu()

    return Prepared(fn=fn, output=output, backend="torch", device=case.device,
                    attention_weights=weights, evaluate=evaluate if explicit_attention else None,
                    flops_fn=flops_fn, compile_s=compile_s,
                    teardown=tricks.reset_compiler if case.compile else (lambda: None))


def build(case: Case) -> Prepared:
    return build_tfimpl_torch(case, "explicit")


IMPL = Impl(
    name="torch", description="tfimpl.torch, explicit attention (materialised matrix)",
    backend="torch", blocks=BLOCKS + sparse.SPARSE_BLOCKS + recurrent.RECURRENT_BLOCKS,
    precisions=PRECISIONS, modes=("forward", "forward+backward", "train"),
    devices=("cpu", "cuda"), attention={"*": "explicit", **sparse_ours.ATTENTION},
    exposes_weights=True, build=build, rules=decode.rules, costs=recurrent.costs)
