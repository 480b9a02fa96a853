"""Where a training step's memory goes, measured (the train mode's steps, bench/modes/train.py,
call these).

Measured bytes, each counted once per buffer (views share it), weights and given inputs apart:
    saved activations  torch: every tensor autograd saves for backward (saved_tensors_hooks);
                       numpy: every array in the backward caches
    gradients          the parameter gradients after backward
    optimizer state    AdamW's state after a step (torch: exp_avg, exp_avg_sq, step)

Tests: tests/tfimpl/test_training_memory.py.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np


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
