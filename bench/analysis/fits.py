"""Fitting scaling laws to measurements.

Power law: y = C * x^k  <=>  log y = log C + k log x.  The exponent k is the slope in log-log
space, estimated with Theil-Sen (the median of all pairwise slopes; robust to a few outliers such
as a cache-aliased size) and given a percentile bootstrap confidence interval over points
(resample the (x, y) points with replacement, refit, take the 2.5 / 97.5 percentiles).

Two-term model: t = a * n^2 * d + b * n * d^2 + c, with a, b, c >= 0 (scipy.optimize.nnls),
the quadratic term being attention's score/weighted-sum work and the linear term the projections
and feed-forward. The terms are equal at the crossover n* = b * d / a.

Every fit returns "not enough data" (status) instead of a number when the input cannot carry one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

OK = "ok"
NOT_ENOUGH = "not enough data"


@dataclass(frozen=True)
class PowerFit:
    """Result of fit_power_law. Numbers are NaN when status is 'not enough data'."""

    status: str                 # "ok" | "not enough data"
    reason: str = ""            # why not enough data (empty when ok)
    exponent: float = math.nan
    ci_low: float = math.nan
    ci_high: float = math.nan
    intercept: float = math.nan  # log C (natural log)
    r2: float = math.nan         # 1 - SS_res/SS_tot of log y around the Theil-Sen line
    n_points: int = 0
    x_min: float = math.nan
    x_max: float = math.nan
    method: str = "theil-sen, bootstrap over points"

    @property
    def ok(self) -> bool:
        return self.status == OK

    def predict(self, x) -> np.ndarray:
        return np.exp(self.intercept) * np.asarray(x, dtype=float) ** self.exponent

    def to_dict(self) -> dict:
        return asdict(self)


def _clean(x, y) -> tuple[np.ndarray, np.ndarray, str]:
    """Keep finite, strictly positive pairs (log-log needs both > 0). Returns (x, y, note)."""
    x = np.asarray(x, dtype=float).ravel()
    y = np.asarray(y, dtype=float).ravel()
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    dropped = int((~keep).sum())
    note = f"{dropped} point(s) not finite or not > 0 dropped" if dropped else ""
    return x[keep], y[keep], note


def theil_sen(lx, ly) -> tuple[float, float]:
    """(slope, intercept) of one series: the Theil-Sen slope (_pairwise_median_slopes) and the
    median of ly - slope * lx."""
    lx, ly = np.asarray(lx, float), np.asarray(ly, float)
    slope = float(_pairwise_median_slopes(lx[None, :], ly[None, :])[0])
    return slope, float(np.median(ly - slope * lx))


def _pairwise_median_slopes(lx: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """Theil-Sen slope of each row: median over pairs i < j with lx_i != lx_j.

    lx, ly: (R, n) -> (R,). Rows without any pair of distinct x give NaN.
    """
    i, j = np.triu_indices(lx.shape[1], 1)
    dx = lx[:, j] - lx[:, i]                                   # (R, n(n-1)/2)
    dy = ly[:, j] - ly[:, i]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(dx != 0, dy / dx, np.nan)
    out = np.full(lx.shape[0], np.nan)
    has = np.isfinite(s).any(axis=1)
    out[has] = np.nanmedian(s[has], axis=1)
    return out


def fit_power_law(x, y, *, min_points: int = 4, n_boot: int = 2000, ci: float = 0.95,
                  seed: int = 0) -> PowerFit:
    """Fit y = C x^k by Theil-Sen on (log x, log y); bootstrap CI over points.

    Not enough data when, after dropping non-finite and non-positive pairs, fewer than
    `min_points` distinct x remain, or y does not vary at all (nothing to fit).
    """
    from scipy.stats import theilslopes

    if min_points < 2:
        raise ValueError(f"min_points must be >= 2, got {min_points}")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    x, y, note = _clean(x, y)
    n_distinct = np.unique(x).size
    if n_distinct < min_points:
        reason = f"{n_distinct} distinct x value(s) usable, need {min_points}"
        return PowerFit(NOT_ENOUGH, reason=f"{reason}; {note}" if note else reason,
                        n_points=int(x.size))
    if np.ptp(y) == 0:
        return PowerFit(NOT_ENOUGH, reason="y is constant: nothing to fit", n_points=int(x.size))
    lx, ly = np.log(x), np.log(y)
    res = theilslopes(ly, lx)
    slope, intercept = float(res.slope), float(res.intercept)
    resid = ly - (intercept + slope * lx)
    ss_tot = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else math.nan

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_boot, x.size))     # (R, n)
    boot = _pairwise_median_slopes(lx[idx], ly[idx])
    boot = boot[np.isfinite(boot)]
    tail = (1 - ci) / 2 * 100
    lo, hi = np.percentile(boot, [tail, 100 - tail])
    return PowerFit(OK, reason=note, exponent=slope, ci_low=float(min(lo, slope)),
                    ci_high=float(max(hi, slope)), intercept=intercept, r2=r2,
                    n_points=int(x.size), x_min=float(x.min()), x_max=float(x.max()))


def local_slopes(x, y) -> list[dict]:
    """Slopes between successive points (sorted by x; repeated x averaged in log space).

    d log y / d log x between (x_i, x_{i+1}): the local exponent, which shows where a law
    changes (cache transitions, overhead at small sizes) instead of one number hiding it.
    """
    x, y, _ = _clean(x, y)
    if x.size == 0:
        return []
    xs = np.unique(x)
    ly = np.array([np.log(y[x == v]).mean() for v in xs])
    lx = np.log(xs)
    return [{"x_lo": float(xs[i]), "x_hi": float(xs[i + 1]),
             "slope": float((ly[i + 1] - ly[i]) / (lx[i + 1] - lx[i]))}
            for i in range(xs.size - 1)]


@dataclass(frozen=True)
class TwoTermFit:
    """t = a n^2 d + b n d^2 + c, non-negative coefficients. Relative residuals per point."""

    status: str
    reason: str = ""
    a: float = math.nan
    b: float = math.nan
    c: float = math.nan
    n_points: int = 0
    residuals: tuple = field(default_factory=tuple)   # (t_fit - t) / t, in input order
    max_abs_rel_residual: float = math.nan

    @property
    def ok(self) -> bool:
        return self.status == OK

    def crossover(self, d: float) -> float:
        """n* where a n^2 d = b n d^2, i.e. n* = b d / a (inf if a == 0, NaN if not ok)."""
        if not self.ok:
            return math.nan
        if self.a <= 0:
            return math.inf
        return self.b * d / self.a

    def predict(self, n, d) -> np.ndarray:
        n = np.asarray(n, dtype=float)
        d = np.asarray(d, dtype=float)
        return self.a * n ** 2 * d + self.b * n * d ** 2 + self.c

    def to_dict(self) -> dict:
        out = asdict(self)
        out["residuals"] = list(self.residuals)
        return out


def fit_two_term(n, d, t, *, min_points: int = 4, relative: bool = True) -> TwoTermFit:
    """Non-negative least squares fit of t = a n^2 d + b n d^2 + c.

    relative=True scales each row by 1/t, so the fit minimises relative error and the
    largest sizes do not drown out the small ones (times span orders of magnitude).
    """
    from scipy.optimize import nnls

    n = np.asarray(n, dtype=float).ravel()
    d = np.asarray(d, dtype=float).ravel()
    t = np.asarray(t, dtype=float).ravel()
    if not (n.shape == d.shape == t.shape):
        raise ValueError(f"n, d and t must have the same length, got {n.size}, {d.size}, {t.size}")
    keep = np.isfinite(n) & np.isfinite(d) & np.isfinite(t) & (n > 0) & (d > 0) & (t > 0)
    n, d, t = n[keep], d[keep], t[keep]
    sizes = np.unique(np.column_stack([n, d]), axis=0).shape[0] if n.size else 0
    if sizes < min_points:            # distinct (n, d): a d sweep at fixed n fits as well
        return TwoTermFit(NOT_ENOUGH, reason=f"{sizes} distinct (n, d) usable, "
                                             f"need {min_points}", n_points=int(n.size))
    A = np.column_stack([n ** 2 * d, n * d ** 2, np.ones_like(n)])   # (N, 3)
    scale = 1.0 / t if relative else np.ones_like(t)
    col = np.abs(A * scale[:, None]).max(axis=0)          # column scaling, for conditioning
    col[col == 0] = 1.0
    coef, _ = nnls(A * scale[:, None] / col, t * scale)
    a, b, c = (coef / col).tolist()
    fitted = A @ np.array([a, b, c])
    resid = (fitted - t) / t
    return TwoTermFit(OK, a=a, b=b, c=c, n_points=int(n.size), residuals=tuple(resid.tolist()),
                      max_abs_rel_residual=float(np.abs(resid).max()))


def median_draws(sample_sets, n_boot: int, seed: int = 0) -> np.ndarray:
    """Bootstrap medians, shape (n_boot, number of sets): each draw resamples every set of raw
    samples with replacement, in the order given, and takes its median. The one resampling the
    analyses' confidence intervals of median-based statistics share."""
    sets = [np.asarray(s, float) for s in sample_sets]
    rng = np.random.default_rng(seed)
    draws = [[np.median(rng.choice(s, s.size)) for s in sets] for _ in range(n_boot)]
    return np.array(draws, float).reshape(n_boot, len(sets))


def median_ratio_ci(numerator_samples, denominator_samples, n_boot: int, seed: int = 0,
                    percentiles=(2.5, 97.5)) -> tuple[float, float]:
    """Percentile-bootstrap interval of median(numerator) / median(denominator), resampling
    both cases' raw samples (numerator drawn first in each draw)."""
    medians = median_draws([numerator_samples, denominator_samples], n_boot, seed)
    lo, hi = np.percentile(medians[:, 0] / medians[:, 1], list(percentiles))
    return float(lo), float(hi)
