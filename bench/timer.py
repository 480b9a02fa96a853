"""Wall-clock timing of one callable: warm-up, adaptive repetition, raw samples kept.

The procedure (the way `torch.utils.benchmark.Timer.blocked_autorange` and pytest-benchmark
calibrate):

1. `warmup` untimed calls (first-call costs: allocation, kernel selection, lazy init). Their
   durations are still read, cheaply, to estimate the cost of one call.
2. Calls per sample: a function faster than `min_sample_s` (1 ms) is called `number` times per
   sample, `number` the smallest of 1, 2, 5, 10, 20, 50, ... with `number * t_call >= min_sample_s`,
   so clock resolution and loop overhead stay negligible; each sample is then block time / number
   (per-call seconds). The choice is recorded (`number_per_sample`).
3. Timed samples until BOTH `min_repeats` samples and `min_time_s` of timed time are reached, or
   until EITHER cap, `max_repeats` samples or `max_time_s` of timed time, is hit (always >= 1).

Statistics are derived from the raw per-call samples, never stored instead of them:
median, IQR = q75 - q25 (linear interpolation between order statistics, as `numpy.percentile`
and `torch.quantile` do), min, mean, sample std (n - 1), spread = IQR / median, and
`unstable = spread > spread_warn` (the warning `torch.utils.benchmark.Measurement` prints).

Clock and synchronisation are passed in, so the logic runs under a fake clock in tests. A
`timer_factory` replaces both: it returns a context manager with `.elapsed_s` after exit, e.g.
`CudaEventTimer` (CUDA events, the GPU's own clock) or `ClockTimer` (a host clock plus an
optional device sync), one interface for both, as optimum-benchmark's latency tracker does.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from bench.case import Measure

MIN_SAMPLE_S = 1e-3          # a sample shorter than this batches several calls
MAX_NUMBER_PER_SAMPLE = 100_000


class Stopwatch(Protocol):
    """A context manager that times its body; `elapsed_s` is valid after `__exit__`."""

    elapsed_s: float

    def __enter__(self) -> "Stopwatch": ...

    def __exit__(self, *exc) -> None: ...


class ClockTimer:
    """Host clock around the body; `sync()` (e.g. `torch.cuda.synchronize`) on both edges."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter,
                 sync: Callable[[], None] | None = None):
        self._clock = clock
        self._sync = sync
        self._start = 0.0
        self.elapsed_s = math.nan

    def __enter__(self) -> "ClockTimer":
        if self._sync is not None:
            self._sync()
        self._start = self._clock()
        return self

    def __exit__(self, *exc) -> None:
        if self._sync is not None:
            self._sync()
        self.elapsed_s = self._clock() - self._start


class CudaEventTimer:
    """CUDA events recorded on the current stream around the body; the GPU's own clock.

    `elapsed_time` is in milliseconds and needs the end event to have completed, hence the
    `synchronize()` at exit.
    """

    def __init__(self):
        import torch

        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)
        self.elapsed_s = math.nan

    def __enter__(self) -> "CudaEventTimer":
        self._start.record()
        return self

    def __exit__(self, *exc) -> None:
        self._end.record()
        self._end.synchronize()
        self.elapsed_s = self._start.elapsed_time(self._end) / 1e3


def timer_factory_for(device: str) -> Callable[[], Stopwatch]:
    """CUDA events on `cuda`, `perf_counter` on `cpu`; the one switch between them."""
    if device == "cuda":
        return CudaEventTimer
    if device == "cpu":
        return ClockTimer
    raise ValueError(f"device: expected 'cpu' or 'cuda', got {device!r}")


def quantile(sorted_values: tuple[float, ...], q: float) -> float:
    """Linear-interpolation quantile of already sorted values (numpy's default method).

    position = q * (n - 1);  value = x[lo] + (x[hi] - x[lo]) * (position - lo)
    """
    if not sorted_values:
        raise ValueError("quantile: no values")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile: q must be in [0, 1], got {q}")
    position = q * (len(sorted_values) - 1)
    lo = math.floor(position)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (position - lo)


