"""What every implementation shares: the case's model config, its seeded weights and inputs,
and the torch plumbing (device, dtypes, autocast, the mode's timed step, float64 read-back).

Weights are `tfimpl.params.init_params(kind, cfg, case.seed)` in float64, then cast: every
backend and precision sees the same numbers. Inputs follow the block's declaration
(bench/blocks.py `inputs`): q, k, v (B, H, T, d_k), x (B, T, D), or token ids (B, T), drawn from
`np.random.default_rng(case.seed + 1)`.
"""

from __future__ import annotations

import importlib
from typing import Callable

import numpy as np

from bench import blocks, modes, precision
from bench.case import Case
from bench.impls.base import Unsupported
from tfimpl.config import ModelConfig
from tfimpl.params import init_params

BERT_MAX_POSITION = 512


def model_config(case: Case) -> ModelConfig:
    """The tfimpl ModelConfig of a case (BERT-sized position table grown to fit seq_len)."""
    return ModelConfig(d_model=case.d_model, n_heads=case.n_heads, d_ff=case.d_ff,
                       n_layers=case.layers, vocab_size=case.vocab_size,
                       max_position=max(BERT_MAX_POSITION, case.seq_len),
                       activation=case.activation, norm_first=case.norm_first)


def make_inputs(case: Case) -> dict[str, np.ndarray]:
    """Seeded inputs: q, k, v (B, H, T, d_k), x (B, T, D), or token ids (B, T)."""
    block = blocks.get(case.block)
    if block.make_inputs is not None:
        return block.make_inputs(case)
    rng = np.random.default_rng(case.seed + 1)
    B, T, D, H = case.batch, case.seq_len, case.d_model, case.n_heads
    kind = block.inputs
    if kind == "qkv":
        shape = (B, H, T, D // H)                                   # (B, H, T, d_k)
        return {"q": rng.standard_normal(shape), "k": rng.standard_normal(shape),
                "v": rng.standard_normal(shape)}
    if kind == "ids":
        return {"input_ids": rng.integers(0, case.vocab_size, size=(B, T), dtype=np.int64)}
    return {"x": rng.standard_normal((B, T, D))}                   # (B, T, D)


def make_params(case: Case, cfg: ModelConfig) -> dict[str, np.ndarray]:
    return init_params(blocks.get(case.block).param_kind, cfg, case.seed)


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
