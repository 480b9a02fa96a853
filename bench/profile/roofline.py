"""Each step against the machine's two ceilings (the roofline), and a verdict per step.

For a step with analytic FLOPs F and minimum bytes Q (tfimpl.costs) measured at t seconds:

    achieved    = F / t  (GFLOP/s)         traffic = Q / t  (GB/s)
    intensity I = F / Q  (FLOP per byte)   ridge   = P / W   (P matmul peak, W triad bandwidth)
    attainable  = min(P, I·W)              efficiency = achieved / attainable

The verdict rule (`verdict`):
    overhead-bound  efficiency < OVERHEAD_FRACTION (10 %): neither ceiling explains the time
                    (dispatch and Python between small kernels, scalar loops, copies the
                    minimum-bytes model does not count); the step is far under its roof.
    memory-bound    otherwise, when I < ridge: the sloped roof I·W is the lower one.
    compute-bound   otherwise (I >= ridge): the flat roof P is the lower one.

P is bench.machine.peak's best square-matmul rate for the backend and the precision's matmul dtype, so
element-wise steps are held to the matmul peak (a vector FMA rate would be about the same on
AVX-512 cores, but is not measured). W is STREAM triad on arrays past the last-level cache: a
step whose data fit in the cache can exceed it (traffic > 100 % of W), which the table shows as
it is rather than clipping.

Tests: tests/profile/test_profile.py.
"""

from __future__ import annotations

import math

OVERHEAD_FRACTION = 0.10
PEAK_DTYPE = {"fp64": "fp64", "fp32": "fp32", "tf32": "tf32", "bf16": "bf16", "fp16": "fp16",
              "amp-bf16": "bf16", "amp-fp16": "fp16"}
RULE = ("overhead-bound if achieved GFLOP/s < 10% of the attainable min(peak, I x bandwidth); "
        "else memory-bound if the intensity I (analytic FLOPs / minimum bytes) is below the ridge "
        "point (peak / bandwidth), else compute-bound")


def ceilings(peak: dict | None, backend: str, precision: str, device: str = "cpu") -> dict:
    """{"peak_gflops", "bandwidth_gbps", "ridge", "peak_dtype", "note"} (NaN where unmeasured)."""
    dtype = PEAK_DTYPE[precision]
    if dtype == "tf32" and device != "cuda":
        dtype = "fp32"
    if not isinstance(peak, dict):
        return {"peak_gflops": math.nan, "bandwidth_gbps": math.nan, "ridge": math.nan,
                "peak_dtype": dtype, "note": "no machine peak (run `python -m bench peak`)"}
    gflops = (peak.get(backend) or {}).get(dtype)
    gbps = ((peak.get("bandwidth") or {}).get(backend) or {}).get("triad")
    gflops = float(gflops) if gflops else math.nan
    gbps = float(gbps) if gbps else math.nan
    return {"peak_gflops": gflops, "bandwidth_gbps": gbps, "ridge": gflops / gbps,
            "peak_dtype": dtype, "threads": peak.get("threads"),
            "source": peak.get("source"), "cache_path": peak.get("cache_path"),
            "load_avg_before": peak.get("load_avg_before"),
            "note": "" if not math.isnan(gflops / gbps) else
            f"{backend} {dtype}: {(peak.get('notes') or {}).get(f'{backend}.{dtype}', 'not measured')}"}


def verdict(intensity: float, gflops: float, peak_gflops: float, bandwidth_gbps: float) -> dict:
    """{"attainable_gflops", "efficiency", "bound_by", "verdict"} by the module's rule."""
    if any(math.isnan(v) for v in (peak_gflops, bandwidth_gbps)):
        return {"attainable_gflops": math.nan, "efficiency": math.nan, "bound_by": None,
                "verdict": "no ceilings"}
    ridge = peak_gflops / bandwidth_gbps
    attainable = min(peak_gflops, intensity * bandwidth_gbps)
    efficiency = gflops / attainable if attainable > 0 else math.nan
    bound_by = "memory" if intensity < ridge else "compute"
    name = "overhead-bound" if efficiency < OVERHEAD_FRACTION else f"{bound_by}-bound"
    return {"attainable_gflops": attainable, "efficiency": efficiency, "bound_by": bound_by,
            "verdict": name}


