"""Where attention overtakes the feed-forward: ONE definition, predicted and measured.

Everything about the crossover is here: the definition and its prediction, the measurement
(pairs, measured, rates_near), its verdict rows (rows), the share-plot's data and lines
(share_frame, attention_share, plot_lines), the two-term model's analytic T* and the composed
mha+ffn series it fits (analytic_crossover, composed_layer_times; the fit itself is
bench.analysis.claims.two_term_fits). bench.analysis.step_crossover explains it step by step.

Definition (used by the verdict table, the attention-share plot and the README):

    n* = the sequence length at which the bare attention block (softmax(QKᵀ/√d_k)·V: the
         n×n products QKᵀ and P·V, 4·B·n²·d FLOPs) costs as much as the feed-forward block
         (Linear-GELU-Linear, 4·B·n·d·d_ff FLOPs), at the same width d.

    predicted  from tfimpl.costs.forward_flops of the two blocks (matmul FLOPs); with the
               formulas above n* = d_ff (3072 at BERT-base).
    measured   per implementation, where median time t_attention(n) = t_ffn(n): the first
               sign change of log(t_attention / t_ffn) between successive common sizes,
               interpolated linearly in log n. 95% CI: percentile bootstrap over each case's
               raw samples (resampled with replacement, medians recomputed): timing noise only,
               not the interpolation between the two sizes that bracket n*.

The two differ by the rates: t = FLOPs / rate, so the measured n* ≈ d_ff · r_attention / r_ffn,
where r is each block's achieved GFLOP/s near n*. Attention's softmax passes over the n×n matrix
are memory-bound, so an attention FLOP usually costs more than a GEMM FLOP (n* below d_ff).

The projections (Q, K, V, O: 8·B·n·d² FLOPs) belong to neither side of this definition: an
mha block or an encoder layer would move n* (to d_ff - 2d or 2d + d_ff, depending on where they
are put), which is why only the bare attention block and the ffn block are compared.

Tests: tests/analysis/test_verdicts.py, tests/analysis/test_claims.py,
tests/analysis/test_profile_crossover.py
"""

from __future__ import annotations

import math

from bench.analysis.grouping import group_keys
from bench.analysis.verdict_row import NOT_ENOUGH, VerdictRow, band_verdict
from tfimpl.config import ModelConfig
from tfimpl.costs import flops

DEFINITION = ("n* = the sequence length at which the bare attention block (QKᵀ and P·V, "
              "4·B·n²·d FLOPs) costs as much as the feed-forward (4·B·n·d·d_ff), at the "
              "same "
              "width: predicted from tfimpl.costs' matmul FLOPs, measured where the two "
              "blocks' median times are equal")
# The FFN a fused-attention implementation is paired with: torch-sdpa's feed-forward is
# torch's very code (bench.impls.prepare builds both from tfimpl.torch), so the seq sweep omits it.
FFN_TWIN = {"torch-sdpa": "torch"}
N_BOOT = 400
CROSSOVER_FACTOR = 2.0         # held: the measured CI within this factor of the prediction


def _num(v):
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def predicted(d_model: int, n_heads: int, d_ff: int, batch: int = 1) -> float:
    """n* where attention's matmul FLOPs equal the ffn's (tfimpl.costs; NaN if never)."""
    return share_crossover_analytic("attention / (attention + ffn)", d_model, n_heads, d_ff,
                                    batch)


def _crossing(x, ratio) -> float | None:
    """First n where log ratio goes from < 0 to >= 0, interpolated in log n (None if never)."""
    lr = [math.log(r) for r in ratio]
    for i in range(len(x) - 1):
        if lr[i] < 0 <= lr[i + 1]:
            f = -lr[i] / (lr[i + 1] - lr[i])
            return math.exp(math.log(x[i]) + f * (math.log(x[i + 1]) - math.log(x[i])))
    return None


