"""What every implementation shares: the case's model config, its seeded weights and inputs,
and the torch plumbing (device, dtypes, autocast, the mode's timed step, float64 read-back).

Weights are `tfimpl.params.init_params(kind, cfg, case.seed)` in float64, then cast: every
backend and precision sees the same numbers. Inputs follow the block's declaration
(bench/blocks/__init__.py `inputs`): q, k, v (B, H, T, d_k), x (B, T, D), or token ids (B, T), drawn from
`np.random.default_rng(case.seed + 1)`.

The draws are kept (`SEEDED`, a bounded least-recently-used store) and every caller gets its own
copy: a case's float64 accuracy reference and its later timing passes (bench.run.passes) draw the
same numbers again, and drawing was most of what preparing a case cost. Measured on
configs/seq_sweep.yaml (2-core AMD EPYC): init_params 45 ms for one d=768 feed-forward and ~1 s
for d=2560; the sweep's prepares took 17 s of its first pass and 9.5 s of every later pass;
a copy is a memcpy (~3 ms for the d=768 feed-forward's 38 MB).

Tests: tests/impls/test_seeded.py.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections import OrderedDict
from typing import Callable

import numpy as np
import psutil

from bench import blocks, modes, precision
from bench.case import Case
from bench.impls.base import Unsupported
from tfimpl.config import ModelConfig
from tfimpl.params import init_params

BERT_MAX_POSITION = 512


def model_config(case: Case) -> ModelConfig:
    """The tfimpl ModelConfig of a case (BERT-sized position table grown to fit seq_len); a
    block without heads (lstm, gru) gets n_heads = 1, whatever the case's default."""
    heads = case.n_heads if blocks.get(case.block).heads else 1
    return ModelConfig(d_model=case.d_model, n_heads=heads, d_ff=case.d_ff,
                       n_layers=case.layers, vocab_size=case.vocab_size,
                       max_position=max(BERT_MAX_POSITION, case.seq_len),
                       activation=case.activation, norm_first=case.norm_first)


class SeededStore:
    """Seeded draws by key, the least recently used dropped past `cap_bytes` in all.

    `get(key, draw)` returns a fresh copy of what `draw()` returned for `key` (a dict name ->
    array), optionally cast to `dtype`: no caller can change what another one gets (the kept
    arrays are read-only besides). A draw larger than the cap is not kept. The cap:
    TFBENCH_SEED_CACHE_MB (0: keep nothing), else the smaller of 2 GiB and 1/8 of the memory
    available when the first draw is kept, so that the store never decides whether a case fits.
    """

    DEFAULT_CAP_BYTES = 2 << 30

    def __init__(self, cap_bytes: int | None = None):
        self._cap = cap_bytes
        self._items: OrderedDict = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @property
    def cap_bytes(self) -> int:
        if self._cap is None:
            self._cap = _default_cap()
        return self._cap

    def get(self, key, draw: Callable[[], dict], dtype=None) -> dict:
        with self._lock:
            kept = self._items.get(key)
            if kept is not None:
                self._items.move_to_end(key)
                self.hits += 1
        if kept is None:
            kept = draw()
            with self._lock:
                self.misses += 1
                self._keep(key, kept)
        return {name: np.array(value, dtype=dtype or value.dtype, copy=True)
                for name, value in kept.items()}

    def find(self, key) -> dict | None:
        """The kept arrays of `key` themselves (read-only, no copy), or None."""
        with self._lock:
            kept = self._items.get(key)
            if kept is not None:
                self._items.move_to_end(key)
                self.hits += 1
            return kept

    def keep(self, key, arrays: dict) -> None:
        """Keep `arrays` (name -> ndarray) under `key`, read-only from now on (within the cap)."""
        with self._lock:
            self._keep(key, arrays)

    def _keep(self, key, arrays: dict) -> None:
        size = sum(a.nbytes for a in arrays.values())
        if key in self._items or size > self.cap_bytes:
            return
        for value in arrays.values():
            value.flags.writeable = False
        self._items[key] = arrays
        self._bytes += size
        while self._bytes > self.cap_bytes:
            _, dropped = self._items.popitem(last=False)
            self._bytes -= sum(a.nbytes for a in dropped.values())

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def describe(self) -> dict:
        return {"cap_bytes": self.cap_bytes, "kept_bytes": self._bytes,
                "entries": len(self._items), "hits": self.hits, "misses": self.misses}


