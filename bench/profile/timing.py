"""Time each step of a forward, apart from the timing of the whole block.

torch: `torch.profiler` (CPU activity, plus CUDA where the device is a GPU) around `repeats`
step-wise forwards, each step in a `record_function("tfbench/<step>")` range and each forward
in "tfbench.forward". A step's time in one forward is the sum of its ranges in that forward
(a stack runs each layer step once per layer): the range's wall time on a CPU, the summed
duration of the kernels launched inside it (`device_time_total`) on a GPU, where the CPU side
only queues work. The profile is written as a Chrome / Perfetto trace (`export_chrome_trace`).

NumPy: the step-wise forward timed with `time.perf_counter` around each step (`StepTimer`),
the clock bench.trackers.timer uses, `repeats` times. No trace: NumPy has no profiler to write one.

Either way the per-step time is the median over the forwards. The whole block (tfimpl's own
forward, unmarked, no profiler running) is timed twice over: by bench.trackers.timer.measure_time before
the profile, and once before each profiled forward ("paired"). The profile's overhead is
(sum of the steps - paired whole median) / paired whole median: on a machine others share,
load drifts between passes, and only the paired calls saw the same machine as the profile.

Tests: tests/profile/test_profile.py.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections import defaultdict
from typing import Callable

from bench.case import Measure
from bench.trackers.timer import measure_time, timer_factory_for

PREFIX = "tfbench/"
FORWARD = "tfbench.forward"
WHOLE_SETTINGS = Measure(warmup=1, min_repeats=5, min_time_s=1.0, max_time_s=60.0)


class StepTimer:
    """marks(name): adds the body's wall time to seconds[name]; add(name, s) adds s directly."""
    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self.clock = clock
        self.seconds: dict[str, float] = defaultdict(float)

    @contextlib.contextmanager
    def __call__(self, name: str):
        start = self.clock()
        try:
            yield
        finally:
            self.seconds[name] += self.clock() - start

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] += seconds


def medians(per_forward: list[dict[str, float]]) -> dict[str, float]:
    """{step: median over the forwards of its seconds in one forward}."""
    names = list(dict.fromkeys(name for forward in per_forward for name in forward))
    return {name: statistics.median(forward.get(name, 0.0) for forward in per_forward)
            for name in names}


def whole_median(fn: Callable[[], object], device: str = "cpu",
                 settings: Measure = WHOLE_SETTINGS) -> dict:
    """The unprofiled block: bench.trackers.timer.measure_time(fn) -> {"median_s", "iqr_s", ...}."""
    stats = measure_time(fn, settings, timer_factory=timer_factory_for(device))
    return {"median_s": stats.median_s, "iqr_s": stats.iqr_s, "min_s": stats.min_s,
            "n_samples": stats.n_samples, "spread": stats.spread, "unstable": stats.unstable}


def _timed(whole: Callable[[], object] | None, clock, sync=lambda: None) -> float | None:
    """One unprofiled call of the whole block (None when there is none to time)."""
    if whole is None:
        return None
    start = clock()
    whole()
    sync()
    return clock() - start


def _median_or_none(values: list) -> float | None:
    kept = [v for v in values if v is not None]
    return statistics.median(kept) if kept else None


def profile_numpy(forward: Callable[[StepTimer], object], repeats: int,
                  clock: Callable[[], float] = time.perf_counter,
                  whole: Callable[[], object] | None = None) -> dict:
    """forward(marks) once untimed, then `repeats` times: {"steps_s", "per_forward", "wall_s",
    "whole_paired_s"}; with `whole`, one unprofiled whole-block call before each profiled
    forward (paired: both see the same machine, which matters when other work drifts)."""
    forward(StepTimer(clock))                                      # warm-up (first-call costs)
    per_forward, walls, paired = [], [], []
    for _ in range(repeats):
        paired.append(_timed(whole, clock))
        timer = StepTimer(clock)
        start = clock()
        forward(timer)
        walls.append(clock() - start)
        per_forward.append(dict(timer.seconds))
    return {"steps_s": medians(per_forward), "per_forward": per_forward,
            "wall_s": statistics.median(walls), "whole_paired_s": _median_or_none(paired),
            "trace": None,
            "trace_note": "NumPy has no profiler: no trace file (steps timed with perf_counter)"}


