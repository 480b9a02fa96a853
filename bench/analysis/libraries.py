"""Libraries side by side: each implementation's time per call over `torch`'s, size by size.

    ratio(impl, case) = median_s(impl) / median_s(torch)   on the same block, precision, mode,
                        batch, seq_len, d_model, n_heads, d_ff, layers and threads

A ratio < 1 is faster than tfimpl.torch, > 1 slower. Per implementation and block the report
gives the geometric mean over the shared sizes (the sizes' ratios weigh equally) and the
ratio at the largest size, plus, for traced implementations (tf.function, XLA), the trace and
compile time of the first call, which the samples never include (`compile_s`).
Reads the records' columns only.
"""

from __future__ import annotations

import math

BASELINE = "torch"
MATCH = ("block", "precision", "mode", "batch", "seq_len", "d_model", "n_heads", "d_ff",
         "layers", "threads", "checkpoint", "compile")


def library_ratios(df) -> list[dict]:
    """One row per (impl, block, precision, mode) that shares sizes with `torch`."""
    ok = df[df["ok"] & df["median_s"].notna()]
    if BASELINE not in set(ok["impl"]):
        return []
    keys = [k for k in MATCH if k in ok.columns]
    base = ok[ok["impl"] == BASELINE].set_index(keys)["median_s"]
    rows = []
    for (impl, block, prec, mode), group in ok[ok["impl"] != BASELINE].groupby(
            ["impl", "block", "precision", "mode"], sort=True):
        pairs = []
        for _, r in group.sort_values("seq_len").iterrows():
            key = tuple(r[k] for k in keys)
            if key in base.index:
                pairs.append((r, float(r["median_s"]) / float(base.loc[key])))
        if not pairs:
            continue
        ratios = [q for _, q in pairs]
        compile_s = [float(r["compile_s"]) for r, _ in pairs
                     if "compile_s" in r and r["compile_s"] is not None
                     and not math.isnan(r["compile_s"])]
        rows.append({"impl": impl, "block": block, "precision": prec, "mode": mode,
                     "n_sizes": len(pairs), "seq_lens": [int(r["seq_len"]) for r, _ in pairs],
                     "ratios": ratios,
                     "geomean_ratio": math.exp(sum(math.log(q) for q in ratios) / len(ratios)),
                     "largest_seq_len": int(pairs[-1][0]["seq_len"]), "largest_ratio": ratios[-1],
                     "compile_s_median": sorted(compile_s)[len(compile_s) // 2] if compile_s else None})
    return rows


def library_lines(rows: list[dict]) -> list[str]:
    """The report's section: a note per implementation, then the table of ratios by size."""
    if not rows:
        return []
    lines = ["## Libraries side by side (time / torch's time)", "",
             "Ratio of each implementation's median time per call to tfimpl.torch's on the same "
             "case (< 1: faster than torch). Geometric mean over the sizes both ran, and the "
             "ratio at the largest. Timings from a busy machine say little; see *Every case* "
             "for each sample's spread.", ""]
    for r in rows:
        compiled = ("" if r["compile_s_median"] is None else
                    f"; first call (trace + compile + one run) {r['compile_s_median']:.2f} s "
                    "median, not in the samples")
        lines.append(f"- Note: {r['block']} {r['precision']} {r['mode']}: {r['impl']}/torch time "
                     f"ratio {r['geomean_ratio']:.3g}× (geometric mean over {r['n_sizes']} "
                     f"sizes), {r['largest_ratio']:.3g}× at n={r['largest_seq_len']}{compiled}.")
    lines += ["", "| impl | block | precision | mode | " + " | ".join(
        f"n={n}" for n in rows[0]["seq_lens"]) + " |",
        "|---|---|---|---|" + "---|" * len(rows[0]["seq_lens"])]
    for r in rows:
        by_n = dict(zip(r["seq_lens"], r["ratios"]))
        cells = [f"{by_n[n]:.3g}×" if n in by_n else "—" for n in rows[0]["seq_lens"]]
        lines.append(f"| {r['impl']} | {r['block']} | {r['precision']} | {r['mode']} | "
                     + " | ".join(cells) + " |")
    return lines + [""]
