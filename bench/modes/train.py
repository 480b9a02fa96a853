"""The `train` mode: one training step per timed call, forward, backward and an AdamW step.

    torch   loss = Σ outputs (as tfimpl.costs.backward_flops counts), loss.backward(),
            torch.optim.AdamW(lr=1e-3).step(), grads set to None (allocated afresh each step)
    numpy   bench/impls/numpy_train.py: tfimpl.numpy.grad and tfimpl.numpy.optim.AdamW

After each step the weights are copied back from a snapshot taken at build time and AdamW's
moments and step count are zeroed in place (not freed), so every timed call is the same first
step from the same weights: the same work, and the same output for the accuracy check. The
copy-back (one pass over the weights, P·e bytes) is inside the timed call and small beside the
step's ≈ 6·P·B·T FLOPs; the optimizer state is allocated once (the first call, a warm-up).

Analytic facts (tfimpl.costs): FLOPs are forward + backward (the AdamW update's ~15 element-wise
operations per parameter are not counted); the predicted peak is tfimpl.costs'
forward+backward upper bound (the state is allocated before a timed call: baseline); with
Case.checkpoint, one layer's forward+backward bound plus the other layers' inputs and grads.
`fn.record_extra(case)` adds TRAIN_KEYS to the record: the bytes autograd saves, the gradients
and the AdamW state, measured on one step, beside tfimpl.costs.training's predictions.

Tests: tests/test_record.py, tests/test_train_mode.py, tests/tfimpl/test_training_memory.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from bench import impls, precision
from bench.record import keys_of
from bench.trackers.training import distinct_storage_bytes, numpy_cache_bytes, torch_saved_bytes
from tfimpl import costs
from tfimpl.costs.training import saved_activation_bytes, training_memory
from tfimpl.numpy.optim import AdamW

LEARNING_RATE = 1e-3


def torch_train_step(call: Callable, leaves: list, autocast: Callable) -> Callable:
    """Mode.torch_step for train: fn() runs one step on `leaves` and restores them."""
    import torch

    opt = torch.optim.AdamW(leaves, lr=LEARNING_RATE)
    snapshot = [t.detach().clone() for t in leaves]

    def restore():
        with torch.no_grad():
            torch._foreach_copy_(leaves, snapshot)
            state = [v for s in opt.state.values() for v in s.values() if torch.is_tensor(v)]
            if state:
                torch._foreach_zero_(state)

    def step(forward, count_grads=False):
        with autocast():
            out = forward()
        outs = out if isinstance(out, tuple) else (out,)
        sum(o.sum() for o in outs).backward()
        grads = (distinct_storage_bytes([t.grad for t in leaves if t.grad is not None])
                 if count_grads else None)
        opt.step()
        opt.zero_grad(set_to_none=True)
        restore()
        return outs[0].detach(), grads

    def fn():
        return step(call)[0]

    def measure_bytes() -> dict:
        """One step measured: the tensors autograd saves, the gradients, AdamW's state."""
        saved: dict = {}

        def counted():
            out, saved["bytes"] = torch_saved_bytes(call, exclude=None)
            return out
        _, grads = step(counted, count_grads=True)
        state = distinct_storage_bytes([v for s in opt.state.values() for v in s.values()
                                        if torch.is_tensor(v)])
        return {"saved_activation_bytes": saved["bytes"], "gradient_bytes": grads,
                "optimizer_state_bytes": state}

    def record_extra(case, cfg, storage_bytes: int) -> dict:
        """One step measured beside tfimpl.costs.training's prediction."""
        return {**measure_bytes(), **predicted_bytes(case, cfg, "torch", storage_bytes)}

    fn.measure_bytes = measure_bytes
    fn.record_extra = record_extra
    return fn


@dataclass
class TrainStep:
    """fn() = one step, weights restored after; the byte counts come from `measure_bytes`."""

    fn: Callable[[], Any]
    output: Callable[[], np.ndarray]
    measure_bytes: Callable[[], dict]


