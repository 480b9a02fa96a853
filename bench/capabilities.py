"""What can run: the one table of impl -> blocks, precisions, modes and devices.

The config loader rejects a case this table says cannot run (exit 2, before anything is
measured), the registry builds only what it lists, and the precision module imports the
precision columns. Nothing here imports torch at module level; `check` asks torch about CUDA
only for a case that wants `device: cuda`.

    impl        blocks                                              precisions      modes
    numpy       attention mha ffn encoder_layer encoder model      fp64 fp32       forward
    torch       all six                                             all six         both
    torch-sdpa  all six (attention through F.scaled_dot_product_attention)
    torch-nn    attention (F.scaled_dot_product_attention under the MATH backend: torch's own
                reference), mha (nn.MultiheadAttention), ffn (Linear-act-Linear),
                encoder_layer (nn.TransformerEncoderLayer), encoder (nn.TransformerEncoder)
    hf-bert     encoder_layer (BertLayer), encoder (BertEncoder), model (BertModel); post-norm,
                not causal
"""

from __future__ import annotations

import os

from bench.case import ACTIVATIONS, BLOCKS, MODES, PRECISIONS, Case

TORCH_IMPLS = ("torch", "torch-sdpa", "torch-nn", "hf-bert")

IMPL_BLOCKS: dict[str, tuple[str, ...]] = {
    "numpy": BLOCKS,
    "torch": BLOCKS,
    "torch-sdpa": BLOCKS,
    "torch-nn": ("attention", "mha", "ffn", "encoder_layer", "encoder"),
    "hf-bert": ("encoder_layer", "encoder", "model"),
}

IMPL_PRECISIONS: dict[str, tuple[str, ...]] = {
    "numpy": ("fp64", "fp32"),              # NumPy has no bfloat16 and no autocast
    "torch": PRECISIONS,
    "torch-sdpa": PRECISIONS,
    "torch-nn": PRECISIONS,
    "hf-bert": PRECISIONS,
}

IMPL_MODES: dict[str, tuple[str, ...]] = {
    "numpy": ("forward",),                  # no autograd
    "torch": MODES,
    "torch-sdpa": MODES,
    "torch-nn": MODES,
    "hf-bert": MODES,
}

IMPL_DEVICES: dict[str, tuple[str, ...]] = {
    "numpy": ("cpu",),
    "torch": ("cpu", "cuda"),
    "torch-sdpa": ("cpu", "cuda"),
    "torch-nn": ("cpu", "cuda"),
    "hf-bert": ("cpu", "cuda"),
}

IMPL_BACKEND: dict[str, str] = {impl: ("numpy" if impl == "numpy" else "torch")
                                for impl in IMPL_BLOCKS}

# Blocks with a causal mask wired in (the others would silently ignore `causal: true`).
CAUSAL_BLOCKS = ("attention", "mha")

# Precisions that run, but very slowly, on a CPU (no fp16 matmul kernels: ~1 GFLOP/s).
CPU_SLOW_PRECISIONS = ("fp16",)


def supports(impl: str, block: str) -> bool:
    """True when `impl` has an implementation of `block`."""
    return block in IMPL_BLOCKS.get(impl, ())


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


def check_fields(case: Case, *, cuda: bool | None = None,
                 cpus: int | None = None) -> tuple[str, str] | None:
    """(field, reason) for the first reason `case` cannot run, or None when it can.

    `cuda` and `cpus` default to asking this machine (cuda only when the case wants it).
    """
    impl, block = case.impl, case.block
    if impl not in IMPL_BLOCKS:
        return "impl", f"unknown impl {impl!r}; allowed: {', '.join(IMPL_BLOCKS)}"
    if not supports(impl, block):
        return "impl", (f"impl {impl!r} cannot run block {block!r} "
                        f"(it runs: {', '.join(IMPL_BLOCKS[impl])})")
    if case.precision not in IMPL_PRECISIONS[impl]:
        return "precision", (f"impl {impl!r} cannot run precision {case.precision!r} "
                             f"(it runs: {', '.join(IMPL_PRECISIONS[impl])})")
    if case.mode not in IMPL_MODES[impl]:
        return "mode", (f"impl {impl!r} cannot run mode {case.mode!r} "
                        f"(it runs: {', '.join(IMPL_MODES[impl])})")
    if case.device not in IMPL_DEVICES[impl]:
        return "device", (f"impl {impl!r} cannot run on device {case.device!r} "
                          f"(it runs on: {', '.join(IMPL_DEVICES[impl])})")
    if case.device == "cuda" and not (cuda_available() if cuda is None else cuda):
        return "device", "device 'cuda' asked for, but torch.cuda.is_available() is False here"
    device_reason = _precision_on_device(case)
    if device_reason:
        return "precision", device_reason
    if case.activation not in ACTIVATIONS:
        return "activation", (f"unknown activation {case.activation!r}; "
                              f"allowed: {', '.join(ACTIVATIONS)}")
    if case.d_model % case.n_heads:
        return "d_model", (f"d_model={case.d_model} is not divisible by "
                           f"n_heads={case.n_heads}")
    if impl == "hf-bert" and case.norm_first:
        return "norm_first", "hf-bert (BERT) is post-norm only; norm_first must be false"
    if impl == "hf-bert" and case.causal:
        return "causal", "hf-bert runs BERT's bidirectional encoder; causal must be false"
    n_cpus = available_cpus() if cpus is None else cpus
    if case.threads > n_cpus:
        return "threads", (f"threads={case.threads} is more than the {n_cpus} CPUs "
                           f"this machine gives the process")
    if case.causal and block not in CAUSAL_BLOCKS:
        return "causal", (f"causal masking is wired only for {', '.join(CAUSAL_BLOCKS)}, "
                          f"not {block!r}")
    return None


def _precision_on_device(case: Case) -> str | None:
    """Precision x device facts (TF32 is CUDA only, bf16 needs compute capability 8.0+):
    bench.precision decides them (it asks CUDA only for a CUDA case)."""
    from bench import precision

    return precision.supported(case.impl, case.precision, case.device)


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
