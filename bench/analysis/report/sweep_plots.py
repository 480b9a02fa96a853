"""Per-block panels against the swept variable: FLOPs, peak memory, achieved GFLOP/s.

Each function takes the sweeps of ONE variable (list(claims.sweep_groups(df, variable))) and
draws one panel per block that has such a sweep, with that variable on the x axis: a run that
only varies d_model gets d-axis figures only, and a block without a sweep gets no (empty) panel.
Memory is in MiB (2^20 bytes) here as in the report and the CLI. Legends sit right of the
axes, outside the data; figures are saved with a tight bounding box (no clipped labels).

Tests: tests/analysis/test_report.py.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from bench.analysis.report import plots

MIB = 2 ** 20
X_LABEL = {"seq_len": "sequence length n (tokens)", "d_model": "model width d (d_model)"}
OTHER = {"seq_len": "d_model", "d_model": "seq_len"}
OTHER_SHORT = {"seq_len": "d", "d_model": "n"}


def _by_block(sweeps) -> dict:
    out: dict[str, list] = {}
    for fixed, g in sweeps:
        out.setdefault(fixed["block"], []).append((fixed, g))
    return out


def _label(fixed: dict, variable: str, group) -> str:
    other = OTHER[variable]
    return (f"{fixed['impl']} {fixed['precision']}"
            + (f" {fixed['mode']}" if fixed.get("mode") not in (None, "forward") else "")
            + f" {OTHER_SHORT[variable]}={int(group[other].iloc[0])}")


def _axes_common(ax, variable: str, ylabel: str, title: str) -> None:
    ax.set_xscale("log", base=2)
    plots._plain_ticks(ax)
    ax.set_yscale("log")
    ax.set_xlabel(X_LABEL[variable])
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def _grid(blocks: list[str]):
    fig, axes = plots._figure(ncols=1, nrows=len(blocks), size=(9.0, 3.8))
    return fig, axes


def _save_tight(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=plots.DPI, bbox_inches="tight")
    return path


def _styles(sweeps):
    """fixed -> (colour, line style, marker): one colour per (impl, precision) pair, so three
    precisions of one implementation never share a colour; the dash and marker repeat the
    precision."""
    colors = plots._colors(f"{f['impl']} {f['precision']}" for f, _ in sweeps)
    return lambda f: (colors[f"{f['impl']} {f['precision']}"],
                      plots.PREC_STYLE.get(f["precision"], "-"),
                      plots.PREC_MARKER.get(f["precision"], "o"))


def plot_flops(sweeps, path: Path, variable: str = "seq_len") -> Path | None:
    """Analytic FLOPs (line) and counted FLOPs (markers) per series vs `variable`."""
    sweeps = [(f, g) for f, g in sweeps if g["flops_analytic"].notna().any()]
    if not sweeps:
        return None
    by_block = _by_block(sweeps)
    fig, axes = _grid(sorted(by_block))
    style = _styles(sweeps)
    for ax, block in zip(axes, sorted(by_block)):
        for fixed, g in by_block[block]:
            color, ls, marker = style(fixed)
            label = _label(fixed, variable, g)
            ax.plot(g[variable], g["flops_analytic"], linestyle=ls, color=color, linewidth=1,
                    label=f"analytic: {label}")
            counted = g[g["flops_counted"].notna()]
            if len(counted):
                ax.plot(counted[variable], counted["flops_counted"], marker, color=color,
                        markersize=4, alpha=0.8, linestyle="none", label=f"counted: {label}")
        _axes_common(ax, variable, "FLOPs per call",
                     f"{block}: FLOPs vs {variable}, analytic (tfimpl.costs) and counted")
    return _save_tight(fig, path)


def plot_memory(sweeps, path: Path, variable: str = "seq_len") -> Path | None:
    """Measured peak memory (markers) and the prediction (dashed) in MiB vs `variable`."""
    sweeps = [(f, g) for f, g in sweeps if g["peak_bytes"].notna().sum() >= 2]
    if not sweeps:
        return None
    by_block = _by_block(sweeps)
    fig, axes = _grid(sorted(by_block))
    style = _styles(sweeps)
    for ax, block in zip(axes, sorted(by_block)):
        for fixed, g in by_block[block]:
            color, ls, marker = style(fixed)
            label = _label(fixed, variable, g)
            m = g[g["peak_bytes"].notna()]
            ax.plot(m[variable], m["peak_bytes"] / MIB, marker=marker, linestyle="-",
                    color=color, markersize=4, linewidth=0.8,
                    label=f"measured: {label} ({m['peak_method'].iloc[0]})")
            if g["peak_bytes_predicted"].notna().any():
                ax.plot(g[variable], g["peak_bytes_predicted"] / MIB, linestyle=(0, (6, 3)),
                        color=color, linewidth=1.4, alpha=0.6, label=f"predicted: {label}")
        _axes_common(ax, variable, "peak memory above baseline (MiB)",
                     f"{block}: peak memory vs {variable}, measured and predicted")
    return _save_tight(fig, path)


def plot_roofline(sweeps, path: Path, variable: str = "seq_len",
                  notes: dict | None = None) -> Path | None:
    """Achieved GFLOP/s vs `variable` per block, the matmul peaks as ceilings (frame's
    peak_gflops per backend and matmul dtype); without a usable peak, notes[block] says why."""
    sweeps = [(f, g[g["gflops"].notna() & (g["gflops"] > 0)]) for f, g in sweeps]
    sweeps = [(f, g) for f, g in sweeps if g[variable].nunique() >= 2]
    if not sweeps:
        return None
    by_block = _by_block(sweeps)
    fig, axes = _grid(sorted(by_block))
    style = _styles(sweeps)
    for ax, block in zip(axes, sorted(by_block)):
        ceilings: dict[tuple[str, float], set[str]] = {}
        for fixed, g in by_block[block]:
            color, ls, marker = style(fixed)
            ax.plot(g[variable], g["gflops"], marker=marker, linestyle=ls, color=color,
                    markersize=3, linewidth=1, label=_label(fixed, variable, g))
            for (backend, dtype), peak in g.groupby(["peak_backend", "peak_dtype"])[
                    "peak_gflops"]:
                peak = peak.dropna()
                if len(peak):
                    ceilings.setdefault((dtype, round(float(peak.iloc[0]))), set()).add(backend)
        for (dtype, peak), backends in sorted(ceilings.items()):
            ax.axhline(peak, color="0.3", linestyle=plots.PREC_STYLE.get(dtype, "-"),
                       linewidth=0.8, label=f"matmul peak {dtype} ({', '.join(sorted(backends))})"
                                            f": {peak:.0f} GFLOP/s")
        if not ceilings:
            text = (notes or {}).get(block) or "no matmul peak for these cases"
            ax.annotate(textwrap.fill(text, 60), (1.01, 0.0), xycoords="axes fraction",
                        fontsize=7, va="bottom", color="tab:red")
        _axes_common(ax, variable, "achieved GFLOP/s\n(matmul FLOPs / median time)",
                     f"{block}: achieved GFLOP/s vs {variable}"
                     + (" and the machine's matmul peak" if ceilings else " (no peak)"))
    return _save_tight(fig, path)
