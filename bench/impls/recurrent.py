"""The recurrent blocks (lstm, gru) in the three implementations that run them.

    numpy     tfimpl.numpy.recurrent: the explicit per-step loop (forward); forward+backward
              and train through tfimpl.numpy.grad.recurrent's BPTT (bench/impls/numpy_train.py)
    torch     tfimpl.torch.recurrent: the same loop in torch, one (B, h)·(h, G) matmul and a
              handful of element-wise kernels per step; autograd for the backward
    torch-nn  torch.nn.LSTM / nn.GRU (batch_first) loaded with the same seeded weights (the
              layout is theirs: tfimpl.params "lstm" / "gru"): ONE fused ATen call, oneDNN's
              RNN primitive for the LSTM on CPU (cuDNN on CUDA). FlopCounterMode sees no matmul
              inside oneDNN's call, so FLOPs are counted with it off (`flops_fn`), as
              bench.impls.torch_nn does for the MHA fast path; nn.LSTM/GRU multiply the zero
              initial state too: T recurrent matmuls, not T − 1 (Impl.extra "zero_state_matmul")

Inputs: x (B, T, D) ("hidden"), hidden size = input size = d_model, `layers` layers, no initial
state. The timed call returns the output sequence (B, T, h).

`costs(case, cfg)` (every Impl's `costs` hook for these blocks; {} for the others) gives
bench.plan its analytic facts from tfimpl.costs.recurrent: FLOPs of the mode's parts, by
component, the predicted peak of the impl's backend, the working set and the parameters.
`rules(case)`: torch-nn runs train for the recurrent blocks only.

Tests: tests/impls/test_recurrent_impls.py.
"""

from __future__ import annotations

import contextlib

import numpy as np

from bench import impls, modes, precision
from bench.case import Case
from bench.impls.base import Prepared, Unsupported
from bench.impls.common import (float64_output, load_state, make_inputs, make_params,
                                model_config, needs_grad, torch_device, torch_inputs,
                                torch_precision, torch_runner)
from tfimpl.costs import recurrent as rc
from tfimpl.numpy import recurrent as nr
from tfimpl.numpy.grad import recurrent as gr
from tfimpl.params import to_torch

RECURRENT_BLOCKS = ("lstm", "gru")


def _zero_state_matmul(case: Case) -> bool:
    return bool(impls.get(case.impl).extra.get("zero_state_matmul", False))


def costs(case: Case, cfg) -> dict:
    """bench.plan's analytic facts for an lstm / gru case ({} for any other block)."""
    if case.block not in RECURRENT_BLOCKS:
        return {}
    kind, b, t, d, n_layers = case.block, case.batch, case.seq_len, case.d_model, case.layers
    e = precision.get(case.precision).bytes_per_element
    state = _zero_state_matmul(case)                 # nn.LSTM multiplies the zero h₀ too
    mode = modes.get(case.mode)
    fwd = rc.recurrent_flops(kind, b, t, d, d, n_layers, initial_state=state)
    parts = {"input_proj": fwd["input_proj"], "recurrent": fwd["recurrent"]}
    if "backward" in mode.flops_parts:
        bwd = rc.recurrent_backward_flops(kind, b, t, d, d, n_layers, initial_state=state,
                                          state_grad=False, input_grad=_input_grad(case))
        parts.update({"input_proj_backward": bwd["input_proj"],
                      "recurrent_backward": bwd["recurrent"]})
    backend = impls.get(case.impl).backend
    return {"flops_analytic": sum(parts.values()), "flops_by_component": parts,
            "peak_bytes_predicted": rc.recurrent_peak_bytes(
                kind, b, t, d, d, n_layers, e, backend="numpy" if backend == "numpy" else "torch",
                mode=mode.peak_mode),
            "working_set_bytes": rc.recurrent_working_set_bytes(kind, b, t, d, d, n_layers, e),
            "params": rc.recurrent_params(kind, d, d, n_layers)["total"]}


def _input_grad(case: Case) -> bool:
    """The input x needs a gradient in forward+backward, not in a training step (its data)."""
    return needs_grad(case) and case.mode != "train"


