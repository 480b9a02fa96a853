"""report.md, summary.json, report.html and plots/*.png for a run folder, from its records alone.

write_report(run_dir) is what `python -m bench run` calls at the end and what
`python -m bench report RUN_DIR` calls to rebuild: it reads records.jsonl and meta.json, fits
(bench.analysis.claims), draws (bench.analysis.report.plots) and writes; report.html, the
interactive page, comes from the same summary (bench.analysis.report.html). Nothing is measured here.

Tests: tests/analysis/test_report.py, tests/analysis/test_verdicts.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from bench import metrics
from bench.analysis import (claims, crossover, flopcheck, precisions, quantization,
                            step_crossover, verdicts)
from bench.analysis import generation as decode
from bench.analysis import sparse as subquadratic
from bench.analysis.report import html, plots, recurrent_plot
from bench.analysis.report import sparse_plots
from bench.analysis.report import sweep_plots as plot_sweeps
from bench.analysis.bert_params import bert_base_counts
from bench.analysis.compare import pass_agreement
from bench.analysis.describe import budget_sentence, effective_description
from bench.analysis.frame import (last_level_cache, load_run, peak_mismatch, peak_table,
                                  peak_values, records_frame)
from bench.analysis.incomplete import incomplete_header
from bench.analysis.libraries import library_lines, library_ratios
from bench.analysis.report.tables import (
    _cases_table, _claims_table, _departure_lines, _flop_alarm, _flops_section, _local_table,
    _other_fits_table, _precision_tables, _two_term_table, machine_lines, precision_summary)
from bench.reader import read_records

REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.json"
PLOTS_DIR = "plots"


def write_report(run_dir, rule: claims.FitRule = claims.FitRule(), cached_peak=None) -> dict:
    """Fit, plot and write. Returns {"report": Path, "summary": Path, "plots": [Path, ...]}.

    cached_peak(threads=, device=) -> the machine's cached matmul peak or None, for a run that
    recorded none (the commands pass bench.commands.report.cached_peak: the analysis does not
    reach into bench.machine); None: no peak is added."""
    run_dir = Path(run_dir)
    load_run_plugins(run_dir)
    df, meta = load_run(run_dir)
    df, meta = with_cached_peak(run_dir, df, meta, cached_peak)
    llc = last_level_cache(meta)
    entries = claims.fit_all(df, rule)
    two_term = claims.two_term_fits(df, rule)
    ok = df[df["ok"]]
    share = None
    if not ok.empty:                  # the crossover's definition first (attention vs ffn)

        share = crossover.share_frame(ok[ok["mode"].astype(str) == "forward"])
        share = share if share is not None else crossover.attention_share(ok)
    speedups = precisions.precision_table(df)
    flop_result = flopcheck.flop_check(df)
    rows = verdicts.all_rows(entries, df, speedups, meta, rule,
                             bert_base_counts() if not ok.empty else None)
    departures = precisions.memory_departures(df)
    figures = _draw(df, entries, two_term, share, speedups, meta, llc, rule,
                    run_dir / PLOTS_DIR, rows)
    agreement = pass_agreement(df.to_dict("records"))
    summary = {
        "run": run_dir.name, "n_records": int(len(df)), "n_ok": int(df["ok"].sum()),
        "description": run_description(meta, df),
        "claims": [r.to_dict() for r in rows],
        "rule": {**rule.to_dict(), "llc_bytes": None if math.isnan(llc) else llc,
                 "fit_range": rule.describe_by_metric(llc), "fit_range_text": rule.describe(llc),
                 "verdict": rule.describe_verdict()},
        "fits": entries, "two_term": two_term,
        "attention_share_source": None if share is None else sorted(set(share["blocks"])),
        "precision": precision_summary(speedups, meta),
        "memory_departures": departures,
        "machine_peak_source": peak_source(meta),
        "flops_check": flop_result,
        "library_ratios": library_ratios(df),
        "pass_agreement": agreement,
        "plots": {name: str(p.relative_to(run_dir)) for name, p in figures.items()},
    }
    summary_path = run_dir / SUMMARY_FILE
    summary_path.write_text(json.dumps(summary, indent=2, default=_json_default) + "\n")
    report_path = run_dir / REPORT_FILE
    text = render(run_dir.name, df, meta, entries, two_term, share, speedups, figures, run_dir,
                  rule, flop_result, rows=rows, departures=departures, agreement=agreement)


    generation = (step_crossover.section(df) + decode.section(df, meta)
                  + subquadratic.section(df, figures))
    if generation:
        text = text.rstrip("\n") + "\n\n" + "\n".join(generation)
    report_path.write_text(text)
    page = html.write_html(run_dir, df, meta, summary)
    return {"report": report_path, "summary": summary_path, "html": page,
            "plots": list(figures.values())}


def load_run_plugins(run_dir: Path) -> tuple[str, ...]:
    """Import the plugins the run's config.yaml lists (`plugins:`), as the run did, so that
    their metrics and claims are declared when the records are fitted (docs/PLUGINS.md)."""
    import yaml

    path = run_dir / "config.yaml"
    raw = yaml.safe_load(path.read_text()) if path.exists() else None
    names = raw.get("plugins") if isinstance(raw, dict) else None
    if not names:
        return ()
    from bench.config import load_plugins   # only then: bench.config reaches the registries

    return load_plugins(names)


def run_description(meta: dict, df) -> str:
    """The config's description, rewritten from the records when --set overrides were given."""
    cases = df[["block", "seq_len", "d_model", "batch", "threads", "precision"]].to_dict(
        "records") if len(df) else []
    return effective_description(meta.get("description") or "", meta.get("overrides"), cases)


