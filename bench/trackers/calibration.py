"""The calibration probe: a small fixed kernel timed beside every case, so a drift of the machine cancels.

Two runs of the same commit on the same machine minutes apart can differ by 20% in every case
(another tenant on the caches and the memory bus, the host's clocks): no per-case statistic
tells that from a regression. Duet benchmarking (Bulej et al. 2020) and asv's interleaved
rounds time a fixed reference beside the code under test, so that both see the same machine
state. Here the reference is one of `bench noise`'s probes, chosen per backend:

    torch and tensorflow cases   torch ffn T=32 (19 MB of weights from the LLC per call), on
                                 the case's device (CUDA: synchronised around each call)
    numpy cases                  numpy ffn T=32 (the same through OpenBLAS)

with the case's threads. `around(case, timed)` calls it CALLS times right before and right
after the case's timing (the first call of each group untimed: the case evicted the probe's
weights) and adds `calib_s` (the fastest of the timed calls, seconds), `calib_probe` (its name)
and `calib_samples_s` (all of them) to the timing columns. The fastest, not the median: a
drift of the machine lifts every call, while another process sharing a core lifts some calls
only (on a 2-core VM with a load of 2, one probe's six calls read 7.0-7.4 ms and 15-16 ms
alike; their minimum agreed within 3% from case to case, their median moved by 2x). A few ms per case; prepared probes are kept for the
process (seeded weights: the same probe in every run). A probe that cannot run leaves the
three fields null and never fails the case. `bench compare` divides each case's ratio B/A by
its probe's ratio B/A (bench.analysis.compare).

Tests: tests/analysis/test_compare_drift.py, tests/run/test_passes.py, tests/commands/test_noise.py.
"""

from __future__ import annotations

import time
from typing import Callable

from bench import capabilities
from bench.case import Case
from bench.impls.prepare import prepare
from bench.machine.threads import fixed_threads

CALLS = 2                       # per group: 1 untimed, 1 timed; two groups (before, after):
                                # ~10-25 ms a case a pass here (compare smooths over neighbours)
KEYS = ("calib_s", "calib_probe", "calib_samples_s")
_READY: dict[str, object] = {}  # probe case_id -> prepared probe, for the process


def probes(threads: int) -> list[tuple[str, Case]]:
    """(name, Case) of the probes this installation can run (torch ones need torch); `bench
    noise` times them all in turns."""
    wanted = [(f"torch ffn T=32 {threads} thr", Case(impl="torch", block="ffn", seq_len=32,
                                                     threads=threads)),
              (f"numpy ffn T=32 {threads} thr", Case(impl="numpy", block="ffn", seq_len=32,
                                                     threads=threads)),
              ("torch ffn T=32 1 thr", Case(impl="torch", block="ffn", seq_len=32, threads=1)),
              (f"torch-sdpa attention T=512 {threads} thr",
               Case(impl="torch-sdpa", block="attention", seq_len=512, threads=threads))]
    out, seen = [], set()
    for name, case in wanted:
        if case.case_id in seen or capabilities.check(case) is not None:
            continue
        seen.add(case.case_id)
        out.append((name, case))
    return out


def probe_for(case: Case, backend: str) -> tuple[str, Case, str] | None:
    """(name, probe Case, its backend) for a case of `backend`, or None when none can run."""
    order = ("numpy", "torch") if backend == "numpy" else ("torch", "numpy")
    for impl in order:
        device = case.device if impl == "torch" else "cpu"
        if device != case.device:
            continue
        probe = Case(impl=impl, block="ffn", seq_len=32, device=device, threads=case.threads)
        if capabilities.check(probe) is None:
            name = f"{impl} ffn T=32 {case.threads} thr" + (f" {device}" if device != "cpu" else "")
            return name, probe, impl
    return None


def _ready(probe: Case):
    prepared = _READY.get(probe.case_id)
    if prepared is None:
        prepared = _READY[probe.case_id] = prepare(probe)
    return prepared


def _sync(device: str):
    if device == "cuda":
        import torch

        return torch.cuda.synchronize
    return lambda: None


def time_probe(probe: Case, backend: str, calls: int = CALLS,
               clock=time.perf_counter) -> list[float]:
    """`calls` calls of the probe under the case's threads; the times of all but the first."""
    prepared = _ready(probe)
    sync = _sync(probe.device)
    out = []
    with fixed_threads(probe.threads, backend):
        for i in range(calls):
            sync()
            t0 = clock()
            prepared.fn()
            sync()
            if i:
                out.append(clock() - t0)
    return out


def around(case: Case, backend: str, timed: Callable[[], dict]) -> dict:
    """timed()'s columns plus calib_s, calib_probe, calib_samples_s (see the module doc)."""
    chosen = probe_for(case, backend)
    before = _safe(chosen)
    columns = dict(timed())
    samples = before + _safe(chosen)
    columns.update(calib_s=min(samples) if samples else None,
                   calib_probe=chosen[0] if chosen and samples else None,
                   calib_samples_s=samples or None)
    return columns


def _safe(chosen) -> list[float]:
    if chosen is None:
        return []
    try:
        return time_probe(chosen[1], chosen[2])
    except Exception:               # no probe is no reason to fail the case
        return []
