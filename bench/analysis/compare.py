"""Two runs, case by case: did anything get slower, and how well do the runs repeat?

The model: a case's time is (the machine's speed now) x (the code's cost) x noise. The machine's
speed drifts over minutes (an A/A pair 10 min apart: every case 20% slower), so each case is
timed beside a fixed calibration probe (bench.trackers.calibration, record field calib_s) and
the probe's ratio divides the case's out (duet benchmarking, Bulej et al. 2020). For each case
measured (status ok, raw samples present) in both runs:

    ratio     = median_B / median_A                     (raw; > 1: B is slower)
    probe     = calib_B / calib_A                       (the machine's drift beside this case)
    corrected = ratio / probe                           (ratio when a run has no calib_s)
    noise     = the case's own pass-to-pass noise: max over both runs of pass_spread - 1; one
                pass: IQR/median
    p         = Mann-Whitney U, one-sided, on the raw samples divided by their run's calib
                (raw without): P(as extreme | B not slower than A)

calib: the running median of calib_s over the case and CALIB_WINDOW neighbours either side (run
order, same probe): a drift lasts minutes and moves them all; a busy moment spoils one probe.

Without calib_s (schema version < 3, measure.calibrate false): the raw ratios, with a note.
p comes from `scipy.stats.mannwhitneyu` (method "auto": exact for small samples without ties,
else the normal approximation with tie and continuity correction), for any sample count.

Many cases are compared at once, so the p-values are corrected for the number of cases m with
Holm's step-down method (controls the family-wise error rate at alpha, uniformly more powerful
than Bonferroni): sort p ascending, p_(1) <= ... <= p_(m);

    p_holm_(i) = max_{j <= i} min(1, (m - j + 1) * p_(j))

A case is a regression when corrected - 1 > max(threshold, noise, scatter) AND p_holm < alpha:
bigger than the threshold, than the case's own noise, and than the pair's scatter (the cases'
corrected ratios around their implementation's median: exp(z x 1.4826 x MAD of their logs) - 1,
the median over implementations, z the two-sided normal quantile at alpha / m (case_scatter,
scatter_z); a case that
only moved as much as cases of this pair move anyway is not a regression: on a VM where two runs
agree within 5% in a third of the cases, a 25% change cannot be told from noise and is not
flagged), and unlikely to be chance across all m cases. Few
samples cannot reach a small p (the smallest one-sided p is 1 / C(n_A + n_B, n_A): 1/20 with
3 + 3; after the correction alpha / m is needed): such a slower case is "slower, too few
samples", neither passed silently nor flagged.

Repeatability (two runs of the same commit and settings should agree): among the cases whose
median is >= `min_time_s` in both runs (default 1 ms: below it a case is mostly call overhead),
the share within +-5% and +-10% (|ratio - 1| <= 0.05, 0.10), the count beyond +-15%, and the
worst ratio (largest |log ratio|); the same over all common cases.

A whole run can also be faster or slower than the other: the machine's state moves over minutes
(another tenant, the host's clocks), and all cases with it. The run-wide factor is the median
ratio over the timed cases; the share of cases within +-5% of that factor (and the count beyond
+-15% of it) says how well the cases repeat apart from it. The statuses are not corrected with
it (a regression of every case, a slower BLAS, say, is a run-wide factor too) but with each
case's probe, which a slower implementation does not slow down (a slower library the probe uses
too, BLAS under the NumPy probe, cancels with it: the raw ratio and the probe's stay shown).

Each run's own repeatability (passes, bench.run.passes), over the same timed cases: the share
of pairs of a case's passes agreeing within +-5% (cases weighted alike), the p50 and p90 of a
case's pass spread max/min. A run of one pass has no such figure.

Cases are matched on case_id (the hash of all case fields), or, with `ignore`, on the case
fields other than the ignored ones (to compare, say, threads=1 against threads=2).
"""

from __future__ import annotations

import math
import statistics

from bench.case import CASE_FIELDS
from bench.record import quantile            # the timer's, bit for bit

REGRESSION = "regression"
IMPROVEMENT = "improvement"
UNCHANGED = "unchanged"
SLOWER_NS = "slower, not significant"
FASTER_NS = "faster, not significant"
TOO_FEW = "slower, too few samples"
STATUSES = (REGRESSION, IMPROVEMENT, UNCHANGED, SLOWER_NS, FASTER_NS, TOO_FEW)
BANDS = (0.05, 0.10, 0.15)
CALIB_WINDOW = 3                # neighbours either side in the running median of calib_s


def match_key(record: dict, ignore=()) -> tuple:
    """case_id when nothing is ignored and the record has one; else the remaining case fields."""
    if not ignore and record.get("case_id"):
        return ("case_id", record["case_id"])
    return tuple((f, repr(record.get(f))) for f in CASE_FIELDS if f not in ignore and f != "seed")


