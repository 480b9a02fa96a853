"""report.md's tables and short sections, one function each (bench.analysis.report.markdown composes
them). Numbers are formatted here, never computed: every value comes from the fits, the
precision table or the records.

Tests: tests/analysis/test_report.py, tests/analysis/test_verdicts.py.
"""

from __future__ import annotations

import math

from bench.analysis import claims, precisions
from bench.analysis.frame import cache_sizes, peak_table, peak_values
from bench.analysis.rule import fmt_bytes


def _f(v, fmt="{:.2f}", none="—") -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return none
    return fmt.format(v)


def machine_lines(meta: dict, case_threads=()) -> list[str]:
    """Two lines: the machine, then the software (threads: the cases' own setting)."""
    cpu = meta.get("cpu") or {}
    caches = cache_sizes(meta)
    cache_txt = " / ".join(f"{k} {fmt_bytes(v)}" for k, v in caches.items() if k != "L1i")
    mem = (meta.get("memory") or {}).get("total_bytes")
    peaks = {}
    for (backend, dtype), value in peak_values(meta).items():
        peaks.setdefault(backend, []).append(f"{dtype} {value:.0f}")
    peaks = [f"{backend} " + ", ".join(vals) for backend, vals in peaks.items()]
    p_threads = peak_table(meta).get("threads")
    if peaks and p_threads is not None:
        peaks[-1] += f" (measured with {p_threads} thread{'s' if p_threads != 1 else ''})"
    cores = cpu.get("usable_cores") or cpu.get("logical_cores") or meta.get("cores")
    line1 = (f"**Machine:** {cpu.get('model') or 'unknown CPU'}, {cores or '?'} cores, "
             f"caches {cache_txt or 'unknown'}"
             + (f", {mem / 2 ** 30:.0f} GiB RAM" if mem else "")
             + (f"; matmul peak (GFLOP/s): {'; '.join(peaks)}" if peaks
                else "; matmul peak not measured (`python -m bench peak`)") + ".")
    versions = meta.get("versions") or {}
    blas = ((meta.get("numpy_blas") or {}).get("blas") or {})
    threads = ", ".join(str(t) for t in sorted(set(case_threads))) or "?"
    git = meta.get("git") or {}
    sw = [f"Python {versions.get('python', '?')}"]
    for name in ("numpy", "torch", "transformers", "scipy"):
        if versions.get(name):
            sw.append(f"{name} {versions[name]}" + (
                f" ({blas.get('name')} {blas.get('version')})" if name == "numpy" and blas
                else ""))
    line2 = (f"**Software:** {', '.join(sw)}; threads per case: {threads}"
             + (f"; git {str(git.get('commit'))[:9]}{' (dirty)' if git.get('dirty') else ''}"
                if git.get("commit") else "") + ".")
    return [line1, line2]


REGIME_SHORT = {claims.REGIME_ALL: "all sizes", claims.REGIME_TOP: "top octaves",
                claims.REGIME_PAST_CACHE: "past 2×LLC", claims.REGIME_IN_CACHE: "in cache",
                claims.REGIME_CACHE_UNKNOWN: "cache unknown",
                claims.REGIME_PLATEAU: "rate plateau", claims.REGIME_NO_PLATEAU: "no plateau"}


