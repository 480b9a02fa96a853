"""The report's figures: matplotlib's object API on the Agg canvas (no pyplot, no global state).

Each function draws one PNG from the frame (and the fits), returns its path, or None when the
run has no data for it. Complexity plots are log-log with the theory's slope drawn as a dashed
reference line and the last-level cache drawn where a block's working set reaches it.

Tests: tests/analysis/test_report.py (every plot of a synthetic run drawn and opened).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from bench import metrics
from bench.analysis import claims

PREC_STYLE = {"fp64": ":", "fp32": "-", "bf16": "--", "fp16": (0, (1, 1)), "amp-bf16": "-.",
              "amp-fp16": (0, (3, 1, 1, 1))}
PREC_MARKER = {"fp64": "P", "fp32": "D", "tf32": "d", "bf16": "o", "amp-bf16": "s", "fp16": "^",
               "amp-fp16": "v"}
DPI = 110


def _figure(ncols: int = 1, nrows: int = 1, size=(7.5, 5.0)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    # fixed margins instead of a layout engine: constrained layout doubles the drawing time
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    fig.subplots_adjust(left=0.09 / ncols ** 0.5, right=0.98, bottom=0.1 / nrows ** 0.5,
                        top=1 - 0.07 / nrows ** 0.5, wspace=0.25, hspace=0.35)
    return fig, [ax for row in axes for ax in row]


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight")   # tight: no clipped labels or legends
    return path


def _colors(impls) -> dict:
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return {impl: cmap(i % 10) for i, impl in enumerate(sorted(set(impls)))}


def series_label(fixed: dict, varying_keys=()) -> str:
    parts = [str(fixed["impl"]), str(fixed["precision"])]
    if fixed.get("mode") not in (None, "forward"):
        parts.append(str(fixed["mode"]))
    for key in varying_keys:
        parts.append(f"{key}={fixed.get(key)}")
    return " ".join(parts)


def _varying(groups, keys=("batch", "d_model", "threads", "layers")) -> list[str]:
    return [k for k in keys if len({str(f.get(k)) for f, _ in groups}) > 1]


def seq_len_at_working_set(seq_lens, ws_bytes, target_bytes: float) -> float:
    """The seq_len at which the recorded working set (the records' working_set_bytes, from
    tfimpl.costs at run time) reaches target: log-log interpolation between the measured
    points; NaN outside them."""
    import numpy as np

    x, y = np.asarray(seq_lens, float), np.asarray(ws_bytes, float)
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    x, y = x[keep], y[keep]
    order = np.argsort(x)
    x, y = x[order], y[order]
    if len(x) < 2 or not math.isfinite(target_bytes) or not (y[0] <= target_bytes <= y[-1]):
        return math.nan
    return float(np.exp(np.interp(np.log(target_bytes), np.log(y), np.log(x))))


def _cache_lines(ax, group, llc: float, rule: claims.FitRule, x_range) -> None:
    """Vertical lines where this series' working set equals the LLC and rule.ws_factor x LLC."""
    precision = group["precision"].iloc[0]
    for factor, style in ((1.0, ":"), (rule.ws_factor, "--")):
        n = seq_len_at_working_set(group["seq_len"], group["working_set_bytes"], factor * llc)
        if math.isfinite(n) and x_range[0] <= n <= x_range[1]:
            ax.axvline(n, color="0.45", linestyle=style, linewidth=1)
            ax.annotate(f"working set = {factor:g}×LLC\n({claims.fmt_bytes(factor * llc)}, "
                        f"{precision})", (n, 0.02), xycoords=("data", "axes fraction"),
                        rotation=90, fontsize=7, color="0.35", ha="right", va="bottom")


def _plain_ticks(ax) -> None:
    """Sequence lengths as 128, 1024, ... instead of 2^7, 2^10."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _ratio_ticks(ax) -> None:
    """A log axis of ratios labelled 0.2×, 0.5×, 1×, 2× (minor ticks too: little span)."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(2, 3, 5)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:.2g}×"))
    ax.tick_params(axis="y", which="minor", labelsize=7)


