"""One declaration per metric: which record column holds it, its unit, and how it is fitted.

A metric is what the analysis fits against a swept variable and the report judges:

- `column`: the analysis frame's column (the record's, or one derived from it in
  bench.analysis.frame: `flops` is the counted value where counted, else the analytic);
- `unit` and `label`: for tables and axis labels;
- `fit_range`: which points may test the claim (bench.analysis.rule): "all" for exact counts,
  "top_octaves" for memory (the asymptote), "time" for time (past the last-level cache, else the
  top octaves above the timer's floor);
- `exact`: an exact count, judged with the tight tolerance (FitRule.flops_tolerance).

To add a metric: a `Metric(...)` here (or `register()` from a plugin), the record column it
reads, and the claims (bench/blocks/__init__.py) that name it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str
    column: str
    unit: str
    label: str
    fit_range: str          # "all" | "top_octaves" | "time"
    exact: bool = False


METRICS: dict[str, Metric] = {}


def register(metric: Metric) -> Metric:
    if metric.fit_range not in ("all", "top_octaves", "time"):
        raise ValueError(f"metric {metric.name}: fit_range must be all, top_octaves or time")
    METRICS[metric.name] = metric
    return metric


register(Metric("time", "median_s", "s", "time per call (s)", fit_range="time"))
register(Metric("flops", "flops", "FLOP", "FLOPs per call", fit_range="all", exact=True))
register(Metric("memory", "peak_bytes", "bytes", "peak memory above baseline",
                fit_range="top_octaves"))
register(Metric("params", "params", "parameters", "parameters", fit_range="all", exact=True))
register(Metric("step_time", "profile_steps_s", "s", "time per step of the forward (s)",
                fit_range="time"))            # {step: s}: measure.profile (bench.profile.record)


def get(name: str) -> Metric:
    try:
        return METRICS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown metric {name!r}; allowed: {', '.join(METRICS)}") from None


def names() -> tuple[str, ...]:
    return tuple(METRICS)
