"""The training tricks as case options (Case.checkpoint, Case.compile), for the torch impls.

checkpoint   each encoder layer under torch.utils.checkpoint (use_reentrant=False): the forward
             keeps only the layer inputs; the backward recomputes one layer's forward at a time.
             Predicted (tfimpl.costs.training): saved activations ∝ 1 layer instead of L, for
             about one more forward of work (FLOPs not counted twice: the analytic count is
             the model's, the time shows the recomputation).
compile      torch.compile(the forward) after torch._dynamo.reset(), so each case compiles
             afresh. The first call (trace + compile + one run) is made at build time and
             recorded as compile_s, never as a sample; during the timed calls recompilation is
             an error (torch._dynamo.config error_on_recompile), so a case that recompiles
             while timed is recorded `failed: ... recompil...` instead of timing the compiler.
"""

from __future__ import annotations

import time
from typing import Callable

from bench import modes
from bench.case import Case
from bench.impls.base import Unsupported
from tfimpl.params import subtree

CHECKPOINT_BLOCKS = ("encoder",)


def check(case: Case) -> None:
    """Unsupported when the case asks for a trick that does not apply."""
    if case.checkpoint:
        if case.block not in CHECKPOINT_BLOCKS:
            raise Unsupported(f"checkpoint applies to block {', '.join(CHECKPOINT_BLOCKS)} "
                              f"(a stack of layers), not {case.block}")
        if not modes.get(case.mode).grad:
            raise Unsupported("checkpoint needs a mode with a backward (forward+backward, train)")


def checkpointed_encoder(layers_module, p, x, cfg, attn_impl: str):
    """tfimpl.torch.layers.encoder with each layer under torch.utils.checkpoint."""
    from torch.utils.checkpoint import checkpoint

    for i in range(cfg.n_layers):
        layer_p = subtree(p, f"layers.{i}")
        x = checkpoint(lambda h, lp=layer_p: layers_module.encoder_layer(lp, h, cfg, attn_impl=attn_impl),
                       x, use_reentrant=False)
    if cfg.final_norm:
        x = layers_module._norm(p, "norm", x, cfg)
    return x


def compiled(call: Callable) -> Callable:
    """torch.compile(call) on a fresh dynamo state; raises Unsupported when it cannot compile."""
    import torch
    import torch._inductor.config

    torch._dynamo.reset()
    # compile in this process: a pool of compile workers would stay behind, busy, beside the
    # timed calls of this case and the next ones
    torch._inductor.config.compile_threads = 1
    return torch.compile(call)


def reset_compiler() -> None:
    """Drop the compiled graphs and their guards (a compiled case's teardown)."""
    import torch

    torch._dynamo.reset()


def apply(case: Case, call: Callable, layers_module, p, inputs, cfg, attn_impl: str):
    """(the call with the case's tricks, compile_first(fn, make_raw_fn) -> (fn, compile_s,
    flops_fn)). `call.raw` is the forward without torch.compile (FLOPs are counted on it)."""
    check(case)
    if case.checkpoint:
        x = inputs["x"]
        call = lambda: checkpointed_encoder(layers_module, p, x, cfg, attn_impl)   # noqa: E731
    raw = call
    if case.compile:
        call = compiled(raw)

        def compile_first(fn, make_raw_fn):
            guarded, compile_s = first_call_then_no_recompile(fn)
            # no saved-tensor bytes: the hooks would re-trace the compiled graph (fake tensors),
            # and what a compiled graph saves is the compiler's choice, not the model's
            return guarded, compile_s, make_raw_fn()
    else:
        def compile_first(fn, make_raw_fn):
            return fn, None, None
    call.raw = raw                     # the forward without torch.compile (FLOPs counted on it)
    return call, compile_first


def first_call_then_no_recompile(fn: Callable) -> tuple[Callable, float]:
    """(fn that errors on recompilation, seconds of the first call: trace + compile + run)."""
    import torch

    start = time.perf_counter()
    try:
        fn()
    except Exception as exc:           # no compiler toolchain, an unsupported op, ...
        raise Unsupported(f"torch.compile failed here: {type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:200]}") from None
    compile_s = time.perf_counter() - start

    def guarded():
        with torch._dynamo.config.patch(error_on_recompile=True):
            return fn()
    return guarded, compile_s
