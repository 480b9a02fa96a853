"""A run folder as a pandas DataFrame: one row per record, plus derived columns.

Derived columns (all computed from the record and meta.json, nothing measured here):

The facts decided at run time come from the record itself (bench.plan put them there), never
from the registry: `backend`, `attn_path`, `attn_materialised`, `bytes_per_element`,
`working_set_bytes` (tfimpl.costs.footprint), `flops_by_component`, `params`. A record written
before those fields existed gets NaN / None for them (its points then fall in the "cache size
unknown" regime rather than being placed by a guess).

    samples_s          the samples behind the statistics (the best pass's, with several
                       timing passes; records.jsonl keeps all of them)
    ok                 status == "ok"
    attention_path     "materialised" (attn_materialised True: the (B, H, T, T) matrix exists),
                       "fused" (False), None when the block has no attention or the path is
                       not one the cost model knows
    llc_bytes          last-level cache from meta.json (cache_bytes.L3, else L2); NaN if unknown
    ws_over_llc        working_set_bytes / llc_bytes
    flops              flops_counted where counted, else flops_analytic; flops_source says which
    gflops             flops / median_s / 1e9 (the record's gflops_per_s when it has one)
    peak_backend       the record's backend (whose matmul peak bounds the case)
    peak_dtype         the matmul dtype: amp-bf16 -> bf16, amp-fp16 -> fp16, tf32 -> fp32 on CPU
    peak_gflops        the machine's matmul peak for (peak_backend, peak_dtype) from meta.json
                       "machine_peak" (bench.machine.peak; "peak" accepted too); NaN when not measured
                       or measured at another thread count or device than the case's
    peak_fraction      gflops / peak_gflops

Tests: tests/analysis/test_claims.py, tests/analysis/test_profile_crossover.py,
tests/analysis/test_report.py.
"""

from __future__ import annotations

import math
from pathlib import Path

from bench.blocks import FUSED, MATERIALISED
from bench.case import CASE_FIELDS
from bench.record import keys_of
from bench.reader import RECORDS_FILE, read_meta, read_records

FACT_COLUMNS = keys_of("plan") + ("attn_materialised",)    # what bench.plan put in the record

PEAK_BACKENDS = ("numpy", "torch")
PEAK_DTYPE = {"amp-bf16": "bf16", "amp-fp16": "fp16"}

NUMERIC_COLUMNS = ("median_s", "iqr_s", "min_s", "mean_s", "std_s", "spread", "flops_analytic",
                   "flops_counted", "gflops_per_s", "peak_bytes", "peak_bytes_predicted",
                   "rss_peak_bytes", "max_abs_err", "max_rel_err", "rel_l2_err",
                   "attn_max_abs_err", "attn_rel_l2_err")


def cache_sizes(meta: dict) -> dict[str, float]:
    """{"L1d", "L2", "L3"} in bytes from meta.json (top level or under "cpu"); missing -> absent."""
    for holder in (meta, meta.get("cpu") if isinstance(meta.get("cpu"), dict) else {}):
        sizes = holder.get("cache_bytes") if isinstance(holder, dict) else None
        if isinstance(sizes, dict):
            return {k: float(v) for k, v in sizes.items()
                    if isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0}
    return {}


def last_level_cache(meta: dict) -> float:
    sizes = cache_sizes(meta)
    for key in ("L3", "L2"):
        if key in sizes:
            return sizes[key]
    return math.nan


def peak_table(meta: dict) -> dict:
    """meta["machine_peak"] (bench.machine.peak's result, as the runner stores it) or meta["peak"]."""
    for key in ("machine_peak", "peak"):
        if isinstance(meta.get(key), dict):
            return meta[key]
    return {}


def peak_values(meta: dict) -> dict[tuple[str, str], float]:
    """{(backend, dtype): GFLOP/s} of the measured entries (bench.machine.peak's numpy / torch tables)."""
    out = {}
    for backend, table in peak_table(meta).items():
        if backend not in PEAK_BACKENDS or not isinstance(table, dict):
            continue
        for dtype, value in table.items():
            if isinstance(value, dict):            # {"gflops": ...} style entry
                value = value.get("gflops", value.get("gflops_per_s"))
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
                out[(backend, dtype)] = float(value)
    return out


def peak_dtype(precision: str, device: str = "cpu") -> str:
    """The matmul dtype whose peak bounds a case: autocast runs its matmuls in the low dtype
    (amp-bf16 -> bf16, amp-fp16 -> fp16); tf32 is an fp32 matmul off CUDA."""
    dtype = PEAK_DTYPE.get(precision, precision)
    if dtype == "tf32" and not str(device).startswith("cuda"):
        return "fp32"
    return dtype


