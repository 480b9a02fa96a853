"""int8 (dynamic quantization) against fp32: the verdict rows the report opens with, and the
details section under them.

Per implementation, block and seq_len with both an int8 and an fp32 case measured:

    speedup       median_s(fp32) / median_s(int8), 95% CI by bootstrap over both cases' raw
                  samples (bench.analysis.precisions.speedup_ci); held when the CI is above 1,
                  did not hold when below, not enough data when it straddles 1
    weight bytes  the Linear weights as stored (record weight_bytes: int8 payload + scales +
                  zero points) against fp32's, and against tfimpl.costs.quantized
                  (weight_bytes_predicted): "exact" only when equal
    errors        rel. L2 error vs the block's fp64 reference, beside fp32's

The because: the run's matmul peak (meta.json machine_peak, `python -m bench peak`) has torch's
int8 kernel (quantized::linear_dynamic) beside fp32; its ratio is the ceiling an int8 Linear
can buy over fp32 here, quoted with the CPU's VNNI flags as context. ONNX Runtime's own int8
kernels (MLAS) are not in the peak: its rows say so. ONNX Runtime vs torch: fp32 and int8
medians of `onnxruntime` against `hf-bert` (the module it was exported from) per size.

Tests: tests/analysis/test_quantization.py.
"""

from __future__ import annotations

import math

from bench.analysis import precisions
from bench.analysis.fits import median_ratio_ci
from bench.analysis.frame import peak_values
from bench.analysis.verdict_row import HELD, NOT_ENOUGH, NOT_HELD, VerdictRow

INT8 = "int8"
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
CLAIM = "int8 dynamic quantization is faster than fp32 on a CPU"


def _number(value) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _twin(df, row, precision: str, impl: str | None = None):
    m = df["ok"] & (df["precision"] == precision)
    for f in precisions.MATCH_FIELDS:
        if f in df.columns and f in row:
            value = impl if (f == "impl" and impl) else row[f]
            m &= df[f].astype(str) == str(value)
    hit = df[m]
    return None if hit.empty else hit.iloc[0]


def because(meta: dict) -> str:
    """The measured int8 vs fp32 matmul peak (torch), then the CPU's VNNI flags as context."""
    peaks = peak_values(meta)
    int8, fp32 = peaks.get(("torch", INT8)), peaks.get(("torch", "fp32"))
    flags = meta.get("cpu_flags")
    vnni = None if flags is None else [f for f in VNNI_FLAGS if f in flags]
    context = ("the CPU's flags are not in meta.json" if vnni is None else
               f"the CPU has {', '.join(vnni)}: int8 dot products accumulate into int32 in one "
               f"instruction" if vnni else
               "the CPU has no VNNI (AVX2 only): int8 products are summed through int16 "
               "(vpmaddubsw), so activations keep 7 bits (reduce_range)")
    if not (int8 and fp32):
        return (f"This run did not measure the int8 matmul peak (`python -m bench peak`); "
                f"{context}.")
    return (f"torch's int8 matmul (quantized::linear_dynamic) ran at {int8 / fp32:.2f}× fp32's "
            f"here ({int8:.0f} vs {fp32:.0f} GOP/s, the run's peak measurement): the ceiling an "
            f"int8 Linear can buy; attention's matmuls, softmax and norms stay fp32; {context}.")


def peak_words(meta: dict) -> str:
    """'the int8 matmul peak is 2.40× fp32's here (60 vs 25 GOP/s, torch, measured)'."""
    peaks = peak_values(meta)
    int8, fp32 = peaks.get(("torch", INT8)), peaks.get(("torch", "fp32"))
    if not (int8 and fp32):
        return "the int8 matmul peak was not measured (`python -m bench peak`)"
    return (f"the int8 matmul peak is {int8 / fp32:.2f}× fp32's here ({int8:.0f} vs {fp32:.0f} "
            f"GOP/s, torch, measured)")


def _bytes_words(row, fp32) -> str:
    mine, predicted = _number(row.get("weight_bytes")), _number(row.get("weight_bytes_predicted"))
    base = None if fp32 is None else _number(fp32.get("weight_bytes"))
    if mine is None:
        return "weight bytes not recorded"
    text = f"Linear weights {mine / 2**20:.1f} MiB"
    if base:
        text += f" vs {base / 2**20:.1f} MiB fp32 ({base / mine:.2f}× smaller)"
    if predicted is not None:
        text += (", = tfimpl.costs exactly" if mine == predicted else
                 f", tfimpl.costs predicts {predicted:.0f} B ({mine - predicted:+.0f} B)")
    return text


