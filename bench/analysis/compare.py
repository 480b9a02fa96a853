"""Two runs, case by case: did anything get slower, and how well do the runs repeat?

For each case measured (status ok, raw samples present) in both runs:

    ratio = median_B / median_A            (> 1: B is slower)
    p     = Mann-Whitney U, one-sided, on the raw samples: P(as extreme | B not slower than A)

p comes from `scipy.stats.mannwhitneyu` (method "auto": the exact distribution for small
samples without ties, the normal approximation with tie and continuity correction otherwise),
which works for any sample count; nothing here forms C(n_A + n_B, n_A) as a float.

Many cases are compared at once, so the p-values are corrected for the number of cases m with
Holm's step-down method (controls the family-wise error rate at alpha, uniformly more powerful
than Bonferroni): sort p ascending, p_(1) <= ... <= p_(m);

    p_holm_(i) = max_{j <= i} min(1, (m - j + 1) * p_(j))

A case is a regression when ratio - 1 > threshold AND p_holm < alpha: big enough to matter and
unlikely to be noise across all m cases. With few samples the test cannot reach a small p at
all (its smallest one-sided p is 1 / C(n_A + n_B, n_A): 1/20 with 3 + 3), and after the
correction the best a case can get is alpha / m; a slower case whose floor is above that is
reported as "slower, too few samples" instead of being silently passed or flagged.

Repeatability (two runs of the same commit and settings should agree): among the cases whose
median is >= `min_time_s` in both runs (default 1 ms: below it a case is mostly call overhead),
the share within +-5% and +-10% (|ratio - 1| <= 0.05, 0.10), the count beyond +-15%, and the
worst ratio (largest |log ratio|); the same over all common cases.

A whole run can also be faster or slower than the other: the machine's state moves over minutes
(another tenant, the host's clocks), and all cases with it. The run-wide factor is the median
ratio over the timed cases; the share of cases within +-5% of that factor (and the count beyond
+-15% of it) says how well the cases repeat apart from it. Nothing is corrected with it: a
regression of every case (a slower BLAS, say) is a run-wide factor too, and the per-case table
and its statuses stay on the raw ratios.

Beside it, how well each run repeats inside itself (runs timed in passes, bench.run.passes): over the
same timed cases, the share of pairs of passes of one case whose medians agree within +-5%
(every pair of a case's passes, each case weighted alike), and the median and 90th percentile of
a case's pass spread max/min. Two passes of a run are two measurements of the same case minutes
apart on the same machine, so this is the machine's own repeatability; two runs, compared on
their lowest pass medians, are expected to agree better than two passes and not much better
than the machine allows. A run of one pass has no such figure.

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


def compare_case(a: dict, b: dict) -> dict:
    """The per-case numbers (status is set by `compare_records`, after the correction)."""
    sa, sb = _samples(a), _samples(b)
    med_a = _positive(a.get("median_s")) or _median(sa)
    med_b = _positive(b.get("median_s")) or _median(sb)
    ratio = med_b / med_a
    p_slower, p_faster = _p_values(sb, sa)
    return {"case_id_a": a.get("case_id"), "case_id_b": b.get("case_id"), "label": label(a),
            "median_a_s": med_a, "median_b_s": med_b, "ratio": ratio, "change": ratio - 1,
            "p_slower": p_slower, "p_faster": p_faster, "n_a": len(sa), "n_b": len(sb),
            "min_p": min_p_value(len(sa), len(sb)),
            "passes_a": _pass_medians(a), "passes_b": _pass_medians(b),
            "unstable_a": bool(a.get("unstable")), "unstable_b": bool(b.get("unstable")),
            "interference_a": bool(a.get("interference")),
            "interference_b": bool(b.get("interference"))}


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


def _median(values: list[float]) -> float:
    return statistics.median(values)


def label(r: dict) -> str:
    return (f"{r.get('impl')}/{r.get('block')} B={r.get('batch')} T={r.get('seq_len')} "
            f"d={r.get('d_model')} {r.get('precision')} {r.get('mode')} thr={r.get('threads')}")


def _classify(row: dict, threshold: float, alpha: float, m: int) -> str:
    if row["change"] > threshold:
        if row["p_slower_holm"] < alpha:
            return REGRESSION
        return TOO_FEW if row["min_p"] >= alpha / m else SLOWER_NS
    if -row["change"] > threshold:
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
    rows = [compare_case(a[k], b[k]) for k in common]
    m = max(1, len(rows))
    for key in ("p_slower", "p_faster"):
        for row, adjusted in zip(rows, holm([r[key] for r in rows])):
            row[f"{key}_holm"] = adjusted
    for row in rows:
        row["status"] = _classify(row, threshold, alpha, m)
    rows.sort(key=lambda r: -r["ratio"])
    counts = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    return {"threshold": threshold, "alpha": alpha, "correction": "holm", "ignore": list(ignore),
            "n_common": len(rows), "only_a": len(set(a) - set(b)), "only_b": len(set(b) - set(a)),
            "counts": counts, "regressions": counts[REGRESSION],
            "repeatability": repeatability(rows, min_time_s), "rows": rows}


def _pct(x) -> str:
    return "-" if x is None else f"{x:.0%}"


def format_repeatability(rep: dict) -> list[str]:
    lines = []
    for key, title in (("timed", f"median >= {rep['min_time_s'] * 1e3:g} ms"),
                       ("all", "all common cases")):
        s = rep[key]
        worst = (f"worst B/A {s['worst_ratio']:.3f} ({s['worst_label']})"
                 if s["worst_ratio"] is not None else "worst B/A -")
        lines.append(f"repeatability, {title}: {s['n']} case(s); within +-5%: "
                     f"{s['within_5pct']} ({_pct(s['share_within_5pct'])}), within +-10%: "
                     f"{s['within_10pct']} ({_pct(s['share_within_10pct'])}), beyond +-15%: "
                     f"{s['beyond_15pct']}; {worst}; unstable A {s['unstable_a']}, "
                     f"B {s['unstable_b']}; measured under interference A "
                     f"{s['interference_a']}, B {s['interference_b']}")
    wide = rep.get("run_wide") or {}
    if wide.get("n"):
        lines.append(f"run-wide factor, median >= {rep['min_time_s'] * 1e3:g} ms: B/A "
                     f"{wide['factor']:.3f} (median ratio of {wide['n']} cases); around it, "
                     f"within +-5%: {wide['share_within_5pct']:.0%}, beyond +-15%: "
                     f"{wide['beyond_15pct']} (the statuses above use the raw ratios)")
    inside = [(name, rep.get(f"within_run_{name.lower()}") or {}) for name in ("A", "B")]
    parts = [f"{name} {w['share_pairs_within_5pct']:.0%} of pass pairs within +-5%, pass "
             f"spread max/min p50 {w['spread_p50']:.3f} p90 {w['spread_p90']:.3f} "
             f"({w['n']} cases)" for name, w in inside if w.get("n")]
    if parts:
        lines.append(f"inside each run, median >= {rep['min_time_s'] * 1e3:g} ms (the same case "
                     f"in two passes, minutes apart: the machine's own repeatability): "
                     + "; ".join(parts))
    return lines


def format_table(result: dict, name_a: str = "A", name_b: str = "B") -> str:
    lines = [f"{'case':<58} {'A ms':>10} {'B ms':>10} {'B/A':>7} {'p(slower)':>10} "
             f"{'p Holm':>8}  status"]
    for r in result["rows"]:
        lines.append(f"{r['label'][:58]:<58} {r['median_a_s'] * 1e3:>10.3f} "
                     f"{r['median_b_s'] * 1e3:>10.3f} {r['ratio']:>7.3f} {r['p_slower']:>10.2g} "
                     f"{r['p_slower_holm']:>8.2g}  {r['status']}"
                     + (f" (min p {r['min_p']:.2g}, n {r['n_a']}+{r['n_b']})"
                        if r["status"] == TOO_FEW else ""))
    c = result["counts"]
    lines.append("")
    lines.append(f"A = {name_a}, B = {name_b}: {result['n_common']} common cases "
                 f"({result['only_a']} only in A, {result['only_b']} only in B); "
                 f"{c[REGRESSION]} regression(s), {c[IMPROVEMENT]} improvement(s), "
                 f"{c[SLOWER_NS] + c[TOO_FEW]} slower but not significant "
                 f"({c[TOO_FEW]} with too few samples to tell), "
                 f"{c[UNCHANGED]} unchanged (threshold {result['threshold']:.0%}, "
                 f"alpha {result['alpha']:g} after Holm's correction for "
                 f"{result['n_common']} cases, one-sided Mann-Whitney U on raw samples).")
    lines.extend(format_repeatability(result["repeatability"]))
    return "\n".join(lines)