def pairs(ok):
    """Yield (impl, ffn_impl, merged frame) of attention and ffn cases at the same fields."""
    keys = group_keys(ok.columns, exclude=("impl", "block"))
    attn = ok[(ok["block"] == "attention") & ok["median_s"].notna()]
    ffn = ok[(ok["block"] == "ffn") & ok["median_s"].notna()]
    for impl in sorted(set(attn["impl"])):
        twin = impl if impl in set(ffn["impl"]) else FFN_TWIN.get(impl)
        if twin is None or twin not in set(ffn["impl"]):
            continue
        a = attn[attn["impl"] == impl][keys + ["median_s", "samples_s"]]
        f = ffn[ffn["impl"] == twin][keys + ["median_s", "samples_s"]]
        m = a.merge(f, on=keys, suffixes=("_a", "_f"))
        if not m.empty:
            yield impl, twin, m


def measured(merged, seed: int = 0, n_boot: int = N_BOOT, ci: float = 0.95) -> dict:
    """The measured n* of one (attention, ffn) pairing at one width, with a bootstrap CI.

    merged: rows at the same fields except seq_len (columns median_s_a/_f, samples_s_a/_f).
    Returns {"value", "ci_low", "ci_high", "n_range", "ratio_at_max", "rate_ratio"}.
    """
    import numpy as np

    from bench.analysis.fits import median_draws

    g = merged.sort_values("seq_len")
    x = g["seq_len"].to_numpy(float)
    ratio = (g["median_s_a"] / g["median_s_f"]).to_numpy(float)
    value = _crossing(x, ratio) if len(x) >= 2 else None
    out = {"value": value, "ci_low": None, "ci_high": None,
           "n_range": [float(x.min()), float(x.max())] if len(x) else None,
           "ratio_at_max": float(ratio[-1]) if len(ratio) else None, "boot_crossed": None}
    if value is None:
        return out
    sa = [np.asarray(s, float) if isinstance(s, list) and s else np.array([m])
          for s, m in zip(g["samples_s_a"], g["median_s_a"])]
    sf = [np.asarray(s, float) if isinstance(s, list) and s else np.array([m])
          for s, m in zip(g["samples_s_f"], g["median_s_f"])]
    # each draw resamples every size's attention then feed-forward samples, size by size
    medians = median_draws([s for pair in zip(sa, sf) for s in pair], n_boot, seed)
    draws = [c for c in (_crossing(x, r) for r in medians[:, 0::2] / medians[:, 1::2])
             if c is not None]
    out["boot_crossed"] = len(draws) / n_boot
    if len(draws) >= 0.5 * n_boot:
        lo, hi = np.percentile(draws, [100 * (1 - ci) / 2, 100 * (1 + ci) / 2])
        out["ci_low"], out["ci_high"] = float(lo), float(hi)
    return out


def rates_near(merged, n: float, flops_a, flops_f) -> float | None:
    """r_attention / r_ffn (achieved FLOP rates) at the common size nearest n."""
    g = merged.assign(_d=(merged["seq_len"] - n).abs()).sort_values("_d")
    if g.empty:
        return None
    row = g.iloc[0]
    t = int(row["seq_len"])
    fa, ff = flops_a.get(t), flops_f.get(t)
    if not fa or not ff:
        return None
    return (fa / row["median_s_a"]) / (ff / row["median_s_f"])


def share_frame(ok):
    """Attention's share t_attention / (t_attention + t_ffn) per pairing of pairs(): the data
    of the share plot under the same definition (None without a pairing)."""
    import pandas as pd

    frames = []
    for impl, twin, m in pairs(ok):
        label = ("attention / (attention + ffn)" if twin == impl
                 else f"attention / (attention + {twin} ffn)")
        frames.append(m.assign(impl=impl, blocks=label, source="attention+ffn",
                               share=m["median_s_a"] / (m["median_s_a"] + m["median_s_f"])))
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True).sort_values("seq_len")


