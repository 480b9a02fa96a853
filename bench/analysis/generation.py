"""Verdicts and a report section for the GPT blocks (bench/blocks/gpt.py): what generation costs.

Each claim is one verdict row in bench.analysis.verdicts' schema, per (impl, precision):

    decode-linear     a decode step with the cache costs a + b·n (the intercept: every weight
                      read once; the slope: the cached keys and values). Fit of the medians to
                      t = a + b·n + c·n² (non-negative least squares, relative error), 95% CI by
                      bootstrap over each case's raw samples. value = the n² term's share of
                      t at the largest n. held: its CI lies below QUAD_SHARE_MAX and b > 0;
                      did not hold: the whole CI above QUAD_SHARE_MAX.
    recompute-quad    without the cache the step is the whole prefix again: the same fit must
                      find an n² term. value = its share at the largest n, theory = the T² terms'
                      share of the analytic FLOPs there (flops_by_component). held: CI lower
                      bound > 0; did not hold: CI upper bound is 0.
    kv-exact          the KV cache's allocated bytes equal 2·L·B·n·D·s at every n (exact).
    bandwidth-floor   a decode step (batch 1) against its floor, bytes a step must read
                      (decode_bytes_min) / the machine's triad bandwidth (meta machine_peak):
                      value = time / floor at the largest n, held: the CI within
                      [1, FLOOR_FACTOR_MAX] (memory-bound: the bytes explain the time).
    prefill-vs-decode prefill's FLOP/s over decode's at the same n: value with CI; held: CI above
                      COMPUTE_RATIO_MIN (prefill reuses each weight n times, decode once).
Generation (block generate) is tabulated: TTFT, inter-token latency p50/p90/p99, tokens/s.

Tests: tests/impls/test_gpt2_harness.py.
"""

from __future__ import annotations

import math

import numpy as np

from bench.analysis.verdict_row import HELD, NOT_ENOUGH, NOT_HELD, VerdictRow
from bench.analysis.fits import median_draws

QUAD_SHARE_MAX = 0.10
FLOOR_FACTOR_MAX = 3.0
COMPUTE_RATIO_MIN = 2.0
N_BOOT = 500
MIN_POINTS = 4


def _ok(df, block):
    return df[df["ok"] & (df["block"] == block) & df["median_s"].notna()]


def _groups(frame):
    for (impl, prec), g in frame.groupby(["impl", "precision"], sort=True):
        yield impl, prec, g.sort_values("seq_len")


def _fit_quadratic(n, t):
    """t = a + b·n + c·n², non-negative, relative error: (a, b, c)."""
    from scipy.optimize import nnls

    A = np.column_stack([np.ones_like(n), n, n ** 2]) / t[:, None]
    col = np.abs(A).max(axis=0)
    col[col == 0] = 1.0
    coef, _ = nnls(A / col, np.ones_like(t))
    return coef / col


def _boot(group, stat, seed=0):
    """stat(n, t) on the medians, and its 95% CI resampling each case's raw samples."""
    n = group["seq_len"].to_numpy(float)
    samples = [np.asarray(s, float) for s in group["samples_s"]]
    point = stat(n, np.array([np.median(s) for s in samples]))
    boots = [stat(n, medians) for medians in median_draws(samples, N_BOOT, seed)]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(point), float(lo), float(hi)


THEORY_TEXT = {("decode", "time", "share"): f"n² share < {QUAD_SHARE_MAX:.0%}",
               ("decode-recompute", "time", "share"): "n² share > 0",
               ("decode", "time", "ratio"): f"1–{FLOOR_FACTOR_MAX:g}× the floor",
               ("prefill", "flops", "ratio"): f"> {COMPUTE_RATIO_MIN:g}×"}


def _row(claim, block, metric, impl, prec, theory, value, lo, hi, unit, verdict, sentence):
    theory_text = THEORY_TEXT.get((block, metric, unit), "= 2·L·B·n·D·s")
    return VerdictRow(id=f"{block}.{metric}.{unit}", kind="generation", theory_text=theory_text,
                      claim=claim, block=block, metric=metric, variable="seq_len", impl=impl,
                      precision=prec, theory=theory, value=value, ci_low=lo, ci_high=hi,
                      unit=unit, fit_range="all sizes", verdict=verdict, sentence=sentence)


def _quad_share(n, t):
    a, b, c = _fit_quadratic(n, t)
    top = n.max()
    return c * top ** 2 / (a + b * top + c * top ** 2)


