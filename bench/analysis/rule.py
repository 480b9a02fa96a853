"""The fit-range and verdict rules, as data (no NumPy: the CLI builds `--help` from the defaults).

Which points may test a scaling claim depends on what is measured:

    metric   regime            points fitted
    flops    all sizes         every size: the counts are exact (analytic or FlopCounterMode),
                               there is no cache regime or overhead; a lower-order term shows
                               in the exponent, honestly
    params   all sizes         same, for parameter counts
    memory   top octaves       x >= x_max / 2^top_octaves (the top three octaves of the sweep),
                               where lower-order buffers are small beside the leading term
    time     rate plateau      window="plateau" (the default): the longest run of top sizes with
                               median >= min_time_s whose rate stays within ±plateau_band of the
                               top sizes' own power law (bench.analysis.window), >= min_points
                               of them, else "no rate plateau" (not enough data); the reported
                               cache size is not used. window="cache" is the rule below:
             past the cache    when the block's working set reaches ws_factor x the last-level
                               cache within the sweep: the points past it with median >= min_time_s
                               (the cache transition, where time jumps 3-5x, lies below)
             cache-resident    when it never does (e.g. the fused SDPA kernel, whose working set
                               is B·T·D): the points with median >= min_time_s in the top octaves
             cache unknown     no cache size in meta.json: as cache-resident

Fewer than `min_points` distinct sizes: "not enough data", never a fit of what is left.

Tests: tests/analysis/test_claims.py (fit ranges and regimes).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bench import metrics

REGIME_ALL = "all sizes"
REGIME_TOP = "top octaves"
REGIME_PAST_CACHE = "past the cache"
REGIME_IN_CACHE = "cache-resident"
REGIME_CACHE_UNKNOWN = "cache size unknown"
REGIME_PLATEAU = "rate plateau"
REGIME_NO_PLATEAU = "no rate plateau"
WINDOWS = ("plateau", "cache")
_OCTAVE_WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}


def fmt_bytes(n: float) -> str:
    if not math.isfinite(n):
        return "?"
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


@dataclass(frozen=True)
class FitRule:
    """How fits choose their points and how verdicts are reached (see module docstring)."""

    ws_factor: float = 2.0
    min_time_s: float = 1e-3
    top_octaves: int = 3
    min_points: int = 4
    tolerance: float = 0.3
    flops_tolerance: float = 0.05
    ci: float = 0.95
    n_boot: int = 2000
    seed: int = 0
    window: str = "plateau"
    plateau_band: float = 0.2

    def __post_init__(self):
        if self.window not in WINDOWS:
            raise ValueError(f"FitRule.window must be one of {', '.join(WINDOWS)}, "
                             f"got {self.window!r}")
        for name in ("ws_factor", "tolerance", "flops_tolerance", "plateau_band"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FitRule.{name} must be > 0, got {getattr(self, name)!r}")
        if not self.min_time_s >= 0:
            raise ValueError(f"FitRule.min_time_s must be >= 0, got {self.min_time_s!r}")
        if not (isinstance(self.top_octaves, int) and self.top_octaves >= 1):
            raise ValueError(f"FitRule.top_octaves must be an integer >= 1, "
                             f"got {self.top_octaves!r}")
        if self.min_points < 3:
            raise ValueError(f"FitRule.min_points must be >= 3, got {self.min_points!r}")
        if not 0 < self.ci < 1:
            raise ValueError(f"FitRule.ci must be in (0, 1), got {self.ci!r}")

    def tolerance_for(self, metric: str) -> float:
        """flops_tolerance for a metric declared exact (bench.metrics), else tolerance."""
        declared = metrics.METRICS.get(metric)
        return self.flops_tolerance if declared is not None and declared.exact else self.tolerance

    @property
    def octaves_text(self) -> str:
        n = self.top_octaves
        return (f"the top {_OCTAVE_WORDS.get(n, n)} octave{'s' if n > 1 else ''} of the sweep, "
                f"x ≥ x_max/{2 ** n}")

    def regime_text(self, regime: str, llc_bytes: float = math.nan, start: float | None = None,
                    variable: str = "x") -> str:
        """One phrase: which points a fit in `regime` used, and which rule chose them (`start`:
        the smallest size of a rate plateau, `variable` its name)."""
        floor = f"median ≥ {self.min_time_s * 1e3:g} ms"
        band = f"±{self.plateau_band:.0%}"
        var = {"seq_len": "n", "d_model": "d"}.get(variable, variable)
        if regime == REGIME_PLATEAU:
            return (f"rate plateau from {var} = {start:g}: rate within {band} of the top "
                    f"sizes' power law, {floor}")
        if regime == REGIME_NO_PLATEAU:
            return (f"no rate plateau: fewer than {self.min_points} top sizes with {floor} "
                    f"whose rate stays within {band} of their power law")
        cache = (f"{self.ws_factor:g}× the {fmt_bytes(llc_bytes)} last-level cache"
                 if math.isfinite(llc_bytes) else f"{self.ws_factor:g}× the last-level cache")
        return {
            REGIME_ALL: "all sizes, an exact count",
            REGIME_TOP: self.octaves_text,
            REGIME_PAST_CACHE: f"working set past {cache}, {floor}",
            REGIME_IN_CACHE: (f"cache-resident, the working set under {cache} at every size: "
                              f"{floor} in {self.octaves_text}"),
            REGIME_CACHE_UNKNOWN: f"cache size unknown: {floor} in {self.octaves_text}",
        }[regime]

    def describe_by_metric(self, llc_bytes: float) -> dict[str, str]:
        cache = (f"{self.ws_factor:g}× the last-level cache "
                 f"({fmt_bytes(self.ws_factor * llc_bytes)})" if math.isfinite(llc_bytes) else
                 f"{self.ws_factor:g}× the last-level cache (size unknown here, so the "
                 f"cache-resident form applies)")
        return {
            "flops": "all sizes: analytic or counted FLOPs are exact, with no cache regime or "
                     "overhead; a lower-order term shows in the exponent.",
            "memory": f"{self.octaves_text}, where lower-order buffers are small beside "
                      f"the leading term.",
            "time": (f"the rate plateau: the longest run of top sizes with median ≥ "
                     f"{self.min_time_s * 1e3:g} ms whose rate (size^k / time, k the top "
                     f"{self.min_points} sizes' own exponent, not the theory's) stays within "
                     f"±{self.plateau_band:.0%} of the top sizes' (one outlier bridged); the "
                     f"reported cache size is not used; no such run of ≥ {self.min_points} "
                     f"sizes: 'no rate plateau', not enough data. Each fit names the size its "
                     f"plateau starts at.") if self.window == "plateau" else
                    (f"if the block's working set reaches {cache} within the sweep, the sizes "
                    f"past it with median ≥ {self.min_time_s * 1e3:g} ms (the cache transition "
                    f"lies below); if it never does (cache-resident throughout, e.g. the fused "
                    f"SDPA kernel), the sizes with median ≥ {self.min_time_s * 1e3:g} ms in "
                    f"{self.octaves_text}. Each fit names the regime it used."),
            "params": "all widths (exact counts).",
        }

    def describe(self, llc_bytes: float) -> str:
        parts = self.describe_by_metric(llc_bytes)
        return (f"FLOPs: {parts['flops']} Peak memory: {parts['memory']} Time: {parts['time']} "
                f"A fit needs ≥ {self.min_points} distinct sizes in its range, else 'not enough "
                f"data'. Exponent: Theil–Sen slope of log y on log x, {self.ci:.0%} CI by "
                f"bootstrap over points ({self.n_boot} resamples, seed {self.seed}).")

    def describe_verdict(self) -> str:
        return (f"held: the whole {self.ci:.0%} CI lies within theory ± {self.tolerance:g} "
                f"(± {self.flops_tolerance:g} for FLOPs and parameter counts, which are exact); "
                f"did not hold: the whole CI lies outside that band; not enough data: too few "
                f"points in the fit range, or the CI straddles the band's edge.")

    def to_dict(self) -> dict:
        return asdict(self)
