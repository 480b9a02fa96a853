"""Verdicts for training (modes forward+backward and train, the tricks), one row per claim in
bench.analysis.verdicts' schema, per (impl, precision, block, sizes) where the run has the pair.

    bwd-flops     backward FLOPs = 2 × forward: counted (torch's FlopCounterMode) and analytic,
                  (forward+backward − forward) / forward; held when within 1% of 2
    bwd-time      backward time / forward time from the medians, 95% CI by bootstrap over the raw
                  samples; held when the CI lies within a factor √2 of 2, not when wholly outside
    6N            fwd+bwd FLOPs per token / 6·N (Kaplan: C ≈ 6N per token, N the block's
                  parameters), counted (torch) against tfimpl.costs' analytic count, with
                  Kaplan's context term (12·L·T·D: scores and weighted sum, 3 passes) beside;
                  held when counted is within 5% of analytic
    adamw-state   AdamW state bytes / (2 × parameters × 4 bytes) in fp32; held within 1% (torch
                  adds a 4-byte step counter per tensor)
    train-bytes   saved-activation, gradient and optimizer-state bytes measured / predicted
                  (tfimpl.costs.training); held within 5%
    checkpoint    checkpoint=True vs False: peak bytes ratio and step-time ratio (CI); held when
                  the peak is lower and the time ratio's CI lies within [1, 2] (≈ one more
                  forward: 4/3 of a forward+backward)
    compile       compile=True vs False speedup (CI), compile time apart; held when the CI is
                  above 1, not when wholly below
    amp           a mixed-precision train step (amp-bf16 / amp-fp16) vs fp32: speedup (CI)
                  against the guide's "2×" (held within √2 of 2); beside it the run's measured
                  bf16/fp32 (fp16/fp32) matmul peak ratio, the CPU flags as context
                  (bench.analysis.precisions.dtype_words)

Tests: tests/analysis/test_training_verdicts.py.
"""

from __future__ import annotations

import math

import numpy as np

from bench.analysis.verdict_row import HELD, NOT_ENOUGH, NOT_HELD, VerdictRow, band_verdict
from bench.analysis import precisions
from bench.analysis.fits import median_ratio_ci
from bench.analysis.frame import peak_dtype

N_BOOT = 500
SIZE_KEYS = ("impl", "block", "batch", "seq_len", "d_model", "n_heads", "d_ff", "layers",
             "activation", "norm_first", "causal", "threads", "device")
BAND = math.sqrt(2.0)


def _row(rid, claim, block, metric, impl, prec, theory, theory_text, value, lo, hi, unit,
         verdict, sentence):
    return VerdictRow(id=rid, kind="training", theory_text=theory_text, claim=claim,
                      block=block, metric=metric, variable="mode", impl=impl, precision=prec,
                      theory=theory, value=value, ci_low=lo, ci_high=hi, unit=unit,
                      fit_range="pairs of cases", verdict=verdict, sentence=sentence)


def _num(value):
    """A record value as float, or None when null/NaN."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _col(df, name, default=False):
    return df[name] if name in df.columns else default


def _ok(df):
    return df[df["ok"] & df["median_s"].notna()]


def _pairs(df, base: dict, other: dict, keys=SIZE_KEYS + ("precision",)):
    """(a, b) rows matching on keys, a with the `base` field values, b with `other`'s."""
    ok = _ok(df)
    keys = [k for k in keys if k in ok.columns and k not in base and k not in other]
    a = ok
    for k, v in base.items():
        a = a[_col(a, k) == v]
    b = ok
    for k, v in other.items():
        b = b[_col(b, k) == v]
    if a.empty or b.empty:
        return []
    merged = a.reset_index().merge(b.reset_index(), on=keys, suffixes=("_a", "_b"))
    return [(df.loc[r["index_a"]], df.loc[r["index_b"]]) for _, r in merged.iterrows()]


def ratio_ci(a_samples, b_samples, seed=0):
    """median(b) / median(a), and its 95% CI resampling both cases' raw samples."""
    point = float(np.median(np.asarray(b_samples, float)) / np.median(np.asarray(a_samples, float)))
    lo, hi = median_ratio_ci(b_samples, a_samples, N_BOOT, seed)
    return point, lo, hi


def _where(r) -> str:
    return f"{r['impl']} {r['block']} T={int(r['seq_len'])} d={int(r['d_model'])}"