def _ranges(events, on_gpu: bool) -> list[dict[str, float]]:
    """Per profiled forward: {step: seconds}, from the profiler's FunctionEvents."""
    from torch.autograd import DeviceType

    # CPU-side ranges only: on a GPU the profiler also records each range on the device
    # timeline (gpu_user_annotation, same name), which would count the step twice
    annotations = sorted((e for e in events if (e.name == FORWARD or e.name.startswith(PREFIX))
                          and e.device_type == DeviceType.CPU),
                         key=lambda e: e.time_range.start)
    forwards = [e for e in annotations if e.name == FORWARD]
    per_forward: list[dict[str, float]] = [defaultdict(float) for _ in forwards]
    for event in annotations:
        if event.name == FORWARD:
            continue
        start = event.time_range.start
        for i, forward in enumerate(forwards):
            if forward.time_range.start <= start <= forward.time_range.end:
                us = event.device_time_total if on_gpu else event.time_range.elapsed_us()
                per_forward[i][event.name[len(PREFIX):]] += us / 1e6
                break
    return [dict(f) for f in per_forward]


def _forward_walls(events) -> list[float]:
    from torch.autograd import DeviceType

    return [e.time_range.elapsed_us() / 1e6 for e in events
            if e.name == FORWARD and e.device_type == DeviceType.CPU]


def kernel_table(prof, repeats: int) -> list[dict]:
    """CUDA kernels: [{"name", "calls", "device_s"}] per forward, longest first."""
    from torch.autograd import DeviceType

    rows = [{"name": e.key, "calls": e.count / repeats,
             "device_s": e.self_device_time_total / 1e6 / repeats}
            for e in prof.key_averages()
            if e.device_type == DeviceType.CUDA and e.self_device_time_total > 0
            and not (e.key == FORWARD or e.key.startswith(PREFIX))]     # ranges, not kernels
    return sorted(rows, key=lambda r: -r["device_s"])


def profile_torch(forward: Callable[[Callable], object], repeats: int, device: str = "cpu",
                  trace_path=None, whole: Callable[[], object] | None = None) -> dict:
    """forward(mark) under torch.profiler: {"steps_s", "per_forward", "wall_s", "kernels", ...}.

    `forward` takes a mark factory (name -> context manager) and runs one step-wise forward.
    Each of the `repeats` forwards is its own profiler session; with `whole`, one unprofiled
    whole-block call (no profiler running) goes before each (paired, as in profile_numpy).
    The trace is the last session's.
    """
    import torch
    from torch.profiler import ProfilerActivity, profile, record_function

    on_gpu = device == "cuda"
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)

    def mark(name):
        return record_function(PREFIX + name)

    forward(mark)                                                  # warm-up, unprofiled
    sync()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    per_forward, walls, paired, kernels, prof = [], [], [], [], None
    for _ in range(repeats):
        paired.append(_timed(whole, time.perf_counter, sync))
        with profile(activities=activities) as prof:
            with record_function(FORWARD):
                forward(mark)
                sync()
        events = prof.events()
        per_forward += _ranges(events, on_gpu)
        walls += _forward_walls(events)
        if on_gpu:
            kernels.append(kernel_table(prof, 1))
    if trace_path is not None and prof is not None:
        prof.export_chrome_trace(str(trace_path))
    return {"steps_s": medians(per_forward), "per_forward": per_forward,
            "wall_s": statistics.median(walls), "whole_paired_s": _median_or_none(paired),
            "kernels": _merge_kernels(kernels) if on_gpu else None,
            "trace": None if trace_path is None else str(trace_path),
            "trace_note": ("torch.profiler Chrome trace of the last profiled forward (open in "
                           "ui.perfetto.dev)" if trace_path is not None else "no trace asked for"),
            "time_source": "device_time_total (CUDA kernels)" if on_gpu else "range wall time"}


def _merge_kernels(tables: list[list[dict]]) -> list[dict]:
    """Per-forward kernel rows of several sessions -> their mean per forward, longest first."""
    merged: dict[str, dict] = {}
    for table in tables:
        for row in table:
            entry = merged.setdefault(row["name"], {"name": row["name"], "calls": 0.0, "device_s": 0.0})
            entry["calls"] += row["calls"] / len(tables)
            entry["device_s"] += row["device_s"] / len(tables)
    return sorted(merged.values(), key=lambda r: -r["device_s"])