def share_crossover_analytic(blocks: str, d_model: int, n_heads: int, d_ff: int,
                             batch: int = 1) -> float:
    """T where the attention block's matmul FLOPs equal the feed-forward's (share = ½).

    In all three share definitions the other part is the FFN (an encoder layer's matmuls are
    its mha's plus its ffn's): mha vs ffn gives 4T²D + 8TD² = 4TD·d_ff, T* = d_ff - 2D;
    core attention vs ffn gives 4T²D = 4TD·d_ff, T* = d_ff.
    """
    cfg = ModelConfig(d_model=int(d_model), n_heads=int(n_heads), d_ff=int(d_ff), n_layers=1)
    attn_block = "attention" if blocks.startswith("attention") else "mha"

    def diff(t):       # attention-block work minus the feed-forward's
        return (flops.forward_flops(attn_block, cfg, batch, t)["matmul"]
                - flops.forward_flops("ffn", cfg, batch, t)["matmul"])

    # diff(t) = α t² + β t  ->  t* = -β / α (NaN when it never crosses)
    d1, d2 = diff(256), diff(512)
    alpha = (d2 - 2 * d1) / (512 ** 2 - 2 * 256 ** 2)
    beta = (d1 - alpha * 256 ** 2) / 256
    if alpha <= 0:
        return math.nan
    t = -beta / alpha
    return t if t > 0 else 0.0


def analytic_crossover(block: str, d_model: int, n_heads: int, d_ff: int, layers: int = 1,
                       batch: int = 1) -> float:
    """T where the T²-terms of tfimpl.costs.forward_flops equal the rest of the matmul work.

    With matmul(T) = α·T² + β·T + γ (γ: T-independent work such as BERT's pooler), α comes
    from the attention keys, β from the rest at two lengths; T* = β / α.
    """
    cfg = ModelConfig(d_model=int(d_model), n_heads=int(n_heads), d_ff=int(d_ff),
                      n_layers=int(layers))
    block = "encoder_layer" if block == "mha+ffn" else block

    def split(t):
        parts = flops.forward_flops(block, cfg, int(batch), t)
        quad = sum(parts.get(k, 0) for k in flops.ATTENTION_KEYS)
        return quad, parts["matmul"] - quad

    q1, l1 = split(256)
    _, l2 = split(512)
    alpha, beta = q1 / 256 ** 2, (l2 - l1) / 256
    return beta / alpha if alpha > 0 else math.inf


def composed_layer_times(ok):
    """Rows of block "mha+ffn": median_s = t_mha + t_ffn for matching case fields (or None)."""
    keys = group_keys(ok.columns, exclude=("block",))
    mha = ok[ok["block"] == "mha"]
    ffn = ok[ok["block"] == "ffn"]
    if mha.empty or ffn.empty:
        return None
    merged = mha.merge(ffn[keys + ["median_s"]], on=keys, suffixes=("", "_ffn"))
    if merged.empty:
        return None
    merged = merged.assign(block="mha+ffn", median_s=merged["median_s"] + merged["median_s_ffn"])
    return merged.drop(columns=["median_s_ffn"])


def attention_share(ok):
    """Measured share of the layer's time spent in attention, per matching (impl, precision, ...).

    Preferred source: encoder_layer cases with mha cases at the same fields,
    share = t_mha / t_encoder_layer. Otherwise share = t_attn / (t_attn + t_ffn) with t_attn
    from mha cases (else core attention cases). Returns (frame with columns seq_len, share,
    impl, precision, mode, d_model, n_heads, d_ff, source, blocks) or None.
    """
    import pandas as pd

    keys = group_keys(ok.columns, exclude=("block",))
    ok = ok[ok["median_s"].notna()]
    by_block = {b: ok[ok["block"] == b][keys + ["median_s"]] for b in
                ("attention", "mha", "ffn", "encoder_layer")}
    frames = []
    if not by_block["mha"].empty and not by_block["encoder_layer"].empty:
        m = by_block["mha"].merge(by_block["encoder_layer"], on=keys, suffixes=("_a", "_l"))
        if not m.empty:
            frames.append(m.assign(share=m["median_s_a"] / m["median_s_l"],
                                   source="encoder_layer", blocks="mha / encoder_layer"))
    attn = "mha" if not by_block["mha"].empty else "attention"
    if not frames and not by_block[attn].empty and not by_block["ffn"].empty:
        m = by_block[attn].merge(by_block["ffn"], on=keys, suffixes=("_a", "_f"))
        if not m.empty:
            frames.append(m.assign(share=m["median_s_a"] / (m["median_s_a"] + m["median_s_f"]),
                                   source="attention+ffn", blocks=f"{attn} / ({attn} + ffn)"))
    if not frames:
        return None
    return pd.concat(frames, ignore_index=True).sort_values("seq_len")