def _claims_table(rows: list[dict]) -> list[str]:
    out = ["| block | metric vs | impl | precision | theory | measured exponent [95% CI] "
           "| fit range | range | R² | points | theory in CI | verdict |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in rows:
        rng = f"{e['range'][0]:g}–{e['range'][1]:g}" if e["range"] else "—"
        measured = (f"{e['exponent']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]"
                    if e["exponent"] is not None else
                    f"— (all sizes: {_f(e.get('full_range_exponent'))})")
        in_ci = {True: "yes", False: "no", None: "—"}[e["theory_in_ci"]]
        out.append(f"| {e['block']} | {e['metric']} vs {e['variable']} | {e['impl']} "
                   f"| {e['precision'] or '—'} | {e['theory']:g} | {measured} "
                   f"| {REGIME_SHORT.get(e.get('regime'), '—')} | {rng} "
                   f"| {_f(e['r2'], '{:.3f}')} | {e['points_asymptotic']}/{e['points_total']} "
                   f"| {in_ci} | **{e['verdict']}** |")
    return out


def _other_fits_table(rows: list[dict]) -> list[str]:
    out = ["| block | metric vs | impl | precision | exponent [95% CI] | fit range | range "
           "| all sizes ≥ floor |", "|---|---|---|---|---|---|---|---|"]
    for e in rows:
        rng = f"{e['range'][0]:g}–{e['range'][1]:g}" if e["range"] else "—"
        k = (f"{e['exponent']:.2f} [{e['ci_low']:.2f}, {e['ci_high']:.2f}]"
             if e["exponent"] is not None else "not enough data")
        out.append(f"| {e['block']} | {e['metric']} vs {e['variable']} | {e['impl']} "
                   f"| {e['precision']} | {k} | {REGIME_SHORT.get(e.get('regime'), '—')} "
                   f"| {rng} | {_f(e['full_range_exponent'])} |")
    return out


def _two_term_table(rows: list[dict]) -> list[str]:
    out = ["| block | impl | precision | d | a (s) | b (s) | c (s) | points "
           "| max abs residual |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['block']} | {r['impl']} | {r['precision']} | {r['d_text']} "
                   f"| {_f(r['a'], '{:.3g}')} | {_f(r['b'], '{:.3g}')} | {_f(r['c'], '{:.3g}')} "
                   f"| {r['n_points']} | "
                   + (f"{_f(r['max_abs_rel_residual'], '{:.1%}')} |" if r["status"] == "ok"
                      else f"not fitted: {r['reason']} |"))
    return out


def _local_table(rows: list[dict]) -> list[str]:
    out = ["| series | local exponents between successive sizes |", "|---|---|"]
    for e in rows:
        pairs = ", ".join(f"{s['x_lo']:g}→{s['x_hi']:g}: {s['slope']:.2f}"
                          for s in e["local_slopes"])
        out.append(f"| {e['impl']} {e['block']} {e['precision']} ({e['metric']} vs "
                   f"{e['variable']}) | {pairs} |")
    return out


def _precision_tables(table, meta: dict) -> list[str]:
    """Per block: one plain sentence, then a row per (impl, case, precision), skips included."""
    if table is None or table.empty:
        return ["No precision comparison in this run (no case was run in two precisions)."]
    out = ["Each precision against the fp32 run of the same case: speedup = fp32 median / this "
           "median, memory = this peak / fp32 peak; errors against the fp64 reference. Cases "
           "that were not measured keep their status; a budget skip or a timeout is marked "
           "**slow path** (a finding about that precision here).", ""]
    isa = precisions.isa_lines(meta, table)
    if isa:
        out += isa + [""]
    mib = 2 ** 20
    for block, rows in table.groupby("block", sort=True):
        sentence = precisions.block_sentence(block, rows)
        out += [f"**{block}**" + (f": {sentence}" if sentence else ""), "",
                "| impl | mode | n | d | precision | median ms | speedup vs fp32 "
                "| peak MiB | memory vs fp32 | max abs err | rel. L2 err | attn max abs err "
                "| attn rel. L2 err | status |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows.to_dict("records"):
            status = r["status"]
            if r["slow_path"]:
                status = f"**slow path**: {status}"
            out.append(
                f"| {r['impl']} | {r['mode']} | {r['seq_len']} | {r['d_model']} "
                f"| {r['precision']} | {_f(r['median_s'] * 1e3, '{:.3f}')} "
                f"| {_f(r['speedup'], '{:.2f}×')} | {_f(r['peak_bytes'] / mib, '{:.2f}')} "
                f"| {_f(r['mem_ratio'], '{:.2f}×')} | {_f(r['max_abs_err'], '{:.1e}')} "
                f"| {_f(r['rel_l2_err'], '{:.1e}')} | {_f(r['attn_max_abs_err'], '{:.1e}')} "
                f"| {_f(r['attn_rel_l2_err'], '{:.1e}')} | {status} |")
        out.append("")
    return out


def precision_summary(table, meta: dict) -> dict:
    """summary.json's "precision": rows (JSON-ready), a sentence per block, the ISA note."""
    if table is None or table.empty:
        return {"rows": [], "sentences": {}, "cpu_flags": meta.get("cpu_flags"), "isa": []}
    rows = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v)
             for k, v in r.items()} for r in table.to_dict("records")]
    return {"rows": rows,
            "sentences": {b: precisions.block_sentence(b, g)
                          for b, g in table.groupby("block", sort=True)},
            "cpu_flags": meta.get("cpu_flags"), "isa": precisions.isa_lines(meta, table)}


