"""Wall-clock timing of one callable: warm-up until settled, batching, re-measuring, raw samples.

The procedure (after `torch.utils.benchmark.Timer.blocked_autorange`, pytest-benchmark's
calibration and asv's rounds):

1. Warm-up until the timing settles (bench.trackers.warmup): at least `warmup` calls, then timed warm-up
   blocks until the latest block is no faster than the best before it by more than 5%, within
   `WARMUP_MAX_S` of warm-up time (up to `WARMUP_HARD_MAX_S` while blocks are cheap). A probe
   call made before (`first_call_s`, bench.run.budget) counts
   as the first warm-up block. Whether it settled, how many calls and how long it took are
   recorded (`warmup_calls`, `warmup_s`, `warmup_settled`).
2. Calls per sample: a function faster than `min_sample_s` (1 ms) is called `number` times per
   sample, `number` the smallest of 1, 2, 5, 10, 20, 50, ... with `number * t_call >= min_sample_s`
   (from the fastest warm-up block), so clock resolution and loop overhead stay negligible; each
   sample is then block time / number (per-call seconds). Recorded as `number_per_sample`.
3. A round of timed samples until BOTH `min_repeats` samples and `min_time_s` of timed time are
   reached, or until EITHER cap, `max_repeats` samples or `max_time_s` of timed time, is hit.
   Leading samples still slower than the rest by > 10% are moved to the warm-up (bench.trackers.warmup).
4. Re-measure: while the spread (IQR / median) over all samples stays above `spread_warn`, up
   to `REMEASURE_ROUNDS` more rounds are taken, within the same `max_time_s` cap, each after a
   round no longer than `REMEASURE_MAX_ROUND_S` (a case of 0.2 s calls and more is not re-measured:
   the main job's budget). A spread that
   is still high afterwards is the `unstable` flag. `rounds` and `round_medians_s` are recorded.

The statistic the fits use is `median_s`, the median of all kept per-call samples of all rounds.
Why the median: timing noise on a CPU is one-sided and heavy-tailed (preemption, interrupts,
another process's burst only ever add time), so the mean is dragged by a few outliers; the
median ignores up to half of the samples being disturbed and still describes a typical call.
The minimum would be as robust to the tail but measures the luckiest call (warm caches, a boost
clock), and from few samples (a 1 s case has 2-3) it is not more repeatable than the median;
it is kept as `min_s` beside it. Samples are per call, so batching does not change the median's
meaning. The raw samples are always kept (`samples_s`), the trimmed warm-up ones too.

Statistics are derived from the raw per-call samples, never stored instead of them:
median, IQR = q75 - q25 (linear interpolation between order statistics, as `numpy.percentile`
and `torch.quantile` do), min, mean, sample std (n - 1), spread = IQR / median, and
`unstable = spread > spread_warn` (the warning `torch.utils.benchmark.Measurement` prints).

The cyclic garbage collector is paused while timing (as `timeit` does).

Clock and synchronisation are passed in, so the logic runs under a fake clock in tests. A
`timer_factory` replaces both: it returns a context manager with `.elapsed_s` after exit, e.g.
`CudaEventTimer` (CUDA events, the GPU's own clock) or `ClockTimer` (a host clock plus an
optional device sync), one interface for both, as optimum-benchmark's latency tracker does.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import math
import statistics
import time
from dataclasses import dataclass
from typing import Callable, Protocol

from bench.case import Measure
from bench.record import quantile, sample_stats  # noqa: F401  (quantile re-exported)
from bench.trackers.warmup import (MAX_NUMBER_PER_SAMPLE, MIN_SAMPLE_S, WARMUP_MAX_S, Blocks,  # noqa: F401
                          WarmUp, choose_number, trim_leading, warm_up)

REMEASURE_ROUNDS = 2         # extra rounds of samples while the spread stays above spread_warn,
REMEASURE_MAX_ROUND_S = 0.5  # after a round no longer than this (the main job's 3-minute budget:
                             # a few 0.2-1 s calls per case are all it can afford)


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


@dataclass(frozen=True)
class TimeStats:
    """Raw per-call samples and the statistics derived from them (computed on access)."""

    samples_s: tuple[float, ...]
    warmup: int
    number_per_sample: int = 1
    spread_warn: float = 0.10
    stop_reason: str = "min_reached"   # min_reached | max_repeats | max_time
    warmup_calls: int | None = None    # calls made before the kept samples (None: = warmup)
    warmup_s: float | None = None      # time those calls took
    warmup_settled: bool | None = None  # did the warm-up timing stop improving?
    warmup_samples_s: tuple[float, ...] = ()   # per-call times of warm-up blocks, trimmed ones
    rounds: int = 1
    round_medians_s: tuple[float, ...] = ()

    def __post_init__(self):
        if not self.samples_s:
            raise ValueError("samples_s: at least one sample is needed")

    @property
    def n_samples(self) -> int:
        return len(self.samples_s)

    @functools.cached_property
    def _stats(self) -> dict:
        """median_s, iqr_s, min_s, mean_s, std_s, spread (IQR / median), unstable: bench.record's
        sample_stats, the one definition (the read side folds later passes with it)."""
        return sample_stats(self.samples_s, self.spread_warn)

    @property
    def median_s(self) -> float:
        return self._stats["median_s"]

    @property
    def iqr_s(self) -> float:
        return self._stats["iqr_s"]

    @property
    def min_s(self) -> float:
        return self._stats["min_s"]

    @property
    def mean_s(self) -> float:
        return self._stats["mean_s"]

    @property
    def std_s(self) -> float:
        return self._stats["std_s"]

    @property
    def spread(self) -> float:
        """IQR / median: the relative width of the middle half of the samples."""
        return self._stats["spread"]

    @property
    def unstable(self) -> bool:
        return self._stats["unstable"]

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
            "warmup_calls": self.warmup if self.warmup_calls is None else self.warmup_calls,
            "warmup_s": self.warmup_s,
            "warmup_settled": self.warmup_settled,
            "warmup_samples_s": list(self.warmup_samples_s),
            "rounds": self.rounds,
            "round_medians_s": list(self.round_medians_s) or [self.median_s],
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


def _stop_reason(n: int, total_s: float, settings: Measure) -> str | None:
    """Why sampling stops now, or None to take another sample."""
    if n >= settings.min_repeats and total_s >= settings.min_time_s:
        return "min_reached"
    if n >= settings.max_repeats:
        return "max_repeats"
    if total_s >= settings.max_time_s:
        return "max_time"
    return None


def _sample_round(blocks: Blocks, number: int, settings: Measure,
                  time_left_s: float) -> tuple[list[float], float, str]:
    """One round of samples under the stopping rule, `max_time_s` replaced by `time_left_s`."""
    capped = Measure(min_repeats=settings.min_repeats, min_time_s=settings.min_time_s,
                     max_repeats=settings.max_repeats, max_time_s=max(0.0, time_left_s))
    samples: list[float] = []
    total_s = 0.0
    while True:
        per_call, block_s = blocks.per_call(number)
        samples.append(per_call)
        total_s += block_s
        reason = _stop_reason(len(samples), total_s, capped)
        if reason is not None:
            return samples, total_s, reason


def _spread(samples: list[float]) -> float:
    return sample_stats(samples, math.inf)["spread"]


def measure_time(fn: Callable[[], object], settings: Measure,
                 clock: Callable[[], float] = time.perf_counter,
                 sync: Callable[[], None] | None = None,
                 timer_factory: Callable[[], Stopwatch] | None = None,
                 min_sample_s: float = MIN_SAMPLE_S, first_call_s: float | None = None,
                 warmup_max_s: float = WARMUP_MAX_S,
                 remeasure_rounds: int = REMEASURE_ROUNDS) -> TimeStats:
    """Time `fn()` per the module docstring's procedure; returns raw samples and statistics.

    `timer_factory` (e.g. `CudaEventTimer`) overrides `clock` and `sync`. `min_sample_s=0`
    disables batching (one call per sample). `first_call_s`: a call already made and timed
    (the budget probe); `warmup_max_s=0` and `remeasure_rounds=0` give the plain fixed
    procedure (exactly `warmup` calls, one round).
    """
    validate_settings(settings)
    with _gc_paused():
        return _measure(fn, settings, clock, sync, timer_factory, min_sample_s, first_call_s,
                        warmup_max_s, remeasure_rounds)


@contextlib.contextmanager
def _gc_paused():
    """Python's cyclic garbage collector off while timing (as `timeit` does): a collection
    landing in one sample is noise; reference counting still frees everything acyclic."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _measure(fn, settings, clock, sync, timer_factory, min_sample_s, first_call_s,
             warmup_max_s, remeasure_rounds) -> TimeStats:
    blocks = Blocks(fn, timer_factory or (lambda: ClockTimer(clock, sync)))
    warm = warm_up(blocks, settings.warmup, first_call_s, min_sample_s, warmup_max_s)
    if min_sample_s <= 0:
        warm.number = 1

    samples, total_s, reason = _sample_round(blocks, warm.number, settings, settings.max_time_s)
    trimmed, samples = trim_leading(samples, min_keep=settings.min_repeats)
    kept_s = sum(samples) * warm.number
    if trimmed and kept_s < settings.min_time_s and total_s < settings.max_time_s:
        # the trimmed samples were warm-up after all: top the kept ones up to min_time_s
        short = Measure(min_repeats=1, min_time_s=settings.min_time_s - kept_s,
                        max_repeats=max(1, settings.max_repeats - len(samples)))
        more, extra_s, reason = _sample_round(blocks, warm.number, short,
                                              settings.max_time_s - total_s)
        samples += more
        total_s += extra_s
    round_medians = [statistics.median(samples)]
    round_s = total_s
    while (len(round_medians) <= remeasure_rounds and _spread(samples) > settings.spread_warn
           and total_s < settings.max_time_s and len(samples) < settings.max_repeats
           and round_s <= REMEASURE_MAX_ROUND_S):
        more, round_s, reason = _sample_round(blocks, warm.number, settings,
                                              settings.max_time_s - total_s)
        samples += more
        total_s += round_s
        round_medians.append(statistics.median(more))
    warmup_s = warm.seconds + sum(trimmed) * warm.number
    return TimeStats(samples_s=tuple(samples), warmup=settings.warmup,
                     number_per_sample=warm.number, spread_warn=settings.spread_warn,
                     stop_reason=reason, warmup_calls=warm.calls + len(trimmed) * warm.number,
                     warmup_s=warmup_s, warmup_settled=warm.settled,
                     warmup_samples_s=tuple(warm.block_times_s + trimmed),
                     rounds=len(round_medians), round_medians_s=tuple(round_medians))
