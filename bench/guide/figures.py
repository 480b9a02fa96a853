"""The guide's two figures, drawn with matplotlib's object API (no pyplot, no global state).

positional_encoding.png   the sinusoidal table PE (positions × dimensions), a few of its
                          columns as curves, and PE·PEᵀ, whose entry (p, q) is
                          Σ_i cos(ω_i (p - q)): it depends on the distance p - q only.
attention_pattern.png     attention weights softmax(Q·Kᵀ/√d_k) over a sentence's tokens for
                          several layers and heads (see attention_maps.py for where they come from).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from tfimpl.numpy.positional import sinusoidal_positional_encoding

if TYPE_CHECKING:
    from bench.guide.attention_maps import AttentionSource

PE_FILE = "positional_encoding.png"
ATTENTION_FILE = "attention_pattern.png"
DPI = 100


def _wavelength(dim: int, d_model: int) -> float:
    """Column 2i and 2i+1 have angular frequency ω_i = 10000^(-2i/d_model), period 2π/ω_i."""
    return 2 * np.pi * 10000.0 ** ((dim - dim % 2) / d_model)


def positional_encoding_figure(path: Path | str, seq_len: int = 128, d_model: int = 128,
                               dims: tuple[int, ...] = (2, 3, 16, 40, 80),
                               offsets: tuple[int, ...] = (0, 24, 48)) -> Path:
    """Four panels: table heatmap, chosen columns as curves, PE·PEᵀ, and PE(p)·PE(p+k) vs k."""
    if any(not 0 <= d < d_model for d in dims):
        raise ValueError(f"dims must lie in [0, {d_model}), got {dims}")
    pe = sinusoidal_positional_encoding(seq_len, d_model)                 # (T, D)
    sim = pe @ pe.T                                                       # (T, T)
    fig = Figure(figsize=(13, 10), layout="constrained")
    (ax_table, ax_curves), (ax_sim, ax_dist) = fig.subplots(2, 2)

    im = ax_table.imshow(pe, aspect="auto", cmap="RdBu_r", vmin=-1, vmax=1,
                         interpolation="nearest")
    ax_table.set(title=f"PE table: sin (even) / cos (odd) columns, T={seq_len}, D={d_model}",
                 xlabel="dimension i", ylabel="position pos")
    fig.colorbar(im, ax=ax_table, label="PE[pos, i]")

    positions = np.arange(seq_len)
    for d in dims:
        kind = "sin" if d % 2 == 0 else "cos"
        ax_curves.plot(positions, pe[:, d],
                       label=f"dim {d} ({kind}, period {_wavelength(d, d_model):.0f})")
    ax_curves.set(title="a few columns: wavelengths grow geometrically with i",
                  xlabel="position pos", ylabel="PE[pos, i]", ylim=(-1.15, 1.6))
    ax_curves.legend(loc="upper right", fontsize="small", ncol=2)

    im = ax_sim.imshow(sim, cmap="viridis", interpolation="nearest")
    ax_sim.set(title="PE·PEᵀ: similarity of positions p and q (constant along diagonals)",
               xlabel="position q", ylabel="position p")
    fig.colorbar(im, ax=ax_sim, label="PE(p)·PE(q)")

    for p0 in offsets:
        k = np.arange(seq_len - p0)
        ax_dist.plot(k, sim[p0, p0:], label=f"p = {p0}", linewidth=2.5 - 0.6 * offsets.index(p0))
    ax_dist.set(title="PE(p)·PE(p+k) = Σ_i cos(ω_i·k): the same curve for every p",
                xlabel="distance k = q - p", ylabel="dot product")
    ax_dist.legend(loc="upper right")
    fig.suptitle("Sinusoidal positional encoding (Vaswani et al. 2017, §3.5)")
    return _save(fig, path)


def attention_pattern_figure(path: Path | str, source: AttentionSource,
                             layers: tuple[int, ...] | None = None,
                             heads: tuple[int, ...] | None = None) -> Path:
    """Grid of heatmaps, one row per layer and one column per head, tokens on both axes.

    Row i of a heatmap is query token i's distribution over the key tokens (it sums to 1).
    Defaults: first, middle and last layer; four heads spread over the H heads.
    """
    n_layers, n_heads = len(source.weights), source.weights[0].shape[0]
    layers = _pick(layers, n_layers, (0, n_layers // 2, n_layers - 1), "layers")
    heads = _pick(heads, n_heads, tuple(np.linspace(0, n_heads - 1, min(4, n_heads)).round()
                                        .astype(int)), "heads")
    T = len(source.tokens)
    side = max(2.4, 0.2 * T + 1.0)                                       # inches per panel
    fig = Figure(figsize=(side * len(heads) + 1.8, side * len(layers) + 1.4),
                 layout="constrained")
    axes = fig.subplots(len(layers), len(heads), squeeze=False, sharex=True, sharey=True)
    image = None
    for r, layer in enumerate(layers):
        for c, head in enumerate(heads):
            ax = axes[r, c]
            w = source.weights[layer][head]                               # (T, T)
            image = ax.imshow(w, cmap="magma", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_title(f"layer {layer}, head {head}", fontsize="medium")
    # Shared axes: token labels on the outer panels only (every panel has the same tokens).
    axes[0, 0].set_xticks(range(T), source.tokens, fontsize="small")
    axes[0, 0].set_yticks(range(T), source.tokens, fontsize="small")
    for ax in axes[-1]:
        ax.set_xlabel("key (token attended to)")
        ax.tick_params(axis="x", labelrotation=90)
    for ax in axes[:, 0]:
        ax.set_ylabel("query (token attending)")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6,
                 label="attention weight softmax(Q·Kᵀ/√d_k), rows sum to 1")
    sentence = " ".join(source.tokens)
    fig.suptitle(f"Attention weights: {source.description}\ntokens: {sentence}",
                 fontsize="medium", color="black" if source.pretrained else "darkred")
    return _save(fig, path)


def _pick(chosen, n: int, default: tuple[int, ...], name: str) -> tuple[int, ...]:
    chosen = tuple(dict.fromkeys(int(i) for i in (default if chosen is None else chosen)))
    bad = [i for i in chosen if not 0 <= i < n]
    if bad or not chosen:
        raise ValueError(f"{name} must be indices in [0, {n}), got {list(chosen)}")
    return chosen


def _save(fig: Figure, path: Path | str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    return path
