"""The verdict table: one row per claim the run can test, first in report.md and in
summary.json["claims"].

Every row has: claim (the guide's words), block, metric, variable, impl, precision, theory,
value, ci_low, ci_high (95%), unit, fit_range, verdict ("held" | "did not hold" | "not enough
data"), sentence (one plain sentence with the numbers).

    scaling     a power-law fit (bench.analysis.claims) of time / FLOPs / peak memory vs n or
                d against the theory exponent; the verdict rule is claims.verdict's
    crossover   where attention overtakes the feed-forward (bench.analysis.crossover: one
                definition); held when the measured n*'s CI lies within a factor 2 of the
                FLOP prediction, did not hold when wholly outside
    params      BERT-base's 109,482,240 parameters counted four ways (bench.analysis.bert_params)
    recurrent-*  an LSTM / GRU beside attention (bench.analysis.recurrent): the FLOP crossover
                n* = 4d (3d) predicted and measured in time, memory (O(n) output, O(1) state),
                batching gain per token ("harder to parallelize"); a sentence per machine
    precision   each lower precision vs fp32 at the encoder layer: speedup (95% CI by bootstrap
                over the raw samples) against the guide's "~2×"; held when the CI lies within a
                factor √2 of 2 ([1.41, 2.83]), did not hold when wholly outside
"""

from __future__ import annotations

import math

from bench import blocks, metrics
from bench.analysis import claims, crossover, generation as decode, precisions, quantization, training
from bench.analysis import sparse as subquadratic
from bench.analysis import recurrent
from bench.analysis.bert_params import fmt_count
from bench.analysis.verdict_row import HELD, NOT_ENOUGH, NOT_HELD, VerdictRow, band_verdict
from bench.analysis.crossover import CROSSOVER_FACTOR, DEFINITION

SPEEDUP_CLAIM = 2.0
SPEEDUP_FACTOR = math.sqrt(2.0)
VAR = {"seq_len": "n", "d_model": "d", "window": "w"}
# What each claim says in full, beside its declaration's short words (bench.blocks Claim.words):
# the n or d it is about and why (the guide's O(n²·d) and O(n·d²)).
GLOSS = {
    ("attention", "seq_len", "time"): "O(n²·d)",
    ("attention", "seq_len", "flops"): "O(n²·d)",
    ("attention", "seq_len", "memory"): "the n×n matrix per head, or none when fused",
    ("attention", "d_model", "time"): "the d in n²·d",
    ("attention", "d_model", "flops"): "the d in n²·d",
    ("ffn", "seq_len", "time"): "O(n·d²)",
    ("ffn", "seq_len", "flops"): "O(n·d²)",
    ("ffn", "seq_len", "memory"): "the n×d_ff hidden",
    ("ffn", "d_model", "time"): "O(n·d²) at fixed n, d_ff = 4d",
    ("ffn", "d_model", "flops"): "O(n·d²) at fixed n, d_ff = 4d",
    ("lstm", "seq_len", "time"): "O(n·d²) work in n dependent steps",
    ("lstm", "seq_len", "flops"): "16·B·n·d²",
    ("lstm", "seq_len", "memory"): "the B·n·d output; the state is B·2d",
    ("lstm", "d_model", "time"): "16·B·n·d² at fixed n",
    ("lstm", "d_model", "flops"): "16·B·n·d² at fixed n",
    ("gru", "seq_len", "time"): "O(n·d²) work in n dependent steps",
    ("gru", "seq_len", "flops"): "12·B·n·d²",
    ("gru", "seq_len", "memory"): "the B·n·d output; the state is B·d",
    ("gru", "d_model", "time"): "12·B·n·d² at fixed n",
    ("gru", "d_model", "flops"): "12·B·n·d² at fixed n",
}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def claim_words(block: str, variable: str, metric: str, path: str | None = None,
                ratio_fixed: bool = True) -> str | None:
    """'Attention: O(n²) time (O(n²·d))': the block's title and its declared claim words
    (bench.blocks), with the gloss above; None when the block declares no such claim."""
    words = blocks.claim_words(block, metric, variable, path, ratio_fixed)
    if words is None:
        return None
    decl = blocks.BLOCKS.get(block)
    title = decl.title if decl is not None else block
    gloss = GLOSS.get((block, variable, metric))
    return f"{title}: {words}" + (f" ({gloss})" if gloss else "")


