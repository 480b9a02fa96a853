"""Two runs, case by case: did anything get slower?

For each case measured (status ok, raw samples present) in both runs:

    ratio = median_B / median_A            (> 1: B is slower)
    p     = Mann-Whitney U, one-sided, on the raw samples: P(as extreme | B not slower than A)

A case is a regression when ratio - 1 > threshold AND p < alpha: big enough to matter and
unlikely to be noise. With few samples the exact test cannot reach small p at all (its smallest
one-sided p is 1 / C(n_A + n_B, n_A): 1/252 with 5 + 5, 1/20 with 3 + 3); such a case is
reported as "slower, too few samples" instead of being silently passed or flagged.

Cases are matched on case_id (the hash of all case fields), or, with `ignore`, on the case
fields other than the ignored ones (to compare, say, threads=1 against threads=2).
"""

from __future__ import annotations

import math

from bench.case import CASE_FIELDS

REGRESSION = "regression"
IMPROVEMENT = "improvement"
UNCHANGED = "unchanged"
SLOWER_NS = "slower, not significant"
FASTER_NS = "faster, not significant"
TOO_FEW = "slower, too few samples"


def match_key(record: dict, ignore=()) -> tuple:
    """case_id when nothing is ignored and the record has one; else the remaining case fields."""
    if not ignore and record.get("case_id"):
        return ("case_id", record["case_id"])
    return tuple((f, repr(record.get(f))) for f in CASE_FIELDS if f not in ignore and f != "seed")


def min_p_value(n_a: int, n_b: int) -> float:
    """Smallest one-sided p the exact Mann-Whitney U test can give: 1 / C(n_a + n_b, n_a)."""
    return 1.0 / math.comb(n_a + n_b, n_a)


def _samples(record: dict) -> list[float]:
    s = record.get("samples_s") or []
    return [float(v) for v in s if isinstance(v, (int, float)) and math.isfinite(v) and v > 0]


def compare_case(a: dict, b: dict, threshold: float, alpha: float) -> dict:
    from scipy.stats import mannwhitneyu

    sa, sb = _samples(a), _samples(b)
    med_a = float(a.get("median_s") or _median(sa))
    med_b = float(b.get("median_s") or _median(sb))
    ratio = med_b / med_a
    p_slower = float(mannwhitneyu(sb, sa, alternative="greater").pvalue)
    p_faster = float(mannwhitneyu(sb, sa, alternative="less").pvalue)
    floor = min_p_value(len(sa), len(sb))
    if ratio - 1 > threshold:
        status = REGRESSION if p_slower < alpha else (TOO_FEW if floor >= alpha else SLOWER_NS)
    elif 1 - ratio > threshold:
        status = IMPROVEMENT if p_faster < alpha else FASTER_NS
    else:
        status = UNCHANGED
    return {"case_id_a": a.get("case_id"), "case_id_b": b.get("case_id"), "label": label(a),
            "median_a_s": med_a, "median_b_s": med_b, "ratio": ratio, "change": ratio - 1,
            "p_slower": p_slower, "p_faster": p_faster, "n_a": len(sa), "n_b": len(sb),
            "min_p": floor, "status": status}


def _median(values: list[float]) -> float:
    import statistics

    return statistics.median(values) if values else math.nan


def label(r: dict) -> str:
    return (f"{r.get('impl')}/{r.get('block')} B={r.get('batch')} T={r.get('seq_len')} "
            f"d={r.get('d_model')} {r.get('precision')} {r.get('mode')} thr={r.get('threads')}")


def compare_records(records_a: list[dict], records_b: list[dict], threshold: float = 0.05,
                    alpha: float = 0.01, ignore=()) -> dict:
    """Compare every case measured in both runs. Returns a JSON-ready dict (see module doc)."""
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    unknown = sorted(set(ignore) - set(CASE_FIELDS))
    if unknown:
        raise ValueError(f"ignore: unknown case field(s) {unknown}; allowed: {list(CASE_FIELDS)}")

    def usable(records):
        out = {}
        for r in records:
            if r.get("status") == "ok" and len(_samples(r)) >= 1:
                out.setdefault(match_key(r, ignore), r)
        return out

    a, b = usable(records_a), usable(records_b)
    common = [k for k in a if k in b]
    rows = [compare_case(a[k], b[k], threshold, alpha) for k in common]
    rows.sort(key=lambda r: -r["ratio"])
    counts = {s: sum(r["status"] == s for r in rows)
              for s in (REGRESSION, IMPROVEMENT, UNCHANGED, SLOWER_NS, FASTER_NS, TOO_FEW)}
    return {"threshold": threshold, "alpha": alpha, "ignore": list(ignore),
            "n_common": len(rows), "only_a": len(set(a) - set(b)), "only_b": len(set(b) - set(a)),
            "counts": counts, "regressions": counts[REGRESSION], "rows": rows}


def format_table(result: dict, name_a: str = "A", name_b: str = "B") -> str:
    lines = [f"{'case':<58} {'A ms':>10} {'B ms':>10} {'B/A':>7} {'p(slower)':>10}  status"]
    for r in result["rows"]:
        lines.append(f"{r['label'][:58]:<58} {r['median_a_s'] * 1e3:>10.3f} "
                     f"{r['median_b_s'] * 1e3:>10.3f} {r['ratio']:>7.3f} {r['p_slower']:>10.2g}"
                     f"  {r['status']}" + (f" (min p {r['min_p']:.2g})"
                                           if r["status"] == TOO_FEW else ""))
    c = result["counts"]
    lines.append("")
    lines.append(f"A = {name_a}, B = {name_b}: {result['n_common']} common cases "
                 f"({result['only_a']} only in A, {result['only_b']} only in B); "
                 f"{c[REGRESSION]} regression(s), {c[IMPROVEMENT]} improvement(s), "
                 f"{c[SLOWER_NS] + c[TOO_FEW]} slower but not significant, "
                 f"{c[UNCHANGED]} unchanged (threshold {result['threshold']:.0%}, "
                 f"alpha {result['alpha']:g}, one-sided Mann-Whitney U on raw samples).")
    return "\n".join(lines)
