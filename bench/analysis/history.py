"""Runs over time: `bench history DIR...` reads run folders and writes one HTML page.

    load_runs(paths)     each path a run folder (it has records.jsonl) or a folder of them
                         (results/): -> (runs, skipped). A folder that cannot be read (no
                         records, a damaged records.jsonl or meta.json, a schema this tfbench
                         does not know, no run at all) is skipped with its reason, never raised.
    group_runs(runs)     {(machine, config name): [runs, oldest first]}: the machine is the CPU
                         model, its logical cores, the architecture and the hostname from
                         meta.json (what `bench run` refuses to resume across), so runs of one
                         machine and one config are compared only with each other
    claim_history(runs)  per claim (id, impl, precision): each run's verdict, value and CI
    case_history(runs)   per case (bench.analysis.compare.match_key): each run's median; the
                         band is the earlier runs' median ± max(5%, 3 × 1.4826 × MAD of their
                         log medians); "flagged" is what `bench compare previous latest` says
                         of the latest run (regression or improvement: the same model, the
                         calibration probe's drift correction and the pair's scatter included)
    write_history(paths, out) the page (bench.analysis.page): per group the runs
                         table (machine, commit, when, wall time, verdict counts), the verdicts
                         as a claims x runs table, each claim's exponent over runs with its CI,
                         each case's median over runs relative to its band, flagged cases first

Tests: tests/analysis/test_history.py (+ tests/analysis/test_html_browser.py in Chromium).
"""

from __future__ import annotations

import html
import json
import math
import statistics
from datetime import datetime, timezone
from pathlib import Path

from bench.analysis.compare import IMPROVEMENT, REGRESSION, compare_records, label, match_key
from bench.analysis.page import PALETTE, page, table, verdict_class, write_page
from bench.reader import RECORDS_FILE, RunDirError, check_run_dir

HISTORY_FILE = "history.html"
BAND_FLOOR = 0.05
SUMMARY_FILE = "summary.json"


def _is_run(path: Path) -> bool:
    return (path / RECORDS_FILE).exists()


def _read_run(path: Path) -> dict:
    """One run folder's facts for the page; RunDirError / ValueError / OSError when unreadable."""
    records, meta = check_run_dir(path)                  # later passes folded in already
    if not records:
        raise RunDirError(f"{path / RECORDS_FILE} holds no record")
    claims = None
    summary = path / SUMMARY_FILE
    if summary.exists():
        try:
            claims = json.loads(summary.read_text()).get("claims")
        except (json.JSONDecodeError, AttributeError):
            claims = None                   # the page says "no report"; the records still count
    cpu = meta.get("cpu") or {}
    fingerprint = meta.get("fingerprint") or {}
    start, end = meta.get("start_time"), meta.get("end_time")
    wall = (meta.get("run_budget") or {}).get("end_s")
    if wall is None and isinstance(start, (int, float)) and isinstance(end, (int, float)):
        wall = end - start
    return {"dir": str(path), "name": path.name, "meta": meta, "records": records,
            "claims": claims, "config": meta.get("config_name") or path.name,
            "machine": " · ".join(str(x) for x in (
                cpu.get("model") or "?", f"{cpu.get('logical_cores') or '?'} cores",
                fingerprint.get("machine") or "", meta.get("hostname") or "") if x),
            "commit": ((meta.get("git") or {}).get("commit") or "")[:10],
            "when": start if isinstance(start, (int, float)) else None,
            "wall_s": wall, "n_ok": sum(r.get("status") == "ok" for r in records)}


def load_runs(paths) -> tuple[list[dict], list[tuple[str, str]]]:
    """(runs, [(folder, reason skipped)]) from run folders or folders of run folders."""
    runs, skipped = [], []
    for given in paths:
        path = Path(given)
        if not path.is_dir():
            skipped.append((str(path), "not a folder"))
            continue
        candidates = [path] if _is_run(path) else sorted(p for p in path.iterdir() if p.is_dir())
        if not candidates:
            skipped.append((str(path), "holds no run folder"))
        for folder in candidates:
            if not _is_run(folder):
                skipped.append((str(folder), f"no {RECORDS_FILE}: not a tfbench run folder"))
                continue
            try:
                runs.append(_read_run(folder))
            except (RunDirError, ValueError, OSError) as exc:
                skipped.append((str(folder), " ".join(str(exc).split())[:300]))
    return runs, skipped


