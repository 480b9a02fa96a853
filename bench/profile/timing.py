"""Time each step of a forward, apart from the timing of the whole block.

torch: `torch.profiler` (CPU activity, plus CUDA where the device is a GPU) around `repeats`
step-wise forwards, each step in a `record_function("tfbench/<step>")` range and each forward
in "tfbench.forward". A step's time in one forward is the sum of its ranges in that forward
(a stack runs each layer step once per layer): the range's wall time on a CPU, the summed
duration of the kernels launched inside it (`device_time_total`) on a GPU, where the CPU side
only queues work. The profile is written as a Chrome / Perfetto trace (`export_chrome_trace`).

NumPy: the step-wise forward timed with `time.perf_counter` around each step (`StepTimer`),
the clock bench.timer uses, `repeats` times. No trace: NumPy has no profiler to write one.

Either way the per-step time is the median over the forwards, and the whole block is timed
separately, unprofiled and unmarked (tfimpl's own forward, bench.timer.measure_time) so the
profile's overhead shows as (sum of the steps - whole median) / whole median.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections import defaultdict
from typing import Callable

from bench.case import Measure

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
    """The unprofiled block: bench.timer.measure_time(fn) -> {"median_s", "iqr_s", ...}."""
    from bench.timer import measure_time, timer_factory_for

    stats = measure_time(fn, settings, timer_factory=timer_factory_for(device))
    return {"median_s": stats.median_s, "iqr_s": stats.iqr_s, "min_s": stats.min_s,
            "n_samples": stats.n_samples, "spread": stats.spread, "unstable": stats.unstable}


def profile_numpy(forward: Callable[[StepTimer], object], repeats: int,
                  clock: Callable[[], float] = time.perf_counter) -> dict:
    """forward(marks) once untimed, then `repeats` times: {"steps_s", "per_forward", "wall_s"}."""
    forward(StepTimer(clock))                                      # warm-up (first-call costs)
    per_forward, walls = [], []
    for _ in range(repeats):
        timer = StepTimer(clock)
        start = clock()
        forward(timer)
        walls.append(clock() - start)
        per_forward.append(dict(timer.seconds))
    return {"steps_s": medians(per_forward), "per_forward": per_forward,
            "wall_s": statistics.median(walls), "trace": None,
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
                  trace_path=None) -> dict:
    """forward(mark) under torch.profiler: {"steps_s", "per_forward", "wall_s", "kernels", ...}.

    `forward` takes a mark factory (name -> context manager) and runs one step-wise forward.
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
    with profile(activities=activities) as prof:
        for _ in range(repeats):
            with record_function(FORWARD):
                forward(mark)
                sync()
    events = prof.events()
    per_forward = _ranges(events, on_gpu)
    if trace_path is not None:
        prof.export_chrome_trace(str(trace_path))
    return {"steps_s": medians(per_forward), "per_forward": per_forward,
            "wall_s": statistics.median(_forward_walls(events)),
            "kernels": kernel_table(prof, repeats) if on_gpu else None,
            "trace": None if trace_path is None else str(trace_path),
            "trace_note": ("torch.profiler Chrome trace (open in chrome://tracing or "
                           "ui.perfetto.dev)" if trace_path is not None else "no trace asked for"),
            "time_source": "device_time_total (CUDA kernels)" if on_gpu else "range wall time"}