def backward_rows(df) -> list[VerdictRow]:
    rows = []
    for fwd, fb in _pairs(df, {"mode": "forward"}, {"mode": "forward+backward"}):
        if fwd.get("checkpoint", False) or fwd.get("compile", False):
            continue
        prec, block, impl = fwd["precision"], fwd["block"], fwd["impl"]
        analytic = fb["flops_analytic"] / fwd["flops_analytic"] - 1
        counted = None
        if _num(fwd.get("flops_counted")) and _num(fb.get("flops_counted")):
            counted = fb["flops_counted"] / fwd["flops_counted"] - 1
        value = counted if counted is not None else analytic
        why = ("; the fused attention backward recomputes the scores (5 attention matmuls "
               "where the explicit path has 4)" if fwd.get("attn_path") == "sdpa" else "")
        source = "counted" if counted is not None else "analytic only: NumPy has no FLOP counter"
        rows.append(_row("train.bwd_flops", "backward FLOPs ≈ 2× forward", block, "flops", impl,
                         prec, 2.0, "= 2", value, None, None, "ratio",
                         HELD if abs(value - 2) <= 0.02 else NOT_HELD,
                         f"{_where(fwd)}: backward/forward = {value:.3f} "
                         f"({source}; analytic {analytic:.3f}){why}"))
        t, lo, hi = ratio_ci(fwd["samples_s"], fb["samples_s"])
        rows.append(_row("train.bwd_time", "backward time ≈ 2× forward", block, "time", impl,
                         prec, 2.0, "≈ 2 (within √2)", t - 1, lo - 1, hi - 1, "ratio",
                         band_verdict(lo - 1, hi - 1, 2.0, BAND),
                         f"{_where(fwd)}: (fwd+bwd − fwd)/fwd = {t - 1:.2f} "
                         f"[{lo - 1:.2f}, {hi - 1:.2f}] from medians "
                         f"{1e3 * fwd['median_s']:.2f} and {1e3 * fb['median_s']:.2f} ms"))
    return rows


def six_n_rows(df) -> list[VerdictRow]:
    rows = []
    ok = _ok(df)
    frame = ok[(ok["mode"] == "forward+backward") & ok["block"].isin(["encoder", "encoder_layer"])]
    for _, r in frame.iterrows():
        layers = 1 if r["block"] == "encoder_layer" else int(r["layers"])
        tokens = int(r["batch"]) * int(r["seq_len"])
        counted = _num(r.get("flops_counted"))
        if counted is None:                       # numpy: nothing counts its FLOPs
            continue
        n_params = int(r["params"])
        six_n = 6 * n_params
        theory = r["flops_analytic"] / tokens / six_n          # tfimpl.costs, per token / 6N
        value = counted / tokens / six_n
        context = 12 * layers * int(r["seq_len"]) * int(r["d_model"]) / six_n
        rows.append(_row("train.6n", "fwd+bwd FLOPs per token ≈ 6N (+ 12·L·T·D attention)",
                         r["block"], "flops", r["impl"], r["precision"], theory,
                         f"{theory:.3f} × 6N", value, None, None, "ratio",
                         HELD if abs(value / theory - 1) <= 0.05 else NOT_HELD,
                         f"{_where(r)} L={layers}: counted {counted / tokens:,.0f} FLOPs/token = "
                         f"{value:.3f} × 6N (N = {n_params:,}); analytic {theory:.3f} × 6N; "
                         f"Kaplan's 6N + 12·L·T·D = {1 + context:.3f} × 6N"))
    return rows


