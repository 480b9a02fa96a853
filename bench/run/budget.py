"""A per-case time budget: slow paths become findings ("skipped: estimated ..."), not hangs.

A single call cannot be interrupted in-process on a CPU (no watchdog here, by design: killing a
case is process isolation's job, bench.run.executors.process). So the decision is made before the
call when it can be, and from one timed call when it must be:

1. Analytic gate, before calling anything: one call is estimated as
   flops / pessimistic_gflops(device, precision). A deliberately low throughput per (device,
   precision) makes this an over-estimate. The fp16-on-CPU trap is the reason it exists: with no
   fp16 matmul kernel a CPU runs fp16 at 0.4-3 GFLOP/s, 100x below fp32, and one large call
   would stall the sweep. If even one call, so estimated, exceeds the budget, the case is
   skipped without calling fn. (Only one call is gated on the floor: gating the whole case on
   it would skip honest fp32 cases that the floor's 10x pessimism makes look long.)
2. Probe: otherwise fn is called once, timed, and the whole case is extrapolated from that
   time with `estimate_case_seconds` (the probe, warm-up, timed and extra calls).

The skip reason is the record's status, exactly:
    "skipped: estimated N s > budget M s (<why>)"
"""

from __future__ import annotations

import math
import time
from typing import Callable

from bench.case import Measure

# Pessimistic matmul throughput (GFLOP/s) per (device, precision): a floor, not a forecast.
# CPU: this machine's measured peaks are ~200 fp32, ~100 fp64 (MKL/OpenBLAS); bf16 ranges from
# ~2x fp32 (AVX-512 BF16 / AMX) down to ~0.25x fp32 (no bf16 instructions: ~50 GFLOP/s measured
# on an AVX-512 Xeon without avx512_bf16); fp16 has no fast CPU matmul (0.4-6 GFLOP/s measured;
# a 2048^3 fp16 matmul took 41 s). Floors sit ~10x under the slowest of these.
# int8 (dynamic quantization, CPU only): fbgemm's int8 Linear measured ~65 GOP/s on 2 AVX2
# cores, 2.4x fp32; its floor is fp32's (the attention matmuls stay fp32).
# CUDA: even an old GPU does fp32 above ~5 TFLOP/s; fp64 on consumer GPUs runs at 1/64 rate.
PESSIMISTIC_GFLOPS: dict[tuple[str, str], float] = {
    ("cpu", "fp64"): 10.0,
    ("cpu", "fp32"): 10.0,
    ("cpu", "bf16"): 5.0,
    ("cpu", "amp-bf16"): 5.0,
    ("cpu", "fp16"): 0.3,
    ("cpu", "amp-fp16"): 0.3,
    ("cpu", "int8"): 10.0,
    ("cuda", "fp64"): 50.0,
    ("cuda", "fp32"): 500.0,
    ("cuda", "tf32"): 500.0,
    ("cuda", "bf16"): 500.0,
    ("cuda", "amp-bf16"): 500.0,
    ("cuda", "fp16"): 500.0,
    ("cuda", "amp-fp16"): 500.0,
}


def pessimistic_gflops(device: str, precision: str) -> float:
    """The throughput floor for (device, precision); ValueError naming the allowed pairs."""
    try:
        return PESSIMISTIC_GFLOPS[(device, precision)]
    except KeyError:
        allowed = ", ".join(f"{d}/{p}" for d, p in PESSIMISTIC_GFLOPS)
        raise ValueError(f"device/precision: no throughput floor for {device}/{precision}; "
                         f"known: {allowed}") from None


def timed_repeats(call_s: float, measure: Measure) -> int:
    """Timed calls bench.trackers.timer makes for a function taking `call_s` per call.

    Until BOTH min_repeats calls and min_time_s are reached, or EITHER max_repeats calls or
    max_time_s is hit; at least one.
    """
    if call_s <= 0:
        return max(1, min(measure.min_repeats, measure.max_repeats))
    wanted = max(measure.min_repeats, math.ceil(measure.min_time_s / call_s))
    time_cap = max(1, math.ceil(measure.max_time_s / call_s))
    return max(1, min(wanted, measure.max_repeats, time_cap))


def extra_calls(measure: Measure, counts_flops: bool = True) -> int:
    """Calls beyond the probe, warm-up and timing, as bench.run.runner makes them.

    One flop-counting call (torch only), one memory call (the exact tracker runs inside the
    RSS sampler) and one fp64 reference call for accuracy (the output compared is the last
    timed call's). The reference is counted at this precision's speed: an over-estimate for
    slow precisions, close for fp32/bf16.
    """
    return (int(measure.count_flops and counts_flops) + int(measure.measure_memory)
            + int(measure.accuracy))


def estimate_case_seconds(probe_s: float, measure: Measure, counts_flops: bool = True) -> float:
    """Seconds the whole case takes if one call takes `probe_s`.

    (1 probe + (warmup - 1) + timed_repeats + extra_calls) * probe_s: the probe is the first
    warm-up call.
    """
    if probe_s < 0 or not math.isfinite(probe_s):
        raise ValueError(f"probe_s: expected a finite time >= 0, got {probe_s!r}")
    calls = 1 + max(0, measure.warmup - 1) + timed_repeats(probe_s, measure) \
        + extra_calls(measure, counts_flops)
    return calls * probe_s


def skip_reason(estimate_s: float, budget_s: float, why: str) -> str:
    """The record status: "skipped: estimated N s > budget M s (<why>)"."""
    return f"skipped: estimated {estimate_s:.3g} s > budget {budget_s:.3g} s ({why})"


def analytic_call_seconds(flops: int | float, device: str, precision: str) -> float:
    """Pessimistic seconds for one call of `flops` floating-point operations."""
    return flops / (pessimistic_gflops(device, precision) * 1e9)


def probe(fn: Callable[[], object], budget_s: float, clock: Callable[[], float] = time.perf_counter,
          *, measure: Measure = Measure(), flops: int | float | None = None,
          device: str = "cpu", precision: str = "fp32", counts_flops: bool = True,
          sync: Callable[[], None] | None = None) -> tuple[float | None, str | None]:
    """(probe_s, skip_reason): time one call of `fn`, or skip it (module docstring).

    probe_s is None when the analytic gate skipped the case without calling fn; skip_reason is
    None when the case fits the budget. `sync` (torch.cuda.synchronize on a GPU) runs before
    and after the call so the host clock sees the device's work.
    """
    if not budget_s > 0:
        raise ValueError(f"budget_s: expected a positive number of seconds, got {budget_s!r}")
    if flops is not None:
        call_s = analytic_call_seconds(flops, device, precision)
        estimate = estimate_case_seconds(call_s, measure, counts_flops)
        if call_s > budget_s:
            floor = pessimistic_gflops(device, precision)
            why = (f"analytic: {flops / 1e9:.3g} GFLOP per call at <= {floor:g} GFLOP/s for "
                   f"{precision} on {device}; not run")
            return None, skip_reason(estimate, budget_s, why)
    if sync is not None:
        sync()
    start = clock()
    fn()
    if sync is not None:
        sync()
    probe_s = clock() - start
    estimate = estimate_case_seconds(probe_s, measure, counts_flops)
    if estimate > budget_s:
        calls = estimate / probe_s if probe_s > 0 else math.nan
        why = f"probe: one call took {probe_s:.3g} s, the case needs ~{calls:.0f} calls"
        return probe_s, skip_reason(estimate, budget_s, why)
    return probe_s, None