def group_runs(runs: list[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for run in sorted(runs, key=lambda r: (r["when"] is None, r["when"] or 0, r["name"])):
        groups.setdefault((run["machine"], run["config"]), []).append(run)
    return groups


def _claim_key(c: dict) -> tuple:
    return (c.get("id"), c.get("impl"), c.get("precision"))


def claim_history(runs: list[dict]) -> dict[tuple, list[dict | None]]:
    """claim key -> one entry per run (None where that run has no such claim)."""
    by_key = []
    for run in runs:                                   # a run's first claim of each key
        claims: dict[tuple, dict] = {}
        for c in run["claims"] or []:
            claims.setdefault(_claim_key(c), c)
        by_key.append(claims)
    keys = dict.fromkeys(k for claims in by_key for k in claims)     # first-seen order
    return {key: [claims.get(key) for claims in by_key] for key in keys}


def _band(medians: list[float]) -> tuple[float, float] | None:
    if not medians:
        return None
    logs = [math.log(m) for m in medians]
    centre = statistics.median(logs)
    mad = statistics.median(abs(x - centre) for x in logs)
    half = max(math.log1p(BAND_FLOOR), 3 * 1.4826 * mad)
    return math.exp(centre - half), math.exp(centre + half)


def case_history(runs: list[dict]) -> list[dict]:
    """Per case in >= 2 runs: its label, medians per run (None where absent), the band of the
    runs before the latest, and compare's status of the latest against the one before."""
    series: dict[tuple, dict] = {}
    for i, run in enumerate(runs):
        for r in run["records"]:
            if r.get("status") == "ok" and (r.get("median_s") or 0) > 0:
                entry = series.setdefault(match_key(r), {"label": label(r), "medians": {}})
                entry["medians"][i] = float(r["median_s"])
    flagged: dict[tuple, str] = {}
    if len(runs) >= 2:
        result = compare_records(runs[-2]["records"], runs[-1]["records"])
        for row in result["rows"]:
            if row["status"] in (REGRESSION, IMPROVEMENT):
                flagged[row["label"]] = row["status"]
    out = []
    for key, entry in series.items():
        if len(entry["medians"]) < 2:
            continue
        last = len(runs) - 1
        earlier = [m for i, m in entry["medians"].items() if i < last]
        band = _band(earlier)
        latest = entry["medians"].get(last)
        out.append({"label": entry["label"],
                    "medians": [entry["medians"].get(i) for i in range(len(runs))],
                    "band": band, "latest": latest,
                    "outside": (band is not None and latest is not None
                                and not band[0] <= latest <= band[1]),
                    "flagged": flagged.get(entry["label"])})
    out.sort(key=lambda c: (c["flagged"] is None, not c["outside"], c["label"]))
    return out


def _when(ts) -> str:
    if ts is None:
        return "?"
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _verdict_counts(claims) -> str:
    if claims is None:
        return "no report"
    counts: dict[str, int] = {}
    for c in claims:
        counts[c.get("verdict", "?")] = counts.get(c.get("verdict", "?"), 0) + 1
    return ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))


