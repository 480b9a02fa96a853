"""A run's one-line description that says what was measured, --set overrides included.

The config's `description:` is written for the config as shipped; `--set seq_len=[128]` makes
it wrong ("seq_len 32..4096"). effective_description() keeps the configured text when nothing
was overridden and otherwise replaces the ranges by the ones the cases actually have:

    "seq_len 32..4096 ... (configured); as run with --set seq_len=[128]: attention seq_len 128,
     d_model 768, fp32; ffn seq_len 128, d_model 768, fp32"

`cases` are plain dicts with Case fields (records, or `Case.to_dict()` of a SweepConfig's
cases), so the same function serves the report (records) and the config loader (cases).
"""

from __future__ import annotations

AXES = ("seq_len", "d_model", "batch", "threads")
# --set keys that change how cases are measured or named, not which cases run
NOT_CASE_KEYS = ("measure.", "executor.", "name=", "description=")


def _span(values) -> str:
    vals = sorted({int(v) for v in values if v is not None})
    if not vals:
        return "?"
    if len(vals) <= 3:
        return ", ".join(str(v) for v in vals)
    return f"{vals[0]}..{vals[-1]} ({len(vals)} sizes)"


def describe_cases(cases) -> str:
    """'attention seq_len 32..4096 (15 sizes), d_model 768, fp32; ffn ...' per block."""
    by_block: dict[str, list[dict]] = {}
    for c in cases:
        by_block.setdefault(str(c.get("block")), []).append(c)
    parts = []
    for block, rows in by_block.items():
        axes = [f"{a} {_span(r.get(a) for r in rows)}" for a in AXES[:2]]
        for a in AXES[2:]:
            vals = {r.get(a) for r in rows}
            if len(vals) > 1:
                axes.append(f"{a} {_span(vals)}")
        precs = sorted({str(r.get("precision")) for r in rows})
        parts.append(f"{block} " + ", ".join(axes) + f", {'/'.join(precs)}")
    return "; ".join(parts)


def effective_description(description: str, overrides, cases) -> str:
    """The configured description, or, when --set overrides were given, what was run."""
    description = description or ""
    overrides = [o for o in (overrides or []) if o and not o.startswith(NOT_CASE_KEYS)]
    if not overrides:
        return description
    sets = " ".join(f"--set {o}" for o in overrides)
    what = describe_cases(cases)
    head = f"{description} (configured); " if description else ""
    return f"{head}as run with {sets}: {what}"


def budget_sentence(meta: dict) -> str:
    """" Wall time: ..." from meta.json's run_budget (bench.run.driver): what the run spent where
    (start-up and the peak, pass 1, each later pass), against measure.run_budget_s when set,
    and which passes the budget left out; "" for a run folder without it."""
    b = meta.get("run_budget") or {}
    if "pass_1_s" not in b:
        return ""
    peak = ("peak cached" if b.get("peak_cached") else f"peak measured {b.get('peak_s', 0):.0f} s")
    later = "/".join(f"{s:.0f}" for s in (b.get("passes_s") or {}).values())
    parts = [f"start-up {b.get('start_s', 0):.0f} s ({peak})", f"pass 1 {b['pass_1_s']:.0f} s"]
    if later:
        parts.append(f"passes 2-{b.get('passes_done')} {later} s")
    text = f" Wall time {b.get('end_s', 0):.0f} s before the report: " + ", ".join(parts)
    if b.get("budget_s"):
        text += f"; run budget {b['budget_s']:g} s"
    if b.get("left_out"):
        partial = b["left_out"].get("partial_pass")
        done = b.get("passes_done")
        if partial:
            text += (f"; {done - 1} of {b.get('passes_planned')} passes over every case, pass "
                     f"{partial['pass']} over block(s) {', '.join(partial['blocks'])} only")
        else:
            text += f"; {done} of {b.get('passes_planned')} passes"
        text += f" (left out: {b['left_out']['reason']})"
    return text + "."