def _num(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def _how_d_varies(df, block: str) -> str:
    """'heads grow with d at d_k = 64' or 'd_k grows at H heads' from the records."""
    rows = df[df["ok"] & (df["block"] == block)][["d_model", "n_heads"]].drop_duplicates()
    if rows["d_model"].nunique() < 2:
        return ""
    d_k = (rows["d_model"] // rows["n_heads"]).unique()
    if len(d_k) == 1:
        return f"heads = d/{int(d_k[0])}, d_k fixed at {int(d_k[0])}"
    if rows["n_heads"].nunique() == 1:
        return f"{int(rows['n_heads'].iloc[0])} heads, d_k = d/{int(rows['n_heads'].iloc[0])}"
    return "heads and d_k both vary"


def scaling_rows(entries, df) -> list[VerdictRow]:
    """A row per fit with a theory exponent, for the blocks the guide makes claims about."""
    rows = []
    order = list(GLOSS)
    entries = sorted(entries, key=lambda e: (
        min((i for i, k in enumerate(order) if k[:3] == (e["block"], e["variable"], e["metric"])),
            default=len(order)), str(e.get("attention_path")), e["impl"], str(e["precision"])))
    for e in entries:
        if e["theory"] is None:
            continue
        words = claim_words(e["block"], e["variable"], e["metric"], e.get("attention_path"),
                            e.get("ratio_fixed", True))
        if words is None:
            continue
        var, k = VAR[e["variable"]], e["exponent"]
        fixed = e.get("fixed") or {}
        at = (f" at n = {fixed.get('seq_len')}" if e["variable"] in ("d_model", "window")
              and fixed.get("seq_len") is not None else "")
        if e["variable"] == "seq_len" and fixed.get("d_model") is not None:
            at = f" at d = {fixed['d_model']}"
        if fixed.get("batch") not in (None, 1):
            at += f", batch {fixed['batch']}"
        who = f"{e['impl']}" + (f" {e['precision']}" if e["precision"] else "")
        if k is None:
            sentence = (f"{_cap(metrics.get(e['metric']).text)} of {who}{at}: not enough "
                        f"data ({e['points_asymptotic']} of {e['points_total']} sizes in the "
                        f"fit range [{e['regime_text']}]" + (
                            f"; over all sizes ≥ the time floor {var}^"
                            f"{e['full_range_exponent']:.2f}" if e.get("full_range_exponent")
                            is not None else "") + ").")
        else:
            band = f"{e['theory']:g} ± {e['tolerance']:g}"
            verdict = {HELD: "within", NOT_HELD: "outside",
                       NOT_ENOUGH: "straddling the edge of"}[e["verdict"]]
            sentence = (f"{_cap(metrics.get(e['metric']).text)} of {who}{at} grew as "
                        f"{var}^{k:.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}] over "
                        f"{e['variable']} {e['range'][0]:g}–{e['range'][1]:g}, {verdict} "
                        f"theory {band}.")
        if e["block"] == "attention" and e["variable"] == "d_model":
            how = _how_d_varies(df, "attention")
            sentence += (" The bare attention block has no Q/K/V/O projections, so their "
                         "d² is not in it" + (f" ({how})." if how else "."))
        rng = (f"{e['variable']} {e['range'][0]:g}–{e['range'][1]:g}" if e["range"] else "—")
        rows.append(VerdictRow(
            id=f"{e['block']}.{e['metric']}.{e['variable']}", kind="scaling",
            claim=words, block=e["block"], metric=e["metric"],
            variable=e["variable"], impl=e["impl"], precision=e["precision"],
            theory=e["theory"], theory_text=f"{var}^{e['theory']:g}",
            value=_num(k), ci_low=_num(e["ci_low"]), ci_high=_num(e["ci_high"]),
            unit="exponent",
            fit_range=f"{rng} ({e['regime']}; {e['points_asymptotic']}/{e['points_total']} "
                      f"sizes)",
            verdict=e["verdict"], sentence=sentence))
    return rows


def params_row(counts: dict | None) -> list[VerdictRow]:
    """The BERT-base row: analytic == NumPy == PyTorch == HuggingFace == 109,482,240."""
    if counts is None:
        return []

    c, b, exp = counts["counts"], counts["breakdown"], counts["expected"]
    ways = "; ".join(f"{k} {fmt_count(v)}" for k, v in c.items())
    missing = [k for k, v in c.items() if v is None]
    verdict = HELD if counts["agree"] else (NOT_ENOUGH if missing and all(
        v == exp for v in c.values() if v is not None) else NOT_HELD)
    mib = {k: v / 2 ** 20 for k, v in counts["bytes"].items()}
    sentence = (f"Counted four ways ({ways}): "
                + ("all equal 109,482,240" if counts["agree"] else
                   f"not all equal {exp:,}" + (f" ({', '.join(missing)} not counted: "
                                               f"{'; '.join(counts['errors'].values())})"
                                               if missing else ""))
                + f" = embeddings {b['embeddings']:,} + {b['layers']} × {b['per_layer']:,} per "
                  f"layer + pooler {b['pooler']:,}; weights {mib['fp32']:.1f} MiB in fp32 "
                  f"({counts['bytes']['fp32'] / 1e6:.1f} MB decimal: the guide's ~440 MB), "
                  f"{mib['bf16']:.1f} MiB in bf16.")
    return [VerdictRow(
        id="bert_base.params", kind="params",
        claim="BERT-base has 109,482,240 parameters (~440 MB in fp32)",
        block="model", metric="params", variable=None, impl="all four",
        precision=None, theory=exp, theory_text=f"{exp:,}",
        value=c["analytic"] if counts["agree"] else None, ci_low=None, ci_high=None,
        unit="parameters", fit_range="exact count (bert-base preset)",
        verdict=verdict, sentence=sentence,
        extra={"counts": c, "breakdown": b, "bytes": counts["bytes"]})]


def precision_rows(table, df, meta: dict, rule: claims.FitRule,
                   block: str = "encoder_layer") -> list[VerdictRow]:
    """Each lower precision vs fp32 at `block`'s largest compared size, per implementation."""
    if table is None or table.empty:
        return []
    t = table[(table["block"] == block) & table["ok"] & table["speedup"].notna()
              & ~table["precision"].isin(("fp32", "fp64", quantization.INT8))]
    isa = precisions.isa_sentence(meta)
    rows = []
    for (impl, prec, mode), g in t.groupby(["impl", "precision", "mode"], sort=True):
        top = g.sort_values(["seq_len", "d_model"]).iloc[-1]
        lo, hi = precisions.speedup_ci(df, top, seed=rule.seed)
        verdict = band_verdict(lo, hi, SPEEDUP_CLAIM, SPEEDUP_FACTOR)
        sp = float(top["speedup"])
        fp32_err = precisions.fp32_error(table, top)
        ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None else ""
        sentence = (f"{prec} ({impl}) ran at {sp:.2f}×{ci} fp32 speed at n = "
                    f"{int(top['seq_len'])}, d = {int(top['d_model'])} "
                    f"({precisions._direction(sp)}), peak memory "
                    f"{top['mem_ratio']:.2f}× fp32's, rel. L2 error {top['rel_l2_err']:.1e} vs "
                    f"fp64" + (f" (fp32: {fp32_err:.1e})" if fp32_err is not None else "")
                    + f". {isa}")
        rows.append(VerdictRow(
            id=f"precision.{prec}", kind="precision",
            claim="mixed precision is ~2× faster than fp32", block=block,
            metric="speedup", variable=None, impl=impl, precision=prec,
            theory=SPEEDUP_CLAIM, theory_text="~2× (1.41–2.83×)", value=sp,
            ci_low=lo, ci_high=hi, unit="× fp32 speed",
            fit_range=f"n = {int(top['seq_len'])}, d = {int(top['d_model'])}",
            verdict=verdict, sentence=sentence,
            extra={"memory_ratio": _num(float(top["mem_ratio"])),
                   "rel_l2_err": _num(float(top["rel_l2_err"])), "rel_l2_err_fp32": fp32_err}))
    return rows


def all_rows(entries, df, table, meta, rule, bert_counts) -> list[VerdictRow]:
    return (quantization.rows(table, df, meta, rule.seed) + scaling_rows(entries, df)
            + recurrent.rows(df, entries, rule)
            + crossover.rows(df, rule) + subquadratic.crossover_rows(df, rule)
            + params_row(bert_counts)
            + precision_rows(table, df, meta, rule) + decode.all_rows(df, meta)
            + training.all_rows(df, meta))


def _value_text(r: VerdictRow) -> str:
    v = r.value
    if v is None:
        return "—"
    if r.unit == "exponent":
        text = f"{v:.2f}"
    elif r.unit == "parameters":
        return f"{int(v):,}"
    elif r.unit == "tokens":
        text = f"{v:.0f}"
    else:
        text = f"{v:.2f}×"
    if r.ci_low is not None and r.ci_high is not None:
        fmt = "{:.0f}" if r.unit == "tokens" else "{:.2f}"
        text += f" [{fmt.format(r.ci_low)}, {fmt.format(r.ci_high)}]"
    return text


def render(rows: list[VerdictRow], cpu: str = "this CPU") -> list[str]:
    """The `## Verdicts` section: counts, then one table row per claim row."""
    if not rows:
        return ["## Verdicts", "", "No claim could be tested by this run (a claim needs a "
                "sweep over seq_len or d_model, both an attention and an ffn sweep, or a "
                "precision compared with fp32).", ""]
    counts = {v: sum(r.verdict == v for r in rows) for v in (HELD, NOT_HELD, NOT_ENOUGH)}
    out = ["## Verdicts", "",
           f"{len(rows)} claims tested on this machine: {counts[HELD]} held, "
           f"{counts[NOT_HELD]} did not hold, {counts[NOT_ENOUGH]} not enough data. Value: "
           f"fitted exponent, crossover length, count or speedup, with its 95% CI.", "",
           "| claim | impl | theory | measured [95% CI] | fit range | verdict | in words |",
           "|---|---|---|---|---|---|---|"]
    last = None
    for r in rows:
        claim = "" if r.claim == last else r.claim
        last = r.claim
        who = r.impl + (f" {r.precision}" if r.precision and r.kind != "crossover" else "")
        out.append(f"| {claim} | {who} | {r.theory_text} | {_value_text(r)} "
                   f"| {r.fit_range} | **{r.verdict}** | {r.sentence} |")
    out.append("")
    defs = {r.kind for r in rows}
    if "crossover" in defs:
        out += [f"Crossover: {DEFINITION}; held when the measured CI lies within a factor "
                f"{CROSSOVER_FACTOR:g} of the prediction. The CI covers the timing noise (raw "
                f"samples resampled), not the log-linear interpolation between the two sizes "
                f"that bracket n*.", ""]
    if "recurrent-crossover" in defs:
        out += [f"Recurrent crossover: {recurrent.DEFINITION}; held when the measured CI lies "
                f"within a factor {CROSSOVER_FACTOR:g} of the prediction.", "",
                f"**Where each wins.** {recurrent.conclusion(rows, cpu)}", ""]
    if "precision" in defs:
        lo, hi = SPEEDUP_CLAIM / SPEEDUP_FACTOR, SPEEDUP_CLAIM * SPEEDUP_FACTOR
        out += [f"Precision: the guide's \"~2× faster\" read as {lo:.2f}"
                f"–{hi:.2f}× (a factor √2 either side); CI by "
                f"bootstrap over both cases' raw samples.", ""]
    return out