def _departure_lines(departures: list[dict]) -> list[str]:
    """A note per case whose peak memory departs from the model (amp-*: with the cause)."""
    if not departures:
        return []
    mib = 2 ** 20
    out = [f"> **Memory model departures** (measured peak > "
           f"{precisions.MEMORY_DEPARTURE:g}× the prediction):"]
    causes = {}
    for d in departures:
        out.append(f"> - {d['impl']} {d['block']} {d['precision']} n={d['seq_len']} "
                   f"d={d['d_model']}: {d['peak_bytes'] / mib:.2f} MiB measured vs "
                   f"{d['peak_bytes_predicted'] / mib:.2f} MiB predicted ({d['ratio']:.2f}×)"
                   + ("" if d["cause"] else ": cause not known"))
        if d["cause"]:
            causes[d["cause"]] = True
    out += [f"> Cause (amp-*): {c}." for c in causes] + [""]
    return out


def _cases_table(df) -> list[str]:
    out = ["| impl | block | precision | mode | B | n | d | h | d_ff | median ms | IQR/median "
           "| GFLOP/s | % peak | peak MiB | predicted MiB | rel. L2 err | status |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    cols = ["block", "impl", "precision", "mode", "d_model", "seq_len"]
    for r in df.sort_values(cols).to_dict("records"):
        mib = 2 ** 20
        flag = " ⚠" if r.get("unstable") is True else ""
        out.append(
            f"| {r['impl']} | {r['block']} | {r['precision']} | {r['mode']} | {r['batch']} "
            f"| {r['seq_len']} | {r['d_model']} | {r['n_heads']} | {r['d_ff']} "
            f"| {_f(r['median_s'] * 1e3, '{:.3f}')} "
            f"| {_f(r['spread'], '{:.1%}')}{flag} | {_f(r['gflops'], '{:.1f}')} "
            f"| {_f(r['peak_fraction'], '{:.0%}')} | {_f(r['peak_bytes'] / mib, '{:.2f}')} "
            f"| {_f(r['peak_bytes_predicted'] / mib, '{:.2f}')} "
            f"| {_f(r['rel_l2_err'], '{:.1e}')} | {r['status']} |")
    return out


def _flops_section(check: dict) -> list[str]:
    out = ["## FLOPs: counted vs analytic", ""]
    if not check["n_counted"]:
        return out + ["No case was counted with FlopCounterMode (NumPy cases only, or "
                      "measure.count_flops off): the fits use the analytic FLOPs.", ""]
    bad = check["mismatches"]
    out += [f"{check['n_counted']} case(s) counted with FlopCounterMode; {check['n_match']} "
            f"equal the analytic count (tfimpl.costs) exactly"
            + (f", {len(bad)} differ ({check['n_unexplained']} unexplained)." if bad else "."),
            ""]
    if bad:
        out += ["| impl | block | precision | mode | n | d | counted | analytic "
                "| counted / analytic | cause |", "|---|---|---|---|---|---|---|---|---|---|"]
        for m in bad:
            cause = m["explanation"] if m["kind"] == "known" else f"⚠ **{m['explanation']}**"
            out.append(f"| {m['impl']} | {m['block']} | {m['precision']} | {m['mode']} "
                       f"| {m['seq_len']} | {m['d_model']} | {m['counted']:.4g} "
                       f"| {m['analytic']:.4g} | {m['ratio']:.4f} | {cause} |")
        out.append("")
    return out


def _flop_alarm(check: dict) -> list[str]:
    """The top-of-report warning for unexplained FLOP mismatches (empty when there is none)."""
    bad = [m for m in check["mismatches"] if m["kind"] != "known"]
    if not bad:
        return []
    loud = [m for m in bad if m["kind"] == "unexplained-forward-explicit"]
    what = (f"{len(loud)} on a forward explicit-attention path, where counter and model must "
            f"agree" if loud else "none on a forward explicit path")
    return [f"> ⚠ **Unexplained FLOP mismatch in {len(bad)} case(s)** ({what}): counted "
            f"(FlopCounterMode) ≠ analytic (tfimpl.costs). See *FLOPs: counted vs analytic*.",
            ""]
