"""How `numpy`, `torch` and `torch-sdpa` build the sub-quadratic attention blocks
(bench/blocks/sparse.py): one call of tfimpl.numpy.sparse_attention / tfimpl.torch.sparse_attention
on the block's q, k, v, and the price (bench.blocks.sparse.price) added to the record after the
measurements (`fn.record_extra`).

    block              numpy / torch                          torch-sdpa
    window_attention   sliding_window_attention (blockwise)   -
    global_attention   global_window_attention                -
    linear_attention   linear_attention                       -
    banded_attention   banded_attention, explicit             banded_attention through SDPA
                       (masked (B, H, n, n) scores)           with the (n, n) boolean mask

Tests: tests/impls/test_sparse_blocks.py.
"""

from __future__ import annotations

from bench import precision
from bench.blocks import sparse
from bench.case import Case
from bench.impls.base import Prepared
from bench.impls.common import (float64_output, make_inputs, model_config, torch_device,
                                torch_inputs, torch_precision, torch_runner)


def _call(module, case: Case, q, k, v, **kw):
    """One call of the case's block on q, k, v (module: tfimpl's numpy or torch sparse_attention)."""
    block, w, g, causal = case.block, case.window, case.global_tokens, case.causal
    if block == "window_attention":
        return lambda: module.sliding_window_attention(q, k, v, w, causal)
    if block == "global_attention":
        return lambda: module.global_window_attention(q, k, v, w, g, causal)
    if block == "linear_attention":
        return lambda: module.linear_attention(q, k, v, causal)
    return lambda: module.banded_attention(q, k, v, w, causal, g, **kw)


def _with_price(fn, case: Case):
    fn.record_extra = lambda: sparse.price(case, make_inputs(case))
    return fn


def build_numpy(case: Case) -> Prepared:
    from tfimpl.numpy import sparse_attention

    dtype = precision.cast_dtype(case.precision, "numpy")
    inputs = {name: a.astype(dtype) for name, a in make_inputs(case).items()}
    call = _call(sparse_attention, case, inputs["q"], inputs["k"], inputs["v"])
    last: list = [None]

    def fn():
        last[0] = call()
        return last[0]

    return Prepared(fn=_with_price(fn, case), output=lambda: float64_output(last[0]),
                    backend="numpy", device="cpu")


def build_torch(case: Case, attn_impl: str) -> Prepared:
    from tfimpl.torch import sparse_attention

    device = torch_device(case)
    dtype, _ = torch_precision(case)
    inputs = torch_inputs(case, dtype, device, requires_grad=False)
    kw = {"attn_impl": attn_impl} if case.block == "banded_attention" else {}
    call = _call(sparse_attention, case, inputs["q"], inputs["k"], inputs["v"], **kw)
    fn, output = torch_runner(case, call, [])
    return Prepared(fn=_with_price(fn, case), output=output, backend="torch", device=case.device)


def numpy_costs(case: Case, cfg) -> dict:
    """NumPy's peak of a sparse block (its BLAS reads the strided key windows without a copy)."""
    if case.block not in sparse.SPARSE_BLOCKS:
        return {}
    return {"peak_bytes_predicted": sparse.peak_bytes(case, model_config(case), "numpy")}


def sdpa_costs(case: Case, cfg) -> dict:
    """torch-sdpa's peak of the banded block: SDPA's dense peak plus the mask."""
    if case.block != "banded_attention":
        return {}
    return {"peak_bytes_predicted": sparse.peak_bytes(case, model_config(case), "torch", "sdpa")}


# Attention paths of the sparse blocks (the record's attn_path; none materialises (B, H, n, n)).
ATTENTION = {"window_attention": "window", "global_attention": "window+global",
             "linear_attention": "linear"}
