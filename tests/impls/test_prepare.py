"""bench.impls.prepare: every impl builds the same seeded computation, so their fp64 outputs agree."""

import dataclasses

import numpy as np
import pytest

from bench import capabilities
from bench.impls import prepare as registry
from bench import blocks, impls
from bench.case import Case
from bench.impls.prepare import Unsupported, prepare

BASE = Case(batch=2, seq_len=12, d_model=16, n_heads=2, d_ff=32, layers=2, vocab_size=50,
            precision="fp64", threads=1)


def _output(case: Case) -> np.ndarray:
    prepared = prepare(case)
    prepared.fn()
    out = prepared.output()
    assert out.dtype == np.float64
    return out


def test_supports_is_the_capability_table():
    for impl in impls.names():
        for block in blocks.names():
            assert registry.supports(impl, block) == capabilities.supports(impl, block)


@pytest.mark.parametrize("block, impls", [
    ("attention", ["numpy", "torch", "torch-sdpa", "torch-nn"]),
    ("mha", ["numpy", "torch", "torch-sdpa", "torch-nn"]),
    ("ffn", ["numpy", "torch", "torch-nn"]),
    ("encoder_layer", ["numpy", "torch", "torch-sdpa", "torch-nn", "hf-bert"]),
    ("encoder", ["numpy", "torch", "torch-nn", "hf-bert"]),
    ("model", ["numpy", "torch", "hf-bert"]),
])
def test_all_impls_compute_the_same_function_at_fp64(block, impls):
    """Same seeded weights and inputs in every impl: fp64 outputs agree to rounding."""
    outputs = {impl: _output(dataclasses.replace(BASE, impl=impl, block=block)) for impl in impls}
    reference = outputs[impls[0]]
    for impl, out in outputs.items():
        np.testing.assert_allclose(out, reference, rtol=0, atol=1e-10, err_msg=impl)


def test_inputs_and_weights_are_seeded():
    case = dataclasses.replace(BASE, impl="torch", block="mha")
    np.testing.assert_array_equal(_output(case), _output(case))
    other = _output(dataclasses.replace(case, seed=1))
    assert not np.allclose(other, _output(case))


def test_make_inputs_shapes():
    assert registry.make_inputs(dataclasses.replace(BASE, block="attention"))["q"].shape == \
        (2, 2, 12, 8)                                                       # (B, H, T, d_k)
    assert registry.make_inputs(dataclasses.replace(BASE, block="ffn"))["x"].shape == (2, 12, 16)
    ids = registry.make_inputs(dataclasses.replace(BASE, block="model"))["input_ids"]
    assert ids.shape == (2, 12) and ids.dtype == np.int64 and ids.max() < BASE.vocab_size


def test_attention_weights_of_the_explicit_paths_only():
    for impl, expected in (("numpy", True), ("torch", True), ("torch-sdpa", False),
                           ("torch-nn", False)):
        prepared = prepare(dataclasses.replace(BASE, impl=impl, block="attention"))
        weights = prepared.attention_weights()
        assert (weights is not None) == expected, impl
        if expected:
            assert weights.shape == (2, 2, 12, 12)                          # (B, H, T, T)
            np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-12)


def test_bf16_output_comes_back_as_float64_near_the_reference():
    case = dataclasses.replace(BASE, impl="torch", block="ffn")
    low = _output(dataclasses.replace(case, precision="bf16"))
    ref = _output(case)
    rel = np.linalg.norm(low - ref) / np.linalg.norm(ref)
    assert 1e-4 < rel < 5e-2                          # bf16 rounding: visible, small


@pytest.mark.parametrize("case, match", [
    (dataclasses.replace(BASE, impl="torch-nn", block="ffn", mode="train"), "mode"),
    (dataclasses.replace(BASE, impl="numpy", block="ffn", precision="bf16"), "NumPy"),
    (dataclasses.replace(BASE, impl="hf-bert", block="mha"), "cannot run block"),
    (dataclasses.replace(BASE, impl="hf-bert", block="encoder_layer", norm_first=True),
     "post-norm"),
    (dataclasses.replace(BASE, impl="torch", block="ffn", causal=True), "causal"),
])
def test_unsupported_combinations_say_why(case, match):
    with pytest.raises(Unsupported, match=match):
        prepare(case)


@pytest.mark.parametrize("impl, block", [("torch", "encoder_layer"), ("torch", "model"),
                                         ("hf-bert", "model")])
def test_forward_backward_counts_three_times_the_forward_matmuls(impl, block):
    """Weights AND inputs require grad, and the loss sums every output (the model's pooled
    output too), so backward computes both operand grads of every matmul: 2x forward."""
    from bench.trackers.flops import count_flops
    from bench.run.runner import predict

    case = dataclasses.replace(BASE, impl=impl, block=block, precision="fp32",
                               mode="forward+backward")
    prepared = prepare(case)
    forward = predict(dataclasses.replace(case, mode="forward"))["flops_analytic"]
    assert count_flops(prepared.flops_fn) == predict(case)["flops_analytic"] == 3 * forward
    prepared.fn()                                      # grads dropped after each call: reusable
    assert prepared.output().shape == (2, 12, 16)


def _raw_flop_count(fn) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def test_torch_nn_fast_path_timed_on_counted_off():
    """fn (timed) takes torch.nn's eval fast path, which plain FlopCounterMode sees as 0 FLOPs;
    flops_fn runs the same module with the fast path off, so the matmuls are dispatched one by
    one (bench.trackers.flops adds the CPU sdpa kernel, which plain FlopCounterMode also misses)."""
    from bench.trackers.flops import count_flops
    from bench.run.runner import predict

    case = dataclasses.replace(BASE, impl="torch-nn", block="encoder_layer", precision="fp32")
    prepared = prepare(case)
    analytic = predict(case)["flops_analytic"]
    assert prepared.fastpath is True
    assert _raw_flop_count(prepared.fn) == 0                 # the fused fast-path op
    assert 0 < _raw_flop_count(prepared.flops_fn) < analytic  # all but the CPU sdpa kernel
    assert count_flops(prepared.flops_fn) == analytic
    backward = prepare(dataclasses.replace(case, mode="forward+backward"))
    assert backward.fastpath is None                         # no fast path with autograd on
