"""report.html: one self-contained, interactive page per run, beside report.md.

What it holds, in order (all from the run's records and the summary write_report builds; nothing
is measured or fitted here):

    the verdict table    summary.json's claims, one row each (plain HTML: readable with
                         JavaScript off, as is every table on the page)
    one figure per       (block, metric, variable) of the fits: per implementation and precision
                         the measured points (hover: the case, median, IQR, samples, GFLOP/s, %
                         of the matmul peak, peak memory; the case id rides in `customdata`),
                         and each fit's line over its fit range with the band its exponent's CI
                         spans, pivoted at the fitted points' geometric centre; log axes, the
                         legend toggles traces
    the drill-down       one case chosen from a list: its raw samples, a box per timing pass
    the cases table      every case: status, median, IQR, samples, GFLOP/s, peak memory

The plotting library: plotly.js (MIT), its "cartesian" partial bundle vendored once under
bench/analysis/vendor/ (1.5 MB; the full bundle is 4.8 MB) and embedded in the page, so it opens with no
network; the figures are plain plotly.js JSON written here, so no Python plotting package is
needed. Why plotly.js: hover, legend toggles, log axes, box plots and a `Plotly.react` to swap
the drill-down's data come with it, it runs offline from one file, and it is the library
people know from notebooks. The document itself (style, data, script) is bench.analysis.page's,
shared with `bench history` (bench.analysis.history).

Tests: tests/analysis/test_html.py (the page's content) and tests/analysis/test_html_browser.py
(opened in headless Chromium).
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from bench.analysis.page import (PALETTE, _bytes, _fmt, _n, _num, page, table, verdict_class,
                                 write_page)
from bench.reader import read_records

HTML_FILE = "report.html"
Y_COLUMN = {"time": ("median_s", "time (s)"), "memory": ("peak_bytes", "peak memory (bytes)"),
            "flops": ("flops", "FLOPs"), "params": ("params", "parameters")}


def verdict_table(claims: list[dict]) -> str:
    rows, attrs = [], []
    for c in claims:
        ci = (f" [{_fmt(c.get('ci_low'))}, {_fmt(c.get('ci_high'))}]"
              if _num(c.get("ci_low")) is not None else "")
        rows.append([c.get("claim", ""), c.get("impl") or "", c.get("precision") or "",
                     c.get("theory_text") or _fmt(c.get("theory")),
                     _n(_fmt(c.get("value")) + ci), c.get("unit") or "", c.get("fit_range") or "",
                     ("verdict", c.get("verdict", "")), c.get("sentence", "")])
        attrs.append(f"class=\"{verdict_class(c.get('verdict', ''))}\" "
                     f"data-claim=\"{html.escape(str(c.get('id', '')), quote=True)}\"")
    return table(["claim", "impl", "precision", "theory", "measured [95% CI]", "unit",
                  "fit range", "verdict", "because"], rows, attrs, "verdicts")


# ---- figures ------------------------------------------------------------------------------

def _matching(df, fit: dict):
    """The ok rows a fit entry was fitted from: its block, impl, precision, fixed fields."""
    rows = df[df["ok"] & (df["block"] == fit["block"]) & (df["impl"] == fit["impl"])
              & (df["precision"] == fit["precision"])]
    for key, value in (fit.get("fixed") or {}).items():
        if key in rows.columns and key != fit["variable"]:
            rows = rows[rows[key] == value]
    return rows


def hover_text(r: dict) -> str:
    parts = [f"<b>{html.escape(str(r.get('impl')))}/{html.escape(str(r.get('block')))}</b> "
             f"n={r.get('seq_len')} d={r.get('d_model')} {html.escape(str(r.get('precision')))}",
             f"case {r.get('case_id')}"]
    if _num(r.get("median_s")) is not None:
        parts.append(f"median {_fmt(r['median_s'], '{:.4g}')} s (IQR {_fmt(r.get('iqr_s'), '{:.2g}', '?')} s),"
                     f" {int(_num(r.get('n_samples')) or 0)} samples")
    if _num(r.get("gflops")) is not None:
        frac = _num(r.get("peak_fraction"))
        parts.append(f"{_fmt(r['gflops'], '{:.1f}')} GFLOP/s"
                     + (f" ({frac:.0%} of the matmul peak)" if frac is not None else ""))
    if _num(r.get("peak_bytes")) is not None:
        parts.append(f"peak memory {_bytes(r['peak_bytes'])}")
    return "<br>".join(parts)


def _fit_traces(fit: dict, xs: list[float], ys: list[float], color: str, name: str) -> list[dict]:
    """The fit line over its range and its CI band (pivoted at the points' geometric centre)."""
    b, lo, hi = _num(fit.get("exponent")), _num(fit.get("ci_low")), _num(fit.get("ci_high"))
    rng = fit.get("range") or []
    inside = [(x, y) for x, y in zip(xs, ys) if len(rng) == 2 and rng[0] <= x <= rng[1] and y > 0]
    if b is None or len(inside) < 2:
        return []
    xc = math.exp(sum(math.log(x) for x, _ in inside) / len(inside))
    yc = math.exp(sum(math.log(y) for _, y in inside) / len(inside))
    grid = [rng[0] * (rng[1] / rng[0]) ** (i / 20) for i in range(21)]
    line = [yc * (x / xc) ** b for x in grid]
    text = f"{name}: fit ^{b:.2f}" + (f" [{lo:.2f}, {hi:.2f}]" if lo is not None else "")
    traces = [{"type": "scatter", "mode": "lines", "x": grid, "y": line, "name": text,
               "legendgroup": name, "line": {"color": color, "dash": "dash", "width": 1.5},
               "hovertemplate": text + "<extra></extra>", "meta": {"role": "fit"}}]
    if lo is not None and hi is not None:
        low = [yc * min((x / xc) ** lo, (x / xc) ** hi) for x in grid]
        high = [yc * max((x / xc) ** lo, (x / xc) ** hi) for x in grid]
        traces += [{"type": "scatter", "mode": "lines", "x": grid, "y": low, "showlegend": False,
                    "legendgroup": name, "line": {"width": 0}, "hoverinfo": "skip",
                    "meta": {"role": "band"}},
                   {"type": "scatter", "mode": "lines", "x": grid, "y": high, "fill": "tonexty",
                    "fillcolor": color + "33", "showlegend": False, "legendgroup": name,
                    "line": {"width": 0}, "hoverinfo": "skip", "meta": {"role": "band"}}]
    return traces


def run_figures(df, fits: list[dict]) -> list[dict]:
    """plotly.js figures, one per (block, metric, variable) of the fits (module docstring)."""
    groups: dict[tuple, list[dict]] = {}
    for fit in fits:
        if fit.get("metric") in Y_COLUMN and fit.get("variable") in df.columns:
            groups.setdefault((fit["block"], fit["metric"], fit["variable"]), []).append(fit)
    figures = []
    for index, ((block, metric, variable), members) in enumerate(groups.items()):
        column, y_title = Y_COLUMN[metric]
        data, seen = [], set()
        for k, fit in enumerate(members):
            rows = _matching(df, fit)
            if column not in rows.columns or rows.empty:
                continue
            positive = rows[column].map(lambda v: (_num(v) or 0) > 0).astype(bool)
            rows = rows[positive.to_numpy()].sort_values(variable)
            if rows.empty:
                continue
            name = f"{fit['impl']} {fit['precision']}"
            color = PALETTE[k % len(PALETTE)]
            records = rows.to_dict("records")
            xs = [float(r[variable]) for r in records]
            ys = [float(r[column]) for r in records]
            key = (fit["impl"], fit["precision"], tuple(xs))
            if key not in seen:                     # one points trace per series
                seen.add(key)
                data.append({"type": "scatter", "mode": "markers", "x": xs, "y": ys,
                             "name": name, "legendgroup": name,
                             "marker": {"color": color, "size": 7},
                             "customdata": [r["case_id"] for r in records],
                             "text": [hover_text(r) for r in records],
                             "hovertemplate": "%{text}<extra></extra>",
                             "meta": {"role": "points", "column": column,
                                      "variable": variable}})
            data += _fit_traces(fit, xs, ys, color, name)
        if not data:
            continue
        figures.append({"id": f"fig-{index}", "title": f"{block}: {metric} vs {variable}",
                        "data": data,
                        "layout": {"title": {"text": f"{block}: {metric} vs {variable}"},
                                   "xaxis": {"type": "log", "title": {"text": variable}},
                                   "yaxis": {"type": "log", "title": {"text": y_title}},
                                   "hovermode": "closest", "margin": {"t": 40},
                                   "legend": {"font": {"size": 11}}}})
    return figures


def drilldown(records: list[dict]) -> dict:
    """case_id -> {"label", "passes": [[samples of pass 1], [pass 2], ...]} for every ok case
    (the records as read back, later passes folded in: every sample of every pass)."""
    out = {}
    for r in records:
        if r.get("status") != "ok":
            continue
        samples = r.get("samples_s")
        if not isinstance(samples, (list, tuple)) or not samples:
            continue
        which = r.get("sample_pass")
        which = which if isinstance(which, (list, tuple)) and len(which) == len(samples) \
            else [1] * len(samples)
        passes: dict[int, list[float]] = {}
        for s, p in zip(samples, which):
            passes.setdefault(int(p), []).append(float(f"{float(s):.6g}"))
        label = (f"{r['impl']}/{r['block']} n={r['seq_len']} d={r['d_model']} {r['precision']}"
                 f" {r['mode']}")
        out[str(r["case_id"])] = {"label": label, "passes": [passes[k] for k in sorted(passes)]}
    return out


def cases_table(df) -> str:
    rows = []
    for r in df.to_dict("records"):
        rows.append([r.get("case_id", ""), f"{r['impl']}/{r['block']}", _n(str(r.get("seq_len"))),
                     _n(str(r.get("d_model"))), r.get("precision", ""), r.get("status", ""),
                     _n(_fmt(r.get("median_s"), "{:.4g}")), _n(_fmt(r.get("iqr_s"), "{:.2g}")),
                     _n(_fmt(r.get("n_samples"), "{:.0f}")), _n(_fmt(r.get("gflops"), "{:.1f}")),
                     _n(_bytes(r.get("peak_bytes")))])
    return table(["case", "impl/block", "n", "d", "precision", "status", "median (s)",
                  "IQR (s)", "samples", "GFLOP/s", "peak memory"], rows, table_id="cases")


def write_html(run_dir, df, meta: dict, summary: dict) -> Path:
    """Write run_dir/report.html (module docstring) and return its path."""
    run_dir = Path(run_dir)
    figures = run_figures(df, summary.get("fits") or [])
    cases = drilldown(read_records(run_dir))
    machine = meta.get("cpu_model") or (meta.get("cpu") or {}).get("model") or ""
    title = f"tfbench: {summary.get('run', run_dir.name)}"
    options = "".join(f"<option value=\"{html.escape(cid)}\">{html.escape(c['label'])}</option>"
                      for cid, c in cases.items())
    body = [f"<h1>{html.escape(title)}</h1>",
            f"<p class=\"note\">{html.escape(summary.get('description') or '')}"
            + (f"<br>machine: {html.escape(str(machine))}" if machine else "")
            + f"<br>{summary.get('n_ok', 0)} of {summary.get('n_records', 0)} cases measured; "
              "the same numbers as report.md and summary.json.</p>",
            "<h2>Verdicts</h2>", verdict_table(summary.get("claims") or []),
            "<h2>Figures</h2><p class=\"note\">Hover a point for its case; click a legend entry "
            "to hide it; dashed: the fit over its range, shaded: its exponent's 95% CI.</p>"]
    body += [f"<div class=\"figure\" id=\"{f['id']}\" data-title=\"{html.escape(f['title'])}\">"
             "</div>" for f in figures]
    body += ["<h2>One case, sample by sample</h2>",
             f"<label>case <select id=\"drill-case\">{options}</select></label>",
             "<div class=\"figure\" id=\"drill\"></div>",
             "<h2>Cases</h2>", cases_table(df)]
    text = page(title, "\n".join(body), {"figures": figures, "cases": cases})
    return write_page(run_dir / HTML_FILE, text)