def with_cached_peak(run_dir: Path, df, meta: dict, cached_peak=None):
    """A run without a matmul peak gets the cached one for its cases' thread count, from
    `cached_peak(threads=, device=)` (never measured: a report measures nothing); the frame is
    rebuilt with it."""
    if peak_values(meta) or df.empty or cached_peak is None:
        return df, meta

    try:
        threads = int(df["threads"].dropna().mode().iloc[0])
        device = str(df["device"].dropna().mode().iloc[0]).split(":")[0]
        cached = cached_peak(threads=threads, device=device)
    except Exception:                # the peak is context: no cache, no ceiling
        return df, meta
    if not cached:
        return df, meta
    meta = {**meta, "machine_peak": {**cached, "source": "cache (added at report time)"}}
    return records_frame(read_records(run_dir), meta), meta


def peak_source(meta: dict) -> str:
    """Where the run's matmul peak came from, in words (for the report and summary.json)."""
    table = peak_table(meta)
    if not peak_values(meta):
        return ("no matmul peak (none recorded with the run and none cached for its thread "
                "count): `python -m bench peak` measures one")
    src = str(table.get("source") or "recorded with the run")
    where = table.get("cache_path")
    threads = table.get("threads")
    how = {"measured": "measured at the start of this run (bench.machine.peak)",
           "cache": "bench.machine.peak's cache, measured earlier on this machine"}.get(src, src)
    return (f"{how}" + (f", {threads} thread(s)" if threads is not None else "")
            + (f"; cache file {where}" if where else ""))


def _json_default(value):
    try:
        return value.item()          # numpy scalars
    except AttributeError:
        return str(value)


# ---- figures --------------------------------------------------------------------------------

def _draw(df, entries, two_term, share, speedups, meta, llc, rule, out: Path,
          rows=None) -> dict:
    figures: dict[str, Path] = {}

    def keep(name, path):
        if path is not None:
            figures[name] = path


    blocks = [b for b in ("attention", "mha", "ffn", "encoder_layer", "encoder", "model", "lstm",
                          "gru") + subquadratic.BLOCKS
              if b in set(df.loc[df["ok"], "block"])]
    notes = {b: peak_note(df[df["block"] == b], meta) for b in blocks}
    for variable in ("seq_len", "d_model"):
        sweeps = list(claims.sweep_groups(df, variable))
        if not sweeps:
            continue
        tail = "" if variable == "seq_len" else f"_{variable}"
        for block in blocks:
            keep(f"time_vs_{variable}_{block}", plots.plot_scaling(
                sweeps, entries, llc, block, out / f"time_vs_{variable}_{block}.png",
                variable=variable, rule=rule, two_term=two_term))
        for metric in metrics.fitted():          # a plugin's metric: its own plot per block
            if metric.name in metrics.BUILTIN:
                continue
            for block in blocks:
                name = f"{metric.name}_vs_{variable}_{block}"
                keep(name, plots.plot_scaling(sweeps, entries, llc, block, out / f"{name}.png",
                                              variable=variable, metric=metric.name, rule=rule))
        if variable == "seq_len":
            keep("local_slopes", plots.plot_local_slopes(entries, out / "local_slopes.png"))
        keep(f"flops{tail}", plot_sweeps.plot_flops(sweeps, out / f"flops_vs_{variable}.png",
                                                    variable))
        keep(f"memory{tail}", plot_sweeps.plot_memory(
            sweeps, out / f"memory_vs_{variable}.png", variable))
        keep(f"roofline{tail}", plot_sweeps.plot_roofline(
            sweeps, out / f"gflops_vs_peak{tail}.png", variable, notes=notes))
    keep("attention_share", plots.plot_attention_share(
        share, crossover.plot_lines(share, rows), out / "attention_share.png"))
    keep("precision", plots.plot_precision(speedups, out / "precision.png"))
    keep("long_sequences", sparse_plots.plot_long_sequences(df, out / "long_sequences.png"))
    keep("sparse_price", sparse_plots.plot_price(subquadratic.price_table(df),
                                                 out / "sparse_price.png"))
    keep("rnn_vs_attention", recurrent_plot.plot(df, rows, out / "rnn_vs_attention.png"))
    return figures


