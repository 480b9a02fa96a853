"""Where attention overtakes the feed-forward: ONE definition, predicted and measured.

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
"""

from __future__ import annotations

import math
from bench.analysis.claims import GROUP_FIELDS, share_crossover_analytic

DEFINITION = ("n* = the sequence length at which the bare attention block (QKᵀ and P·V, "
              "4·B·n²·d FLOPs) costs as much as the feed-forward (4·B·n·d·d_ff), at the "
              "same "
              "width: predicted from tfimpl.costs' matmul FLOPs, measured where the two "
              "blocks' median times are equal")
# The FFN a fused-attention implementation is paired with: torch-sdpa's feed-forward is
# torch's very code (bench.impls.prepare builds both from tfimpl.torch), so the seq sweep omits it.
FFN_TWIN = {"torch-sdpa": "torch"}
N_BOOT = 400


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
    keys = [f for f in GROUP_FIELDS if f not in ("impl", "block") and f in ok.columns]
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
