"""Sub-quadratic attention against exact: where each starts to win, and what it costs in accuracy.

Definition (the verdict rows, `crossover_rows`):

    n* = the sequence length from which a sparse block (window_attention, global_attention,
         linear_attention: bench/blocks/sparse.py) takes less time than exact attention through
         torch's fused SDPA (block attention, impl torch-sdpa), at the same batch, width, heads,
         precision and threads.

    predicted  where its matmul FLOPs (bench.blocks.sparse.flops, tfimpl.costs.sparse) fall to
               the dense 4·B·H·n²·d: for a window of w keys in blocks of c queries n* = c + w - 1,
               for linear attention n* = d + 1 (the first n on a 1% geometric grid; the last
               block's padding puts the window's a little above c + w - 1)
    measured   the first n at which t_exact / t_sparse goes from < 1 to >= 1 over the common
               sizes, interpolated in log n; 95% CI by bootstrap over the raw samples
               (bench.analysis.crossover.measured, the same estimator as the attention/FFN
               crossover). A sparse block faster at every common size: n* is below the smallest.

Time = FLOPs / rate, so the measured n* is the predicted one times r_exact / r_sparse, the ratio
of the achieved FLOP rates near n*: the fused kernel runs its n² work at a rate the blockwise
kernels (small batched matmuls, a masked soft-max over c + w - 1 keys, the padding copies) do not
reach, which moves n* up. The sentence gives the rate ratio at n*. Verdict: held when the CI lies
within a factor 2 of the prediction (crossover.CROSSOVER_FACTOR), did not hold when wholly
outside.

The price (`price_table`, `section`): per block, inputs and window, the record's
approx_rel_l2_err, attn_mass_captured and useful_fraction (bench.blocks.sparse.price).

Tests: tests/analysis/test_sparse_analysis.py.
"""

from __future__ import annotations

import math

from bench.analysis.crossover import CROSSOVER_FACTOR, _num, measured
from bench.analysis.grouping import group_keys
from bench.analysis.verdict_row import NOT_ENOUGH, VerdictRow, band_verdict
from bench.blocks import sparse
from bench.case import CASE_FIELDS, Case

SPARSE = ("window_attention", "global_attention", "linear_attention")
BLOCKS = ("banded_attention",) + SPARSE             # the report's per-block plots
EXACT = ("attention", "torch-sdpa")                 # (block, impl) of the exact reference
PATTERN_FIELDS = ("window", "global_tokens", "inputs")
DEFINITION = ("n* = the sequence length from which a sparse attention takes less time than "
              "exact attention through torch's fused SDPA at the same sizes: predicted where its "
              "matmul FLOPs fall to the dense 4·B·H·n²·d, measured where the median times cross")


def _case(row) -> Case:
    return Case(**{f: (row[f].item() if hasattr(row[f], "item") else row[f])
                   for f in CASE_FIELDS if f in row.index})


def predicted(row, block: str, top: int = 1 << 24) -> float | None:
    """The first n (1% geometric grid) where `block`'s FLOPs <= dense 4·B·H·n²·d, at the
    sizes and pattern of `row` (a record, or a merged row)."""
    base = Case(**{**_case(row).to_dict(), "block": block})
    n = 1.0
    while n <= top:
        size = int(math.ceil(n))
        if block not in sparse.WINDOWED or size >= max(base.window, base.global_tokens, 1):
            case = base.__class__(**{**base.to_dict(), "seq_len": size})
            dense = 4 * case.batch * case.n_heads * size * size * case.d_head
            if sparse.flops(case)["total"] <= dense:
                return float(size)
        n *= 1.01
    return None