def _theory_line(ax, x, y, slope: float, label: str) -> None:
    """Dashed reference y = C x^slope through the geometric middle of (x, y)."""
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    keep = (x > 0) & (y > 0) & np.isfinite(y)
    if keep.sum() < 2:
        return
    x, y = x[keep], y[keep]
    xm, ym = np.exp(np.log(x).mean()), np.exp(np.log(y).mean())
    xs = np.geomspace(x.min(), x.max(), 50)
    ax.plot(xs, ym * (xs / xm) ** slope, color="0.2", linestyle=(0, (6, 3)), linewidth=1.2,
            alpha=0.7, label=label)


VAR_SYMBOL = {"seq_len": "n", "d_model": "d"}


def _fit_text(entry: dict | None, variable: str = "seq_len") -> str:
    """'d^1.86 [1.80, 1.93]', named after the swept variable; '' without a fit."""
    if entry is None:
        return ""
    v = VAR_SYMBOL.get(variable, variable)
    if entry["exponent"] is None:
        full = entry.get("full_range_exponent")
        return "not enough data" + (f" (all points: {v}^{full:.2f})" if full is not None else "")
    return f"{v}^{entry['exponent']:.2f} [{entry['ci_low']:.2f}, {entry['ci_high']:.2f}]"


def _outside_legend(ax, fontsize=7) -> None:
    """The legend right of the axes, never over the data."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=fontsize, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  borderaxespad=0)


def _two_term_curve(ax, two_term, fixed: dict, g, variable: str, color) -> bool:
    """Dotted t = a·n²·d + b·n·d² + c of the series' two-term fit over its points."""
    for r in two_term or []:
        if (r["status"] == "ok" and r["impl"] == fixed["impl"] and r["block"] == fixed["block"]
                and r["precision"] == fixed["precision"] and r["mode"] == fixed.get("mode")):
            n = g["seq_len"].to_numpy(float)
            d = g["d_model"].to_numpy(float)
            t = r["a"] * n ** 2 * d + r["b"] * n * d ** 2 + r["c"]
            ax.plot(g[variable], t, linestyle=":", color=color, linewidth=1.5)
            return True
    return False


def _entry_for(entries, fixed, variable, metric):
    for e in entries:
        if (e["variable"] == variable and e["metric"] == metric and e["impl"] == fixed["impl"]
                and e["block"] == fixed["block"] and e["precision"] == fixed["precision"]
                and all(str(e["fixed"].get(k)) == str(v) for k, v in fixed.items()
                        if k not in ("impl", "block", "precision"))):
            return e
    return None