def peak_note(df, meta: dict) -> str | None:
    """Why some measured cases have no % of peak (None when all have one)."""
    ok = df[df["ok"]]
    if ok.empty or ok["peak_gflops"].notna().all():
        return None
    if not peak_values(meta):
        return ("no matmul peak in meta.json (`python -m bench peak`, or `run --peak`): "
                "achieved GFLOP/s only")
    missing = ok[ok["peak_gflops"].isna()]
    reasons = sorted({peak_mismatch(meta, t, d) or f"no {b} {p} peak measured"
                      for b, p, t, d in zip(missing["peak_backend"], missing["peak_dtype"],
                                            missing["threads"], missing["device"])})
    return f"{len(missing)} case(s) without % of peak: " + "; ".join(reasons)


# ---- text# ---- text -----------------------------------------------------------------------------------

def passes_sentence(w: dict) -> str:
    """" Timed in P passes ...", from compare.pass_agreement's `w`; "" for a run of one pass."""
    if not w["n"]:
        return ""
    return (f" Timed in up to {w['passes']} passes spread over the run (a record keeps its pass "
            f"of lowest median); the same case (median ≥ {w['min_time_s'] * 1e3:g} ms, "
            f"{w['n']} cases) agreed with itself pass to pass within ±5% in "
            f"{w['share_pairs_within_5pct']:.0%} of pass pairs (spread max/min p50 "
            f"{w['spread_p50']:.2f}, p90 {w['spread_p90']:.2f}): this machine's own "
            f"repeatability while it ran (`python -m bench compare RUN_A RUN_B` compares runs).")