@dataclass(frozen=True)
class TimeStats:
    """Raw per-call samples and the statistics derived from them (computed on access)."""

    samples_s: tuple[float, ...]
    warmup: int
    number_per_sample: int = 1
    spread_warn: float = 0.10
    stop_reason: str = "min_reached"   # min_reached | max_repeats | max_time

    def __post_init__(self):
        if not self.samples_s:
            raise ValueError("samples_s: at least one sample is needed")

    @property
    def n_samples(self) -> int:
        return len(self.samples_s)

    @property
    def _sorted(self) -> tuple[float, ...]:
        return tuple(sorted(self.samples_s))

    @property
    def median_s(self) -> float:
        return quantile(self._sorted, 0.5)

    @property
    def iqr_s(self) -> float:
        ordered = self._sorted
        return quantile(ordered, 0.75) - quantile(ordered, 0.25)

    @property
    def min_s(self) -> float:
        return min(self.samples_s)

    @property
    def mean_s(self) -> float:
        return statistics.fmean(self.samples_s)

    @property
    def std_s(self) -> float:
        return statistics.stdev(self.samples_s) if self.n_samples > 1 else 0.0

    @property
    def spread(self) -> float:
        """IQR / median: the relative width of the middle half of the samples."""
        median = self.median_s
        return self.iqr_s / median if median > 0 else math.inf

    @property
    def unstable(self) -> bool:
        return self.spread > self.spread_warn

    def to_record(self) -> dict:
        """The record's timing columns (docs/INTERFACES.md), plain JSON types."""
        return {
            "samples_s": list(self.samples_s),
            "n_samples": self.n_samples,
            "warmup": self.warmup,
            "number_per_sample": self.number_per_sample,
            "stop_reason": self.stop_reason,
            "median_s": self.median_s,
            "iqr_s": self.iqr_s,
            "min_s": self.min_s,
            "mean_s": self.mean_s,
            "std_s": self.std_s,
            "spread": self.spread,
            "unstable": self.unstable,
        }

    def __str__(self) -> str:
        text = (f"median {self.median_s * 1e3:.4g} ms  IQR {self.iqr_s * 1e3:.3g} ms  "
                f"min {self.min_s * 1e3:.4g} ms  ({self.n_samples} samples x "
                f"{self.number_per_sample} call(s))")
        if self.unstable:
            text += (f"\n  WARNING: IQR/median = {self.spread:.0%} > {self.spread_warn:.0%}; "
                     "the spread is too wide to trust this number")
        return text


def validate_settings(settings: Measure) -> None:
    """Raise ValueError naming the `measure.<key>` that cannot be used for timing."""
    ints = {"warmup": 0, "min_repeats": 1, "max_repeats": 1}
    for key, lowest in ints.items():
        value = getattr(settings, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < lowest:
            raise ValueError(f"measure.{key}: expected an integer >= {lowest}, got {value!r}")
    for key in ("min_time_s", "max_time_s", "spread_warn"):
        value = getattr(settings, key)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
            raise ValueError(f"measure.{key}: expected a number >= 0, got {value!r}")
    if settings.max_repeats < settings.min_repeats:
        raise ValueError(f"measure.max_repeats ({settings.max_repeats}) must be >= "
                         f"measure.min_repeats ({settings.min_repeats})")


def choose_number(call_s: float, min_sample_s: float = MIN_SAMPLE_S) -> int:
    """Smallest n in 1, 2, 5, 10, 20, 50, ... with n * call_s >= min_sample_s (timeit's series)."""
    number = 1
    while number * call_s < min_sample_s and number < MAX_NUMBER_PER_SAMPLE:
        number = _next_in_series(number)
    return min(number, MAX_NUMBER_PER_SAMPLE)


def _next_in_series(number: int) -> int:
    """1 -> 2 -> 5 -> 10 -> 20 -> 50 -> 100 ..."""
    magnitude = 10 ** (len(str(number)) - 1)
    leading = number // magnitude
    return {1: 2, 2: 5, 5: 10}[leading] * magnitude


def _stop_reason(n: int, total_s: float, settings: Measure) -> str | None:
    """Why sampling stops now, or None to take another sample."""
    if n >= settings.min_repeats and total_s >= settings.min_time_s:
        return "min_reached"
    if n >= settings.max_repeats:
        return "max_repeats"
    if total_s >= settings.max_time_s:
        return "max_time"
    return None


def measure_time(fn: Callable[[], object], settings: Measure,
                 clock: Callable[[], float] = time.perf_counter,
                 sync: Callable[[], None] | None = None,
                 timer_factory: Callable[[], Stopwatch] | None = None,
                 min_sample_s: float = MIN_SAMPLE_S) -> TimeStats:
    """Time `fn()` per the `settings` stopping rule; see the module docstring.

    `timer_factory` (e.g. `CudaEventTimer`) overrides `clock` and `sync`. `min_sample_s=0`
    disables batching (one call per sample).
    """
    validate_settings(settings)
    make_timer = timer_factory or (lambda: ClockTimer(clock, sync))

    fastest_warmup_s = math.inf
    for _ in range(settings.warmup):
        stopwatch = make_timer()
        with stopwatch:
            fn()
        fastest_warmup_s = min(fastest_warmup_s, stopwatch.elapsed_s)
    # Without a warm-up call there is no estimate of one call's cost, hence no batching.
    number = choose_number(fastest_warmup_s, min_sample_s) if settings.warmup else 1

    samples: list[float] = []
    total_s = 0.0
    while True:
        stopwatch = make_timer()
        with stopwatch:
            for _ in range(number):
                fn()
        samples.append(stopwatch.elapsed_s / number)
        total_s += stopwatch.elapsed_s
        reason = _stop_reason(len(samples), total_s, settings)
        if reason is not None:
            break
    return TimeStats(samples_s=tuple(samples), warmup=settings.warmup, number_per_sample=number,
                     spread_warn=settings.spread_warn, stop_reason=reason)