def numpy_train_step(forward: Callable[[], tuple], backward: Callable[[Any, Any], dict],
                     params: dict, inputs: list, lr: float = LEARNING_RATE) -> TrainStep:
    """forward() -> (outputs, cache); backward(cache, outputs) -> grads (∂L/∂out = 1 for each
    output, L = Σ outputs); tfimpl.numpy.optim.AdamW updates `params` in place."""
    opt = AdamW(lr=lr)
    saved_weights = {n: a.copy() for n, a in params.items()}
    first: list = [None]

    def step():
        out, cache = forward()
        grads = backward(cache, out)
        opt.step(params, grads)
        return out, cache, grads

    def restore():
        for n, a in params.items():
            a[...] = saved_weights[n]
        opt.t, opt.state = 0, {}

    def fn():
        out, _, _ = step()
        head = out[0] if isinstance(out, tuple) else out
        if first[0] is None:
            first[0] = np.asarray(head, dtype=np.float64)
        restore()
        return head

    def measure_bytes():
        out, cache, grads = step()
        saved = numpy_cache_bytes(cache, list(params.values()) + list(inputs))
        result = {"saved_activation_bytes": saved,
                  "gradient_bytes": int(sum(g.nbytes for g in grads.values())),
                  "optimizer_state_bytes": opt.state_bytes()}
        restore()
        return result

    return TrainStep(fn=fn, output=lambda: first[0], measure_bytes=measure_bytes)



# The record's train fields (bench.record): 3 measured, then tfimpl.costs.training's predictions.
TRAIN_KEYS = keys_of("modes.train")


def _modelled_attention(case) -> str | None:
    """The case's attention path if tfimpl.costs.training models the block, else None."""
    attn = impls.get(case.impl).attention_path(case.block) or "explicit"
    if case.block not in ("encoder_layer", "encoder", "model") or attn not in ("explicit", "sdpa"):
        return None
    return attn


def predicted_bytes(case, cfg, backend: str, storage_bytes: int) -> dict:
    """tfimpl.costs.training's bytes for the case (None for blocks it does not model);
    storage_bytes: the width of the weights as stored (the caller's dtype)."""
    attn = _modelled_attention(case)
    if attn is None:
        return {k: None for k in TRAIN_KEYS[3:]}
    e = storage_bytes
    mem = training_memory(case.block, cfg, case.batch, case.seq_len, e, backend=backend,
                          attn_impl=attn, causal=case.causal)
    saved = mem["saved_activations"]
    if precision.get(case.precision).bytes_per_element != e:
        saved = None                   # autocast: what is saved in 16 bits is not modelled
    elif case.checkpoint:                # what the forward keeps: the layer inputs (and the rest)
        parts = saved_activation_bytes(case.block, cfg, case.batch, case.seq_len, e, backend,
                                       attn, case.causal, checkpoint=True)
        saved = parts["total"] - parts["one_layer_recomputed"]
    return {"saved_activation_bytes_predicted": saved,
            "gradient_bytes_predicted": mem["gradients"],
            "optimizer_state_bytes_predicted": mem["optimizer_state"],
            "korthikanti_bytes": mem["korthikanti_activations"]}


def train_costs(case, cfg) -> dict:
    """Mode.costs for train: the predicted peak of one step (bytes above the weights and inputs)."""
    attn = _modelled_attention(case)
    if attn is None:
        return {}
    e = precision.get(case.precision).bytes_per_element
    mem = training_memory(case.block, cfg, case.batch, case.seq_len, e,
                          backend=impls.get(case.impl).backend,
                          attn_impl=attn, causal=case.causal)
    fwd_bwd = costs.predicted_peak_bytes(case.block, cfg, case.batch, case.seq_len, e, attn,
                                         "forward+backward", causal=case.causal,
                                         threads=case.threads, backend="torch")
    if case.checkpoint:
        # one layer's forward+backward at a time, beside the other layers' inputs and grads
        one = costs.predicted_peak_bytes("encoder_layer", cfg, case.batch, case.seq_len, e, attn,
                                         "forward+backward", causal=case.causal,
                                         threads=case.threads, backend="torch")
        rest = cfg.n_layers - 1
        layer_grads = costs.param_counts("encoder_layer", cfg)["total"] * e
        fwd_bwd = one + rest * (case.batch * case.seq_len * cfg.d_model * e + layer_grads)
    # the AdamW state exists from the first (warm-up) call on: not above the baseline of a
    # timed call; during the step the gradients and one temporary of the same size (√v̂) live
    return {"peak_bytes_predicted": int(max(fwd_bwd, 2 * mem["gradients"]))}