def decode_rows(df) -> list[VerdictRow]:
    rows = []
    for impl, prec, g in _groups(_ok(df, "decode")):
        if g["seq_len"].nunique() < MIN_POINTS:
            continue
        share, lo, hi = _boot(g, _quad_share)
        a, b, _ = _fit_quadratic(g["seq_len"].to_numpy(float), g["median_s"].to_numpy(float))
        verdict = (HELD if hi < QUAD_SHARE_MAX and b > 0 else
                   NOT_HELD if lo > QUAD_SHARE_MAX else NOT_ENOUGH)
        rows.append(_row(
            "decode step with a KV cache is linear in the context: a + b·n", "decode", "time",
            impl, prec, 0.0, share, lo, hi, "share",
            verdict, f"{impl} {prec}: t = {1e3 * a:.2f} ms + {1e6 * b:.3f} µs·n; the n² term is "
                     f"{100 * share:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] of the time at "
                     f"n = {int(g['seq_len'].max()):,} (linear: under {100 * QUAD_SHARE_MAX:.0f}%)"))
    for impl, prec, g in _groups(_ok(df, "decode-recompute")):
        if g["seq_len"].nunique() < MIN_POINTS:
            continue
        share, lo, hi = _boot(g, _quad_share)
        top = g.iloc[-1]
        parts = top["flops_by_component"] or {}
        theory = ((parts.get("attn_scores", 0) + parts.get("attn_weighted_sum", 0))
                  / top["flops_analytic"]) if top["flops_analytic"] else None
        verdict = HELD if lo > 0 else (NOT_HELD if hi == 0 else NOT_ENOUGH)
        rows.append(_row(
            "decode without a cache recomputes the prefix: quadratic in n", "decode-recompute",
            "time", impl, prec, theory, share, lo, hi, "share", verdict,
            f"{impl} {prec}: the n² term is {100 * share:.1f}% [{100 * lo:.1f}, {100 * hi:.1f}] "
            f"of the time at n = {int(top['seq_len']):,}; the T² FLOPs are "
            f"{100 * (theory or 0):.1f}% there"))
    return rows


def kv_rows(df) -> list[VerdictRow]:
    rows = []
    frame = df[df["ok"] & df["kv_bytes_measured"].notna() & df["kv_bytes_analytic"].notna()]
    for (impl, prec, block), g in frame.groupby(["impl", "precision", "block"], sort=True):
        equal = bool((g["kv_bytes_measured"] == g["kv_bytes_analytic"]).all())
        top = g.sort_values("seq_len").iloc[-1]
        ratio = float(top["kv_bytes_measured"] / top["kv_bytes_analytic"])
        rows.append(_row(
            "KV cache memory is 2·L·B·n·D·s bytes, linear in n", block, "memory", impl, prec,
            1.0, ratio, None, None, "ratio", HELD if equal else NOT_HELD,
            f"{impl} {prec} ({block}): allocated = analytic at {len(g)} of {len(g)} sizes"
            if equal else f"{impl} {prec} ({block}): allocated/analytic {ratio:.3f} at the "
                          f"largest n; not equal at every size"))
    return rows


def _bandwidth(meta, backend):
    table = ((meta or {}).get("machine_peak") or {}).get("bandwidth") or {}
    value = (table.get(backend) or {}).get("triad")
    return float(value) * 1e9 if value else None


def floor_rows(df, meta) -> list[VerdictRow]:
    rows = []
    for impl, prec, g in _groups(_ok(df, "decode")):
        g = g[(g["batch"] == 1) & g["decode_bytes_min"].notna()]
        if g.empty:
            continue
        bw = _bandwidth(meta, g["backend"].iloc[0])
        top = g.iloc[-1]
        if bw is None:
            rows.append(_row("a decode step at batch 1 is bound by memory bandwidth", "decode",
                             "time", impl, prec, 1.0, None, None, None, "ratio", NOT_ENOUGH,
                             f"{impl}: no bandwidth in the run's machine peak (bench peak)"))
            continue
        floor = top["decode_bytes_min"] / bw
        boots = median_draws([top["samples_s"]], N_BOOT)[:, 0] / floor
        lo, hi = (float(v) for v in np.percentile(boots, [2.5, 97.5]))
        value = float(top["median_s"] / floor)
        verdict = (HELD if 1.0 <= lo and hi <= FLOOR_FACTOR_MAX else
                   NOT_HELD if lo > FLOOR_FACTOR_MAX or hi < 1.0 else NOT_ENOUGH)
        rows.append(_row(
            "a decode step at batch 1 is bound by memory bandwidth", "decode", "time", impl, prec,
            1.0, value, lo, hi, "ratio", verdict,
            f"{impl} {prec}: {1e3 * top['median_s']:.2f} ms per step at n = {int(top['seq_len']):,}"
            f", {value:.2f}× its floor {1e3 * floor:.2f} ms ({top['decode_bytes_min'] / 1e6:.0f} MB"
            f" at {bw / 1e9:.1f} GB/s triad)"))
    return rows


