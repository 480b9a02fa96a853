"""Run every case in this process, one after the other (the default).

Tests: tests/run/test_executors.py, tests/run/test_ray_executor.py.
"""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

from bench.case import Case, Measure
from bench.run.executors import Executor


class InlineExecutor(Executor):
    """`run_case` in the driver process. Cheapest; a crash takes the sweep down with it."""

    name = "inline"

    def run(self, cases: Iterable[Case], measure: Measure,
            on_start: Callable[[Case], None] | None = None) -> Iterator[dict]:
        from bench.run.runner import run_case

        for case in cases:
            if on_start is not None:
                on_start(case)
            record = run_case(case, measure, prepare=self.prepare)
            record["executor"] = self.name
            yield record
