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