def plot_scaling(sweeps, entries, meta_llc: float, block: str, path: Path, *, variable="seq_len",
                 metric="time", rule: claims.FitRule = claims.FitRule(),
                 two_term=None) -> Path | None:
    """Time (or another metric) vs the swept variable for one block, one line per series.

    sweeps: list(claims.sweep_groups(df, variable)). Filled markers: points in the fit's
    fit range (claims.fit_points: per metric and cache regime); hollow: left out. The legend gives
    the fitted exponent and CI.
    """
    groups = [(f, g) for f, g in sweeps if f["block"] == block]
    declared = metrics.get(metric)
    column = declared.column
    groups = [(f, g) for f, g in groups if column in g.columns and g[column].notna().any()]
    if not groups:
        return None
    fig, (ax,) = _figure()
    colors = _colors(f["impl"] for f, _ in groups)
    extra = _varying(groups, ("batch", "threads", "layers") + (("d_model",) if variable ==
                                                                 "seq_len" else ("seq_len",)))
    theory, fitted, curves = None, False, False
    for fixed, g in groups:
        entry = _entry_for(entries, fixed, variable, metric)
        mask, _ = claims.fit_points(g, variable, metric, rule)
        x, y = g[variable].to_numpy(float), g[column].to_numpy(float)
        style = PREC_STYLE.get(fixed["precision"], "-")
        color = colors[fixed["impl"]]
        fit = _fit_text(entry, variable)
        fitted = fitted or bool(entry and entry["exponent"] is not None)
        label = series_label(fixed, extra) + (f": {fit}" if fit else "")
        if metric == "time":
            curves = _two_term_curve(ax, two_term, fixed, g, variable, color) or curves
        ax.plot(x, y, linestyle=style, color=color, linewidth=1.3, label=label)
        ax.plot(x[mask], y[mask], "o", color=color, markersize=5)
        ax.plot(x[~mask], y[~mask], "o", markerfacecolor="white", color=color, markersize=5)
        if entry and entry["theory"] is not None:
            theory = (entry["theory"], x, y) if theory is None else theory
    if theory is not None:
        _theory_line(ax, theory[1], theory[2], theory[0], f"theory: slope {theory[0]:g}")
    if variable == "seq_len" and math.isfinite(meta_llc):
        xs = [float(v) for _, g in groups for v in g["seq_len"]]
        _cache_lines(ax, groups[0][1], meta_llc, rule, (min(xs), max(xs)))
    ax.set_xscale("log", base=2)
    _plain_ticks(ax)
    ax.set_yscale("log")
    unit = declared.label
    if declared.unit == "bytes":
        for line in ax.get_lines():
            line.set_ydata(np.asarray(line.get_ydata(), float) / 2 ** 20)
        ax.relim()
        ax.autoscale_view()
        unit = unit.replace("(bytes)", "(MiB)")
    ax.set_xlabel({"seq_len": "sequence length n (tokens)",
                   "d_model": "model width d (d_model)"}[variable])
    ax.set_ylabel(unit)
    how = ("filled = points in the fit range, hollow = left out" if fitted
           else "no single-exponent fit for this block")
    if curves:
        how += "; dotted = two-term fit a·n²·d + b·n·d² + c"
    ax.set_title(f"{block}: {metric} vs {variable}\n({how})", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    _outside_legend(ax)
    return _save(fig, path)


def plot_attention_share(share, crossovers: list[dict], path: Path) -> Path | None:
    """Measured share of the layer's time in attention vs n; ½ line; crossovers marked."""
    if share is None or share.empty:
        return None
    keys = ["impl", "precision", "mode", "d_model", "blocks"]
    if share.groupby(keys)["seq_len"].nunique().max() < 2:
        return None                       # n never varies: nothing to draw against n
    fig, (ax,) = _figure()
    colors = _colors(share["impl"])
    for (impl, prec, mode, d, blocks), g in share.groupby(
            ["impl", "precision", "mode", "d_model", "blocks"]):
        g = g.sort_values("seq_len")
        ax.plot(g["seq_len"], g["share"], marker="o", color=colors[impl],
                linestyle=PREC_STYLE.get(prec, "-"), markersize=4,
                label=f"{impl} {prec} d={d}: {blocks}")
    ax.axhline(0.5, color="0.5", linewidth=0.8)
    seen, last = set(), None                      # last: (log2 n, height) of the last label
    for c in sorted(crossovers, key=lambda c: c["seq_len"]):
        key = round(c["seq_len"])
        if not math.isfinite(c["seq_len"]) or key in seen:
            continue
        seen.add(key)
        ax.axvline(c["seq_len"], color=c.get("color", "0.2"), linestyle="--", linewidth=1)
        # a label within 0.15 octave of the one before would print over it: the lower half
        x = math.log2(c["seq_len"])
        height = 0.47 if last and x - last[0] < 0.15 and last[1] > 0.5 else 0.97
        last = (x, height)
        ax.annotate(f"{c['label']}: n={c['seq_len']:.0f}", (c["seq_len"], height),
                    xycoords=("data", "axes fraction"), rotation=90, fontsize=7, ha="right",
                    va="top")
    ax.set_xscale("log", base=2)
    _plain_ticks(ax)
    ax.set_ylim(0, 1)
    ax.set_xlabel("sequence length n (tokens)")
    ax.set_ylabel("attention share of the layer's time")
    ax.set_title("Attention's share of a layer's time (source in legend)")
    ax.grid(True, which="both", alpha=0.3)
    _outside_legend(ax)
    return _save(fig, path)


def plot_precision(table, path: Path) -> Path | None:
    """One row per block: left, speedup vs fp32 against n per (impl, precision), with the 1×
    line (as fast as fp32) and slow-path skips marked at the bottom; right, the relative L2
    error against the fp64 reference (fp32 included) against n.

    table: bench.analysis.precisions.precision_table.
    """
    if table is None or table.empty:
        return None
    blocks = sorted(table["block"].unique())
    fig, axes = _figure(ncols=2, nrows=len(blocks), size=(6.0, 4.2))
    fig.subplots_adjust(left=0.08, wspace=0.3)
    colors = _colors(table["impl"])
    for row, block in enumerate(blocks):
        left, right = axes[2 * row], axes[2 * row + 1]
        b = table[table["block"] == block]
        for (impl, prec, d), g in b.groupby(["impl", "precision", "d_model"]):
            ok = g[g["ok"]].sort_values("seq_len")
            label = f"{impl} {prec}" + (f" d={d}" if b["d_model"].nunique() > 1 else "")
            style = dict(color=colors[impl], marker=PREC_MARKER.get(prec, "o"), markersize=4,
                         linewidth=1.2,
                         linestyle=PREC_STYLE.get(prec, "-"), label=label)
            if prec != "fp32" and ok["speedup"].notna().any():
                left.plot(ok["seq_len"], ok["speedup"], **style)
            if (ok["rel_l2_err"] > 0).any():
                right.plot(ok["seq_len"], ok["rel_l2_err"], **style)
            slow = g[g["slow_path"]]
            if len(slow):
                left.plot(slow["seq_len"], [0.03] * len(slow), "x", color=colors[impl],
                          markersize=7, mew=2, transform=left.get_xaxis_transform(),
                          label=f"{impl} {prec}: slow path, not measured")
        left.axhline(1.0, color="0.3", linewidth=1.0, linestyle=(0, (6, 3)))
        left.annotate("1× = fp32 speed", (0.99, 1.0), xycoords=("axes fraction", "data"),
                      fontsize=7, ha="right", va="bottom", color="0.3")
        left.set_yscale("log")
        _ratio_ticks(left)
        left.set_ylabel("speedup vs fp32 (fp32 median / this median)")
        left.set_title(f"{block}: speed of each precision vs fp32, same case")
        right.set_yscale("log")
        right.set_ylabel("relative L2 error vs fp64 reference")
        right.set_title(f"{block}: error of each precision")
        for ax in (left, right):
            ax.set_xscale("log", base=2)
            _plain_ticks(ax)
            ax.set_xlabel("sequence length n (tokens)")
            ax.grid(True, which="both", alpha=0.3)
        handles = dict(zip(*reversed(right.get_legend_handles_labels())))
        for h, label in zip(*left.get_legend_handles_labels()):
            handles.setdefault(label, h)
        if handles:
            right.legend(list(handles.values()), list(handles), fontsize=6, loc="upper left",
                         bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return _save(fig, path)


def plot_local_slopes(entries, path: Path, metric: str = "time") -> Path | None:
    """Local exponent between successive seq_len points, with the theory as a horizontal line."""
    rows = [e for e in entries if e["metric"] == metric and e["variable"] == "seq_len"
            and e["theory"] is not None and e["local_slopes"]]
    if not rows:
        return None
    fig, (ax,) = _figure()
    colors = _colors(e["impl"] for e in rows)
    markers = dict(zip(sorted({e["block"] for e in rows}), "os^vD"))
    for e in rows:
        mid = [math.sqrt(s["x_lo"] * s["x_hi"]) for s in e["local_slopes"]]
        ax.plot(mid, [s["slope"] for s in e["local_slopes"]], marker=markers[e["block"]],
                color=colors[e["impl"]], linestyle=PREC_STYLE.get(e["precision"], "-"),
                markersize=4, linewidth=1, label=f"{e['impl']} {e['block']} {e['precision']}")
    for theory in sorted({e["theory"] for e in rows}):
        ax.axhline(theory, color="0.3", linestyle=(0, (6, 3)), linewidth=1)
        ax.annotate(f"theory {theory:g}", (0.01, theory), xycoords=("axes fraction", "data"),
                    fontsize=7, va="bottom")
    ax.set_xscale("log", base=2)
    _plain_ticks(ax)
    ax.set_xlabel("sequence length n (tokens), geometric middle of each pair")
    ax.set_ylabel(f"local exponent d log({metric}) / d log n")
    ax.set_title("Local slopes between successive sizes\n(a jump is a cache transition only "
                 "where the report's notes name one; others are noise or outliers)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    _outside_legend(ax)
    return _save(fig, path)
