"""The text `bench compare` prints: the calibration and scatter lines, the case table, the
repeatability lines, from bench.analysis.compare's result (compare_records). Nothing is
computed here but the words.

Tests: tests/analysis/test_compare.py, tests/analysis/test_compare_drift.py.
"""

from __future__ import annotations

from bench.analysis.compare import REGRESSION, IMPROVEMENT, SLOWER_NS, TOO_FEW, UNCHANGED


def format_calibration(cal: dict) -> list[str]:
    lines = []
    if cal.get("n_corrected"):
        part = ("each case" if cal["n_corrected"] == cal["n"]
                else f"{cal['n_corrected']} of {cal['n']} cases")
        lines.append(f"drift-corrected by the calibration probe timed beside {part}: run-wide "
                     f"probe ratio B/A = {cal['probe_factor']:.2f}; corrected B/A median "
                     f"{cal['corrected_factor']:.3f}, within +-5%: "
                     f"{cal['share_within_5pct']:.0%} (status: corrected - 1 > max(threshold, "
                     f"the case's pass-to-pass noise, the pair's scatter))")
    if cal.get("note"):
        lines.append(f"note: {cal['note']}")
    return lines


def format_scatter(sc: dict, min_time_s: float = 1e-3) -> list[str]:
    """One line: how far this pair's cases scatter, and the change a case must exceed."""
    if not sc or sc.get("sigma") is None:
        return []
    short = sc.get("short") or {}
    tail = (f"; cases under {min_time_s * 1e3:g} ms: {short['floor']:.0%}"
            if short.get("sigma") is not None else "")
    return [f"scatter of this pair: a case's corrected ratio moves by sigma = {sc['sigma']:.1%} "
            f"(1.4826 x MAD, per implementation, {sc['n']} cases >= {min_time_s * 1e3:g} ms); a "
            f"regression must exceed {sc['floor']:.0%} (z = {sc['z']:.1f}, alpha / m){tail}: "
            f"smaller changes cannot be told from this machine's run-to-run noise"]


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
                     f"{wide['beyond_15pct']} (raw ratios)")
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
    lines = format_calibration(result.get("calibration") or {})
    lines += format_scatter(result.get("scatter") or {}, result.get("min_time_s", 1e-3))
    lines.append(f"{'case':<58} {'A ms':>9} {'B ms':>9} {'raw B/A':>7} {'probe':>6} "
                 f"{'B/A':>6} {'noise':>6} {'p(slower)':>9} {'p Holm':>7}  status")
    for r in result["rows"]:
        probe = f"{r['probe_ratio']:>6.3f}" if r.get("probe_ratio") else f"{'-':>6}"
        lines.append(f"{r['label'][:58]:<58} {r['median_a_s'] * 1e3:>9.3f} "
                     f"{r['median_b_s'] * 1e3:>9.3f} {r['ratio']:>7.3f} {probe} "
                     f"{r['corrected']:>6.3f} {r['noise']:>6.1%} {r['p_slower']:>9.2g} "
                     f"{r['p_slower_holm']:>7.2g}  {r['status']}"
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
                 f"{result['n_common']} cases, one-sided Mann-Whitney U on the samples over "
                 f"their probe).")
    lines.extend(format_repeatability(result["repeatability"]))
    return "\n".join(lines)
