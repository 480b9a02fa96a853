"""A synthetic run folder with known scaling laws, for the analysis tests (no measuring).

The made-up machine: 32 MiB L3, matmul peak 200 GFLOP/s fp32 / 430 bf16. Time per case:

    t = overhead + matmul_flops / rate,  rate = 50 GFLOP/s (fp32) for linear work;
    the attention's T² work runs at 40 GFLOP/s while the (B, H, T, T) matrix fits in the L3
    (or always, on the fused torch-sdpa path, swept to 16384) and at 12 GFLOP/s once it does
    not (a 3.3x jump: the cache cliff), so the asymptotic
    exponent is exactly 2 past the cliff and the local slope spikes across it;
    numpy at T = 1024 is slowed 2.5x (power-of-two aliasing, as measured on the real machine).

Samples carry seeded log-normal noise (3%). Memory: predicted = the live activations, measured
= predicted * 1.01 + 4 KiB. A skipped (fp16: the budget's slow-path status) and a failed case
are included. The made-up CPU has avx512_bf16 (bf16 runs 1.8x fp32 here).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

L3 = 32 * 2 ** 20
SEQ = [128, 256, 384, 512, 768, 1024, 1536, 2048, 2560, 3072, 4096, 6144, 8192]
ATTN_SEQ = [n for n in SEQ if n <= 4096]
LONG_SEQ = SEQ + [10240, 12288, 16384]
WIDTHS = [256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2560, 3072]
BYTES = {"fp32": 4, "bf16": 2, "amp-bf16": 2, "fp16": 2}
FP16_SKIP = ("skipped: estimated 188 s > budget 15 s (analytic gate: 1.2e+10 FLOP at a "
             "0.3 GFLOP/s floor for cpu/fp16)")
SPEED = {"fp32": 1.0, "bf16": 1.8, "amp-bf16": 1.6, "fp16": 0.01}


def flops(block, b, t, d, f):
    quad = 0 if block == "ffn" else 4 * b * t * t * d
    proj = 8 * b * t * d * d
    ffn = 4 * b * t * d * f
    return {"attention": quad, "mha": quad + proj, "ffn": ffn,
            "encoder_layer": quad + proj + ffn}[block], quad


def seconds(impl, block, precision, b, t, d, h, f):
    total, quad = flops(block, b, t, d, f)
    e = BYTES[precision]
    fused = impl == "torch-sdpa"
    attn_rate = 40e9 if (fused or b * h * t * t * e <= L3) else 12e9
    t_s = 2e-4 + (total - quad) / 50e9 + quad / attn_rate
    if impl == "numpy" and t == 1024 and block == "attention":
        t_s *= 2.5
    return t_s / SPEED[precision]


def memory(impl, block, b, t, d, h, f, e):
    if block == "ffn":
        return b * t * (d + f) * e
    attn = 4 * b * t * d * e if impl == "torch-sdpa" else b * h * t * t * e
    return attn + 2 * b * t * d * e


def record(impl, block, precision, t, d, rng, batch=1, status="ok"):
    h, f = d // 64, 4 * d
    rec = {"impl": impl, "block": block, "batch": batch, "seq_len": t, "d_model": d,
           "n_heads": h, "d_ff": f, "layers": 1, "precision": precision, "device": "cpu",
           "threads": 2, "mode": "forward", "activation": "gelu", "norm_first": False,
           "causal": False, "vocab_size": 30522, "seed": 0, "status": status}
    rec["case_id"] = f"{impl}-{block}-{precision}-{t}-{d}"
    rec.update(run_facts(impl, block, precision, batch, t, d, h, f))
    keys = ("samples_s", "n_samples", "median_s", "iqr_s", "min_s", "mean_s", "std_s", "spread",
            "unstable", "flops_analytic", "flops_counted", "flops_match", "gflops_per_s",
            "peak_bytes", "peak_method", "peak_bytes_predicted", "rss_peak_bytes",
            "max_abs_err", "max_rel_err", "rel_l2_err", "attn_max_abs_err")
    rec.update({k: None for k in keys})
    if status != "ok":
        return rec
    base = seconds(impl, block, precision, batch, t, d, h, f)
    samples = base * np.exp(rng.normal(0, 0.03, 7))
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    fl, _ = flops(block, batch, t, d, f)
    e = BYTES[precision]
    pred = memory(impl, block, batch, t, d, h, f, e)
    err = (1e-7 if precision == "fp32" else 4e-3) * np.sqrt(t / 128)
    rec.update(samples_s=samples.tolist(), n_samples=7, median_s=med, iqr_s=q3 - q1,
               min_s=samples.min(), mean_s=samples.mean(), std_s=samples.std(),
               spread=(q3 - q1) / med, unstable=bool((q3 - q1) / med > 0.1),
               flops_analytic=fl, flops_counted=None if impl == "numpy" else fl,
               flops_match=None if impl == "numpy" else True, gflops_per_s=fl / med / 1e9,
               peak_bytes=int(pred * 1.01 + 4096), peak_method="tracemalloc",
               peak_bytes_predicted=int(pred), rss_peak_bytes=int(pred * 1.2 + 2 ** 20),
               max_abs_err=err * 10, max_rel_err=err * 100, rel_l2_err=err,
               attn_max_abs_err=err if block == "attention" else None)
    return rec


def run_facts(impl, block, precision, b, t, d, h, f) -> dict:
    """What bench.plan records at run time about the case (its declarations' facts)."""
    from tfimpl.config import ModelConfig
    from tfimpl.costs import footprint

    fused = impl == "torch-sdpa"
    materialised = None if block == "ffn" else not fused
    e = BYTES[precision]
    cfg = ModelConfig(d_model=d, n_heads=h, d_ff=f, n_layers=1)
    return {"backend": "numpy" if impl == "numpy" else "torch",
            "attn_path": None if block == "ffn" else ("sdpa" if fused else "explicit"),
            "attn_materialised": materialised, "bytes_per_element": e,
            "storage_bytes": 4 if precision.startswith("amp") else e,
            "working_set_bytes": footprint.working_set_bytes(block, cfg, b, t, e, materialised),
            "flops_by_component": ({} if block == "ffn" else
                                   {"attn_scores": 2 * b * t * t * d,
                                    "attn_weighted_sum": 2 * b * t * t * d})}


def make_records(seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    recs = []
    for impl in ("numpy", "torch", "torch-sdpa"):
        precisions = ("fp32",) if impl == "numpy" else ("fp32", "bf16")
        for precision in precisions:
            for block in ("attention", "mha", "ffn", "encoder_layer"):
                fused_attention = impl == "torch-sdpa" and block == "attention"
                lengths = LONG_SEQ if block == "ffn" or fused_attention else ATTN_SEQ
                if impl == "torch-sdpa" and block == "ffn":
                    continue
                for t in lengths:
                    recs.append(record(impl, block, precision, t, 768, rng))
    for d in WIDTHS:                               # the model-width sweep at T = 512
        if d != 768:
            recs.append(record("torch", "ffn", "fp32", 512, d, rng))
    recs.append(record("torch", "attention", "fp16", 512, 768, rng, status=FP16_SKIP))
    recs.append(record("numpy", "ffn", "fp32", 16384, 768, rng, status="failed: MemoryError"))
    return recs


META = {"cpu": {"model": "Synthetic CPU @ 2.0GHz", "logical_cores": 2, "physical_cores": 2},
        "cache_bytes": {"L1d": 32768, "L2": 2 ** 20, "L3": L3},
        "hostname": "synthetic", "memory": {"total_bytes": 24 * 2 ** 30},
        "versions": {"python": "3.11.0", "numpy": "2.0", "torch": "2.13.0", "scipy": "1.14"},
        "numpy_blas": {"blas": {"name": "scipy-openblas", "version": "0.3.31"}},
        "threads": {"torch_num_threads": 2},
        "cpu_flags": ["avx2", "fma", "avx512f", "avx512_bf16", "avx512_vnni"],
        "git": {"commit": "0123456789abcdef", "dirty": False},
        "config_name": "synthetic", "description": "synthetic records with known exponents",
        "machine_peak": {"numpy": {"fp32": 200.0, "fp64": 106.0},
                         "torch": {"fp32": 200.0, "bf16": 430.0, "fp64": 106.0}}}


def make_run(run_dir, seed: int = 0, records: list[dict] | None = None,
             meta: dict | None = None) -> Path:
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    recs = make_records(seed) if records is None else records
    (run_dir / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (run_dir / "meta.json").write_text(json.dumps(META if meta is None else meta, indent=2))
    (run_dir / "config.yaml").write_text("name: synthetic\ndescription: synthetic records "
                                         "with known exponents (tests/data/synthetic_run.py)\n")
    return run_dir
