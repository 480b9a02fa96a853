"""`numpy`: tfimpl.numpy, the Transformer written from scratch in NumPy (and its LSTM / GRU:
bench/impls/recurrent.py).

Attention is the explicit path: the (B, H, T, T) scores made once, soft-maxed in place, tile by
tile (tfimpl.tiling). The attention weights are exposed for the accuracy check.

Tests: tests/test_precision.py, tests/run/test_runner.py, tests/impls/test_prepare.py.
"""

from __future__ import annotations

from bench.blocks import gpt as decode
from bench import precision
from bench.case import Case
from bench.impls import gpt_ours
from bench.impls import numpy_train
from bench.impls import sparse_ours
from bench.blocks import sparse
from bench.impls import recurrent
from bench.impls.base import Impl, Prepared
from bench.impls.common import (float64_output, make_inputs, make_params, model_config,
                                tfimpl_modules)


def build(case: Case) -> Prepared:
    if case.block in decode.GPT_BLOCKS:
        return gpt_ours.build_numpy(case)
    if case.block in sparse.SPARSE_BLOCKS:
        return sparse_ours.build_numpy(case)
    if case.mode != "forward":                    # forward+backward, train: tfimpl.numpy.grad
        return numpy_train.build(case)
    if case.block in recurrent.RECURRENT_BLOCKS:  # lstm, gru: the per-step loop
        return recurrent.build_numpy(case)
    attention, feed_forward, layers, bert = tfimpl_modules("tfimpl.numpy")
    cfg = model_config(case)
    dtype = precision.cast_dtype(case.precision, "numpy")
    p = make_params(case, cfg, dtype)
    inputs = {k: (v if v.dtype.kind == "i" else v.astype(dtype))
              for k, v in make_inputs(case).items()}
    call = _call(case, cfg, p, inputs, attention, feed_forward, layers, bert)
    last: list = [None]

    def fn():
        last[0] = call()
        return last[0]

    def with_weights():                           # (out, weights) of one call
        if case.block == "attention":
            return attention.scaled_dot_product_attention(
                inputs["q"], inputs["k"], inputs["v"], causal=case.causal, return_weights=True)
        return attention.multi_head_attention(p, inputs["x"], inputs["x"], case.n_heads,
                                              causal=case.causal, return_weights=True)

    def weights():
        if case.block not in ("attention", "mha"):
            return None
        return with_weights()[1]       # bench.trackers.accuracy widens it chunk by chunk

    def evaluate():                    # output and weights from one call
        out, w = with_weights()
        return float64_output(out), w

    return Prepared(fn=fn, output=lambda: float64_output(last[0]), backend="numpy",
                    device="cpu", attention_weights=weights,
                    evaluate=evaluate if case.block in ("attention", "mha") else None)


def _call(case, cfg, p, inputs, attention, feed_forward, layers, bert):
    block = case.block
    if block == "attention":
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        return lambda: attention.scaled_dot_product_attention(q, k, v, causal=case.causal)
    if block == "mha":
        x = inputs["x"]
        return lambda: attention.multi_head_attention(p, x, x, case.n_heads, causal=case.causal)
    if block == "ffn":
        x = inputs["x"]
        return lambda: feed_forward.feed_forward(p, x, activation=case.activation)
    if block == "encoder_layer":
        x = inputs["x"]
        return lambda: layers.encoder_layer(p, x, cfg)
    if block == "encoder":
        x = inputs["x"]
        return lambda: layers.encoder(p, x, cfg)
    ids = inputs["input_ids"]
    return lambda: bert.bert(p, ids, cfg)[0]


def _costs(case: Case, cfg) -> dict:
    """The analytic facts of the blocks whose costs live beside their builds (lstm/gru:
    bench.impls.recurrent; the sparse blocks' NumPy peak: bench.impls.sparse_ours); {} else."""
    return {**recurrent.costs(case, cfg), **sparse_ours.numpy_costs(case, cfg)}


IMPL = Impl(
    name="numpy", description="tfimpl.numpy: from scratch in NumPy (forward; backward in tfimpl.numpy.grad)",
    backend="numpy",
    blocks=("attention", "mha", "ffn", "encoder_layer", "encoder", "model") + decode.GPT_BLOCKS
    + sparse.SPARSE_BLOCKS + recurrent.RECURRENT_BLOCKS,
    precisions=("fp64", "fp32"), modes=("forward", "forward+backward", "train"), devices=("cpu",),
    attention={"*": "explicit", **sparse_ours.ATTENTION}, exposes_weights=True, build=build,
    rules=decode.rules, costs=_costs)
