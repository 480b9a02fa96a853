"""`numpy` in the modes that differentiate: forward+backward and train (tfimpl.numpy.grad).

forward+backward: the forward that keeps what the backward needs, then the backward of
L = Σ outputs (∂L/∂out = 1 everywhere; the model's hidden states and pooled output both), every
parameter's gradient and the float input's made afresh each call.
train: the same, then tfimpl.numpy.optim.AdamW's step; the weights are copied back from a
snapshot and the moments and step count reset afterwards (bench/modes/train.py says why).

`fn.record_extra()` (train) measures the step's bytes: the backward caches (each buffer once,
weights and inputs apart), the gradients and the optimizer state, beside tfimpl.costs.training.

Tests: tests/test_train_mode.py.
"""

from __future__ import annotations

import numpy as np

from bench import precision
from bench.case import Case
from bench.impls.base import Prepared, Unsupported
from bench.impls.common import float64_output, make_inputs, make_params, model_config
from bench.impls.recurrent import RECURRENT_BLOCKS, numpy_forward_backward
from bench.modes.train import LEARNING_RATE, numpy_train_step, predicted_bytes
from tfimpl.numpy import grad as ng


def _forward_backward(case: Case, cfg, p: dict, inputs: dict):
    """(forward() -> (outputs, cache), backward(cache, outputs) -> grads) for the block."""
    block = case.block
    if block in RECURRENT_BLOCKS:                 # BPTT: tfimpl.numpy.grad.recurrent
        return numpy_forward_backward(case, p, inputs)
    if block == "attention":
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        return (lambda: ng.sdpa_forward(q, k, v, causal=case.causal),
                lambda c, out: ng.sdpa_backward(c, np.ones_like(out))[1])    # no parameters: {}
    if block == "mha":
        x = inputs["x"]
        return (lambda: ng.mha_forward(p, x, x, case.n_heads, causal=case.causal),
                lambda c, out: ng.mha_backward(c, np.ones_like(out))[1])
    if block == "ffn":
        x = inputs["x"]
        return (lambda: ng.feed_forward_forward(p, x, case.activation),
                lambda c, out: ng.feed_forward_backward(c, np.ones_like(out))[1])
    if block == "encoder_layer":
        x = inputs["x"]
        return (lambda: ng.encoder_layer_forward(p, x, cfg),
                lambda c, out: ng.encoder_layer_backward(c, np.ones_like(out), cfg)[1])
    if block == "encoder":
        x = inputs["x"]
        return (lambda: ng.encoder_forward(p, x, cfg),
                lambda c, out: ng.encoder_backward(c, np.ones_like(out), cfg)[1])
    ids = inputs["input_ids"]
    return (lambda: ng.bert_forward(p, ids, cfg),
            lambda c, out: ng.bert_backward(c, np.ones_like(out[0]), np.ones_like(out[1]), cfg)[1])


def build(case: Case) -> Prepared:
    if case.mode not in ("forward+backward", "train"):
        raise Unsupported(f"numpy has no mode {case.mode}")

    cfg = model_config(case)
    dtype = precision.cast_dtype(case.precision, "numpy")
    p = make_params(case, cfg, dtype)
    inputs = {k: (v if v.dtype.kind == "i" else v.astype(dtype))
              for k, v in make_inputs(case).items()}
    forward, backward = _forward_backward(case, cfg, p, inputs)
    if case.mode == "train":
        step = numpy_train_step(forward, backward, p, list(inputs.values()), lr=LEARNING_RATE)
        fn, output = step.fn, step.output
        fn.record_extra = lambda: {**step.measure_bytes(),
                                   **predicted_bytes(case, cfg, "numpy", np.dtype(dtype).itemsize)}
    else:
        last: list = [None]

        def fn():
            out, cache = forward()
            backward(cache, out)
            last[0] = out[0] if isinstance(out, tuple) else out
            return last[0]

        def output():
            return float64_output(last[0])
    return Prepared(fn=fn, output=output, backend="numpy", device="cpu")
