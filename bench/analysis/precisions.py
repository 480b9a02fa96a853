"""Every precision against fp32 for the same case: speed, memory, error, and the measured matmul peak.

    speedup    = median_s(fp32 twin) / median_s          (> 1: faster than fp32)
    mem_ratio  = peak_bytes / peak_bytes(fp32 twin)
    errors     = the record's own, each against the fp64 reference (bench.trackers.accuracy)

The fp32 twin is the record with every case field equal except precision (and seed). Cases
that were not measured (skipped or failed) stay in the table with their status: a case the
budget skipped ("skipped: estimated N s > budget M s (...)") or that timed out is a slow path,
which is a finding about that precision on this machine, not a gap.

What explains bf16 / fp16 speed is measured, not read from the CPU flags: the run's own matmul
peak (meta.json machine_peak, bench.machine.peak) gives the library's bf16/fp32 (and fp16/fp32)
matmul rate ratio on this machine, and the sentences quote it. The ISA flags (avx512_bf16,
AMX-BF16, avx512_fp16, AMX-FP16) come after it as context: a CPU can list avx512_bf16 while the
library's bf16 kernels still run at half fp32's rate (issue #23). Only where the peak was not
measured do the flags speak alone, and then as an expectation, saying the peak was not measured.

Tests: tests/analysis/test_report.py, tests/analysis/test_verdicts.py,
tests/analysis/test_precision_sentences.py.
"""

from __future__ import annotations

import math

from bench.analysis.grouping import group_keys
from bench.analysis.fits import median_ratio_ci
from bench.analysis.frame import peak_mismatch, peak_table, peak_values

BASELINE = "fp32"
ORDER = ("fp64", "fp32", "tf32", "bf16", "amp-bf16", "fp16", "amp-fp16")
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_bf16",
             "amx_tile", "amx_fp16")
BF16_NATIVE = ("avx512_bf16", "amx_bf16")
FP16_NATIVE = ("avx512_fp16", "amx_fp16")
VALUE_COLUMNS = ("median_s", "peak_bytes", "max_abs_err", "max_rel_err", "rel_l2_err",
                 "attn_max_abs_err", "attn_rel_l2_err")
BLOCK_WORDS = {"attention": "attention", "mha": "multi-head attention", "ffn": "feed-forward",
               "encoder_layer": "encoder layer", "encoder": "encoder", "model": "model"}


def precision_rank(name: str) -> int:
    return ORDER.index(name) if name in ORDER else len(ORDER)


def is_slow_path(status: str) -> bool:
    """A budget skip or a timeout: the precision is too slow here to be measured."""
    return status.startswith("skipped: estimated") or "timeout" in status


def precision_table(df):
    """One row per case in every group that has at least two precisions (any status).

    Columns: the case fields, status, slow_path, VALUE_COLUMNS, median_s_fp32, peak_bytes_fp32,
    speedup and mem_ratio (NaN without a measured fp32 twin). None when no group compares.
    """
    if df.empty:
        return None
    keys = group_keys(df.columns, exclude=("precision",))
    cols = [c for c in VALUE_COLUMNS if c in df.columns]
    frame = df.assign(_key=[tuple(str(v) for v in row) for row in df[keys].itertuples(
        index=False)])
    n_prec = frame.groupby("_key")["precision"].nunique()
    frame = frame[frame["_key"].map(n_prec) >= 2]
    if frame.empty:
        return None
    base = frame[frame["ok"] & (frame["precision"] == BASELINE)]
    base = base.drop_duplicates("_key").set_index("_key")
    out = frame[keys + ["precision", "status", "ok", "_key"] + cols].copy()
    out["median_s_fp32"] = out["_key"].map(base["median_s"])
    out["peak_bytes_fp32"] = out["_key"].map(base["peak_bytes"])
    out["speedup"] = out["median_s_fp32"] / out["median_s"]
    out["mem_ratio"] = out["peak_bytes"] / out["peak_bytes_fp32"]
    out["slow_path"] = [not ok and is_slow_path(s) for ok, s in zip(out["ok"], out["status"])]
    out["_rank"] = [precision_rank(p) for p in out["precision"]]
    out = out.sort_values(["block", "impl", "mode", "d_model", "seq_len", "_rank"])
    return out.drop(columns=["_key", "_rank"]).reset_index(drop=True)


def _span(values, fmt: str) -> str:
    lo, hi = min(values), max(values)
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else \
        f"{fmt.format(lo)}–{fmt.format(hi)}"


def _direction(speedup: float) -> str:
    return "slower" if speedup < 0.95 else "faster" if speedup > 1.05 else "about the same"