def memory_rows(df) -> list[VerdictRow]:
    rows = []
    ok = _ok(df)
    if "optimizer_state_bytes" not in ok.columns:
        return rows
    frame = ok[(ok["mode"] == "train") & ok["optimizer_state_bytes"].notna()]
    for _, r in frame.iterrows():
        if r["precision"] == "fp32":
            expect = 2 * int(r["params"]) * 4
            value = r["optimizer_state_bytes"] / expect
            rows.append(_row("train.adamw_state", "AdamW state = 2 × parameters × 4 bytes",
                             r["block"], "memory", r["impl"], r["precision"], 1.0, "= 1",
                             value, None, None, "ratio",
                             HELD if abs(value - 1) <= 0.01 else NOT_HELD,
                             f"{_where(r)}: {int(r['optimizer_state_bytes']):,} B measured, "
                             f"2 × {int(r['params']):,} × 4 = {expect:,} B"))
        if _num(r.get("saved_activation_bytes_predicted")) is None:
            continue
        ratios = {k: r[f"{k}_bytes"] / r[f"{k}_bytes_predicted"]
                  for k in ("saved_activation", "gradient", "optimizer_state")}
        worst = max(abs(v - 1) for v in ratios.values())
        rows.append(_row("train.bytes", "training bytes measured = predicted (within 5%)",
                         r["block"], "memory", r["impl"], r["precision"], 1.0, "1 ± 5%",
                         1 + worst, None, None, "ratio", HELD if worst <= 0.05 else NOT_HELD,
                         f"{_where(r)}: activations {ratios['saved_activation']:.3f}, "
                         f"gradients {ratios['gradient']:.3f}, AdamW state "
                         f"{ratios['optimizer_state']:.3f} of predicted; Korthikanti's "
                         f"16-bit formula {int(r['korthikanti_bytes']):,} B vs ours "
                         f"{int(r['saved_activation_bytes']):,} B"))
    return rows


def trick_rows(df, meta) -> list[VerdictRow]:
    rows = []
    for plain, ckpt in _pairs(df, {"mode": "train", "checkpoint": False},
                              {"mode": "train", "checkpoint": True}):
        t, lo, hi = ratio_ci(plain["samples_s"], ckpt["samples_s"])
        mem = ckpt["peak_bytes"] / plain["peak_bytes"] if _num(plain.get("peak_bytes")) else None
        pred = ckpt["peak_bytes_predicted"] / plain["peak_bytes_predicted"]
        held = mem is not None and mem < 1 and 1.0 <= lo and hi <= 2.0
        wrong = mem is not None and (mem >= 1 or hi < 1.0 or lo > 2.0)
        rows.append(_row("train.checkpoint", "checkpointing: memory ∝ 1 layer, ≈ one more forward",
                         plain["block"], "memory", plain["impl"], plain["precision"], 4 / 3,
                         "peak < 1×, time 1–2×", t, lo, hi, "ratio",
                         HELD if held else NOT_HELD if wrong else NOT_ENOUGH,
                         f"{_where(plain)} L={int(plain['layers'])}: peak "
                         f"{mem:.2f}× (predicted {pred:.2f}×), step time {t:.2f}× [{lo:.2f}, "
                         f"{hi:.2f}] (one more forward: 1.33×)"))
    for eager, comp in _pairs(df, {"compile": False}, {"compile": True},
                              keys=SIZE_KEYS + ("precision", "mode")):
        t, lo, hi = ratio_ci(comp["samples_s"], eager["samples_s"])
        verdict = HELD if lo > 1 else NOT_HELD if hi < 1 else NOT_ENOUGH
        rows.append(_row("train.compile", "torch.compile speeds up", eager["block"], "time",
                         eager["impl"], eager["precision"], 1.0, "> 1", t, lo, hi, "ratio",
                         verdict, f"{_where(eager)} {eager['mode']}: speedup {t:.2f}× "
                         f"[{lo:.2f}, {hi:.2f}]; compile {comp['compile_s']:.1f} s apart "
                         f"from the samples"))
    for amp in ("amp-bf16", "amp-fp16"):
        for fp32, low in _pairs(df, {"mode": "train", "precision": "fp32"},
                                {"mode": "train", "precision": amp}, keys=SIZE_KEYS):
            t, lo, hi = ratio_ci(low["samples_s"], fp32["samples_s"])
            backend = fp32.get("backend") if isinstance(fp32.get("backend"), str) else "torch"
            hw = precisions.dtype_words(meta or {}, peak_dtype(amp), backend,
                                        _num(fp32.get("threads")), fp32.get("device"))
            rows.append(_row("train.amp", "mixed precision training: ~2× faster", fp32["block"],
                             "time", fp32["impl"], amp, 2.0, "≈ 2 (within √2)", t, lo, hi,
                             "ratio", band_verdict(lo, hi, 2.0, BAND),
                             f"{_where(fp32)}: {amp} step speedup {t:.2f}× [{lo:.2f}, {hi:.2f}];"
                             f" peak {low['peak_bytes'] / fp32['peak_bytes']:.2f}× fp32's; {hw}"))
    return rows


def all_rows(df, meta) -> list[VerdictRow]:
    if df is None or df.empty or "mode" not in df.columns:
        return []
    return backward_rows(df) + six_n_rows(df) + memory_rows(df) + trick_rows(df, meta)
