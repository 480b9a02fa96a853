"""One declaration per metric: which record column holds it, its unit, and how it is fitted.

A metric is what the analysis fits against a swept variable and the report judges:

- `column`: the analysis frame's column (the record's, or one derived from it in
  bench.analysis.frame: `flops` is the counted value where counted, else the analytic);
- `unit`, `label` (the plots' axis label) and `words` (the verdict sentences: "peak memory");
- `fit_range`: which points may test the claim (bench.analysis.rule): "all" for exact counts,
  "top_octaves" for memory (the asymptote), "time" for time (past the last-level cache, else the
  top octaves above the timer's floor);
- `exact`: an exact count, judged with the tight tolerance (FitRule.flops_tolerance);
- `fitted`: fitted against every swept variable by bench.analysis.claims.fit_all (parameter
  counts have their own fit; per-step times are a dict, not a number);
- `value`: optional `value(record) -> float | None`, the column computed from a finished
  record's fields. The run's driver calls `fill(record)` before it writes each record, so the
  column lands in records.jsonl without any worker knowing the metric.

A metric of your own (docs/PLUGINS.md): `register(Metric(...))` in a module the config names in
`plugins:`, and the claims it tests via bench.blocks.add_claim. The record gets the column
(bench.record.columns), the analysis fits it and the report gives it a verdict row.

Tests: tests/analysis/test_plugin_metric.py, tests/test_record.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

FIT_RANGES = ("all", "top_octaves", "time")


@dataclass(frozen=True)
class Metric:
    name: str
    column: str
    unit: str
    label: str              # axis label
    fit_range: str          # "all" | "top_octaves" | "time"
    exact: bool = False
    words: str = ""         # in sentences; "" = the name
    fitted: bool = True     # fitted against each swept variable (claims.fit_all)
    value: Callable[[dict], float | None] | None = None   # the column from a finished record

    @property
    def text(self) -> str:
        return self.words or self.name


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    """Add a metric declaration (a plugin module may call this at import)."""
    if metric.fit_range not in FIT_RANGES:
        raise ValueError(f"metric {metric.name}: fit_range must be all, top_octaves or time, "
                         f"got {metric.fit_range!r}")
    if metric.value is not None and not callable(metric.value):
        raise ValueError(f"metric {metric.name}: value must be a function of the record")
    METRICS[metric.name] = metric
    return metric


register(Metric("time", "median_s", "s", "median time per call (s)", fit_range="time",
                words="time"))
register(Metric("flops", "flops", "FLOP", "FLOPs per call", fit_range="all", exact=True,
                words="FLOPs"))
register(Metric("memory", "peak_bytes", "bytes", "peak memory above baseline (bytes)",
                fit_range="top_octaves", words="peak memory"))
register(Metric("params", "params", "parameters", "parameters", fit_range="all", exact=True,
                words="parameters", fitted=False))     # bench.analysis.claims.params_fits
register(Metric("step_time", "profile_steps_s", "s", "time per step of the forward (s)",
                fit_range="time", words="time per step", fitted=False))
#                                  {step: s}: measure.profile (bench.profile.record)
BUILTIN = tuple(METRICS)


def get(name: str) -> Metric:
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown metric {name!r}; allowed: {', '.join(METRICS)}") from None


def names() -> tuple[str, ...]:
    return tuple(METRICS)


def fitted() -> tuple[Metric, ...]:
    """The metrics fitted against each swept variable, in registration order."""
    return tuple(m for m in METRICS.values() if m.fitted)


def fill(record: dict) -> dict:
    """`record` with the column of every metric that has a `value` hook (None unless the case
    measured: status "ok"). Called by the driver right before the record is written."""
    hooks = [m for m in METRICS.values() if m.value is not None]
    if not hooks:
        return record
    out = dict(record)
    for m in hooks:
        out[m.column] = m.value(out) if out.get("status") == "ok" else None
    return out
