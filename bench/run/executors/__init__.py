"""Where `run_case` runs: in this process, in a fresh process per case, or on a Ray worker.

An executor takes cases and yields records, one per case, as they finish (in any order); it
never writes files (only the driver does, through `bench.run.writer`). Contract for every executor:

- `run(cases, measure, on_start=None) -> Iterator[dict]` yields one full record per case
  (`bench.run.runner.RECORD_KEYS`, status ok/skipped/failed) and never raises for a case's failure;
  a worker that crashed, was killed or timed out still yields a `failed: ...` record
  (`bench.run.runner.failed_record` builds one);
- every record carries `hostname`, `pid`, `start_time`, `end_time`, `elapsed_s` of where it ran
  and `executor` = the executor's `name`;
- `on_start(case)` (optional) is called when a case is handed to a worker (progress display);
- closing the generator early (the driver stopping after Ctrl-C) must release workers: put the
  clean-up in a `finally:`.

A new executor (e.g. `bench.run.executors.ray_exec.RayExecutor`) subclasses `Executor` and is
listed in `EXECUTORS`.
"""

from __future__ import annotations

import importlib
from typing import Callable, Iterable, Iterator

from bench.case import Case, Measure

# name -> "module:class"; imported only when chosen (ray is an optional dependency).
EXECUTORS = {
    "inline": "bench.run.executors.inline:InlineExecutor",
    "process": "bench.run.executors.process:ProcessExecutor",
    "ray": "bench.run.executors.ray_exec:RayExecutor",
}


class Executor:
    """Base class: runs cases somewhere and yields their records as they finish."""

    name = "base"

    def __init__(self, prepare: Callable | None = None):
        # `prepare`: Case -> Prepared; None means bench.impls.prepare.prepare (tests inject fakes).
        self.prepare = prepare

    def run(self, cases: Iterable[Case], measure: Measure,
            on_start: Callable[[Case], None] | None = None) -> Iterator[dict]:
        raise NotImplementedError


def make_executor(name: str, **options) -> Executor:
    """Build the executor called `name` (`inline`, `process`, `ray`) with its options."""
    if name not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {name!r}")
    module_name, class_name = EXECUTORS[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ValueError(f"executor {name!r} is not available: {exc}") from None
    return getattr(module, class_name)(**options)
