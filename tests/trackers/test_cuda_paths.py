"""The same precision code path on a GPU (skipped without CUDA; tests/conftest.py).

What must hold on any CUDA machine: fp32 means IEEE fp32 (TF32 off, whatever the process
default), tf32 really switches tensor-core rounding on (sm_80+) and the flag is restored,
autocast on CUDA computes matmuls low and softmax in fp32, the budget probe synchronises, and
a whole case through the runner times with CUDA events, reads max_memory_allocated and has
errors inside the tolerance model. Speed is measured by configs, never asserted here.
"""

import pytest

from bench import capabilities
import torch
import torch.nn.functional as F

from bench.trackers import accuracy as A
from bench import precision as P

pytestmark = pytest.mark.gpu

K = 1024


def _sm80() -> bool:
    return torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8


def _matmul_errors(name: str, allow_tf32_before: bool = False):
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(256, K, generator=gen, dtype=torch.float64)
    b = torch.randn(K, 256, generator=gen, dtype=torch.float64)
    matmul = torch.backends.cuda.matmul
    saved = matmul.allow_tf32
    try:
        matmul.allow_tf32 = allow_tf32_before
        with P.context(name, "cuda"):
            out = P.cast_input(a, name, "torch", "cuda") @ P.cast_input(b, name, "torch", "cuda")
        assert matmul.allow_tf32 is allow_tf32_before
    finally:
        matmul.allow_tf32 = saved
    return A.errors(out, a @ b)


def test_fp32_on_cuda_is_ieee_even_when_tf32_was_on():
    errs = _matmul_errors("fp32", allow_tf32_before=True)
    assert A.within_tolerance(errs, "fp32", K)[0], errs


@pytest.mark.skipif(not _sm80(), reason="TF32 needs compute capability 8.0+")
def test_tf32_rounds_like_tf32():
    errs = _matmul_errors("tf32")
    assert A.within_tolerance(errs, "tf32", K)[0], errs
    assert not A.within_tolerance(errs, "fp32", K)[0], errs     # it really used tensor cores


@pytest.mark.parametrize("name", ["fp16", "amp-fp16", "bf16", "amp-bf16"])
def test_low_precision_matmul_within_tolerance(name):
    if "bf16" in name and not _sm80():
        pytest.skip("bf16 needs compute capability 8.0+")
    assert capabilities.precision_reason("torch", name, "cuda") is None
    errs = _matmul_errors(name)
    assert A.within_tolerance(errs, name, K)[0], errs
    assert not A.within_tolerance(errs, "fp32", K)[0], errs


def test_cuda_autocast_runs_softmax_in_fp32():
    # why amp's bytes_per_element (2) is a lower bound for the attention weights on CUDA
    x = torch.randn(2, 4, 16, 16, device="cuda")
    with P.context("amp-fp16", "cuda"):
        scores = x @ x.transpose(-1, -2)
        assert scores.dtype == torch.float16
        assert torch.softmax(scores, dim=-1).dtype == torch.float32
        assert F.linear(x, torch.randn(8, 16, device="cuda")).dtype == torch.float16


def test_probe_synchronises_the_device():
    from bench.run import budget

    a = torch.randn(2048, 2048, device="cuda")
    syncs = []

    def sync():
        syncs.append(1)
        torch.cuda.synchronize()

    probe_s, reason = budget.probe(lambda: a @ a, budget_s=60, sync=sync, flops=2 * 2048 ** 3,
                                   device="cuda", precision="fp32")
    assert reason is None and probe_s > 0 and len(syncs) == 2


@pytest.mark.parametrize("name", ["fp32", "fp16", "amp-fp16", "bf16"])
def test_run_case_on_cuda(name):
    if "bf16" in name and not _sm80():
        pytest.skip("bf16 needs compute capability 8.0+")
    from bench.case import Case, Measure
    from bench.run.runner import run_case

    case = Case(impl="torch", block="encoder_layer", seq_len=256, d_model=256, n_heads=4,
                d_ff=1024, precision=name, device="cuda", threads=1)
    measure = Measure(warmup=1, min_repeats=3, min_time_s=0.01, max_time_s=1.0, budget_s=60)
    record = run_case(case, measure)
    assert record["status"] == "ok", record["status"]
    assert record["gpu_name"] and record["median_s"] > 0
    assert record["peak_method"] == "cuda-max-allocated" and record["peak_bytes"] > 0
    ok, bound = A.within_tolerance(record, name, case.d_ff, depth=10)
    assert ok, (record["rel_l2_err"], bound)
