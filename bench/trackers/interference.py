"""What else the machine was doing while a case was timed: load, CPU steal, other processes.

Two snapshots bracket the timed window; `between(before, after)` turns them into the record's
interference columns:

    other_cpu_s     = (busy jiffies of all CPUs, /proc/stat) / USER_HZ - own CPU seconds
                      (getrusage of this process, all its threads)
    other_cpu_cores = other_cpu_s / wall seconds        (1.0 = one core kept busy by others)
    cpu_steal_frac  = steal jiffies / all jiffies       (time a hypervisor gave to other guests)
    load_avg_1m     = os.getloadavg()[0] at the end     (context only: it counts us too and
                                                         lags by a minute)
    other_cpu_top   = "pid 123 (python) 0.8 cores": the busiest other process (/proc/PID/stat)

A case is `interference: true` when others used more than `OTHER_CPU_LIMIT` cores on average
(and more than `MIN_JIFFIES` of CPU time, above the counters' 10 ms resolution), or steal took
more than `STEAL_LIMIT` of the CPU time. On a system without /proc (macOS) the figures are null
and nothing is flagged. Reading the snapshots costs a few milliseconds, outside the timed calls.

`time_case(fn, measure)` is one case's timing as the runner records it: bench.trackers.timer's
samples bracketed by two snapshots, re-timed when another process got in the way:

    attempt 1: snapshot, measure_time (warm-up until settled, rounds), snapshot
    interference?  ->  attempt 2 (up to `retries` more), the function already warm
    kept: the first clean attempt, else the one where others used the least CPU

The record gets the kept attempt's timing columns (raw samples included), its interference
columns, `timing_attempts` (how many were made) and `interference` still true when no attempt
was clean: the report and `bench compare` can then tell a noisy number from a slow one.
Tests: tests/trackers/test_interference.py (fake clocks and counters).
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from typing import Callable

from bench.case import Measure
from bench.record import keys_of
from bench.trackers.timer import measure_time

OTHER_CPU_LIMIT = 0.2     # cores, averaged over the timed window
STEAL_LIMIT = 0.05        # share of all CPU time
MIN_JIFFIES = 3           # below this the counters cannot tell interference from rounding
PROC = "/proc"


@dataclass(frozen=True)
class Snapshot:
    wall_s: float
    own_cpu_s: float
    busy_jiffies: int | None = None       # user + nice + system + irq + softirq, all CPUs
    steal_jiffies: int | None = None
    total_jiffies: int | None = None
    load_1m: float | None = None
    processes: dict = field(default_factory=dict)   # pid -> (name, utime + stime jiffies)


def _cpu_line(proc: str = PROC) -> tuple[int, int, int] | None:
    """(busy, steal, total) jiffies from the aggregate `cpu` line of /proc/stat."""
    try:
        with open(os.path.join(proc, "stat")) as fh:
            first = fh.readline().split()
    except OSError:
        return None
    if not first or first[0] != "cpu":
        return None
    values = [int(v) for v in first[1:9]] + [0] * max(0, 8 - len(first[1:9]))
    user, nice, system, idle, iowait, irq, softirq, steal = values[:8]
    return user + nice + system + irq + softirq, steal, sum(values[:8])


def _processes(own_pid: int, proc: str = PROC) -> dict:
    """pid -> (command name, utime + stime jiffies) of every other process."""
    out = {}
    try:
        names = os.listdir(proc)
    except OSError:
        return out
    for name in names:
        if not name.isdigit() or int(name) == own_pid:
            continue
        try:
            with open(os.path.join(proc, name, "stat")) as fh:
                text = fh.read()
        except OSError:                      # the process ended meanwhile
            continue
        close = text.rfind(")")
        fields = text[close + 2:].split()
        if close < 0 or len(fields) < 13:
            continue
        out[int(name)] = (text[text.find("(") + 1:close], int(fields[11]) + int(fields[12]))
    return out


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def snapshot(proc: str = PROC, scan_processes: bool = True) -> Snapshot:
    """The counters now (each piece None / empty where the system does not provide it)."""
    cpu = _cpu_line(proc)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = None
    return Snapshot(wall_s=time.monotonic(), own_cpu_s=_own_cpu_s(),
                    busy_jiffies=cpu[0] if cpu else None, steal_jiffies=cpu[1] if cpu else None,
                    total_jiffies=cpu[2] if cpu else None, load_1m=load,
                    processes=_processes(os.getpid(), proc) if scan_processes else {})


def _top_other(before: Snapshot, after: Snapshot, wall_s: float, hz: int) -> str | None:
    best, best_ticks = None, 0
    for pid, (name, ticks) in after.processes.items():
        used = ticks - (before.processes[pid][1] if pid in before.processes else 0)
        if used > best_ticks:
            best, best_ticks = (pid, name), used
    if best is None or best_ticks < MIN_JIFFIES:
        return None
    return f"pid {best[0]} ({best[1]}) {best_ticks / hz / wall_s:.2f} cores"


def between(before: Snapshot, after: Snapshot, hz: int | None = None) -> dict:
    """The record's interference columns for the window between two snapshots."""
    hz = hz or os.sysconf("SC_CLK_TCK")
    wall_s = max(after.wall_s - before.wall_s, 1e-9)
    out = {"load_avg_1m": after.load_1m, "cpu_steal_frac": None, "other_cpu_cores": None,
           "other_cpu_top": None, "interference": False, "interference_reason": None}
    if before.busy_jiffies is None or after.busy_jiffies is None:
        return out
    busy = after.busy_jiffies - before.busy_jiffies
    steal = after.steal_jiffies - before.steal_jiffies
    total = after.total_jiffies - before.total_jiffies
    own_jiffies = (after.own_cpu_s - before.own_cpu_s) * hz
    other_jiffies = max(0.0, busy - own_jiffies)
    other_cores = other_jiffies / hz / wall_s
    steal_frac = steal / total if total > 0 else 0.0
    out.update(cpu_steal_frac=steal_frac, other_cpu_cores=other_cores,
               other_cpu_top=_top_other(before, after, wall_s, hz))
    reasons = []
    if other_cores > OTHER_CPU_LIMIT and other_jiffies >= MIN_JIFFIES:
        top = f"; busiest: {out['other_cpu_top']}" if out["other_cpu_top"] else ""
        reasons.append(f"other processes used {other_cores:.2f} cores{top}")
    if steal_frac > STEAL_LIMIT and steal >= MIN_JIFFIES:
        reasons.append(f"CPU steal {steal_frac:.0%}")
    if reasons:
        out.update(interference=True, interference_reason="; ".join(reasons))
    return out


INTERFERENCE_RETRIES = 1

# The record columns time_case fills: bench.record's fields of the timer, the warm-up, the
# interference snapshots and time_case (timing_attempts).
RECORD_KEYS = keys_of("trackers.timer", "trackers.warmup", "trackers.interference")


def time_case(fn: Callable[[], object], measure: Measure, sync: Callable[[], None] | None = None,
              first_call_s: float | None = None, retries: int = INTERFERENCE_RETRIES,
              snapshot: Callable[[], Snapshot] = snapshot,
              clock: Callable[[], float] = time.perf_counter) -> dict:
    """The record's timing and interference columns for `fn` (see the module docstring)."""
    attempts = []
    for attempt in range(1 + max(0, retries)):
        before = snapshot()
        stats = measure_time(fn, measure, clock=clock, sync=sync,
                             first_call_s=first_call_s if attempt == 0 else None)
        figures = between(before, snapshot())
        attempts.append((stats, figures))
        if not figures["interference"]:
            break
    clean = [a for a in attempts if not a[1]["interference"]]
    stats, figures = clean[0] if clean else min(
        attempts, key=lambda a: a[1]["other_cpu_cores"] or 0.0)
    return {**stats.to_record(), **figures, "timing_attempts": len(attempts)}