def log_min_p_value(n_a: int, n_b: int) -> float:
    """log of the smallest one-sided exact Mann-Whitney p: -log C(n_a + n_b, n_a) (lgamma)."""
    return -(math.lgamma(n_a + n_b + 1) - math.lgamma(n_a + 1) - math.lgamma(n_b + 1))


def min_p_value(n_a: int, n_b: int) -> float:
    """Smallest one-sided p of the exact test, 1 / C(n_a + n_b, n_a); underflows to 0.0, never
    overflows (computed in log space)."""
    return math.exp(log_min_p_value(n_a, n_b))


def holm(p_values: list[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order (see the module docstring)."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [1.0] * m
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _samples(record: dict) -> list[float]:
    s = record.get("samples_s") or []
    return [float(v) for v in s
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
            and v > 0]


def _p_values(sb: list[float], sa: list[float]) -> tuple[float, float]:
    """(p B slower, p B faster), one-sided; 1.0 where the test is undefined (all ties)."""
    from scipy.stats import mannwhitneyu

    out = []
    for alternative in ("greater", "less"):
        p = float(mannwhitneyu(sb, sa, alternative=alternative).pvalue)
        out.append(p if math.isfinite(p) else 1.0)
    return out[0], out[1]


def compare_case(a: dict, b: dict, calib_a: float | None = None,
                 calib_b: float | None = None) -> dict:
    """The per-case numbers (status is set by `compare_records`, after the correction); calib_*
    default to the records' own calib_s."""
    sa, sb = _samples(a), _samples(b)
    med_a = _positive(a.get("median_s")) or statistics.median(sa)
    med_b = _positive(b.get("median_s")) or statistics.median(sb)
    ratio = med_b / med_a
    calib_a = calib_a or _positive(a.get("calib_s"))
    calib_b = calib_b or _positive(b.get("calib_s"))
    probe = calib_b / calib_a if calib_a and calib_b else None
    if probe:
        sa, sb = [x / calib_a for x in sa], [x / calib_b for x in sb]
    corrected = ratio / probe if probe else ratio
    noise = max(_noise(a), _noise(b))
    p_slower, p_faster = _p_values(sb, sa)
    return {"case_id_a": a.get("case_id"), "case_id_b": b.get("case_id"), "label": label(a),
            "impl": a.get("impl"), "median_a_s": med_a, "median_b_s": med_b, "ratio": ratio, "probe_ratio": probe,
            "corrected": corrected, "change": corrected - 1, "noise": noise,
            "calib_a_s": calib_a, "calib_b_s": calib_b,
            "p_slower": p_slower, "p_faster": p_faster, "n_a": len(sa), "n_b": len(sb),
            "min_p": min_p_value(len(sa), len(sb)),
            "passes_a": _pass_medians(a), "passes_b": _pass_medians(b),
            "unstable_a": bool(a.get("unstable")), "unstable_b": bool(b.get("unstable")),
            "interference_a": bool(a.get("interference")),
            "interference_b": bool(b.get("interference"))}


def smoothed_calib(records: list[dict], window: int = CALIB_WINDOW) -> dict[int, float]:
    """id(record) -> the running median of calib_s (module docstring), per calib_probe."""
    by_probe: dict = {}
    for r in records:
        if isinstance(r, dict) and r.get("status") == "ok" and _positive(r.get("calib_s")):
            by_probe.setdefault(r.get("calib_probe"), []).append(r)
    out = {}
    for rs in by_probe.values():
        values = [float(r["calib_s"]) for r in rs]
        for i, r in enumerate(rs):
            out[id(r)] = statistics.median(values[max(0, i - window):i + window + 1])
    return out


def _noise(record: dict) -> float:
    """The case's own pass-to-pass noise in one run: max/min - 1 of its pass medians; with one
    pass, IQR/median (module docstring)."""
    medians = _pass_medians(record)
    if len(medians) >= 2:
        return max(medians) / min(medians) - 1
    spread = _positive(record.get("spread"))
    if spread is None and _positive(record.get("iqr_s")) and _positive(record.get("median_s")):
        spread = record["iqr_s"] / record["median_s"]
    return spread or 0.0


def _pass_medians(record: dict) -> list[float]:
    values = record.get("pass_medians_s")
    if not isinstance(values, (list, tuple)):          # absent, or NaN in a table's column
        return []
    return [v for v in (_positive(x) for x in values) if v is not None]


def within_run(medians_by_case: list[list[float]]) -> dict:
    """Pass-to-pass agreement inside one run (module docstring): cases with >= 2 passes."""
    cases = [m for m in medians_by_case if len(m) >= 2]
    if not cases:
        return {"n": 0, "share_pairs_within_5pct": None, "spread_p50": None, "spread_p90": None}
    shares, spreads = [], []
    for medians in cases:
        pairs = [(x, y) for i, x in enumerate(medians) for y in medians[i + 1:]]
        shares.append(sum(abs(y / x - 1) <= 0.05 for x, y in pairs) / len(pairs))
        spreads.append(max(medians) / min(medians))
    spreads = tuple(sorted(spreads))
    return {"n": len(cases), "share_pairs_within_5pct": sum(shares) / len(shares),
            "spread_p50": quantile(spreads, 0.5), "spread_p90": quantile(spreads, 0.9)}


def pass_agreement(records: list[dict], min_time_s: float = 1e-3) -> dict:
    """`within_run` over one run's ok records whose median is >= `min_time_s`, with the most
    passes any of them had (1 for a run of one pass, where n = 0)."""
    medians = [_pass_medians(r) for r in records
               if r.get("status") == "ok" and (_positive(r.get("median_s")) or 0) >= min_time_s]
    medians = [m for m in medians if m]
    return {**within_run(medians), "min_time_s": min_time_s,
            "passes": max((len(m) for m in medians), default=1)}


def _positive(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) and value > 0 else None


def label(r: dict) -> str:
    return (f"{r.get('impl')}/{r.get('block')} B={r.get('batch')} T={r.get('seq_len')} "
            f"d={r.get('d_model')} {r.get('precision')} {r.get('mode')} thr={r.get('threads')}")


def scatter_z(m: int, alpha: float) -> float:
    """How many robust sigmas a case must stand out of the pair's scatter: the two-sided normal
    quantile at alpha / m (Bonferroni over the m cases, as Holm controls the p-values), at
    least 2.5: ~3.9 sigmas for 124 cases at alpha 0.01 (the largest of m chance excursions)."""
    return max(2.5, statistics.NormalDist().inv_cdf(1 - alpha / (2 * max(1, m))))


def case_scatter(rows: list[dict], min_time_s: float = 1e-3, z: float = 2.5) -> dict:
    """How far the cases' corrected ratios scatter in this pair, implementation by
    implementation: per implementation (>= 5 cases) sigma = 1.4826 x MAD of log(corrected)
    around its own median, then the median over implementations; floor = exp(z x sigma) - 1
    (z: scatter_z), the change a case must exceed to stand out from what two runs on this machine
    differ by anyway. Per implementation, so that one implementation made slower throughout
    (a uniform shift of its cases) does not widen the yardstick it is judged by; the cases
    below min_time_s (mostly call overhead, noisier) get a yardstick of their own ("short")."""
    def yardstick(selected: list[dict], pool: bool) -> dict:
        groups: dict = {}
        for r in selected:
            if r["corrected"] > 0:
                groups.setdefault(r.get("impl"), []).append(math.log(r["corrected"]))
        def mad_sigma(v):
            return 1.4826 * statistics.median(abs(x - statistics.median(v)) for x in v)
        sigmas = [mad_sigma(v) for v in groups.values() if len(v) >= 5]
        pooled = [x for v in groups.values() for x in v]
        if pool and not sigmas and len(pooled) >= 5:   # short cases: all of them together
            sigmas = [mad_sigma(pooled)]
        sigma = statistics.median(sigmas) if sigmas else None
        return {"n": sum(len(v) for v in groups.values()), "groups": len(sigmas),
                "sigma": sigma, "z": z, "floor": math.exp(z * sigma) - 1 if sigmas else 0.0}

    def timed(r):
        return min(r["median_a_s"], r["median_b_s"]) >= min_time_s

    out = yardstick([r for r in rows if timed(r)], pool=False)   # no group of 5: no floor
    short = yardstick([r for r in rows if not timed(r)], pool=True)
    out["short"] = {**short, "floor": max(short["floor"], out["floor"])}
    for r in rows:
        r["scatter_floor"] = out["floor"] if timed(r) else out["short"]["floor"]
    return out


def _classify(row: dict, threshold: float, alpha: float, m: int) -> str:
    floor = row["floor"] = max(threshold, row["noise"])
    if row["change"] > floor:
        if row["p_slower_holm"] < alpha:
            return REGRESSION
        return TOO_FEW if row["min_p"] >= alpha / m else SLOWER_NS
    if -row["change"] > floor:
        return IMPROVEMENT if row["p_faster_holm"] < alpha else FASTER_NS
    return UNCHANGED


def repeatability(rows: list[dict], min_time_s: float = 1e-3) -> dict:
    """Share of cases within each band, count beyond the widest, worst ratio (see module doc)."""
    def summary(selected: list[dict]) -> dict:
        n = len(selected)
        out = {"n": n}
        for band in BANDS:
            within = sum(abs(r["ratio"] - 1) <= band for r in selected)
            out[f"within_{round(band * 100)}pct"] = within
            out[f"share_within_{round(band * 100)}pct"] = within / n if n else None
        out["beyond_15pct"] = n - out["within_15pct"]
        worst = max(selected, key=lambda r: abs(math.log(r["ratio"])), default=None)
        out["worst_ratio"] = worst["ratio"] if worst else None
        out["worst_label"] = worst["label"] if worst else None
        for key in ("unstable_a", "unstable_b", "interference_a", "interference_b"):
            out[key] = sum(r[key] for r in selected)
        return out

    timed = [r for r in rows if min(r["median_a_s"], r["median_b_s"]) >= min_time_s]
    return {"min_time_s": min_time_s, "timed": summary(timed), "all": summary(rows),
            "run_wide": run_wide(timed),
            "within_run_a": within_run([r.get("passes_a") or [] for r in timed]),
            "within_run_b": within_run([r.get("passes_b") or [] for r in timed])}


def run_wide(rows: list[dict]) -> dict:
    """The median ratio B/A over `rows` and how the cases scatter around it (module doc)."""
    if not rows:
        return {"n": 0, "factor": None, "share_within_5pct": None, "beyond_15pct": None}
    logs = [math.log(r["ratio"]) for r in rows]
    center = statistics.median(logs)
    around = [abs(x - center) for x in logs]
    return {"n": len(rows), "factor": math.exp(center),
            "share_within_5pct": sum(d <= math.log(1.05) for d in around) / len(rows),
            "beyond_15pct": sum(d > math.log(1.15) for d in around)}


def compare_records(records_a: list[dict], records_b: list[dict], threshold: float = 0.05,
                    alpha: float = 0.01, ignore=(), min_time_s: float = 1e-3) -> dict:
    """Compare every case measured in both runs. Returns a JSON-ready dict (see module doc)."""
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not min_time_s >= 0:
        raise ValueError(f"min_time_s must be >= 0, got {min_time_s}")
    unknown = sorted(set(ignore) - set(CASE_FIELDS))
    if unknown:
        raise ValueError(f"ignore: unknown case field(s) {unknown}; allowed: {list(CASE_FIELDS)}")

    def usable(records):
        out = {}
        for r in records:
            if isinstance(r, dict) and r.get("status") == "ok" and _samples(r):
                out.setdefault(match_key(r, ignore), r)
        return out

    a, b = usable(records_a), usable(records_b)
    common = [k for k in a if k in b]
    cal_a, cal_b = smoothed_calib(records_a), smoothed_calib(records_b)
    rows = [compare_case(a[k], b[k], cal_a.get(id(a[k])), cal_b.get(id(b[k]))) for k in common]
    m = max(1, len(rows))
    for key in ("p_slower", "p_faster"):
        for row, adjusted in zip(rows, holm([r[key] for r in rows])):
            row[f"{key}_holm"] = adjusted
    scatter = case_scatter(rows, min_time_s, scatter_z(m, alpha))
    for row in rows:
        row["status"] = _classify(row, max(threshold, row["scatter_floor"]), alpha, m)
    rows.sort(key=lambda r: -r["corrected"])
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    return {"threshold": threshold, "alpha": alpha, "correction": "holm", "ignore": list(ignore),
            "n_common": len(rows), "only_a": len(set(a) - set(b)), "only_b": len(set(b) - set(a)),
            "counts": counts, "regressions": counts[REGRESSION],
            "calibration": calibration(rows), "scatter": scatter,
            "repeatability": repeatability(rows, min_time_s), "rows": rows}


def calibration(rows: list[dict]) -> dict:
    """How many cases were drift-corrected, the run-wide probe ratio B/A (median over them), the
    median corrected ratio and the share of corrected ratios within +-5%; a note without calib."""
    done = [r for r in rows if r.get("probe_ratio")]
    out = {"n": len(rows), "n_corrected": len(done), "probe_factor": None,
           "corrected_factor": None, "share_within_5pct": None}
    if done:
        gm = lambda key: math.exp(statistics.median(math.log(r[key]) for r in done))  # noqa: E731
        out.update(probe_factor=gm("probe_ratio"), corrected_factor=gm("corrected"),
                   share_within_5pct=sum(abs(r["corrected"] - 1) <= 0.05 for r in done) / len(done))
    if len(done) < len(rows):
        out["note"] = (f"{len(rows) - len(done)} of {len(rows)} case(s) have no calibration probe "
                       "in one run (records of schema version < 3, or measure.calibrate false): "
                       "compared on their raw ratios, a drift of the whole machine not removed")
    return out