def render(run_id, df, meta, entries, two_term, share, speedups, figures, run_dir, rule,
           flop_result=None, rows=None, departures=None, agreement=None) -> str:
    """report.md: `## Verdicts` first (the machine in its first line), then the details."""
    llc = last_level_cache(meta)
    n_ok = int(df["ok"].sum())
    n_skip = int(df["status"].str.startswith("skipped").sum())
    n_fail = int(df["status"].str.startswith("failed").sum())
    title = meta.get("config_name") or run_id
    cpu = (meta.get("cpu") or {}).get("model") or "an unknown CPU"
    rows = rows if rows is not None else []
    table = verdicts.render(rows, cpu)
    lines = table[:2] + [f"`{title}` run `{run_id}` on {cpu}: {len(df)} cases, {n_ok} "
                         f"measured, {n_skip} skipped, {n_fail} failed. A different CPU gives "
                         f"different answers (caches, BLAS and the instruction set decide)."
                         + passes_sentence(agreement if agreement is not None
                                           else pass_agreement(df.to_dict("records")))
                         + budget_sentence(meta), ""]
    lines += incomplete_header(run_dir, meta, df[["case_id", "status"]].to_dict("records"))
    lines += table[2:]
    lines += quantization.section(speedups, df, meta, rule.seed)
    lines += [f"# {title}: measured scaling vs theory", ""]
    description = run_description(meta, df)
    if description:
        lines += [f"_{description}_", ""]
    machine, software = machine_lines(meta, [int(t) for t in df["threads"].dropna()])
    lines += [machine + "  ", software + "  ", f"**Matmul peak source:** {peak_source(meta)}.",
              ""]
    flop_result = flop_result if flop_result is not None else flopcheck.flop_check(df)
    lines += _flop_alarm(flop_result)
    departures = departures if departures is not None else precisions.memory_departures(df)
    lines += _departure_lines(departures)
    lines += library_lines(library_ratios(df))

    by_metric = rule.describe_by_metric(llc)
    claimed = sorted((e for e in entries if e["theory"] is not None),
                     key=lambda e: (e["variable"], e["block"], e["metric"], e["impl"],
                                    str(e["precision"])))
    lines += ["## Fits in detail", "",
              "**Fit range rule** (per metric; the *fit range* column names the regime each fit "
              "used):", ""]
    lines += [f"- {name}: {text}" for name, text in
              zip(("FLOPs", "Peak memory", "Time"),
                  (by_metric["flops"], by_metric["memory"], by_metric["time"]))]
    lines += ["", f"Every fit needs ≥ {rule.min_points} distinct sizes in its range, else 'not "
              f"enough data'. Exponent: Theil–Sen slope of log y on log x, {rule.ci:.0%} CI by "
              f"bootstrap over points ({rule.n_boot} resamples, seed {rule.seed}).", "",
              f"**Verdict rule.** {rule.describe_verdict()}", ""]
    if claimed:
        lines += _claims_table(claimed) + ["", "(Each row's sentence is in *Verdicts* above.)"]
        notes = [(e, n) for e in claimed if e["metric"] == "time" for n in e.get("notes", [])]
        if notes:
            lines += ["", "**Where the measurements depart from a single power law** "
                          "(time fits; the robust fit uses only the sizes in its fit range):",
                      ""]
            for e, n in notes:
                lines.append(f"- {e['impl']} {e['block']} {e['precision']} "
                             f"(vs {e['variable']}): {n}")
    else:
        lines.append("No sweep in this run tests a claim (a claim needs a sweep over seq_len "
                     "or d_model with at least two sizes).")
    lines.append("")

    lines += _flops_section(flop_result)
    lines += ["## Two-term model: t ≈ a·n²·d + b·n·d² + c", "",
              "Non-negative least squares (scipy.optimize.nnls) on every measured size, rows "
              "weighted by 1/t so every size counts by its relative error. The quadratic term "
              "is attention's n×n work, the linear one the projections and the feed-forward "
              "together. Where attention overtakes the feed-forward is defined once, in "
              "*Verdicts* (the bare attention block against the ffn block); this model's "
              "a and b mix in the projections and are not that crossover. A large residual "
              "means time is not a fixed-rate sum of the two terms (usually the cache cliff of "
              "the materialised attention matrix).", ""]
    lines += _two_term_table(two_term) if two_term else [
        "Not fitted: no mha / encoder_layer / encoder / model sweep over seq_len."]
    lines.append("")

    slopes = [e for e in entries if e["metric"] == "time" and e["local_slopes"]
              and e["variable"] == "seq_len"]
    if slopes:
        lines += ["## Local slopes (time)", ""] + _local_table(slopes) + [""]

    lines += ["## Plots", ""]
    captions = {"local_slopes": "Local exponents between successive sizes",
                "flops": "FLOPs: analytic (tfimpl.costs) vs counted (FlopCounterMode)",
                "memory": "Peak memory: measured vs predicted",
                "attention_share": "Attention's share of the layer's time",
                "roofline": "Achieved GFLOP/s vs the machine's matmul peak",
                "precision": "Precision: speedup vs fp32 (1× = as fast as fp32) and error vs "
                             "fp64, per block",
                "flops_d_model": "FLOPs vs d: analytic (tfimpl.costs) vs counted",
                "rnn_vs_attention": "Recurrent layer vs attention: time and memory against n "
                                    "(crossover marked) and the batching gain per token",
                "memory_d_model": "Peak memory vs d: measured vs predicted",
                "roofline_d_model": "Achieved GFLOP/s vs d and the machine's matmul peak"}
    for name, path in figures.items():
        cap = captions.get(name, name.replace("_", " "))
        if name == "attention_share" and share is not None:
            cap += (" (share = " + "; ".join(sorted(set(share["blocks"]))) + ", from "
                    + ", ".join(sorted(set(share["source"]))) + " cases)")
        lines += [f"### {cap}", "", f"![{cap}]({path.relative_to(run_dir).as_posix()})", ""]
        if name.startswith("roofline") and peak_note(df, meta):
            lines += [f"Note: {peak_note(df, meta)}.", ""]
    if not figures:
        lines += ["No plot: no measured case.", ""]

    lines += ["## Precision", ""] + _precision_tables(speedups, meta) + [""]
    others = [e for e in entries if e["theory"] is None]
    if others:
        lines += ["## Other fits (no single-exponent claim)", "",
                  "Blocks that mix O(n²) and O(n) work have no single exponent; the two-term "
                  "model above describes them.", ""] + _other_fits_table(others) + [""]
    lines += ["## Every case", ""] + _cases_table(df) + [""]
    return "\n".join(lines)