def rows(df, rule) -> list[VerdictRow]:
    """A row per implementation (and width) that has both an attention and an ffn sweep."""
    ok = df[df["ok"] & (df["mode"].astype(str) == "forward")]
    rows = []
    for impl, twin, merged in pairs(ok):
        for d, g in merged.groupby("d_model"):
            if g["seq_len"].nunique() < 2:
                continue
            first = g.iloc[0]
            pred = predicted(int(d), int(first["n_heads"]), int(first["d_ff"]),
                                       int(first["batch"]))
            m = measured(g, seed=rule.seed)
            prec = str(first["precision"])
            pair = impl if twin == impl else f"{impl} attention, {twin} ffn"
            lo_n, hi_n = m["n_range"]
            if m["value"] is None:
                verdict = NOT_ENOUGH
                side = "below" if m["ratio_at_max"] < 1 else "above"
                sentence = (f"{pair} ({prec}, d = {int(d)}): attention stayed {side} the "
                            f"feed-forward's time over n {lo_n:g}–{hi_n:g} (ratio "
                            f"{m['ratio_at_max']:.2f} at n = {hi_n:g}); the FLOPs predict "
                            f"n* = {pred:.0f}.")
            else:
                verdict = band_verdict(m["ci_low"], m["ci_high"], pred, CROSSOVER_FACTOR)
                fl = _flops_by_n(ok, impl, twin, g)
                rate = rates_near(g, m["value"], *fl)
                ci = (f" [{m['ci_low']:.0f}, {m['ci_high']:.0f}]" if m["ci_low"] is not None
                      else " (CI: the bootstrap crossed in too few draws)")
                why = (f": near n* attention ran at {rate:.2f}× the feed-forward's FLOP rate, "
                       f"so n* ≈ d_ff × {rate:.2f}" if rate else "")
                sentence = (f"{pair} ({prec}, d = {int(d)}): measured n* = {m['value']:.0f}"
                            f"{ci} against {pred:.0f} from the FLOPs{why}.")
            rows.append(VerdictRow(
                id="crossover", kind="crossover",
                claim="attention overtakes the feed-forward where its n² work equals the "
                      "FFN's (n* = d_ff by FLOPs)",
                block="attention/ffn", metric="time", variable="seq_len",
                impl=impl, ffn_impl=twin, precision=prec, d_model=int(d),
                theory=_num(pred), theory_text=f"n* = {pred:.0f}",
                value=_num(m["value"]), ci_low=m["ci_low"], ci_high=m["ci_high"],
                unit="tokens", fit_range=f"seq_len {lo_n:g}–{hi_n:g} (common sizes)",
                verdict=verdict, sentence=sentence,
                extra={"definition": DEFINITION,
                       "band": f"within a factor {CROSSOVER_FACTOR:g} of the prediction"}))
    return rows


def _flops_by_n(ok, impl, twin, g) -> tuple[dict, dict]:
    d = g["d_model"].iloc[0]
    out = []
    for block, who in (("attention", impl), ("ffn", twin)):
        s = ok[(ok["block"] == block) & (ok["impl"] == who) & (ok["d_model"] == d)]
        out.append({int(n): f for n, f in zip(s["seq_len"], s["flops"]) if f == f})
    return out[0], out[1]


def plot_lines(share, rows) -> list[dict]:
    """The crossover lines of the share plot: the ONE definition's FLOP prediction, and the
    measured n* of each implementation, from the verdict rows (rows())."""
    if share is None or share.empty:
        return []
    out, seen = [], set()
    for r in rows or []:
        if r.kind != "crossover":
            continue
        if r.theory is not None and r.d_model not in seen:
            seen.add(r.d_model)
            out.append({"seq_len": r.theory, "label": f"n* from FLOPs (d={r.d_model})",
                        "color": "0.2"})
        if r.value is not None:
            out.append({"seq_len": r.value, "label": f"measured n*: {r.impl}",
                        "color": "tab:red"})
    return out
