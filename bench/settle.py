"""When has a timing settled? Pure rules on lists of per-call times, used by bench.timer.

Warm-up (before any sample is kept). The first calls of a function pay one-off costs: lazy
initialisation, thread-pool start-up, kernel selection, first-touch page faults, cold caches.
A fixed number of warm-up calls is either too few (the first torch case of a run paid ~20 ms a
call for several calls while T=64 took 0.1 ms) or wasteful. So warm-up blocks are timed and
warm-up stops once the timing stops improving:

    settled  <=>  t_k >= (1 - tol) * min(t_0 .. t_{k-1})        (at least two blocks seen)

i.e. the latest block is not faster than the best before it by more than `tol` (default 5%).
A slower block (noise) does not prolong the warm-up; only a still-falling trend does. Blocks
double in size, so a trend shows between blocks; at least two blocks are timed after any probe.
(What the rule cannot see: a one-off cost that fades by less than `tol` per block, spread thinly
over many calls; the trimming below catches what is left of it when there are samples enough.) The
warm-up is bounded in time (`bench.timer.WARMUP_MAX_S`) so a 1 s call is not warmed up for
several seconds: for such a call the one-off costs are a small share of the call anyway.

Trimming (after sampling). If the leading timed samples are still slower than the rest by more
than `TRIM_TOL` (10%), they belong to the warm-up after all; they are moved out of the samples (kept in the
record as warm-up samples), never more than half of them:

    drop s_0 while n > min_keep and s_0 > (1 + tol) * median(s_1 ..)
"""

from __future__ import annotations

import statistics

SETTLE_TOL = 0.05     # warm-up: "still improving" means faster by more than this
TRIM_TOL = 0.10       # trimming: a leading sample this much slower than the rest is warm-up


def settled(block_times: list[float], tol: float = SETTLE_TOL) -> bool:
    """True when the last block is no faster than the best earlier one by more than `tol`."""
    if len(block_times) < 2:
        return False
    return block_times[-1] >= (1.0 - tol) * min(block_times[:-1])


def trim_leading(samples: list[float], tol: float = TRIM_TOL,
                 min_keep: int = 1) -> tuple[list[float], list[float]]:
    """(trimmed leading samples, kept samples): leading samples slower than the median of the
    rest by more than `tol` are trimmed, at most half of them and never below `min_keep` kept."""
    kept = list(samples)
    trimmed: list[float] = []
    limit = len(samples) // 2
    while len(trimmed) < limit and len(kept) > max(1, min_keep) and \
            kept[0] > (1.0 + tol) * statistics.median(kept[1:]):
        trimmed.append(kept.pop(0))
    return trimmed, kept
