"""`torch-flex`: the window blocks (window_attention, global_attention) through torch's
FlexAttention, compiled with torch.compile (tfimpl.torch.sparse_attention.flex_window_attention).

The first call compiles (it is timed apart: the record's compile_s, not a sample); the block
mask is made once in build. FLOPs: the block's analytic count (tfimpl.costs.sparse); nothing
counts them (flops_counted null): FlexAttention compiles itself even when called eagerly, and
torch.compile refuses to run under FlopCounterMode's dispatch mode ("non-infra torch dispatch
mode present"). The kernel's own work is the (128, 128) tiles its block mask keeps. Where
FlexAttention does not import or compile on this machine, the case is recorded skipped with
torch's reason.

Tests: tests/impls/test_sparse_blocks.py.
"""

from __future__ import annotations

import time

from bench.case import Case
from bench.impls.base import Impl, Prepared, Unsupported
from bench.impls.common import torch_device, torch_inputs, torch_precision, torch_runner


def build(case: Case) -> Prepared:
    import torch

    from tfimpl.torch.sparse_attention import flex_mask_mod, flex_window_attention

    try:
        from torch.nn.attention.flex_attention import create_block_mask, flex_attention
    except ImportError as exc:
        raise Unsupported(f"torch {torch.__version__} has no FlexAttention ({exc})") from None
    device = torch_device(case)
    dtype, _ = torch_precision(case)
    x = torch_inputs(case, dtype, device, requires_grad=False)
    g = case.global_tokens if case.block == "global_attention" else 0
    mask = create_block_mask(flex_mask_mod(case.window, case.causal, g), None, None,
                             case.seq_len, case.seq_len, device=device)
    kernel = torch.compile(flex_attention)

    def call():
        return flex_window_attention(x["q"], x["k"], x["v"], case.window, case.causal, g,
                                     kernel=kernel, block_mask=mask)

    start = time.perf_counter()
    try:
        with torch.inference_mode():
            call()
    except Exception as exc:                      # the compiler's own reason, in one line
        raise Unsupported(f"FlexAttention does not compile here: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:200]}") from None
    compile_s = time.perf_counter() - start
    fn, output = torch_runner(case, call, [])
    return Prepared(fn=fn, output=output, backend="torch", device=case.device,
                    compile_s=compile_s, count_flops=lambda: None)


IMPL = Impl(
    name="torch-flex", description="the window blocks through torch.compile'd FlexAttention",
    backend="torch", blocks=("window_attention", "global_attention"),
    precisions=("fp64", "fp32", "bf16"), modes=("forward",), devices=("cpu", "cuda"),
    attention="flex", exposes_weights=False, build=build)