def _speeds(g) -> str:
    """'0.29× fp32 speed with torch and 0.38× with torch-sdpa (slower)'; directions per impl
    when they differ."""
    sp, impls = g["speedup"].tolist(), g["impl"].tolist()
    dirs = [_direction(v) for v in sp]
    same = len(set(dirs)) == 1
    items = [f"{v:.2f}×" + (" fp32 speed" if i == 0 else "") + f" with {impl}"
             + ("" if same else f" ({d})") for i, (v, impl, d) in enumerate(zip(sp, impls, dirs))]
    text = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return text + (f" ({dirs[0]})" if same else "")


def block_sentence(block: str, rows) -> str | None:
    """One plain sentence: each precision vs fp32 at the block's largest compared case.

    E.g. "Encoder layer at T=512 (d=768): bf16 ran at 0.29× fp32 speed (slower; torch) with
    rel. L2 error 4.8e-03." Slow-path skips of the block are named after it.
    """
    measured = rows[rows["ok"] & rows["speedup"].notna() & (rows["precision"] != BASELINE)]
    parts = []
    where = ""
    if not measured.empty:
        top = measured.sort_values(["seq_len", "d_model"]).iloc[-1]
        at = measured[(measured["seq_len"] == top["seq_len"])
                      & (measured["d_model"] == top["d_model"])]
        where = f" at T={top['seq_len']} (d={top['d_model']})"
        for prec in sorted(set(at["precision"]), key=precision_rank):
            g = at[at["precision"] == prec].sort_values("impl")
            err = g["rel_l2_err"].dropna().tolist()
            parts.append(f"{prec} ran at {_speeds(g)}"
                         + (f", rel. L2 error {_span(err, '{:.1e}')}" if err else ""))
    slow = rows[rows["slow_path"]]
    for prec in sorted(set(slow["precision"]), key=precision_rank):
        s = slow[slow["precision"] == prec]
        parts.append(f"{prec} was not measured in {len(s)} case(s): a slow path "
                     f"(\"{s['status'].iloc[0]}\")")
    if not parts:
        return None
    name = BLOCK_WORDS.get(block, block)
    return f"{name[0].upper()}{name[1:]}{where}: " + "; ".join(parts) + "."


def geometric_mean(values) -> float:
    values = [v for v in values if v > 0 and math.isfinite(v)]
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else math.nan


def peak_ratio(meta: dict, dtype: str, backend: str = "torch"):
    """(dtype GFLOP/s, fp32 GFLOP/s) of the run's matmul peak (meta.json machine_peak), None
    when either was not measured."""
    peaks = peak_values(meta)
    low, base = peaks.get((backend, dtype)), peaks.get((backend, BASELINE))
    return (low, base) if low and base else None


def peak_ratio_words(meta: dict, dtype: str, backend: str = "torch", threads=None,
                     device=None) -> str | None:
    """'bf16 matmul ran at 0.51× fp32 here (slower; torch, 168 vs 327 GFLOP/s, this run's peak
    measurement)'; None without both peaks."""
    pair = peak_ratio(meta, dtype, backend)
    if pair is None:
        return None
    low, base = pair
    cached = peak_table(meta).get("source") == "cache"
    source = "this machine's peak measurement, cached" if cached else "this run's peak measurement"
    mismatch = peak_mismatch(meta, threads, device)
    return (f"{dtype} matmul ran at {low / base:.2f}× fp32 here ({_direction(low / base)}; "
            f"{backend}, {low:.0f} vs {base:.0f} GFLOP/s, {source}"
            + (f"; {mismatch}" if mismatch else "") + ")")


def bf16_isa_words(flags, ratio: float | None = None) -> str:
    """The CPU's bf16 flags as context for the measured bf16/fp32 matmul peak ratio; with no
    ratio (peak not measured), what the flags lead one to expect, said as an expectation."""
    flags = set(flags or ())
    amx, avx = "amx_bf16" in flags, "avx512_bf16" in flags
    if amx or avx:
        verb = "lists" if ratio is not None and ratio <= 1.05 else "has"   # lists, unused
        has = (f"the CPU {verb} AMX-BF16" + (" and avx512_bf16" if avx else "") if amx else
               f"the CPU {verb} avx512_bf16 but no AMX")
        how = ("AMX tiles, several times fp32's rate" if amx else
               "AVX512-BF16 dot products, twice the elements per instruction of fp32 FMAs")
        if ratio is None:
            return (f"{has}: bf16 matmuls can run natively ({how}), so bf16 is expected to beat "
                    f"fp32 where matmuls dominate (an expectation from the flags, not measured)")
        if ratio > 1.05:
            return f"{has}: the library's bf16 kernels use it here ({how})"
        return (f"{has}: the library's bf16 kernels do not use it here"
                + ("" if ratio < 0.95 else " (no gain over fp32)"))
    has = "the CPU has neither avx512_bf16 nor AMX-BF16"
    if ratio is None:
        return (f"{has}: bf16 matmuls convert to fp32 and back, so bf16 is expected slower than "
                f"fp32 (an expectation from the flags, not measured)")
    if ratio < 0.95:
        return f"{has}: its bf16 matmuls convert to fp32 and back"
    return f"{has}, yet the library's bf16 matmul kept pace with fp32 here"


