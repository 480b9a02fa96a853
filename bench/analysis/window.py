"""The time fits' window from the measurements themselves: the rate plateau at the top sizes.

Why not the cache size. The cache rule (rule.REGIME_PAST_CACHE) trusts the last-level cache the
machine reports; a VM may report its host's (a 2-vCPU Xeon said 260 MiB), and then almost no
size gets "past the cache" and a clean n² line goes "not enough data". The regime boundary is
visible in the times themselves: past a cache transition (or below it, the fixed per-call costs)
the achieved rate changes by a step, and in the asymptotic regime it does not.

The rule (FitRule(window="plateau"), the default for the time metric):

1. Only sizes with median >= min_time_s (the time floor) take part.
2. The core: the top `min_points` such sizes. Their own power law (Theil-Sen slope of log t on
   log x) defines the work: rate_i = x_i^k_core / t_i, relative to the core's. The work is the
   top sizes' own exponent, NOT the theory's FLOPs: a window chosen where time / FLOPs is flat
   would be chosen for agreement with the theory, and could never find it wrong.
3. The core itself must have its rates within ±plateau_band of its line, else there is no
   plateau: "not enough data", never a guess.
4. Walking down from the core, a size joins while its rate is within ±plateau_band of the
   core's (the core line extrapolated); a single size out of the band with an in-band size below
   it is kept (a power-of-two aliasing outlier, which the robust fit down-weights); two in a
   row, or the smallest size out of the band, end the window: the step of a cache transition.

A cache step of 3x lies far outside a ±20% band, so the window starts at the step; a gradual
drift of the rate (memory traffic growing slowly with n) stays in the window and shows in the
exponent, honestly. What the band can hide: nothing of the exponent inside the window (the fit
is the data's), only how far down the window reaches.

Tests: tests/analysis/test_window.py.
"""

from __future__ import annotations

import math

from bench.analysis.fits import theil_sen


def plateau_window(x, t, floor, min_points: int, band: float):
    """Boolean mask of the sizes in the rate plateau (see module docstring), or all False.

    x: the swept sizes; t: the times (the fitted metric); floor: mask of sizes at or above the
    time floor. Repeated sizes are judged by their median. Returns (mask, start): start is the
    smallest size in the window, or None when no plateau of min_points sizes exists.
    """
    import numpy as np

    x = np.asarray(x, float)
    t = np.asarray(t, float)
    ok = np.asarray(floor, bool) & np.isfinite(t) & (t > 0) & np.isfinite(x) & (x > 0)
    sizes = np.unique(x[ok])
    none = np.zeros(x.shape, bool), None
    if len(sizes) < min_points:
        return none
    lx = np.log(sizes)
    lt = np.array([np.log(np.median(t[ok & (x == s)])) for s in sizes])
    core = slice(len(sizes) - min_points, len(sizes))
    slope, icept = theil_sen(lx[core], lt[core])
    resid = lt - (icept + slope * lx)           # log(t / t_core_line) = -log(rate / core rate)
    limit = math.log1p(band)
    inside = np.abs(resid) <= limit
    if not inside[core].all():
        return none
    start = len(sizes) - min_points
    i = start - 1
    while i >= 0:
        if inside[i]:
            start = i
        elif i >= 1 and inside[i - 1]:
            start = i - 1                       # one outlier bridged by the size below it
            i -= 1
        else:
            break
        i -= 1
    lo = sizes[start]
    return ok & (x >= lo), float(lo)


def left_out_note(x, floor, start: float, variable: str, band: float) -> list[str]:
    """The sentence (in a list, or none) for the sizes at or above the time floor that lie below
    the plateau's `start` and so were left out."""
    import numpy as np

    x = np.asarray(x, float)
    out = np.asarray(floor, bool) & (x < start)
    if not out.any():
        return []
    return [f"{int(out.sum())} size(s) above the time floor left out ({variable} "
            f"{x[out].min():g}–{x[out].max():g}): their rate differs by more than ±{band:.0%} "
            f"from the top sizes' power law (a cache or overhead transition lies there)."]
