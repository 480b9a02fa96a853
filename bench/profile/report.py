"""A profile's files: profile.csv (one row per step), profile.json (everything), profile.md
(the table and the claims, with their numbers), roofline.png, memory_lines.txt (NumPy).

The claims (`claims`) are sentences computed from the measured rows and from tfimpl.costs:
the profile's overhead against the unprofiled block, which steps are memory-, compute- or
overhead-bound (the rule in bench.profile.roofline), which take a larger share of the time
than of the FLOPs, the attention T² steps' share, and how intensity and FLOP share move with n.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

from bench.profile import roofline
from tfimpl.config import PRESETS
from tfimpl.costs import component_bytes, component_flops

CSV_COLUMNS = ("step", "label", "time_s", "time_share", "flops", "flop_share", "bytes",
               "bytes_inputs", "bytes_weights", "bytes_outputs", "intensity", "gflops", "gbps",
               "pct_peak", "pct_bandwidth", "attainable_gflops", "efficiency", "bound_by",
               "verdict", "allocated_bytes", "net_bytes", "rss_growth_bytes")
T2_STEPS = ("scores", "softmax", "weighted_sum", "attention_fused")
SHARE_RATIO = 1.5          # "costs more than its FLOPs predict": time share >= 1.5x FLOP share


def _pct(fraction: float) -> str:
    """A share as a percentage with 2 significant digits below 10 % (0.031 %, 4.2 %, 37 %)."""
    value = 100 * fraction
    return f"{value:.2g}%" if abs(value) < 10 else f"{value:.0f}%"


def _names(rows, verdict):
    return [r for r in rows if r["verdict"] == verdict]


def _fmt_list(rows, what) -> str:
    return "; ".join(f"{r['step']} ({what(r)})" for r in rows) or "none"


def scaling_lines(spec: dict, bytes_per_element: int, factors=(0.25, 1, 4)) -> list[str]:
    """How the analytic picture moves with n: intensity and FLOP share at n/4, n, 4n."""
    import dataclasses


    cfg = dataclasses.replace(PRESETS[spec["preset"]], max_position=1 << 20)
    lengths = sorted({max(1, int(spec["seq_len"] * f)) for f in factors})
    s = bytes_per_element
    out = []
    for n in lengths:
        f = component_flops(spec["block"], cfg, spec["batch"], n, spec["attn_impl"])
        q = component_bytes(spec["block"], cfg, spec["batch"], n, s, spec["attn_impl"])
        t2 = sum(v for k, v in f.items() if k in T2_STEPS) / sum(f.values())
        shown = [k for k in ("scores", "softmax", "attention_fused", "qkv_proj", "ffn1") if k in f]
        out.append(f"n = {n}: T² steps {100 * t2:.0f}% of the FLOPs; intensity " +
                   ", ".join(f"{k} {f[k] / q[k]['total']:.1f}" for k in shown) + " FLOP/B")
    return out


def claims(result: dict) -> list[str]:
    rows, roof, spec = result["rows"], result["ceilings"], result["spec"]
    whole = result["whole"]["median_s"]
    paired = result["whole"]["paired_median_s"]
    lines = [f"The steps sum to {1e3 * result['steps_sum_s']:.1f} ms per forward against the "
             f"unprofiled whole-block median of {1e3 * paired:.1f} ms (paired calls, one before "
             f"each profiled forward): {100 * result['overhead']:+.1f}% "
             f"({'within' if result['within_tolerance'] else 'OUTSIDE'} the ±"
             f"{100 * result['tolerance']:.0f}% the profile must hold); against bench.trackers.timer's "
             f"median of {1e3 * whole:.1f} ms, taken before the profile: "
             f"{100 * result['overhead_vs_timer']:+.1f}%."]
    ridge = roof["ridge"]
    lines.append(f"Memory-bound (intensity below the ridge {ridge:.1f} FLOP/B, at least "
                 f"{100 * result['overhead_fraction']:.0f}% of the bandwidth roof): " + _fmt_list(
                     _names(rows, "memory-bound"),
                     lambda r: f"I = {r['intensity']:.2f}, {r['gbps']:.1f} GB/s = "
                               f"{r['pct_bandwidth']:.0f}% of triad"))
    lines.append("Compute-bound (intensity at or above the ridge): " + _fmt_list(
        _names(rows, "compute-bound"),
        lambda r: f"I = {r['intensity']:.0f}, {r['gflops']:.0f} GFLOP/s = {r['pct_peak']:.0f}% of peak"))
    over = _names(rows, "overhead-bound")
    if over:
        lines.append("Overhead-bound (under 10% of their roof): " + _fmt_list(
            over, lambda r: f"I = {r['intensity']:.2f}, {r['gflops']:.1f} GFLOP/s, "
                            f"{100 * r['efficiency']:.1f}% of attainable {r['attainable_gflops']:.0f}"))
    heavy = [r for r in rows if r["flop_share"] > 0 and r["time_share"] >= SHARE_RATIO * r["flop_share"]]
    lines.append("Taking at least 1.5x more of the time than of the FLOPs: " + _fmt_list(
        heavy, lambda r: f"{_pct(r['time_share'])} of the time, {_pct(r['flop_share'])} of the FLOPs"))
    t2 = [r for r in rows if r["step"] in T2_STEPS]
    if t2:
        time_t2 = sum(r["time_share"] for r in t2)
        flop_t2 = sum(r["flop_share"] for r in t2)
        soft = next((r for r in t2 if r["step"] == "softmax"), None)
        lines.append(f"Attention's T² steps ({', '.join(r['step'] for r in t2)}) take "
                     f"{_pct(time_t2)} of the time for {_pct(flop_t2)} of the FLOPs"
                     + (f"; the softmax alone {_pct(soft['time_share'])} of the time for "
                        f"{_pct(soft['flop_share'])} of the FLOPs" if soft else "") + ".")
    if spec["block"] != "ffn":
        lines.append("With n (analytic, tfimpl.costs): " + "; ".join(scaling_lines(spec, result["bytes_per_element"])) +
                     ". The scores' and softmax's intensity does not grow with n (FLOPs and "
                     "bytes both go as n²) while their share of the work does.")
    return lines


def _cell(value, fmt):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def _table(rows: list[dict]) -> list[str]:
    head = ("| step | time ms | time % | FLOP % | GFLOP | MB | FLOP/B | GFLOP/s | % peak | GB/s "
            "| % BW | verdict | memory MiB |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        mem = r.get("allocated_bytes", r.get("rss_growth_bytes"))
        lines.append("| " + " | ".join([
            r["label"], _cell(1e3 * r["time_s"], ".2f"), _cell(100 * r["time_share"], ".1f"),
            _cell(100 * r["flop_share"], ".1f"), _cell(r["flops"] / 1e9, ".3f"),
            _cell(r["bytes"] / 1e6, ".1f"), _cell(r["intensity"], ".2f"), _cell(r["gflops"], ".1f"),
            _cell(r["pct_peak"], ".0f"), _cell(r["gbps"], ".1f"), _cell(r["pct_bandwidth"], ".0f"),
            r["verdict"], _cell(None if mem is None else mem / 2 ** 20, ".1f")]) + " |")
    return lines


def markdown(result: dict) -> str:
    roof, load = result["ceilings"], result["load_avg"]
    busy = load["before"] is not None and load["before"] >= 0.5
    mem_note = ("memory MiB: allocated inside the step (torch profiler memory events), summed over "
                "the layers" if result["spec"]["backend"] == "torch" else
                "memory MiB: RSS growth over the step (memory-profiler, one thread); line by "
                "line in memory_lines.txt")
    lines = [f"# Profile: {result['label']}", "",
             f"Ceilings: matmul peak {roof['peak_gflops']:.1f} GFLOP/s ({roof['peak_dtype']}), "
             f"bandwidth {roof['bandwidth_gbps']:.1f} GB/s (STREAM triad), ridge "
             f"{roof['ridge']:.2f} FLOP/B ({roof.get('source') or 'none'}: bench.machine.peak). "
             + (roof.get("note") or ""),
             f"Whole block, unprofiled: median {1e3 * result['whole']['median_s']:.2f} ms over "
             f"{result['whole']['n_samples']} calls (IQR {1e3 * result['whole']['iqr_s']:.2f} ms, "
             f"bench.trackers.timer), {1e3 * result['whole']['paired_median_s']:.2f} ms paired with the "
             f"profiled forwards; "
             f"steps' sum {1e3 * result['steps_sum_s']:.2f} ms ({100 * result['overhead']:+.1f}%); "
             f"profiled forward {1e3 * result['profiled_forward_s']:.2f} ms. Step times: "
             f"{result['time_source']}, median of {result['spec']['repeats']} forwards; FLOPs and "
             f"bytes summed over {result['n_layers']} layer(s).",
             f"Load average {load['before']:.2f} before, {load['after']:.2f} after, on "
             f"{load['cpus']} CPUs" + (": other work shared the machine, so the times are "
                                      "indicative only." if busy else "."), ""]
    lines += _table(result["rows"]) + ["", mem_note, "", "## Claims", ""]
    lines += [f"- {c}" for c in claims(result)]
    lines += ["", "## Verdict rule", "", f"{result['rule']}.", "", "## Files", ""]
    lines += ["- profile.csv, profile.json: the rows above and everything measured",
              "- roofline.png: the steps against the two ceilings",
              f"- trace: {result['trace'] or 'none'} ({result['trace_note']})"]
    if result.get("memory_lines"):
        lines.append("- memory_lines.txt: memory-profiler's line-by-line RSS of tfimpl.numpy's "
                     "layer code and of the step-wise forward")
    if result.get("kernels"):
        lines += ["", "## CUDA kernels (per forward, longest first)", "",
                  "| kernel | calls | ms |", "|---|---|---|"]
        lines += [f"| {k['name'][:80]} | {k['calls']:.0f} | {1e3 * k['device_s']:.3f} |"
                  for k in result["kernels"][:20]]
    return "\n".join(lines) + "\n"


def _plain(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def write(result: dict, out_dir) -> dict[str, str]:
    """profile.csv, profile.json, profile.md, roofline.png (+ memory_lines.txt) -> {name: path}."""
    out = Path(out_dir)
    paths = {name: out / name for name in ("profile.csv", "profile.json", "profile.md",
                                           "roofline.png")}
    with open(paths["profile.csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in result["rows"]:
            writer.writerow({k: row.get(k) for k in CSV_COLUMNS})
    roofline.plot(result["rows"], result["ceilings"], result["label"], paths["roofline.png"])
    if result.get("memory_lines"):
        paths["memory_lines.txt"] = out / "memory_lines.txt"
        paths["memory_lines.txt"].write_text(result["memory_lines"])
    result = {**result, "claims": claims(result)}
    paths["profile.json"].write_text(json.dumps(_plain(result), indent=1, default=str))
    paths["profile.md"].write_text(markdown(result))
    return {name: str(path) for name, path in paths.items()}
