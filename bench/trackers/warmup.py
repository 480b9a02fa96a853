"""Calls per sample, and when a timing has settled: the warm-up of bench.trackers.timer.

`choose_number` batches fast calls; `warm_up` times blocks until `settled`; `trim_leading`
moves still-unsettled leading samples to the warm-up. The rules are pure functions on lists of
per-call times; `Blocks` is the one place that calls the function under a stopwatch.

Warm-up (before any sample is kept). The first calls of a function pay one-off costs: lazy
initialisation, thread-pool start-up, kernel selection, first-touch page faults, cold caches.
A fixed number of warm-up calls is either too few (the first torch case of a run paid ~20 ms a
call for several calls while T=64 took 0.1 ms) or wasteful. So warm-up blocks are timed and
warm-up stops once the timing stops improving:

    settled  <=>  t_k >= (1 - tol) * min(t_0 .. t_{k-1})        (at least two blocks seen)

i.e. the latest block is not faster than the best before it by more than `tol` (default 5%).
A slower block (noise) does not prolong the warm-up; only a still-falling trend does. Blocks
double in size, so a trend shows between blocks; at least two blocks are timed after any probe.
(What the rule cannot see: a one-off cost that fades by less than `tol` per block, spread thinly
over many calls; the trimming below catches what is left of it when there are samples enough.) The
warm-up is bounded in time (`bench.trackers.timer.WARMUP_MAX_S`) so a 1 s call is not warmed up for
several seconds: for such a call the one-off costs are a small share of the call anyway.

Trimming (after sampling). If the leading timed samples are still slower than the rest by more
than `TRIM_TOL` (10%), they belong to the warm-up after all; they are moved out of the samples (kept in the
record as warm-up samples), never more than half of them:

    drop s_0 while n > min_keep and s_0 > (1 + tol) * median(s_1 ..)

Tests: tests/trackers/test_interference.py.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Callable

SETTLE_TOL = 0.05     # warm-up: "still improving" means faster by more than this
TRIM_TOL = 0.10       # trimming: a leading sample this much slower than the rest is warm-up
MIN_SAMPLE_S = 1e-3          # a sample shorter than this batches several calls
MAX_NUMBER_PER_SAMPLE = 100_000
WARMUP_MAX_S = 0.1           # warm-up blocks beyond `warmup` calls stop within this much time,
WARMUP_CHEAP_CALL_S = 0.02   # ... unless a call is this cheap (the slow calls were the one-off
WARMUP_HARD_MAX_S = 1.0      # costs themselves): then up to this much in all
MIN_WARMUP_BLOCKS = 2        # blocks timed here before "settled" can be said (a probe is not one)


def settled(block_times: list[float], tol: float = SETTLE_TOL) -> bool:
    """True when the last block is no faster than the best earlier one by more than `tol`."""
    if len(block_times) < 2:
        return False
    return block_times[-1] >= (1.0 - tol) * min(block_times[:-1])


def trim_leading(samples: list[float], tol: float = TRIM_TOL,
                 min_keep: int = 1) -> tuple[list[float], list[float]]:
    """(trimmed leading samples, kept samples): leading samples slower than the median of the
    rest by more than `tol` are trimmed, at most half of them and never below `min_keep` kept."""
    kept = list(samples)
    trimmed: list[float] = []
    limit = len(samples) // 2
    while len(trimmed) < limit and len(kept) > max(1, min_keep) and \
            kept[0] > (1.0 + tol) * statistics.median(kept[1:]):
        trimmed.append(kept.pop(0))
    return trimmed, kept


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


@dataclass
class Blocks:
    """Times blocks of `number` calls of fn; counts calls and time (warm-up and timed)."""

    fn: Callable[[], object]
    make_timer: Callable[[], object]       # -> a bench.trackers.timer.Stopwatch

    def per_call(self, number: int) -> tuple[float, float]:
        """(per-call seconds, block seconds) of one block of `number` calls."""
        stopwatch = self.make_timer()
        with stopwatch:
            for _ in range(number):
                self.fn()
        return stopwatch.elapsed_s / number, stopwatch.elapsed_s


@dataclass
class WarmUp:
    calls: int
    seconds: float
    settled: bool
    block_times_s: list[float]
    number: int


def warm_up(blocks: Blocks, min_calls: int, first_call_s: float | None = None,
            min_sample_s: float = MIN_SAMPLE_S, max_s: float = WARMUP_MAX_S,
            tol: float = SETTLE_TOL) -> WarmUp:
    """At least `min_calls` single calls, then blocks until `settle.settled`, or until the next
    block would take the warm-up past `max_s` (0: exactly `min_calls` calls). Blocks double in
    size (at least `number` calls), so a trend slower than `tol` per block still shows between
    blocks. A call under `WARMUP_CHEAP_CALL_S` may go on to `WARMUP_HARD_MAX_S`: a cheap call
    whose first calls were slow (20 ms instead of 0.1 ms) is warmed up until it settles, a 1 s
    call is not.

    `first_call_s` (a probe made before) is the first block's time: it is history for the
    settling rule and the call-cost estimate, not a call made here. Blocks hold `number` calls,
    chosen from the fastest block so far (one call while nothing is known).
    """
    history = [] if first_call_s is None else [first_call_s]
    times: list[float] = []
    calls, spent, size = 0, 0.0, 0
    number = choose_number(first_call_s, min_sample_s) if first_call_s else 1
    while True:
        if calls >= min_calls:
            if len(times) >= MIN_WARMUP_BLOCKS and settled(history, tol):
                return WarmUp(calls, spent, True, times, number)
            size = max(number, 2 * size)            # doubling: a slow trend shows up
            next_s = size * min(history) if history else 0.0
            cheap = history and min(history) <= WARMUP_CHEAP_CALL_S and \
                spent + next_s <= WARMUP_HARD_MAX_S
            if max_s <= 0 or (history and spent + next_s > max_s and not cheap):
                return WarmUp(calls, spent, False, times, number)
        else:
            size = 1                                # the asked-for calls one by one
        per_call, block_s = blocks.per_call(size)
        times.append(per_call)
        history.append(per_call)
        calls += size
        spent += block_s
        number = choose_number(min(history), min_sample_s) if min_sample_s > 0 else 1