def pairs(ok):
    """Yield (block, impl, merged frame) of a sparse block and the exact SDPA at equal fields."""
    keys = group_keys(ok.columns, exclude=("impl", "block") + PATTERN_FIELDS)
    exact = ok[(ok["block"] == EXACT[0]) & (ok["impl"] == EXACT[1]) & ok["median_s"].notna()]
    cols = keys + ["median_s", "samples_s"]
    for block in SPARSE:
        rows = ok[(ok["block"] == block) & ok["median_s"].notna()]
        for (impl, *pattern), g in rows.groupby(["impl"] + list(PATTERN_FIELDS), dropna=False):
            m = exact[cols].merge(g[cols + list(PATTERN_FIELDS) + ["flops_analytic"]],
                                  on=keys, suffixes=("_a", "_f"))
            if m["seq_len"].nunique() >= 2:
                yield block, impl, m


def crossover_rows(df, rule) -> list[VerdictRow]:
    """A verdict row per sparse block (and pattern) measured beside exact SDPA."""
    if "window" not in df.columns:
        return []
    ok = df[df["ok"] & (df["mode"].astype(str) == "forward")]
    exact_flops = ok[(ok["block"] == EXACT[0]) & (ok["impl"] == EXACT[1])]
    out = []
    for block, impl, m in pairs(ok):
        g = m.sort_values("seq_len")
        first = g.iloc[0]
        pred = predicted(first, block)
        meas = measured(g, seed=rule.seed)
        lo_n, hi_n = meas["n_range"]
        what = _pattern_words(block, first)
        if meas["value"] is None:
            verdict = NOT_ENOUGH
            faster = meas["ratio_at_max"] >= 1
            sentence = (f"{what} ({impl}): {'faster' if faster else 'slower'} than exact SDPA at "
                        f"every common size n {lo_n:g}–{hi_n:g} (t_exact/t_sparse "
                        f"{meas['ratio_at_max']:.2f} at n = {hi_n:g}), so n* lies "
                        f"{'below' if faster else 'above'} that range; the FLOPs predict "
                        f"n* = {pred:.0f}." if pred else ".")
        else:
            verdict = band_verdict(meas["ci_low"], meas["ci_high"], pred, CROSSOVER_FACTOR)
            rate = _rate_ratio(g, exact_flops, meas["value"])
            ci = (f" [{meas['ci_low']:.0f}, {meas['ci_high']:.0f}]" if meas["ci_low"] is not None
                  else " (CI: the bootstrap crossed in too few draws)")
            why = (f"; near n* exact SDPA ran at {rate:.2f}× its FLOP rate, so n* ≈ "
                   f"{pred:.0f} × {rate:.2f}" if rate else "")
            sentence = (f"{what} ({impl}): beats exact SDPA from n* = {meas['value']:.0f}{ci}, "
                        f"against {pred:.0f} from the FLOPs{why}.")
        out.append(VerdictRow(
            id=f"{block}.crossover", kind="crossover",
            claim=f"{what} beats exact attention where its FLOPs fall below n²'s",
            block=f"{block}/attention", metric="time", variable="seq_len", impl=impl,
            ffn_impl=EXACT[1], precision=str(first["precision"]), d_model=int(first["d_model"]),
            theory=_num(pred), theory_text=f"n* = {pred:.0f}" if pred else "—",
            value=_num(meas["value"]), ci_low=meas["ci_low"], ci_high=meas["ci_high"],
            unit="tokens", fit_range=f"seq_len {lo_n:g}–{hi_n:g} (common sizes)",
            verdict=verdict, sentence=sentence,
            extra={"definition": DEFINITION,
                   "band": f"within a factor {CROSSOVER_FACTOR:g} of the prediction"}))
    return out


def _pattern_words(block: str, row) -> str:
    if block == "window_attention":
        return f"sliding window w = {int(row['window'])}"
    if block == "global_attention":
        return f"window w = {int(row['window'])} + {int(row['global_tokens'])} global tokens"
    return "linear attention"