def step_rows(steps_s: dict, flops: dict, traffic: dict, roof: dict, labels: dict) -> list[dict]:
    """One row per analytic step (in order): measured time beside FLOPs and bytes."""
    total_s = sum(steps_s.get(name, 0.0) for name in flops) or math.nan
    total_flops = sum(flops.values())
    rows = []
    for name, f in flops.items():
        seconds = steps_s.get(name, math.nan)
        moved = traffic[name]["total"]
        intensity = f / moved
        gflops = f / seconds / 1e9 if seconds > 0 else math.nan
        gbps = moved / seconds / 1e9 if seconds > 0 else math.nan
        row = {"step": name, "label": labels.get(name, name), "time_s": seconds,
               "time_share": seconds / total_s, "flops": f, "flop_share": f / total_flops,
               "bytes": moved, "bytes_inputs": traffic[name]["inputs"],
               "bytes_weights": traffic[name]["weights"], "bytes_outputs": traffic[name]["outputs"],
               "intensity": intensity, "gflops": gflops, "gbps": gbps,
               "pct_peak": 100 * gflops / roof["peak_gflops"],
               "pct_bandwidth": 100 * gbps / roof["bandwidth_gbps"]}
        row.update(verdict(intensity, gflops, roof["peak_gflops"], roof["bandwidth_gbps"]))
        rows.append(row)
    return rows


COLOURS = {"memory-bound": "tab:blue", "compute-bound": "tab:red",
           "overhead-bound": "tab:gray", "no ceilings": "black"}


def plot(rows: list[dict], roof: dict, title: str, path) -> str:
    """Log-log roofline: the two ceilings as lines, each step as a labelled point -> path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [r for r in rows if r["gflops"] > 0 and not math.isnan(r["gflops"])]
    xs = [r["intensity"] for r in points] or [1.0]
    peak, bw = roof["peak_gflops"], roof["bandwidth_gbps"]
    x_lo = min(xs + [roof["ridge"]] if not math.isnan(peak / bw) else xs) / 4
    x_hi = max(xs + [roof["ridge"]] if not math.isnan(peak / bw) else xs) * 4
    fig, ax = plt.subplots(figsize=(9, 6), dpi=110)
    if not math.isnan(peak / bw):
        ridge = peak / bw
        ax.plot([x_lo, ridge], [bw * x_lo, peak], color="k", lw=2,
                label=f"bandwidth {bw:.1f} GB/s (triad)")
        ax.plot([ridge, x_hi], [peak, peak], color="k", lw=2, ls="--",
                label=f"matmul peak {peak:.0f} GFLOP/s")
        ax.axvline(ridge, color="k", lw=0.5, ls=":")
        ax.annotate(f"ridge {ridge:.1f} FLOP/B", (ridge, peak), textcoords="offset points",
                    xytext=(4, -14), fontsize=8)
    for i, r in enumerate(sorted(points, key=lambda r: (r["intensity"], r["gflops"]))):
        ax.scatter(r["intensity"], r["gflops"], s=30 + 400 * r["time_share"],
                   color=COLOURS.get(r["verdict"], "black"), alpha=0.75, edgecolor="k", zorder=3)
        ax.annotate(f"{r['step']} {100 * r['time_share']:.0f}%", (r["intensity"], r["gflops"]),
                    textcoords="offset points", xytext=(6, 4 - 9 * (i % 3)), fontsize=8)
    for name, colour in COLOURS.items():
        if any(r["verdict"] == name for r in points):
            ax.scatter([], [], color=colour, edgecolor="k", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_lo, x_hi)
    ax.set_xlabel("arithmetic intensity (analytic FLOPs / minimum bytes), FLOP per byte")
    ax.set_ylabel("achieved GFLOP/s (analytic FLOPs / measured time)")
    ax.set_title(title + "\n(point area ~ share of the time; label: step and its time share)",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return str(path)