def _group_section(index: int, machine: str, config: str, runs: list[dict]) -> tuple[str, list]:
    names = [f"run {i + 1}: {r['name']} @ {r['commit'] or '?'}, {_when(r['when'])}"
             for i, r in enumerate(runs)]
    parts = [f"<h2>{html.escape(config)} on {html.escape(machine)}</h2>",
             table(["#", "run", "machine", "commit", "when", "wall (s)", "cases ok", "verdicts"],
                   [[str(i + 1), r["name"], r["machine"], r["commit"], _when(r["when"]),
                     "" if r["wall_s"] is None else f"{r['wall_s']:.0f}", str(r["n_ok"]),
                     _verdict_counts(r["claims"])] for i, r in enumerate(runs)],
                   table_id=f"runs-{index}")]
    claims = claim_history(runs)
    rows, attrs = [], []
    for (cid, impl, prec), by_run in claims.items():
        first = next(c for c in by_run if c is not None)
        cells = [(verdict_class(c.get("verdict", "")), c.get("verdict", "")) if c else ("", "")
                 for c in by_run]
        rows.append([first.get("claim", cid), impl or "", prec or ""] + cells)
        attrs.append(f"data-claim=\"{html.escape(str(cid), quote=True)}\"")
    parts.append(table(["claim", "impl", "precision"] + [str(i + 1) for i in range(len(runs))],
                       rows, attrs, f"claims-{index}"))
    figures = []
    traces = []
    for k, ((cid, impl, prec), by_run) in enumerate(claims.items()):
        points = [(i + 1, c) for i, c in enumerate(by_run)
                  if c and c.get("unit") == "exponent" and c.get("value") is not None]
        if not points:
            continue
        traces.append({"type": "scatter", "mode": "lines+markers", "name": f"{cid} {impl}",
                       "x": [i for i, _ in points], "y": [c["value"] for _, c in points],
                       "error_y": {"type": "data", "symmetric": False,
                                   "array": [(c.get("ci_high") or c["value"]) - c["value"]
                                             for _, c in points],
                                   "arrayminus": [c["value"] - (c.get("ci_low") or c["value"])
                                                  for _, c in points]},
                       "line": {"color": PALETTE[k % len(PALETTE)]},
                       "text": [f"{html.escape(names[i - 1])}<br>{c.get('verdict')}"
                                for i, c in points],
                       "hovertemplate": f"{html.escape(str(cid))} {impl}: "
                                        "%{y:.3f}<br>%{text}<extra></extra>"})
    if traces:
        parts.append(f"<div class=\"figure\" id=\"claims-fig-{index}\"></div>")
        figures.append({"id": f"claims-fig-{index}", "title": "exponents over runs",
                        "data": traces,
                        "layout": {"title": {"text": "fitted exponents over runs (95% CI)"},
                                   "xaxis": {"title": {"text": "run"}, "dtick": 1},
                                   "yaxis": {"title": {"text": "exponent"}},
                                   "hovermode": "closest"}})
    cases = case_history(runs)
    if cases:
        flagged = [c for c in cases if c["flagged"] or c["outside"]]
        parts.append(f"<p class=\"note\">{len(cases)} cases in two or more runs; "
                     f"{sum(bool(c['flagged']) for c in cases)} flagged by bench compare "
                     f"(run {len(runs) - 1} against run {len(runs)}), "
                     f"{sum(c['outside'] for c in cases)} outside their band.</p>")
        if not flagged:
            parts.append("<p class=\"note\">No case left its band or was flagged.</p>")
        parts.append(table(["case", "latest (s)", "band (s)", "bench compare"],
                           [[c["label"], f"{c['latest']:.4g}" if c["latest"] else "",
                             f"{c['band'][0]:.4g}–{c['band'][1]:.4g}" if c["band"] else "",
                             c["flagged"] or ""] for c in flagged],
                           ["class=\"out-of-band\""] * len(flagged), f"cases-{index}"))
        traces = []
        for c in cases:
            centre = math.sqrt(c["band"][0] * c["band"][1]) if c["band"] else None
            ys = [m / centre if (m and centre) else None for m in c["medians"]]
            traces.append({"type": "scatter", "mode": "lines+markers", "name": c["label"],
                           "x": list(range(1, len(runs) + 1)), "y": ys, "showlegend": False,
                           "line": {"color": "#d62728" if c["flagged"] else "#9bb7d4",
                                    "width": 2 if c["flagged"] else 1},
                           "hovertemplate": html.escape(c["label"]) + ": %{y:.3f}× its band's "
                                            "centre<extra></extra>"})
        parts.append(f"<div class=\"figure\" id=\"cases-fig-{index}\"></div>")
        figures.append({"id": f"cases-fig-{index}", "title": "medians over runs", "data": traces,
                        "layout": {"title": {"text": "each case's median over runs, relative to "
                                                     "its band (red: flagged)"},
                                   "xaxis": {"title": {"text": "run"}, "dtick": 1},
                                   "yaxis": {"type": "log", "title": {"text": "× band centre"}},
                                   "hovermode": "closest"}})
    return "\n".join(parts), figures


def write_history(paths, out: Path) -> dict:
    """Write the history page to `out`; returns {"page", "runs", "groups", "skipped"}."""
    runs, skipped = load_runs(paths)
    groups = group_runs(runs)
    body = ["<h1>tfbench: runs over time</h1>",
            f"<p class=\"note\">{len(runs)} run(s) in {len(groups)} group(s) (machine × "
            f"config); {len(skipped)} folder(s) skipped.</p>"]
    if skipped:
        body.append("<h2>Skipped</h2>" + table(["folder", "why"], [list(s) for s in skipped],
                                               table_id="skipped"))
    figures = []
    for index, ((machine, config), members) in enumerate(groups.items()):
        section, figs = _group_section(index, machine, config, members)
        body.append(section)
        figures += figs
    write_page(Path(out), page("tfbench history", "\n".join(body), {"figures": figures}))
    return {"page": Path(out), "runs": len(runs), "groups": len(groups), "skipped": skipped}