def compute_rows(df) -> list[VerdictRow]:
    rows = []
    pre, dec = _ok(df, "prefill"), _ok(df, "decode")
    for (impl, prec), p in pre.groupby(["impl", "precision"], sort=True):
        d = dec[(dec["impl"] == impl) & (dec["precision"] == prec)]
        common = sorted(set(p["seq_len"]) & set(d["seq_len"]))
        if not common:
            continue
        n = common[-1]
        a, b = p[p["seq_len"] == n].iloc[0], d[d["seq_len"] == n].iloc[0]
        rate = lambda r, s: r["flops_analytic"] / s                            # noqa: E731
        value = rate(a, a["median_s"]) / rate(b, b["median_s"])
        medians = median_draws([a["samples_s"], b["samples_s"]], N_BOOT)
        boots = rate(a, medians[:, 0]) / rate(b, medians[:, 1])
        lo, hi = (float(v) for v in np.percentile(boots, [2.5, 97.5]))
        verdict = HELD if lo > COMPUTE_RATIO_MIN else (NOT_HELD if hi < COMPUTE_RATIO_MIN else NOT_ENOUGH)
        rows.append(_row(
            "prefill runs at many times decode's FLOP/s (compute- vs memory-bound)", "prefill",
            "flops", impl, prec, COMPUTE_RATIO_MIN, float(value), lo, hi, "ratio", verdict,
            f"{impl} {prec} at n = {n:,}: prefill {rate(a, a['median_s']) / 1e9:.1f} GFLOP/s, "
            f"decode {rate(b, b['median_s']) / 1e9:.2f} GFLOP/s: {value:.1f}×"))
    return rows


def all_rows(df, meta) -> list[VerdictRow]:
    if "block" not in df or not df["block"].isin(["prefill", "decode", "decode-recompute",
                                                  "generate"]).any():
        return []
    return decode_rows(df) + kv_rows(df) + floor_rows(df, meta) + compute_rows(df)


def _ms(v) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{1e3 * v:.2f}"


def section(df, meta) -> list[str]:
    """`## Generation`: per implementation, decode step and recompute per n, and generate."""
    rows = all_rows(df, meta)
    if not rows:
        return []
    out = ["## Generation (GPT blocks)", ""]
    out += [f"- **{r.verdict}**: {r.claim}. {r.sentence}" for r in rows]
    dec = df[df["ok"] & df["block"].isin(["decode", "decode-recompute", "prefill"])]
    if not dec.empty:
        out += ["", "| impl | precision | block | n | ms per call | tokens/s | KV bytes |",
                "|---|---|---|---:|---:|---:|---:|"]
        for _, r in dec.sort_values(["impl", "precision", "block", "seq_len"]).iterrows():
            tokens = r["batch"] * (r["seq_len"] if r["block"] == "prefill" else 1)
            kv = r.get("kv_bytes_measured")
            out.append(f"| {r['impl']} | {r['precision']} | {r['block']} | {int(r['seq_len']):,} | "
                       f"{_ms(r['median_s'])} | {tokens / r['median_s']:.1f} | "
                       f"{'—' if kv is None or kv != kv else f'{int(kv):,}'} |")
    gen = df[df["ok"] & (df["block"] == "generate")]
    if not gen.empty:
        out += ["", "| impl | precision | P | G | TTFT ms | ITL p50 / p90 / p99 ms | prefill tok/s | "
                "decode tok/s |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for _, r in gen.iterrows():
            out.append(f"| {r['impl']} | {r['precision']} | {int(r['seq_len'])} | "
                       f"{int(r['new_tokens'])} | {_ms(r['ttft_s'])} | {_ms(r['itl_p50_s'])} / "
                       f"{_ms(r['itl_p90_s'])} / {_ms(r['itl_p99_s'])} | "
                       f"{r['prefill_tokens_per_s']:.1f} | {r['decode_tokens_per_s']:.1f} |")
        out += ["", "TTFT and inter-token latencies: from bench.impls.gpt_ours.GEN_REPEATS "
                "generations after the timed ones, each step timed (greedy, no sampling); "
                "hf-gpt2 runs the same manual loop with its own cache."]
    return out + [""]
