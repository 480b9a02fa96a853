"""The HTML page both interactive pages are made of (report.html and `bench history`'s page).

    page(title, body, payload)  a whole document: the style, `body`, payload as JSON in a
                                <script type="application/json"> (`</` escaped), plotly.js
                                inline (PLOTLY_JS, vendored once under vendor/: the pages open
                                with no network), and the script that draws payload["figures"]
                                (plotly.js JSON: {id, data, layout}) and, with payload["cases"],
                                the drill-down (a box of samples per pass of the chosen case)
    write_page(path, text)      atomically: a temporary file renamed over the target
    table(headers, rows, ...)   an HTML table, every cell escaped (a cell is text, (css class,
                                text), or `_n(text)`: a right-aligned number)
    verdict_class(verdict)      held / not-held / undecided (the colours)

Plain HTML tables carry every number the figures show, so a page stays readable with
JavaScript off. Kept apart from bench.analysis.report (whose package pulls in pandas and
matplotlib) so `bench history` builds its page without them.

Tests: tests/analysis/test_html.py, tests/analysis/test_html_browser.py.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path

PLOTLY_JS = Path(__file__).resolve().parent / "vendor" / "plotly-cartesian-4.1.1.min.js"
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf")

_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;font-size:13px;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.held td.verdict{color:#176317;font-weight:600} tr.not-held td.verdict{color:#a31515;font-weight:600}
tr.undecided td.verdict{color:#8a6d00} tr.out-of-band td{background:#fde8e8}
td.held{color:#176317;font-weight:600} td.not-held{color:#a31515;font-weight:600}
td.undecided{color:#8a6d00}
.figure{width:100%;height:440px;margin-bottom:1em} .note{color:#555;font-size:13px}
"""

_SCRIPT = """
(function(){
  var data = JSON.parse(document.getElementById('tfbench-data').textContent);
  var config = {responsive: true, displaylogo: false};
  data.figures.forEach(function(f){ Plotly.newPlot(f.id, f.data, f.layout, config); });
  var pick = document.getElementById('drill-case');
  function drill(){
    var c = data.cases[pick.value];
    if (!c) return;
    var traces = c.passes.map(function(s, i){
      return {type: 'box', y: s, name: 'pass ' + (i + 1), boxpoints: 'all', jitter: 0.4,
              pointpos: 0, hovertemplate: '%{y:.4g} s<extra>pass ' + (i + 1) + '</extra>'};
    });
    Plotly.react('drill', traces, {title: {text: c.label}, yaxis: {title: {text: 'seconds'}},
                 showlegend: false, margin: {t: 40}}, config);
  }
  if (pick) { pick.addEventListener('change', drill); drill(); }
  window.tfbenchReady = true;
})();
"""


def _num(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _fmt(value, spec: str = "{:.3g}", empty: str = "") -> str:
    value = _num(value)
    return empty if value is None else spec.format(value)


def _bytes(n) -> str:
    n = _num(n)
    if n is None:
        return ""
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def _json_script(payload: dict) -> str:
    """JSON for a <script type="application/json">: `</` escaped so no string can close it."""
    text = json.dumps(payload, separators=(",", ":"), allow_nan=False, default=_plain)
    return text.replace("</", "<\\/")


def _plain(value):
    if hasattr(value, "item"):                   # NumPy scalars
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON")


def page(title: str, body: str, payload: dict) -> str:
    """A whole HTML document: the style, `body`, the data as JSON, plotly.js inline, the script
    that draws payload["figures"] (and the drill-down when payload has "cases")."""
    script = PLOTLY_JS.read_text(encoding="utf-8")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
            f"{body}\n<noscript><p class=\"note\">The figures need JavaScript; every table "
            "above and below is plain HTML.</p></noscript>\n"
            f"<script type=\"application/json\" id=\"tfbench-data\">{_json_script(payload)}"
            f"</script>\n<script>{script}</script>\n<script>{_SCRIPT}</script>\n</body></html>\n")


def write_page(path: Path, text: str) -> Path:
    """Write atomically (a temporary file renamed over the target): never half a page."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def table(headers: list[str], rows: list[list[str]], row_attrs: list[str] | None = None,
          table_id: str = "") -> str:
    """An HTML table; cells are escaped here. A cell is text, or (css class, text); `_n(text)`
    marks a number (right-aligned)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    out = [f"<table id=\"{table_id}\"><thead><tr>{head}</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        attrs = row_attrs[i] if row_attrs else ""
        cells = []
        for cell in row:
            if isinstance(cell, tuple):
                cells.append(f"<td class=\"{cell[0]}\">{html.escape(str(cell[1]))}</td>")
                continue
            text = str(cell)
            if text.startswith("\x00num"):
                cells.append(f"<td class=\"num\">{html.escape(text[4:])}</td>")
            else:
                cells.append(f"<td>{html.escape(text)}</td>")
        out.append(f"<tr {attrs}>{''.join(cells)}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _n(text: str) -> str:
    return "\x00num" + text


def verdict_class(verdict: str) -> str:
    return {"held": "held", "did not hold": "not-held"}.get(verdict, "undecided")