def fp16_isa_words(flags, ratio: float | None = None) -> str:
    """As bf16_isa_words, for fp16 (avx512_fp16 / AMX-FP16)."""
    flags = set(flags or ())
    native = [f for f in FP16_NATIVE if f in flags]
    has = (f"the CPU has {' and '.join(native)}" if native else
           "the CPU has neither avx512_fp16 nor AMX-FP16")
    if ratio is None:
        return has + (": fp16 matmuls can run natively (an expectation from the flags, "
                      "not measured)" if native else
                      ": fp16 matmuls have no CPU kernel, so they are expected to be emulated, "
                      "orders of magnitude slower than fp32 (an expectation from the flags, "
                      "not measured)")
    if native:
        return has + (": the library's fp16 kernels use it here" if ratio > 1.05 else
                      ": the library's fp16 kernels do not use it here")
    return has + (": its fp16 matmuls are emulated" if ratio < 0.95 else
                  ", yet the library's fp16 matmul kept pace with fp32 here")


ISA_WORDS = {"bf16": bf16_isa_words, "fp16": fp16_isa_words}


def _not_measured(meta: dict, dtype: str, backend: str) -> str:
    note = (peak_table(meta).get("notes") or {}).get(f"{backend}.{dtype}")
    # the note is bench.machine.peak's fixed reason for not running it, not a measurement here
    return (f"this run did not measure the {dtype} matmul peak ({backend}"
            + ("; not run, see meta.json machine_peak.notes" if note else "") + ")")


def dtype_words(meta: dict, dtype: str, backend: str = "torch", threads=None,
                device=None) -> str:
    """The measured dtype/fp32 matmul peak ratio, then the CPU flags as context; without the
    peak, the flags' expectation and that the peak was not measured."""
    pair = peak_ratio(meta, dtype, backend)
    ratio = pair[0] / pair[1] if pair else None
    flags = meta.get("cpu_flags")
    context = ("the CPU's instruction-set flags are not in meta.json" if flags is None else
               ISA_WORDS[dtype](flags, ratio))
    if pair is None:
        return f"{_not_measured(meta, dtype, backend)}; {context}"
    return f"{peak_ratio_words(meta, dtype, backend, threads, device)}; {context}"


def _case_words(low) -> str:
    ok = low[low["ok"] & low["speedup"].notna()]
    if not len(ok):
        return ""
    top = ok.sort_values(["seq_len", "d_model"]).groupby(
        ["block", "impl", "precision", "mode"]).tail(1)
    sp = top["speedup"].tolist()
    names = " / ".join(sorted(set(top["precision"]), key=precision_rank))
    return (f"; the {names} cases ran at {_span(sp, '{:.2f}')}× fp32 at their largest size "
            f"(geometric mean {geometric_mean(sp):.2f}×; a block that is not matmul-bound need "
            f"not follow the matmul peak)")


def _one(values):
    values = {str(v) for v in values if v == v and v is not None}
    return values.pop() if len(values) == 1 else None


def isa_lines(meta: dict, table) -> list[str]:
    """The measured bf16 / fp16 matmul peak against fp32 (meta.json machine_peak, torch), with the
    CPU's ISA flags as context, then the cases. Only for CPU cases in low precision; [] when the
    table has none."""
    if table is None:
        return []
    cpu = table[table["device"].astype(str) == "cpu"]
    low = cpu[cpu["precision"].isin(("bf16", "amp-bf16", "fp16", "amp-fp16"))]
    if low.empty:
        return []
    flags = meta.get("cpu_flags")
    if flags is None:
        lines = ["The CPU's ISA flags are not in meta.json (`cpu_flags`, recorded by newer "
                 "runs), so the low-precision speed is tied to the measured matmul peak alone."]
    else:
        present = [f for f in ISA_FLAGS if f in flags]
        absent = [f for f in ISA_FLAGS if f not in flags]
        lines = [f"**CPU instruction set** (meta.json cpu_flags, from /proc/cpuinfo): this CPU "
                 f"has {', '.join(present) or 'none of the listed extensions'}"
                 + (f"; it lacks {', '.join(absent)}." if absent else ".")]
    threads = _one(low["threads"]) if "threads" in low.columns else None
    for dtype, precs in (("bf16", ("bf16", "amp-bf16")), ("fp16", ("fp16", "amp-fp16"))):
        part = low[low["precision"].isin(precs)]
        if part.empty:
            continue
        words = dtype_words(meta, dtype, "torch", threads, "cpu")
        lines.append(f"- {dtype}: {words}{_case_words(part)}.")
    return lines


