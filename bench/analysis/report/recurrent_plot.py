"""The recurrent-vs-attention figure (configs/rnn_vs_transformer.yaml), read at a glance:

    left    median time against n at batch 1, every implementation of the recurrent layer,
            the bare attention block and the encoder layer (log-log); the FLOP crossover
            n* = 4d (grey, dashed) and each measured crossover (red, dotted) marked
    middle  peak memory against n at batch 1, with tfimpl.costs' recurrent state (flat:
            O(1)) and the n×n score matrix (O(n²)) drawn beside the measured points
    right   time per token at batch 1 against the large batch, per block and implementation
            (bars): how much batching buys each one ("harder to parallelize")

Tests: tests/analysis/test_recurrent_verdicts.py.
"""

from __future__ import annotations

from pathlib import Path

from bench.analysis import recurrent
from bench.analysis.report.plots import _figure, _save
from tfimpl.costs import recurrent as rc

BLOCK_STYLE = {"lstm": "-", "gru": "-", "attention": "--", "encoder_layer": ":"}
MARKERS = {"lstm": "o", "gru": "s", "attention": "^", "encoder_layer": "v"}


def plot(df, rows, path: Path) -> Path | None:
    """Draw the three panels; None when the run has no recurrent block."""
    ok = df[df["ok"] & df["median_s"].notna() & (df["mode"].astype(str) == "forward")]
    if ok.empty or not ok["block"].isin(recurrent.RECURRENT).any():
        return None
    one = ok[ok["batch"] == 1]
    fig, (t_ax, m_ax, b_ax) = _figure(ncols=3, size=(6.0, 4.8))
    series = list(one.groupby(["block", "impl"]))
    colors = {key: f"C{i}" for i, (key, _) in enumerate(series)}
    for (block, impl), g in series:
        g = g.sort_values("seq_len")
        style = dict(color=colors[(block, impl)], ls=BLOCK_STYLE.get(block, "-"),
                     marker=MARKERS.get(block, "."), ms=4, label=f"{block} ({impl})")
        t_ax.plot(g["seq_len"], g["median_s"], **style)
        mem = g[g["peak_bytes"].notna() & (g["peak_bytes"] > 0)]
        if not mem.empty:
            m_ax.plot(mem["seq_len"], mem["peak_bytes"] / 2 ** 20, **style)
    _marks(t_ax, rows)
    _analytic_memory(m_ax, one)
    for ax, what in ((t_ax, "median time per call (s)"), (m_ax, "peak memory (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length n (batch 1)")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    t_ax.set_title("time: recurrence n·d² in n steps, attention n²·d")
    m_ax.set_title("memory: O(n) output + O(1) state vs O(n²) scores")
    t_ax.legend(fontsize=6, loc="upper left")
    m_ax.legend(fontsize=6, loc="upper left")
    _batching(b_ax, df)
    return _save(fig, path)


def _marks(ax, rows) -> None:
    seen = set()
    for r in rows or []:
        if r.kind != "recurrent-crossover" or r.extra.get("batch") != 1:
            continue
        if r.theory is not None and not any(abs(r.theory - t) < 0.01 * t for t in seen):
            seen.add(r.theory)                  # 1023.5 and 1024: one line (a step apart)
            ax.axvline(r.theory, color="0.4", ls="--", lw=1,
                       label=f"n* by FLOPs = {r.theory:.0f}")
        if r.value is not None:
            ax.axvline(r.value, color="tab:red", ls=":", lw=1.2,
                       label=f"measured n*: {r.impl} = {r.value:.0f}")


def _analytic_memory(ax, one) -> None:
    """tfimpl.costs' lines: the recurrent state (O(1)) and the n×n scores (O(n²))."""
    import numpy as np

    rec = one[one["block"].isin(recurrent.RECURRENT)]
    attn = one[one["block"] == recurrent.ATTENTION]
    n = np.array(sorted(set(one["seq_len"])), float)
    if rec.empty or len(n) < 2:
        return
    r = rec.iloc[0]
    e, d = int(r["bytes_per_element"]), int(r["d_model"])
    state = rc.recurrent_state_bytes(r["block"], 1, d, int(r["layers"]), e)
    ax.plot(n, np.full(n.shape, state / 2 ** 20), color="0.2", lw=1, ls="-.",
            label=f"{r['block']} state (analytic): {state / 1024:.3g} KiB at every n")
    if not attn.empty:
        h = int(attn["n_heads"].iloc[0])
        ax.plot(n, h * n * n * e / 2 ** 20, color="0.5", lw=1, ls="-.",
                label=f"n×n scores, {h} heads (analytic)")


def _batching(ax, df) -> None:
    gains = recurrent.batching_gains(df)
    if not gains:
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no case measured at two batch sizes", ha="center",
                transform=ax.transAxes)
        return
    labels = [f"{g['block']}\n{g['impl']}\nn = {g['seq_len']}" for g in gains]
    x = range(len(gains))
    one = [g["token_s"][0] * 1e6 for g in gains]
    big = [g["token_s"][1] * 1e6 for g in gains]
    ax.bar([i - 0.2 for i in x], one, width=0.4, color="tab:gray", label="batch 1")
    ax.bar([i + 0.2 for i in x], big, width=0.4, color="tab:blue",
           label=f"batch {gains[0]['batch']}")
    for i, g in enumerate(gains):
        ax.annotate(f"{g['gain']:.1f}×", (i, max(one[i], big[i])), ha="center",
                    va="bottom", fontsize=7)
    ax.set_xticks(list(x))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_yscale("log")
    ax.set_ylabel("time per token (µs)")
    ax.set_title("batching gain per token (largest n measured at both batches)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7)