def rows(table, df, meta: dict, seed: int = 0) -> list[VerdictRow]:
    """One verdict row per int8 case with a measured fp32 twin (same impl, block, size)."""
    if table is None or table.empty:
        return []
    t = table[(table["precision"] == INT8) & table["ok"] & table["speedup"].notna()]
    short = peak_words(meta)
    out = []
    for _, row in t.sort_values(["block", "impl", "seq_len"]).iterrows():
        full = _twin(df, row, INT8)
        full = row if full is None else full
        fp32 = _twin(df, row, "fp32")
        lo, hi = precisions.speedup_ci(df, row, seed=seed)
        sp = float(row["speedup"])
        verdict = (NOT_ENOUGH if lo is None else HELD if lo > 1 else
                   NOT_HELD if hi < 1 else NOT_ENOUGH)
        err, err32 = _number(row.get("rel_l2_err")), precisions.fp32_error(table, row)
        ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None else ""
        where = f"{precisions.BLOCK_WORDS.get(row['block'], row['block'])}, n = {int(row['seq_len'])}"
        head = (f"int8 ({row['impl']}) ran at {sp:.2f}×{ci} fp32 speed ({where}); "
                f"{_bytes_words(full, fp32)}"
                + (f"; rel. L2 error {err:.1e} vs fp64" if err is not None else "")
                + (f" (fp32: {err32:.1e})" if err32 is not None else ""))
        sentence = (f"{head}. Because: {short}"
                    + (" (torch's kernel: ONNX Runtime runs its own, MLAS)"
                       if row["impl"] == "onnxruntime" else "") + ".")
        out.append(VerdictRow(
            id=f"int8.{row['block']}", kind="precision", claim=CLAIM, block=row["block"],
            metric="speedup", variable=None, impl=row["impl"], precision=INT8, theory=1.0,
            theory_text="> 1× (the int8 matmul peak bounds it)", value=sp, ci_low=lo,
            ci_high=hi, unit="× fp32 speed", fit_range=f"n = {int(row['seq_len'])}",
            verdict=verdict, sentence=sentence,
            extra={"weight_bytes": _number(full.get("weight_bytes")),
                   "weight_bytes_fp32": None if fp32 is None else _number(fp32.get("weight_bytes")),
                   "weight_bytes_predicted": _number(full.get("weight_bytes_predicted")),
                   "rel_l2_err": err, "rel_l2_err_fp32": err32, "summary": head}))
    return out


def runtime_lines(df, seed: int = 0, runtime: str = "onnxruntime",
                  reference: str = "hf-bert") -> list[str]:
    """ONNX Runtime against the torch module it was exported from: speed per precision and size."""
    ok = df[df["ok"] & (df["impl"] == runtime)]
    out = []
    for _, row in ok.sort_values(["block", "precision", "seq_len"]).iterrows():
        ref = _twin(df, row, row["precision"], impl=reference)
        if ref is None:
            continue
        mine = precisions._samples(df, row, row["precision"])
        theirs = precisions._samples(df, ref, row["precision"])
        ratio = float(ref["median_s"]) / float(row["median_s"])
        lo, hi = median_ratio_ci(theirs, mine, 1000, seed, percentiles=(2.5, 97.5))
        out.append(f"- {precisions.BLOCK_WORDS.get(row['block'], row['block'])}, n = "
                   f"{int(row['seq_len'])}, {row['precision']}: {runtime} ran at {ratio:.2f}× "
                   f"[{lo:.2f}, {hi:.2f}] {reference}'s speed ({float(row['median_s']) * 1e3:.1f} "
                   f"vs {float(ref['median_s']) * 1e3:.1f} ms; export and session apart: "
                   f"compile_s {_number(row.get('compile_s')) or float('nan'):.1f} s).")
    return out


def section(table, df, meta: dict, seed: int = 0) -> list[str]:
    """`## int8 (dynamic quantization)`: the rows' sentences and ONNX Runtime vs torch; [] when
    the run has no int8 case."""
    if table is None or not (df["precision"] == INT8).any():
        return []
    lines = ["## int8 (dynamic quantization)", "", because(meta), ""]
    lines += [f"- {r.extra['summary']}." for r in rows(table, df, meta, seed)]
    ort = runtime_lines(df, seed)
    if ort:
        lines += ["", "**ONNX Runtime vs the torch module it was exported from** (FLOPs: "
                      "analytic only, ONNX Runtime counts none; peak memory: the process RSS "
                      "sampler, which reads low once ORT's arena is warm):", ""] + ort
    lines += ["", "Task level (not measured by this run): tests/tfimpl/test_pretrained_int8.py "
                  "compares all-MiniLM-L6-v2 sentence embeddings int8 vs fp32 by cosine, both "
                  "tfimpl's per-token int8 and torch's quantize_dynamic."]
    return lines + [""]
