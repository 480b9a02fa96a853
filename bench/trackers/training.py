"""One training step, measured: forward, backward, AdamW step, and where its memory goes.

    torch   loss = Σ outputs; loss.backward(); torch.optim.AdamW.step(); grads set to None
    numpy   tfimpl.numpy.grad forward (keeping caches) and backward from ∂L/∂out = 1, then
            tfimpl.numpy.optim.AdamW.step

`TrainStep.fn()` runs one step and then restores the weights (and the optimizer's moments and
step count) saved when it was built, so every timed call does the same work from the same
state, and the output the accuracy check reads is always the first step's forward.

Measured bytes, each counted once per buffer (views share it), weights and given inputs apart:
    saved activations  torch: every tensor autograd saves for backward (saved_tensors_hooks);
                       numpy: every array in the backward caches
    gradients          the parameter gradients after backward
    optimizer state    AdamW's state after a step (torch: exp_avg, exp_avg_sq, step)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from tfimpl.numpy.optim import AdamW


def _storage_key(t) -> int:
    return t.untyped_storage().data_ptr()


def _live_tensors() -> list:
    import gc
    import warnings

    import torch

    def is_tensor(o) -> bool:
        try:
            return isinstance(o, torch.Tensor)
        except ReferenceError:                     # a weak proxy whose object is gone
            return False

    with warnings.catch_warnings():                # isinstance on deprecated module proxies
        warnings.simplefilter("ignore")
        return [o for o in gc.get_objects() if is_tensor(o)]


def torch_saved_bytes(call: Callable[[], Any], exclude: list | None) -> tuple[Any, int]:
    """(call(), bytes of the distinct storages autograd saves during it, `exclude`'s apart;
    exclude=None: every tensor alive before the call (weights, inputs, ids) is apart)."""
    import torch

    import warnings

    skip = set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for t in (_live_tensors() if exclude is None else exclude):
            try:
                skip.add(_storage_key(t))
            except RuntimeError:                   # a compiler's fake tensor: no storage
                pass
    seen: dict[int, int] = {}

    def pack(t):
        key = _storage_key(t)
        if key not in skip:
            seen[key] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = call()
    return out, sum(seen.values())


def distinct_storage_bytes(tensors: list) -> int:
    """Bytes of the distinct storages under `tensors` (the q|k|v weights' gradients arrive as
    views of one buffer, through the concatenation's backward)."""
    return sum({_storage_key(t): t.untyped_storage().nbytes() for t in tensors}.values())


def _base(a: np.ndarray) -> np.ndarray:
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def numpy_cache_bytes(cache, exclude: list) -> int:
    """Bytes of the distinct buffers (views resolved to their base) held in a nested cache."""
    skip = {id(_base(a)) for a in exclude}
    seen: dict[int, int] = {}
    stack = [cache]
    while stack:
        item = stack.pop()
        if isinstance(item, np.ndarray):
            base = _base(item)
            if id(base) not in skip:
                seen[id(base)] = base.nbytes
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return sum(seen.values())


@dataclass
class TrainStep:
    """fn() = one step, weights restored after; the byte counts come from `measure_bytes`."""

    fn: Callable[[], Any]
    output: Callable[[], np.ndarray]
    measure_bytes: Callable[[], dict]
    extra: dict = field(default_factory=dict)


def torch_train_step(forward: Callable[[], Any], params: dict, inputs: list, lr: float = 1e-3,
                     autocast: Callable | None = None) -> TrainStep:
    """forward(): the block's outputs (a tensor or tuple) from `params` (leaf tensors with
    requires_grad) and `inputs`; the loss is the sum of every output (as backward_flops counts)."""
    import contextlib

    import torch

    autocast = autocast or contextlib.nullcontext
    leaves = list(params.values())
    opt = torch.optim.AdamW(leaves, lr=lr)
    saved_weights = [t.detach().clone() for t in leaves]
    first: list = [None]

    def step():
        with autocast():
            out = forward()
        outs = out if isinstance(out, tuple) else (out,)
        sum(o.float().sum() if o.dtype != torch.float64 else o.sum() for o in outs).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return outs[0].detach()

    def restore():
        with torch.no_grad():
            for t, w in zip(leaves, saved_weights):
                t.copy_(w)
        opt.state.clear()                          # moments and step count back to none

    def fn():
        out = step()
        if first[0] is None:
            first[0] = out.double().cpu().numpy()
        restore()
        return out

    def measure_bytes():
        with autocast():
            out, saved = torch_saved_bytes(forward, leaves + [t for t in inputs if torch.is_tensor(t)])
        outs = out if isinstance(out, tuple) else (out,)
        sum(o.float().sum() if o.dtype != torch.float64 else o.sum() for o in outs).backward()
        grads = distinct_storage_bytes([t.grad for t in leaves if t.grad is not None])
        opt.step()
        state = distinct_storage_bytes([v for s in opt.state.values() for v in s.values()
                                         if torch.is_tensor(v)])
        opt.zero_grad(set_to_none=True)
        restore()
        return {"saved_activation_bytes": saved, "gradient_bytes": grads,
                "optimizer_state_bytes": state}

    return TrainStep(fn=fn, output=lambda: first[0], measure_bytes=measure_bytes)


def numpy_train_step(forward: Callable[[], tuple], backward: Callable[[Any, Any], dict],
                     params: dict, inputs: list, lr: float = 1e-3) -> TrainStep:
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