def _default_cap() -> int:
    text = os.environ.get("TFBENCH_SEED_CACHE_MB")
    if text is not None:
        try:
            return max(0, int(float(text) * (1 << 20)))
        except ValueError:
            raise ValueError(f"TFBENCH_SEED_CACHE_MB={text!r}: expected a number of MiB "
                             "(0 keeps nothing)") from None
    available = psutil.virtual_memory().available      # what bench.run.guard reads too
    return min(SeededStore.DEFAULT_CAP_BYTES, available // 8)


SEEDED = SeededStore()
# The float64 reference outputs of the accuracy check (bench.run.runner), shared by the
# implementations of one block on the same sizes, weights and inputs: the same kind of cap.
REFERENCES = SeededStore()


def make_inputs(case: Case) -> dict[str, np.ndarray]:
    """Seeded inputs: q, k, v (B, H, T, d_k), x (B, T, D), or token ids (B, T)."""
    block = blocks.get(case.block)
    if block.make_inputs is not None:
        return block.make_inputs(case)
    key = ("inputs", block.inputs, case.batch, case.seq_len, case.d_model, case.n_heads,
           case.vocab_size if block.inputs == "ids" else None, case.seed)
    return SEEDED.get(key, lambda: _draw_inputs(case, block.inputs))


def _draw_inputs(case: Case, kind: str) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(case.seed + 1)
    B, T, D, H = case.batch, case.seq_len, case.d_model, case.n_heads
    if kind == "qkv":
        shape = (B, H, T, D // H)                                   # (B, H, T, d_k)
        return {"q": rng.standard_normal(shape), "k": rng.standard_normal(shape),
                "v": rng.standard_normal(shape)}
    if kind == "ids":
        return {"input_ids": rng.integers(0, case.vocab_size, size=(B, T), dtype=np.int64)}
    return {"x": rng.standard_normal((B, T, D))}                   # (B, T, D)


def make_params(case: Case, cfg: ModelConfig, dtype=None) -> dict[str, np.ndarray]:
    """init_params of the case's block (float64, or cast to `dtype`): the caller's own copy."""
    return seeded_params(blocks.get(case.block).param_kind, cfg, case.seed, dtype)


def seeded_params(kind: str, cfg: ModelConfig, seed: int, dtype=None) -> dict[str, np.ndarray]:
    """tfimpl.params.init_params(kind, cfg, seed), drawn once per process (SEEDED)."""
    return SEEDED.get(("params", kind, cfg, seed), lambda: init_params(kind, cfg, seed), dtype)


def tfimpl_modules(package: str):
    """The attention, feed_forward, layers, bert submodules of tfimpl.numpy or tfimpl.torch.

    (importlib, because the packages re-export functions of the same names as submodules.)
    """
    return tuple(importlib.import_module(f"{package}.{name}")
                 for name in ("attention", "feed_forward", "layers", "bert"))


def float64_output(out) -> np.ndarray:
    if out is None:
        raise RuntimeError("output() called before fn()")
    return np.array(out, dtype=np.float64)


# --------------------------------------------------------------------------------------------
# torch


def torch_device(case: Case):
    import torch

    if case.device == "cuda" and not torch.cuda.is_available():
        raise Unsupported("device cuda requested but torch.cuda.is_available() is False")
    return torch.device(case.device)


def torch_inputs(case: Case, dtype, device, requires_grad: bool) -> dict:
    import torch

    out = {}
    for name, arr in make_inputs(case).items():
        if arr.dtype.kind == "i":
            out[name] = torch.from_numpy(arr).to(device)
        else:
            t = torch.from_numpy(arr).to(device=device, dtype=dtype)
            out[name] = t.requires_grad_(requires_grad)
    return out


def torch_precision(case: Case):
    """(storage dtype of weights and inputs, autocast context factory)."""
    return precision.cast_dtype(case.precision, "torch"), (
        lambda: precision.autocast(case.precision, case.device))


def needs_grad(case: Case) -> bool:
    return modes.get(case.mode).grad


def torch_runner(case: Case, call: Callable, leaves: list) -> tuple[Callable, Callable]:
    """Wrap `call` (the forward) into the mode's timed step; returns (fn, output).

    `call` returns the output tensor, or a tuple whose first item is the output (the model:
    hidden states, pooled). bench.modes declares what one step does (Mode.torch_step).
    """
    import torch

    _, autocast = torch_precision(case)
    step = modes.get(case.mode).torch_step
    if step is None:
        raise Unsupported(f"mode {case.mode} has no torch step")
    inner = step(call, leaves, autocast)
    last: list = [None]

    def fn():
        last[0] = inner()
        return last[0]

    extra = getattr(inner, "record_extra", None)      # a mode's own measured fields (train)
    if extra is not None:
        storage_dtype, _ = torch_precision(case)
        fn.record_extra = lambda: extra(case, model_config(case), storage_dtype.itemsize)

    def output() -> np.ndarray:
        if last[0] is None:
            raise RuntimeError("output() called before fn()")
        return last[0].detach().to(device="cpu", dtype=torch.float64).numpy()

    return fn, output


def as_float64(t) -> np.ndarray:
    import torch

    return t.detach().to(device="cpu", dtype=torch.float64).numpy()


def load_state(module, state: dict, what: str) -> None:
    """load_state_dict that fails loudly when the weights do not fit the module."""
    import torch

    state = {k: (torch.as_tensor(v) if not isinstance(v, torch.Tensor) else v)
             for k, v in state.items()}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"{what}: weights do not fit the module "
                           f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