def rules(case: Case) -> tuple[str, str] | None:
    """torch-nn's train mode is declared for the recurrent blocks only."""
    if case.mode == "train" and case.block not in RECURRENT_BLOCKS:
        return "mode", (f"impl {case.impl!r} cannot run mode 'train' for block {case.block!r} "
                        f"(it trains blocks {', '.join(RECURRENT_BLOCKS)} only)")
    return None


# ---- numpy ---------------------------------------------------------------------------------

def _numpy_setup(case: Case):
    dtype = precision.cast_dtype(case.precision, "numpy")
    p = make_params(case, model_config(case), dtype)
    x = make_inputs(case)["x"].astype(dtype)                   # (B, T, D)
    return p, x


def build_numpy(case: Case) -> Prepared:
    """The forward: tfimpl.numpy.recurrent.lstm / gru, output (B, T, h)."""
    p, x = _numpy_setup(case)
    layer = nr.lstm if case.block == "lstm" else nr.gru
    last: list = [None]

    def fn():
        last[0] = layer(p, x)[0]
        return last[0]

    return Prepared(fn=fn, output=lambda: float64_output(last[0]), backend="numpy",
                    device="cpu")


def numpy_forward_backward(case: Case, p: dict, inputs: dict):
    """(forward() -> (out, cache), backward(cache, out) -> grads) for numpy_train: L = Σ out."""
    x = inputs["x"]
    forward, backward = ((gr.lstm_forward, gr.lstm_backward) if case.block == "lstm"
                         else (gr.gru_forward, gr.gru_backward))
    return (lambda: forward(p, x),
            lambda cache, out: backward(cache, np.ones_like(out))[1])


# ---- torch ---------------------------------------------------------------------------------

def build_torch(case: Case) -> Prepared:
    """tfimpl.torch.recurrent's explicit loop in the case's mode (torch_runner)."""
    from tfimpl.torch import recurrent as tr            # imports torch: only when used

    device = torch_device(case)
    dtype, _ = torch_precision(case)
    grad = needs_grad(case)
    p = to_torch(make_params(case, model_config(case)), dtype=dtype, device=device,
                 requires_grad=grad)
    x = torch_inputs(case, dtype, device, requires_grad=_input_grad(case))["x"]
    layer = tr.lstm if case.block == "lstm" else tr.gru
    leaves = [t for t in list(p.values()) + [x] if t.requires_grad]
    fn, output = torch_runner(case, lambda: layer(p, x)[0], leaves)
    return Prepared(fn=fn, output=output, backend="torch", device=case.device)


@contextlib.contextmanager
def onednn_off():
    """torch.nn.LSTM without oneDNN's fused primitive: the ATen loop, whose matmuls
    FlopCounterMode sees (the arithmetic is the same)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")         # oneDNN's note about Intel GPUs' TF32
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def build_torch_nn(case: Case) -> Prepared:
    """torch.nn.LSTM / nn.GRU with the seeded weights, in the case's mode."""
    import torch.nn as nn

    if case.block not in RECURRENT_BLOCKS:
        raise Unsupported(f"not a recurrent block: {case.block}")
    device = torch_device(case)
    dtype, _ = torch_precision(case)
    grad = needs_grad(case)
    x = torch_inputs(case, dtype, device, requires_grad=_input_grad(case))["x"]
    cls = nn.LSTM if case.block == "lstm" else nn.GRU
    module = cls(case.d_model, case.d_model, num_layers=case.layers, batch_first=True)
    module.to(device=device, dtype=dtype)
    load_state(module, make_params(case, model_config(case)), f"torch-nn {case.block}")
    module.requires_grad_(grad)
    leaves = [t for t in list(module.parameters()) + [x] if t.requires_grad]
    fn, output = torch_runner(case, lambda: module(x)[0], leaves)

    def flops_fn():
        with onednn_off():
            return fn()

    return Prepared(fn=fn, output=output, backend="torch", device=case.device,
                    flops_fn=flops_fn)
