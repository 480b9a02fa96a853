"""Progress on stderr: which case is running, how long the sweep has taken, how long it will.

    [ 3/12] torch/attention B=1 T=64 d=64 h=4 fp32 forward   elapsed 0:07  ETA 0:21
    [ 3/12] ok      1.23 ms   45.6 GFLOP/s   11.7 MiB  torch/attention B=1 T=64 ...

ETA = mean wall time of the cases finished so far x cases left (a sweep's cases grow in size,
so this is optimistic early on; it is what is known). On a terminal the "running" line is
rewritten in place; in a log file every line is kept.

Tests: tests/run/test_run_cli.py.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO

from bench.case import Case


def format_duration(seconds: float | None) -> str:
    """`75.2` -> `1:15`, `3725` -> `1:02:05`, None -> `?`."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_time(seconds: float | None) -> str:
    """A duration with a readable unit: `812 ns`, `1.23 ms`, `4.56 s`."""
    if seconds is None:
        return "-"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def format_result(record: dict) -> str:
    """One line per finished case: status, median, GFLOP/s, peak MiB (measured), label."""
    status = str(record.get("status"))
    label = Case(**{k: record[k] for k in Case.__dataclass_fields__ if k in record}).label()
    if status != "ok":
        return f"{status}  {label}"
    gflops = record.get("gflops_per_s")
    peak = record.get("peak_bytes")
    parts = [
        "ok",
        f"{format_time(record.get('median_s')):>9}",
        f"{gflops:8.3g} GFLOP/s" if gflops is not None else f"{'-':>8} GFLOP/s",
        f"{peak / 2 ** 20:9.4g} MiB" if peak is not None else f"{'-':>9} MiB",
        label,
    ]
    if record.get("unstable"):
        parts.append("(unstable)")
    if record.get("interference"):
        parts.append(f"(interference: {record.get('interference_reason')})")
    return "  ".join(parts)


class Progress:
    """Counts cases, times them, prints a running line and a result line per case."""

    def __init__(self, total: int, stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic, already_done: int = 0):
        self.total = total
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.already_done = already_done
        self.started_at = clock()
        self.finished = 0
        self.started = 0
        self._live = False
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def elapsed(self) -> float:
        return self.clock() - self.started_at

    def eta(self) -> float | None:
        """Seconds left, from the mean duration of finished cases; None before the first."""
        if not self.finished:
            return None
        return self.elapsed() / self.finished * (self.total - self.finished)

    def _prefix(self, index: int) -> str:
        width = len(str(self.total))
        return f"[{index:>{width}}/{self.total}]"

    def begin(self) -> None:
        note = f" ({self.already_done} already recorded)" if self.already_done else ""
        self._print(f"{self.total} case(s) to run{note}")

    def start(self, case: Case) -> None:
        self.started += 1
        line = (f"{self._prefix(self.started)} {case.label()}   "
                f"elapsed {format_duration(self.elapsed())}  ETA {format_duration(self.eta())}")
        if self._tty:
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
            self._live = True
        else:
            self._print(line)

    def finish(self, record: dict) -> None:
        self.finished += 1
        self._print(f"{self._prefix(self.finished)} {format_result(record)}")

    def note(self, text: str) -> None:
        self._print(text)

    def _print(self, line: str) -> None:
        if self._live:
            self.stream.write("\r\033[K")
            self._live = False
        self.stream.write(line + "\n")
        self.stream.flush()
