"""What an implementation is: one `Impl` declaration, and the `Prepared` callable it builds.

An implementation declares, once, everything the harness needs to know about it:

    name            the `impl:` value a config uses
    backend         whose runtime it runs on: "numpy" | "torch" | "tensorflow" | "onnxruntime". This decides
                    which thread pool gets the case's threads, which memory tracker measures it
                    (bench.trackers.memory), whether FlopCounterMode counts it (torch), and which
                    machine peak bounds it (bench.machine.peak)
    blocks, precisions, modes, devices
                    what it can run (bench.capabilities checks a case against them)
    attention       how attention is computed, in tfimpl.costs' memory-model terms:
                    "explicit" (tfimpl's path: one (B, H, T, T) matrix, soft-maxed in place),
                    "library" (a library's materialised path: scores and probabilities at once),
                    "sdpa" (a fused kernel: the matrix never exists); or a per-block mapping.
                    Whether the matrix exists (`materialises`) follows from it.
    exposes_weights the attention probabilities can be read back for the accuracy check
    build(case)     -> Prepared: weights and inputs made outside the timed region
    rules(case)     optional extra rules -> (field, reason) | None (e.g. BERT is post-norm)
    requires        modules that must import for it to run, with `install` saying how
    costs(case, cfg) optional own cost model for an implementation whose memory or FLOPs
                    tfimpl.costs does not describe (a user's kernel): a dict with any of
                    "flops_analytic", "flops_by_component", "peak_bytes_predicted",
                    "working_set_bytes"; what it leaves out comes from tfimpl.costs

A built-in implementation is one module under bench/impls/ defining `IMPL = Impl(...)` and one
line in bench/impls/__init__.py's BUILTIN; a user's lives anywhere importable and is named in a
config as `impl: "package.module:ATTRIBUTE"` or through a `tfbench.impls` entry point
(docs/PLUGINS.md).

Tests: tests/impls/test_plugins.py, tests/impls/test_prepare.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from bench import blocks

# attention paths of tfimpl.costs' memory model, and whether each holds the (B, H, T, T) matrix
ATTENTION_PATHS = {"explicit": True, "library": True, "sdpa": False}


class Unsupported(Exception):
    """The case asks for a combination an implementation does not have (recorded `skipped`)."""


@dataclass
class Prepared:
    """A case made ready: call `fn()` to run it once.

    output(): float64 NumPy copy of the last call's output (hidden states for the model).
    attention_weights(): the (B, H, T, T) attention probabilities as computed (NumPy array or CPU
        tensor, at the case's precision; bench.trackers.accuracy widens them), or None when the
        implementation does not expose them (fused kernels, torch.nn, HF, FFN).
    flops_fn: what FLOP counting should call (fn, or fn with torch.nn's fast path off).
    fastpath: True when torch.nn's eval fast path may run in `fn` (timing), None if n/a.
    evaluate: one call giving (output as float64 NumPy, attention weights) where the
        implementation can return both at once; None: run fn(), then output() and
        attention_weights().
    count_flops: the backend's own FLOP count of one call (TensorFlow: bench.trackers.tf_runtime);
        returning None leaves the counted FLOPs null (torch-flex: no counter sees its kernel).
    compile_s: seconds of the first (tracing/compiling) call, made in build, not a sample.
    weight_bytes: the Linear weights' bytes as stored (bench.impls.quantize.linear_weight_bytes).
    graph_optimization: the runtime's graph optimisation level (ONNX Runtime), else None.
    """

    fn: Callable[[], Any]
    output: Callable[[], np.ndarray]
    backend: str
    device: str
    attention_weights: Callable[[], np.ndarray | None] = lambda: None
    flops_fn: Callable[[], Any] | None = None
    fastpath: bool | None = None
    teardown: Callable[[], None] = lambda: None
    evaluate: Callable[[], tuple] | None = None
    # a backend's own FLOP count of one call, where torch's FlopCounterMode does not apply
    count_flops: Callable[[], int] | None = None
    # wall time of the first call of a traced/compiled fn (trace + compile + one run), kept
    # apart from the samples; None when nothing is traced
    compile_s: float | None = None
    # bytes of the Linear weight matrices as stored (int8 + scales + zero points when quantized:
    # bench.impls.quantize), None when the implementation does not say
    weight_bytes: int | None = None
    # a runtime's graph optimisation setting (ONNX Runtime: "ORT_ENABLE_ALL"), None: none
    graph_optimization: str | None = None

    def __post_init__(self):
        if self.flops_fn is None:
            self.flops_fn = self.fn

    def outputs(self, called: bool = True) -> tuple:
        """(output, attention weights or None) for the accuracy check.

        called: fn() has run already (its last output is reused); else one call is made.
        """
        if self.evaluate is not None:
            return self.evaluate()
        if not called:
            self.fn()
        return self.output(), self.attention_weights()


@dataclass(frozen=True)
class Impl:
    name: str
    description: str
    backend: str
    blocks: tuple[str, ...]
    precisions: tuple[str, ...]
    build: Callable[..., Prepared]
    modes: tuple[str, ...] = ("forward",)
    devices: tuple[str, ...] = ("cpu",)
    attention: str | Mapping[str, str] = "explicit"
    exposes_weights: bool = False
    rules: Callable[..., tuple[str, str] | None] | None = None
    requires: tuple[str, ...] = ()
    install: str = ""
    costs: Callable[..., dict] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def attention_path(self, block: str) -> str | None:
        """How this implementation computes `block`'s attention (None for the FFN)."""
        if not blocks.get(block).attention:
            return None
        if isinstance(self.attention, str):
            return self.attention
        return self.attention.get(block, self.attention.get("*"))

    def materialises(self, block: str) -> bool | None:
        """True when the (B, H, T, T) matrix exists in memory, False for a fused kernel, None
        when the block has no attention or the path is not one tfimpl.costs knows."""
        return ATTENTION_PATHS.get(self.attention_path(block))

    def missing_requirement(self) -> str | None:
        """The first module of `requires` that does not import here, or None."""
        import importlib.util

        for module in self.requires:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return module
        return None