def _rate_ratio(g, exact_rows, n: float) -> float | None:
    """r_exact / r_sparse (achieved FLOP rates) at the common size nearest n."""
    row = g.assign(_d=(g["seq_len"] - n).abs()).sort_values("_d").iloc[0]
    e = exact_rows[exact_rows["seq_len"] == row["seq_len"]]["flops_analytic"]
    if e.empty or not row["flops_analytic"]:
        return None
    return (float(e.iloc[0]) / row["median_s_a"]) / (float(row["flops_analytic"]) / row["median_s_f"])


def price_table(df):
    """One row per (block, impl, inputs, window, global_tokens, n) with a price, or None."""
    if "approx_rel_l2_err" not in df.columns:
        return None
    ok = df[df["ok"] & df["approx_rel_l2_err"].notna()]
    if ok.empty:
        return None
    cols = ["block", "impl", "inputs", "seq_len", "window", "global_tokens", "batch", "d_model",
            "n_heads", "causal", "approx_rel_l2_err", "attn_mass_captured", "useful_fraction",
            "price_rows"]
    return ok[cols].sort_values(["inputs", "block", "seq_len", "window"]).reset_index(drop=True)


def _fmt(v, spec: str) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def section(df, figures: dict | None = None) -> list[str]:
    """report.md's sub-quadratic attention section: the crossover's definition, the figures
    (plots/long_sequences.png, plots/sparse_price.png when drawn) and the price."""
    table = price_table(df)
    if table is None:
        return []
    figures = figures or {}
    shown = [f"![{name}](plots/{name}.png)" for name in ("long_sequences", "sparse_price")
             if name in figures]
    lines = ["## Sub-quadratic attention: what it buys and what it costs", ""] + [
        line for f in shown for line in (f, "")] + [
             f"**Crossover.** {DEFINITION}. The rows are in *Verdicts*; why the measured n* "
             "differs from the FLOPs' is the ratio of achieved FLOP rates (bench/analysis/sparse.py).",
             "", "**The price** (bench/blocks/sparse.py `price`): each output against exact "
             "softmax attention on the same float64 inputs, over the query rows listed; "
             "*pretrained* inputs are all-MiniLM-L6-v2's own Q/K/V (layers 0..B-1, one per batch "
             "entry) on the project's sentences, *random* ones N(0, 1). Relative L2 error of the "
             "output, the exact attention mass the pattern keeps, and the share of a dense "
             "attention's work the pattern needs (linear attention: its FLOPs over the dense "
             "FLOPs).", "",
             "| inputs | block | impl | n | d | w | g | rel. L2 error | mass kept | work / dense | rows |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in table.to_dict("records"):
        lines.append(f"| {r['inputs']} | {r['block']} | {r['impl']} | {int(r['seq_len'])} "
                     f"| {int(r['d_model'])} | {int(r['window'])} "
                     f"| {int(r['global_tokens'])} | {_fmt(r['approx_rel_l2_err'], '.3g')} | "
                     f"{_fmt(r['attn_mass_captured'], '.3f')} | {_fmt(r['useful_fraction'], '.3f')} "
                     f"| {int(r['price_rows'])} |")
    lines += [""] + _mass_sentences(table) + [""]
    return lines


def _mass_sentences(table) -> list[str]:
    """Per window pattern measured on both inputs: the mass kept on each, as measured."""
    out = []
    keyed = table[table["attn_mass_captured"].notna()]
    for (block, n, w, g), grp in keyed.groupby(["block", "seq_len", "window", "global_tokens"]):
        by = {r["inputs"]: r for r in grp.to_dict("records")}
        if {"pretrained", "random"} <= set(by):
            p, r = by["pretrained"], by["random"]
            out.append(f"- {block} n = {int(n)}, w = {int(w)}, g = {int(g)}: the pattern keeps "
                       f"{p['attn_mass_captured']:.3f} of MiniLM's attention mass "
                       f"(error {p['approx_rel_l2_err']:.3g}) and {r['attn_mass_captured']:.3f} "
                       f"of random inputs' (error {r['approx_rel_l2_err']:.3g}), with "
                       f"{p['useful_fraction']:.3f} of the dense pairs.")
    return out
