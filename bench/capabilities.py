"""What can run: the one validation authority, derived from the declarations.

`check_fields(case)` gives the first reason a case cannot run, with the Case field to blame:

    impl        the declaration exists (bench.impls.get: built-in or plugin) and its
                requirements import (else: how to install them)
    block       the block is declared (bench/blocks/__init__.py) and the impl lists it
    precision   the impl lists it; the precision's own facts on this backend and device
                (bench.precision.backend_reason: NumPy has no bf16, tf32 is CUDA only, ...)
    mode        declared (bench/modes/__init__.py) and listed by the impl
    device      listed by the impl; CUDA present when asked for
    activation  one of tfimpl.config.ACTIVATIONS
    d_model     divisible by n_heads (blocks with heads)
    causal      only for blocks that wire a causal mask
    threads     no more than this process' CPUs
    (impl)      the impl's own rules (BERT is post-norm, ...), then the block's, then
                bench.blocks.sparse.rules (window, global_tokens, inputs on any block)

bench.config calls it for every case of a sweep (exit 2 before anything runs) and the runner's
build step re-checks the parts a config cannot know (bench.impls.prepare.prepare). Nothing here imports
torch at module level; CUDA is queried only for a case that wants `device: cuda`.

Tests: tests/impls/test_plugins.py, tests/test_config.py, tests/test_precision.py.
"""

from __future__ import annotations

import os

from bench import blocks, impls, modes, precision
from bench.blocks import sparse
from bench.case import Case
from tfimpl.config import ACTIVATIONS

# Precisions that run, but very slowly, on a CPU (no fp16 matmul kernels: ~1 GFLOP/s).
CPU_SLOW_PRECISIONS = ("fp16",)


def supports(impl: str, block: str) -> bool:
    """True when `impl` has an implementation of `block`."""
    try:
        return block in impls.get(impl).blocks
    except impls.ImplError:
        return False


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def cuda_available() -> bool:
    """torch.cuda.is_available(), False when torch is not installed."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def precision_reason(impl: str, name: str, device: str) -> str | None:
    """Why `impl` cannot run precision `name` on `device`, or None when it can."""
    try:
        decl = impls.get(impl)
    except impls.ImplError as exc:
        return str(exc)
    precision.get(name)                                   # ValueError for an unknown name
    if device not in decl.devices:
        return (f"impl {impl!r} cannot run on device {device!r} "
                f"(it runs on: {', '.join(decl.devices)})")
    why = precision.backend_reason(name, decl.backend, device)
    if name not in decl.precisions:
        return (f"impl {impl!r} cannot run precision {name!r} "
                f"(it runs: {', '.join(decl.precisions)})" + (f": {why}" if why else ""))
    return why


def check_fields(case: Case, *, cuda: bool | None = None,
                 cpus: int | None = None) -> tuple[str, str] | None:
    """(field, reason) for the first reason `case` cannot run, or None when it can.

    `cuda` and `cpus` default to asking this machine (cuda only when the case wants it).
    """
    try:
        decl = impls.get(case.impl)
    except impls.ImplError as exc:
        return "impl", str(exc)
    missing = decl.missing_requirement()
    if missing:
        hint = f"; install it with: {decl.install}" if decl.install else ""
        return "impl", f"impl {case.impl!r} needs the package {missing!r}, not installed{hint}"
    if case.block not in blocks.BLOCKS:
        return "block", f"unknown block {case.block!r}; allowed: {', '.join(blocks.names())}"
    if case.block not in decl.blocks:
        return "impl", (f"impl {case.impl!r} cannot run block {case.block!r} "
                        f"(it runs: {', '.join(decl.blocks)})")
    if case.mode not in modes.MODES:
        return "mode", f"unknown mode {case.mode!r}; allowed: {', '.join(modes.names())}"
    if case.mode not in decl.modes:
        return "mode", (f"impl {case.impl!r} cannot run mode {case.mode!r} "
                        f"(it runs: {', '.join(decl.modes)})")
    if case.device not in decl.devices:
        return "device", (f"impl {case.impl!r} cannot run on device {case.device!r} "
                          f"(it runs on: {', '.join(decl.devices)})")
    if case.device == "cuda" and not (cuda_available() if cuda is None else cuda):
        return "device", "device 'cuda' asked for, but torch.cuda.is_available() is False here"
    try:
        reason = precision_reason(case.impl, case.precision, case.device)
    except ValueError as exc:
        return "precision", str(exc)
    if reason:
        return "precision", reason
    if case.activation not in ACTIVATIONS:
        return "activation", (f"unknown activation {case.activation!r}; "
                              f"allowed: {', '.join(ACTIVATIONS)}")
    if blocks.get(case.block).heads and case.d_model % case.n_heads:
        return "d_model", (f"d_model={case.d_model} is not divisible by "
                           f"n_heads={case.n_heads}")
    for rules in (decl.rules, blocks.get(case.block).rules, sparse.rules):
        problem = rules(case) if rules is not None else None
        if problem:
            return problem
    n_cpus = available_cpus() if cpus is None else cpus
    if case.threads > n_cpus:
        return "threads", (f"threads={case.threads} is more than the {n_cpus} CPUs "
                           f"this machine gives the process")
    if case.causal and not blocks.get(case.block).causal:
        causal = ", ".join(b.name for b in blocks.BLOCKS.values() if b.causal)
        return "causal", f"causal masking is wired only for {causal}, not {case.block!r}"
    return None


def check(case: Case, *, cuda: bool | None = None, cpus: int | None = None) -> str | None:
    """The reason `case` cannot run on this machine, or None when it can."""
    problem = check_fields(case, cuda=cuda, cpus=cpus)
    return None if problem is None else problem[1]


def caveat(case: Case) -> str | None:
    """A warning for a case that runs but is likely a mistake (fp16 on CPU), else None."""
    if case.device == "cpu" and case.precision in CPU_SLOW_PRECISIONS:
        return (f"{case.precision} on CPU has no fast matmul kernels (about 1 GFLOP/s); "
                "expect the budget probe to skip large cases")
    return None
