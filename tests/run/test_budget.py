"""bench.run.budget: the case-time estimate (hand-computed) and the probe under a fake clock."""

import re

import pytest

from bench.run import budget as B
from bench.case import Measure

STATUS = re.compile(r"^skipped: estimated (\S+) s > budget (\S+) s \((.+)\)$")


class FakeClock:
    """A clock that only moves when a fake function says so."""

    def __init__(self):
        self.now = 128.0                                 # a power of two: exact differences

    def __call__(self):
        return self.now


def fake_fn(clock, seconds, calls):
    def fn():
        calls.append(clock.now)
        clock.now += seconds
    return fn


def never_call():
    raise AssertionError("the analytic gate must skip without calling fn")


M = Measure(warmup=2, min_repeats=5, min_time_s=0.2, max_repeats=1000, max_time_s=10.0,
            count_flops=True, measure_memory=True, accuracy=True)


@pytest.mark.parametrize("call_s, expected", [
    (0.01, 20),          # min_time_s / call = 20 > min_repeats
    (0.1, 5),            # min_repeats wins
    (5.0, 2),            # max_time_s = 10 s caps it below min_repeats
    (20.0, 1),           # always at least one sample
    (1e-5, 1000),        # max_repeats caps it
    (0.0, 5),
])
def test_timed_repeats(call_s, expected):
    assert B.timed_repeats(call_s, M) == expected


def test_extra_calls():
    assert B.extra_calls(M) == 3                         # flops + memory (RSS inside) + fp64 ref
    assert B.extra_calls(M, counts_flops=False) == 2     # numpy: nothing to count
    assert B.extra_calls(Measure(count_flops=False, measure_memory=False, accuracy=False)) == 0


def test_estimate_case_seconds_by_hand():
    # 1 probe (the first warm-up call) + 1 more warm-up + timed + 3 extra
    assert B.estimate_case_seconds(0.1, M) == pytest.approx((1 + 1 + 5 + 3) * 0.1)
    assert B.estimate_case_seconds(0.01, M) == pytest.approx((1 + 1 + 20 + 3) * 0.01)
    assert B.estimate_case_seconds(5.0, M, counts_flops=False) == pytest.approx(
        (1 + 1 + 2 + 2) * 5)
    with pytest.raises(ValueError, match="probe_s"):
        B.estimate_case_seconds(-1.0, M)


def test_probe_within_budget_times_one_call():
    clock, calls = FakeClock(), []
    probe_s, reason = B.probe(fake_fn(clock, 0.5, calls), budget_s=60, clock=clock, measure=M)
    assert (probe_s, reason) == (0.5, None) and len(calls) == 1


def test_probe_over_budget_skips_with_the_estimate():
    clock, calls = FakeClock(), []
    probe_s, reason = B.probe(fake_fn(clock, 2.0, calls), budget_s=10, clock=clock, measure=M)
    assert probe_s == 2.0 and len(calls) == 1
    estimate, budget, why = STATUS.match(reason).groups()
    assert float(estimate) == (1 + 1 + 5 + 3) * 2.0 and float(budget) == 10
    assert why.startswith("probe: one call took 2 s")


def test_analytic_gate_skips_fp16_on_cpu_without_calling():
    # one encoder layer at d=768, T=512 is ~40 GFLOP: at the 0.3 GFLOP/s floor, minutes
    probe_s, reason = B.probe(never_call, budget_s=20, clock=FakeClock(), measure=M,
                              flops=40e9, device="cpu", precision="fp16")
    assert probe_s is None
    estimate, budget, why = STATUS.match(reason).groups()
    assert float(estimate) == pytest.approx(B.estimate_case_seconds(40e9 / 0.3e9, M), rel=1e-2)
    assert float(budget) == 20
    assert "40 GFLOP" in why and "fp16 on cpu" in why and "not run" in why


def test_analytic_gate_lets_fp32_through_to_the_probe():
    clock, calls = FakeClock(), []
    probe_s, reason = B.probe(fake_fn(clock, 0.2, calls), budget_s=20, clock=clock, measure=M,
                              flops=40e9, device="cpu", precision="fp32")
    assert probe_s == pytest.approx(0.2) and reason is None and len(calls) == 1


def test_small_fp16_case_is_probed_then_judged_on_its_time():
    clock, calls = FakeClock(), []
    probe_s, reason = B.probe(fake_fn(clock, 3.0, calls), budget_s=20, clock=clock, measure=M,
                              flops=1e9, device="cpu", precision="fp16")
    assert probe_s == 3.0 and len(calls) == 1 and reason.startswith("skipped: estimated 27 s")  # (1 + 1 + 4 + 3) calls


def test_sync_brackets_the_probe():
    clock, events = FakeClock(), []

    def fn():
        events.append("fn")
        clock.now += 1.0

    B.probe(fn, budget_s=100, clock=clock, measure=M, sync=lambda: events.append("sync"))
    assert events == ["sync", "fn", "sync"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="budget_s"):
        B.probe(never_call, budget_s=0, clock=FakeClock())
    with pytest.raises(ValueError, match="cpu/tf32"):
        B.probe(never_call, budget_s=10, clock=FakeClock(), flops=1e9, precision="tf32")


def test_every_cpu_precision_has_a_floor():
    from bench import precision as P

    for name in P.NAMES:
        device = "cuda" if P.get(name).cuda_only else "cpu"
        assert B.pessimistic_gflops(device, name) > 0
        if P.get(name).weights != "int8":
            assert B.pessimistic_gflops("cuda", name) > 0     # int8 is CPU only: no CUDA floor
