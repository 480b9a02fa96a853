"""One case's timing as the runner records it: bench.trackers.timer's samples, bracketed by
bench.trackers.interference's snapshots, re-timed when another process got in the way.

    attempt 1: snapshot, measure_time (warm-up until settled, rounds), snapshot
    interference?  ->  attempt 2 (up to `retries` more), the function already warm
    kept: the first clean attempt, else the one where others used the least CPU

The record gets the kept attempt's timing columns (raw samples included), its interference
columns, `timing_attempts` (how many were made) and `interference` still true when no attempt
was clean: the report and `bench compare` can then tell a noisy number from a slow one.
"""

from __future__ import annotations

import time
from typing import Callable

from bench.trackers import interference
from bench.case import Measure
from bench.record import keys_of
from bench.trackers.timer import measure_time

INTERFERENCE_RETRIES = 1

# The record columns time_case fills: bench.record's fields of the timer, the warm-up, the
# interference snapshots and this module (timing_attempts).
RECORD_KEYS = keys_of("trackers.timer", "trackers.warmup", "trackers.interference",
                      "trackers.measuring")


def time_case(fn: Callable[[], object], measure: Measure, sync: Callable[[], None] | None = None,
              first_call_s: float | None = None, retries: int = INTERFERENCE_RETRIES,
              snapshot: Callable[[], interference.Snapshot] = interference.snapshot,
              clock: Callable[[], float] = time.perf_counter) -> dict:
    """The record's timing and interference columns for `fn` (see the module docstring)."""
    attempts = []
    for attempt in range(1 + max(0, retries)):
        before = snapshot()
        stats = measure_time(fn, measure, clock=clock, sync=sync,
                             first_call_s=first_call_s if attempt == 0 else None)
        figures = interference.between(before, snapshot())
        attempts.append((stats, figures))
        if not figures["interference"]:
            break
    clean = [a for a in attempts if not a[1]["interference"]]
    stats, figures = clean[0] if clean else min(
        attempts, key=lambda a: a[1]["other_cpu_cores"] or 0.0)
    return {**stats.to_record(), **figures, "timing_attempts": len(attempts)}