def peak_mismatch(meta: dict, threads=None, device=None) -> str | None:
    """Why the machine peak cannot bound a case with these threads / device (None if it can).

    bench.machine.peak measures at one thread count (the run's default) on one device; comparing a
    1-thread case with a 2-thread peak would be apples and oranges.
    """
    peak = peak_table(meta)
    p_threads, p_device = peak.get("threads"), peak.get("device")
    if threads is not None and p_threads is not None and int(p_threads) != int(threads):
        return f"peak measured with {int(p_threads)} thread(s), case runs {int(threads)}"
    if device is not None and p_device is not None and \
            str(device).split(":")[0] != str(p_device).split(":")[0]:
        return f"peak measured on {p_device}, case runs on {device}"
    return None


def machine_peak(meta: dict, backend: str, precision: str, threads=None,
                 device: str | None = None) -> float:
    """The matmul peak (GFLOP/s) that bounds a case: peak_values(meta)[(backend, peak_dtype)].

    NaN when not measured, or when the peak's thread count or device differs from the case's
    (peak_mismatch): no "% of peak" then, rather than a comparison of unlike things.
    """
    if peak_mismatch(meta, threads, device) is not None:
        return math.nan
    return peak_values(meta).get((backend, peak_dtype(precision, device or "cpu")), math.nan)


def attention_path(materialised) -> str | None:
    """The record's attn_materialised as the theory's vocabulary (bench.blocks)."""
    if materialised is True:
        return MATERIALISED
    if materialised is False:
        return FUSED
    return None


def _number(value) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return math.nan


def records_frame(records: list[dict], meta: dict | None = None):
    """DataFrame of the records with the derived columns above (empty frame for no records)."""
    import numpy as np
    import pandas as pd

    meta = meta or {}
    df = pd.DataFrame(records)
    for name in CASE_FIELDS + ("case_id", "status", "samples_s") + NUMERIC_COLUMNS:
        if name not in df.columns:
            df[name] = None
    for name in NUMERIC_COLUMNS:
        df[name] = pd.to_numeric(df[name], errors="coerce").astype(float)
    df["samples_s"] = [_estimate_samples(r) for r in df.to_dict("records")]
    df["status"] = df["status"].fillna("failed: no status").astype(str)
    df["ok"] = df["status"] == "ok"
    for name in FACT_COLUMNS:
        if name not in df.columns:
            df[name] = None
    df["bytes_per_element"] = [_number(v) for v in df["bytes_per_element"]]
    df["working_set_bytes"] = [_number(v) for v in df["working_set_bytes"]]
    df["attention_path"] = [attention_path(m) for m in df["attn_materialised"]]
    llc = last_level_cache(meta)
    df["llc_bytes"] = llc
    df["ws_over_llc"] = df["working_set_bytes"] / llc
    counted = df["flops_counted"].notna() & (df["flops_counted"] > 0)
    df["flops"] = df["flops_counted"].where(counted, df["flops_analytic"])
    df["flops_source"] = np.where(counted, "counted",
                                  np.where(df["flops_analytic"].notna(), "analytic", None))
    recomputed = df["flops"] / df["median_s"] / 1e9
    df["gflops"] = df["gflops_per_s"].where(df["gflops_per_s"].notna(), recomputed)
    df["peak_backend"] = [b if isinstance(b, str) else None for b in df["backend"]]
    df["peak_dtype"] = [peak_dtype(str(p), str(d)) for p, d in zip(df["precision"],
                                                                   df["device"])]
    df["peak_gflops"] = [
        machine_peak(meta, b, str(p), None if _missing(t) else t, None if _missing(d) else str(d))
        for b, p, t, d in zip(df["peak_backend"], df["precision"], df["threads"], df["device"])]
    df["peak_fraction"] = df["gflops"] / df["peak_gflops"]
    return df


def _estimate_samples(record: dict):
    """The samples behind the record's statistics: with several timing passes (bench.run.passes)
    those of its best pass, so a bootstrap over them matches median_s; all of them otherwise
    (records.jsonl keeps every pass)."""
    samples, passes, best = (record.get("samples_s"), record.get("sample_pass"),
                             record.get("best_pass"))
    if not isinstance(samples, list) or not isinstance(passes, list) or _missing(best):
        return samples
    return [x for x, p in zip(samples, passes) if p == best]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def load_run(run_dir: str | Path):
    """(frame, meta) of a run folder; raises FileNotFoundError naming what is missing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    if not (run_dir / RECORDS_FILE).exists():
        raise FileNotFoundError(f"{run_dir} has no {RECORDS_FILE}: not a tfbench run folder")
    meta = read_meta(run_dir)
    return records_frame(read_records(run_dir), meta), meta
