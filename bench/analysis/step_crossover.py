"""The crossover explained step by step: which step of attention makes it cost more than its
FLOPs predict (records measured with `measure.profile: true`, bench.profile.record).

The crossover (bench.analysis.crossover: the bare attention block against the ffn block)
moves from the FLOP prediction because the two blocks run at different rates. With each
block's per-step times and analytic FLOPs on the record, the gap is split by step:
    r_ffn        = FLOPs(ffn) / t(ffn)                   the feed-forward's achieved rate
    expected(s)  = FLOPs(s) / r_ffn                      step s of attention at that rate
    excess(s)    = t(s) - expected(s)                    its time beyond what its FLOPs predict

At r_attention = r_ffn the crossover would sit at the FLOP prediction; the step with the
largest excess near the measured crossover is the one that moves it. Read-only: the records'
profile_steps_s and profile_steps_flops (analysis never re-runs or re-derives a case).

Tests: tests/analysis/test_profile_crossover.py.
"""

from __future__ import annotations

import math

from bench.analysis import crossover
from bench.analysis.grouping import group_keys

ATTN_STEPS = ("scores", "softmax", "weighted_sum", "attention_fused")


def _profiled(ok):
    if "profile_status" not in ok.columns:
        return ok.iloc[0:0]
    return ok[(ok["profile_status"] == "ok") & ok["profile_steps_s"].notna()]


def _row(frame, impl, block, n, keys):
    sel = frame[(frame["impl"] == impl) & (frame["block"] == block) & (frame["seq_len"] == n)]
    for field, value in keys.items():         # a missing key (None/NaN) matches a missing one
        sel = sel[(sel[field] == value) | (sel[field].isna() & (value is None or value != value))]
    return None if sel.empty else sel.iloc[0]


def explain(attn: dict, attn_flops: dict, ffn: dict, ffn_flops: dict) -> dict:
    """{"r_ffn_gflops", "steps": {s: {"time_s", "expected_s", "excess_s"}}, "worst"} at one n."""
    t_ffn = sum(v for v in ffn.values() if v)
    r_ffn = sum(ffn_flops.values()) / t_ffn
    steps = {}
    for name, seconds in attn.items():
        if name not in ATTN_STEPS or seconds is None:
            continue
        expected = attn_flops[name] / r_ffn
        steps[name] = {"time_s": seconds, "expected_s": expected, "excess_s": seconds - expected}
    worst = max(steps, key=lambda s: steps[s]["excess_s"]) if steps else None
    return {"r_ffn_gflops": r_ffn / 1e9, "steps": steps, "worst": worst}


def section(df) -> list[str]:
    """Markdown lines of the section, or [] when no paired attention/ffn profile exists."""
    if df is None or df.empty or "ok" not in df.columns:
        return []
    ok = df[df["ok"] & (df["mode"].astype(str) == "forward")]
    prof = _profiled(ok)
    if prof.empty:
        return []
    keys_of = group_keys(ok.columns, exclude=("impl", "block", "seq_len"))
    out = []
    for impl, twin, merged in crossover.pairs(ok):
        for _, group in merged.groupby(keys_of, dropna=False):
            lines = _pair_lines(prof, impl, twin, group, keys_of, crossover)
            out += lines
    if not out:
        return []
    return (["## The crossover, step by step (measure.profile)", "",
             "Each attention step's measured time beside the time its FLOPs would take at the "
             "feed-forward's own achieved rate (its FLOPs / its time, same n); excess = "
             "measured - that. Steps from the records' per-step profile "
             "(profile_steps_s, tfimpl.costs.component_flops).", ""] + out)


def _pair_lines(prof, impl, twin, group, keys_of, crossover) -> list[str]:
    first = group.iloc[0]
    keys = {k: first[k] for k in keys_of}
    m = crossover.measured(group)
    pred = crossover.predicted(int(first["d_model"]), int(first["n_heads"]), int(first["d_ff"]),
                               int(first["batch"]))
    rows = []
    for n in sorted(group["seq_len"].unique()):
        a = _row(prof, impl, "attention", n, keys)
        f = _row(prof, twin, "ffn", n, keys)
        if a is None or f is None:
            continue
        rows.append((int(n), explain(a["profile_steps_s"], a["profile_steps_flops"],
                                     f["profile_steps_s"], f["profile_steps_flops"]),
                     sum(v for v in a["profile_steps_s"].values() if v),
                     sum(v for v in f["profile_steps_s"].values() if v)))
    if not rows:
        return []
    value = m.get("value")
    target = value if value else rows[-1][0]
    near = min(rows, key=lambda r: abs(math.log(r[0] / target)))
    where = (f"measured crossover n ≈ {value:.0f}" if value else
             f"no measured crossover in n = {rows[0][0]}..{rows[-1][0]}")
    head = (f"**{impl}** attention vs **{twin}** ffn, d={int(first['d_model'])}, "
            f"{first['precision']}, {int(first['threads'])} thread(s): {where}, predicted "
            f"{pred:.0f} from FLOPs.")
    names = [s for s in ATTN_STEPS if s in near[1]["steps"]]
    table = ["| n | t_attention / t_ffn | ffn rate GFLOP/s | " +
             " | ".join(f"{s} ms (at ffn rate) excess" for s in names) + " |",
             "|" + "---|" * (3 + len(names))]
    for n, ex, ta, tf in rows:
        cells = [f"{1e3 * ex['steps'][s]['time_s']:.2f} ({1e3 * ex['steps'][s]['expected_s']:.2f}) "
                 f"{1e3 * ex['steps'][s]['excess_s']:+.2f}" for s in names if s in ex["steps"]]
        table.append(f"| {n} | {ta / tf:.2f} | {ex['r_ffn_gflops']:.1f} | " + " | ".join(cells) + " |")
    n, ex, ta, tf = near
    total_excess = sum(max(0.0, v["excess_s"]) for v in ex["steps"].values())
    worst = ex["worst"]
    share = ex["steps"][worst]["excess_s"] / total_excess if total_excess > 0 else math.nan
    if total_excess > 0:
        verdict = (f"At n = {n} attention's steps take {1e3 * ta:.2f} ms against "
                   f"{1e3 * sum(v['expected_s'] for v in ex['steps'].values()):.2f} ms at the "
                   f"feed-forward's rate; {worst} carries {100 * share:.0f}% of the excess "
                   f"({1e3 * ex['steps'][worst]['excess_s']:+.2f} ms): it is the step that "
                   f"makes attention cost more than its FLOPs predict.")
    else:
        verdict = (f"At n = {n} every attention step runs at least at the feed-forward's rate: "
                   f"nothing makes attention cost more than its FLOPs predict.")
    return [head, ""] + table + ["", verdict, ""]
