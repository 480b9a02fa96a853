"""Counted vs analytic FLOPs: every case whose FlopCounterMode count differs from tfimpl.costs.

A mismatch is a finding. One cause is known and checked exactly, not assumed:

    forward+backward through the fused SDPA kernel. The analytic model (tfimpl.costs) counts
    the backward as 2x every forward matmul, so attention's backward = 2 x (QKᵀ + P·V) = 4
    matmuls. torch's sdpa_backward_flop_count (what FlopCounterMode uses, see bench.trackers.flops)
    counts 5: it recomputes the scores QKᵀ, then dV, dP, dQ, dK, i.e. 2.5x the forward's 2.
    So counted - analytic = ½ x the forward attention-matmul FLOPs (attn_scores +
    attn_weighted_sum of tfimpl.costs.forward_flops), to the FLOP.

Any other difference is unexplained, and one on the forward pass of an explicit (materialised:
attn_impl "explicit" or "library") attention path is the loudest kind: there both sides count
the same matmuls, so they must agree.

Tests: tests/analysis/test_report.py.
"""

from __future__ import annotations

import math

from tfimpl.costs.flops import ATTENTION_KEYS

KNOWN_SDPA_BACKWARD = ("known cause: FlopCounterMode counts the fused SDPA backward as 5 "
                       "attention matmuls (it recomputes the scores: 2.5× the forward's 2), the "
                       "analytic model as 4 (2×); the excess is exactly ½ of the forward "
                       "attention FLOPs")


MATERIALISED = ("explicit", "library")     # attention paths that hold the (B, H, T, T) matrix


def forward_attention_flops(row: dict) -> float:
    """Σ of the record's forward attention-matmul FLOPs (its flops_by_component, as planned at
    run time: tfimpl.costs' attn_scores + attn_weighted_sum); NaN when the record has none."""
    parts = row.get("flops_by_component")
    if not isinstance(parts, dict):
        return math.nan
    return float(sum(parts.get(k, 0) for k in ATTENTION_KEYS))


def explain(row: dict) -> tuple[str, str]:
    """(kind, text) for one mismatching record; kind is "known", "unexplained" or
    "unexplained-forward-explicit" (the loud one)."""
    counted, analytic = float(row["flops_counted"]), float(row["flops_analytic"])
    diff = counted - analytic
    attn_impl = row.get("attn_path")
    if row.get("mode") == "forward+backward" and attn_impl == "sdpa":
        expected = 0.5 * forward_attention_flops(row)
        if math.isfinite(expected) and abs(diff - expected) <= 1e-6 * max(analytic, 1.0):
            return "known", KNOWN_SDPA_BACKWARD
        return "unexplained", (f"unexplained: the SDPA backward recount would add "
                               f"{expected:.4g} FLOPs, the count differs by {diff:.4g}")
    if row.get("mode") == "forward" and attn_impl in MATERIALISED:
        return "unexplained-forward-explicit", (
            f"UNEXPLAINED on a forward explicit path ({attn_impl} attention), where counter "
            f"and model count the same matmuls: differs by {diff:+.4g} FLOPs")
    return "unexplained", f"unexplained: differs by {diff:+.4g} FLOPs"


def flop_check(df) -> dict:
    """{"n_counted", "n_match", "mismatches": [{case fields, counted, analytic, ratio, kind,
    explanation}], "n_unexplained"} over the ok records that were counted."""
    ok = df[df["ok"]]
    counted = ok[ok["flops_counted"].notna() & ok["flops_analytic"].notna()]
    flags = counted["flops_match"] if "flops_match" in counted else None
    if flags is None:
        differ = counted["flops_counted"] != counted["flops_analytic"]
    else:   # the record's own verdict; recomputed where it is missing
        differ = [(m is False) or (m is not True and c != a) for m, c, a in
                  zip(flags.astype(object), counted["flops_counted"], counted["flops_analytic"])]
    mismatches = []
    for row in counted[list(differ)].to_dict("records"):
        kind, text = explain(row)
        mismatches.append({
            "impl": row["impl"], "block": row["block"], "precision": row["precision"],
            "mode": row["mode"], "batch": int(row["batch"]), "seq_len": int(row["seq_len"]),
            "d_model": int(row["d_model"]), "case_id": row.get("case_id"),
            "counted": int(row["flops_counted"]), "analytic": int(row["flops_analytic"]),
            "ratio": float(row["flops_counted"]) / float(row["flops_analytic"]),
            "kind": kind, "explanation": text})
    return {"n_counted": int(len(counted)), "n_match": int(len(counted) - len(mismatches)),
            "n_unexplained": sum(m["kind"] != "known" for m in mismatches),
            "mismatches": mismatches}
