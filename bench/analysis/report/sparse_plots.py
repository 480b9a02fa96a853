"""The long-sequence figures: time and peak memory vs n (log-log) for exact attention (the
materialised path and the fused SDPA), the banded control, the sliding window, window + global
tokens and linear attention; and the price each pays (output error and attention mass kept).

Series are the run's forward fp32/bf16 cases at random inputs, one per (block, impl, window,
global tokens); a series needs at least two sizes. Memory in MiB (2^20 bytes).

Tests: tests/analysis/test_sparse_analysis.py.
"""

from __future__ import annotations

from pathlib import Path

from bench.analysis.report import plots

MIB = 2 ** 20
SERIES = (("attention", "torch", "exact (materialised)"), ("attention", "torch-sdpa", "exact (fused SDPA)"),
          ("banded_attention", "torch", "band mask, dense (explicit)"),
          ("banded_attention", "torch-sdpa", "band mask, dense (SDPA)"),
          ("window_attention", None, "sliding window"), ("global_attention", None, "window + global"),
          ("linear_attention", None, "linear (elu+1)"))
STYLE = {"attention": "-", "banded_attention": ":", "window_attention": "-",
         "global_attention": "--", "linear_attention": "-."}


def _count(v) -> int:
    """A window or global_tokens value as an int (0 for a record written before they existed)."""
    try:
        return 0 if v is None or v != v else int(v)
    except (TypeError, ValueError):
        return 0


def _series(df):
    """(label, group sorted by n) for each SERIES entry measured at >= 2 sizes."""
    ok = df[df["ok"] & (df["mode"].astype(str) == "forward")]
    if "inputs" in ok.columns:
        ok = ok[ok["inputs"].fillna("random") == "random"]
    out = []
    for block, impl, words in SERIES:
        sel = ok[ok["block"] == block]
        if impl is not None:
            sel = sel[sel["impl"] == impl]
        keys = [k for k in ("impl", "window", "global_tokens", "d_model", "n_heads", "precision",
                            "causal") if k in sel.columns]
        for values, g in sel.groupby(keys, dropna=False):
            if g["seq_len"].nunique() < 2 or g["d_model"].iloc[0] != ok["d_model"].mode().iloc[0]:
                continue
            fixed = dict(zip(keys, values))
            w, g_tokens = _count(fixed.get("window")), _count(fixed.get("global_tokens"))
            extra = (f" w={w}" if w else "") + (f" g={g_tokens}" if g_tokens else "")
            who = "" if impl is not None else f" ({fixed['impl']})"
            out.append((block, f"{words}{extra}{who}", g.sort_values("seq_len")))
    return out


def plot_long_sequences(df, path: Path) -> Path | None:
    """Two panels, time and peak memory against n, log-log; None when nothing sparse ran."""
    series = _series(df)
    if not any(b not in ("attention",) for b, _, _ in series):
        return None
    fig, (t_ax, m_ax) = plots._figure(ncols=2, size=(6.0, 4.6))
    colors = plots._colors([label for _, label, _ in series])
    for block, label, g in series:
        style = dict(color=colors[label], linestyle=STYLE[block], marker="o", markersize=3)
        t_ax.plot(g["seq_len"], g["median_s"], label=label, **style)
        mem = g[g["peak_bytes"].notna()]
        m_ax.plot(mem["seq_len"], mem["peak_bytes"] / MIB, label=label, **style)
    for ax, ylabel, title in ((t_ax, "median time per call (s)", "time vs n"),
                              (m_ax, "peak memory above the inputs (MiB)", "peak memory vs n")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        plots._plain_ticks(ax)
        ax.set_xlabel("sequence length n (tokens)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    m_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return plots._save(fig, path)


def plot_price(table, path: Path) -> Path | None:
    """Relative L2 error and attention mass kept against w, per block and inputs (the
    analysis' price_table); linear attention (no w) as a horizontal line, at the sizes where a
    window was swept."""
    if table is None or table.empty:
        return None
    windowed = table[table["block"] != "linear_attention"]
    priced_n = set(windowed.groupby(["block", "inputs", "seq_len"]).filter(
        lambda g: g["window"].nunique() >= 2)["seq_len"])
    table = table[(table["block"] != "linear_attention") | table["seq_len"].isin(priced_n)]
    fig, (e_ax, m_ax) = plots._figure(ncols=2, size=(5.5, 4.4))
    labels = [f"{b} ({i}, n={int(n)})" for b, i, n in
              zip(table["block"], table["inputs"], table["seq_len"])]
    table = table.assign(_label=labels)
    drawn = [(label, g) for label, g in table.groupby("_label")
             if g["block"].iloc[0] == "linear_attention" or g["window"].nunique() >= 2]
    colors = plots._colors([label for label, _ in drawn])
    for label, g in drawn:
        g = g.sort_values("window")
        dash = "-" if g["inputs"].iloc[0] == "pretrained" else "--"
        if g["block"].iloc[0] == "linear_attention":
            e_ax.axhline(g["approx_rel_l2_err"].iloc[0], color=colors[label], linestyle=dash,
                         label=label)
            continue
        e_ax.plot(g["window"], g["approx_rel_l2_err"], dash, color=colors[label], marker="o",
                  markersize=3, label=label)
        m_ax.plot(g["window"], g["attn_mass_captured"], dash, color=colors[label], marker="o",
                  markersize=3, label=label)
    for ax, ylabel, title in ((e_ax, "relative L2 error vs exact", "output error"),
                              (m_ax, "exact attention mass inside the pattern", "mass kept")):
        ax.set_xscale("log", base=2)
        plots._plain_ticks(ax)
        ax.set_xlabel("window w (keys per query)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
    e_ax.set_yscale("log")
    m_ax.set_ylim(0, 1.02)
    m_ax.legend(*e_ax.get_legend_handles_labels(), fontsize=7, loc="upper left",
                bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return plots._save(fig, path)