def isa_sentence(meta: dict, backend: str = "torch", threads=None, device=None) -> str:
    """One sentence for the verdict table: the run's measured bf16/fp32 (and fp16/fp32 where
    measured) matmul peak ratio, the CPU flags as context; the flags' expectation, said to be
    one, where the peak was not measured."""
    parts = [dtype_words(meta, "bf16", backend, threads, device)]
    if peak_ratio(meta, "fp16", backend):
        parts.append(dtype_words(meta, "fp16", backend, threads, device))
    text = "; ".join(parts)
    return (text if text.startswith(("bf16", "fp16")) else text[0].upper() + text[1:]) + "."


MATCH_FIELDS = ("impl", "block", "mode", "batch", "seq_len", "d_model", "n_heads", "d_ff",
                "threads", "device", "layers")


def _samples(df, row, precision: str):
    import numpy as np

    m = df["ok"] & (df["precision"] == precision)
    for f in MATCH_FIELDS:
        if f in df.columns and f in row:
            m &= df[f].astype(str) == str(row[f])
    hit = df[m]
    if hit.empty:
        return None
    s = hit["samples_s"].iloc[0]
    return np.asarray(s, float) if isinstance(s, list) and s else \
        np.array([float(hit["median_s"].iloc[0])])


def speedup_ci(df, row, seed: int = 0, n_boot: int = 1000, ci: float = 0.95):
    """(low, high) of fp32 median / this median, percentile bootstrap over both cases' raw
    samples; (None, None) without samples."""
    mine, base = _samples(df, row, row["precision"]), _samples(df, row, BASELINE)
    if mine is None or base is None:
        return None, None
    return median_ratio_ci(base, mine, n_boot, seed,
                           percentiles=(100 * (1 - ci) / 2, 100 * (1 + ci) / 2))


def fp32_error(table, row) -> float | None:
    """The fp32 twin's rel. L2 error vs fp64 (the floor a lower precision is compared with)."""
    m = table["ok"] & (table["precision"] == BASELINE)
    for f in MATCH_FIELDS:
        if f in table.columns and f in row:
            m &= table[f].astype(str) == str(row[f])
    v = table.loc[m, "rel_l2_err"]
    return float(v.iloc[0]) if len(v) and math.isfinite(float(v.iloc[0])) else None


# Peak above this x the prediction is a departure the report names (with its cause).
MEMORY_DEPARTURE = 1.25
AMP_MEMORY_CAUSE = (
    "autocast keeps the fp32 weights and makes a bf16/fp16 copy of each weight at the matmul "
    "that uses it (the largest, d·d_ff elements, lives while its GEMM runs: 4.5 MiB of a "
    "6.6 MiB peak for one 768->3072 Linear at n=256, measured once outside this run), and "
    "runs layer "
    "norm, softmax and the residual adds in fp32 (4 bytes per activation, not 2); the memory "
    "model (tfimpl.costs.predicted_peak_bytes) counts neither, so it under-predicts amp-*")


def memory_departures(df) -> list[dict]:
    """Cases whose measured peak exceeds MEMORY_DEPARTURE x the prediction (amp-* flagged
    with AMP_MEMORY_CAUSE; others without a known cause)."""
    ok = df[df["ok"] & df["peak_bytes"].notna() & df["peak_bytes_predicted"].notna()
            & (df["peak_bytes_predicted"] > 0)]
    ratio = ok["peak_bytes"] / ok["peak_bytes_predicted"]
    out = []
    for (_, r), q in zip(ok[ratio > MEMORY_DEPARTURE].iterrows(), ratio[ratio > MEMORY_DEPARTURE]):
        amp = str(r["precision"]).startswith("amp-")
        out.append({"impl": r["impl"], "block": r["block"], "precision": r["precision"],
                    "seq_len": int(r["seq_len"]), "d_model": int(r["d_model"]),
                    "peak_bytes": float(r["peak_bytes"]),
                    "peak_bytes_predicted": float(r["peak_bytes_predicted"]),
                    "ratio": float(q), "cause": AMP_MEMORY_CAUSE if amp else None})
    return out
