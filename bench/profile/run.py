"""One profile, start to finish: ceilings, the unprofiled whole block, the profiled steps,
memory per step, the roofline rows; `bench.profile.report` writes them out.

Order (each pass apart, so none disturbs another's numbers): the machine ceilings (cached by
bench.machine.peak), the whole block's unprofiled median (tfimpl's own forward), the profiled
step-wise forwards, then the memory pass. All under bench.machine.threads.fixed_threads(threads) with
the case's backend holding the threads (the other pool gets one, as `bench run` does).

Tests: tests/profile/test_profile.py.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench import precision
from bench.profile import memory as step_memory
from bench.profile import roofline, steps_numpy, timing
from bench.profile.spec import ProfileSpec, cast, float64_inputs, float64_params, widths
from bench.machine.threads import fixed_threads
from tfimpl.costs import COMPONENT_LABELS, component_bytes, component_flops

TOLERANCE = 0.15          # the steps' sum must be within +-15 % of the whole block's median


def _load() -> float | None:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else None


def _numpy_passes(spec: ProfileSpec, p: dict, inputs: dict, memory: bool, settings) -> tuple:
    def steps(marks):
        return steps_numpy.block_steps(spec.block, p, inputs, spec.cfg, marks)

    def whole():
        return steps_numpy.block_forward(spec.block, p, inputs, spec.cfg)

    whole_stats = timing.whole_median(whole, settings=settings)
    profiled = timing.profile_numpy(steps, spec.repeats, whole=whole)
    mem = step_memory.numpy_step_memory(steps, whole) if memory else None
    return whole_stats, profiled, mem


def _torch_passes(spec: ProfileSpec, p: dict, inputs: dict, memory: bool, trace_path,
                  settings) -> tuple:
    import torch

    from bench.profile import steps_torch       # imports torch: only for a torch profile

    sync = torch.cuda.synchronize if spec.device == "cuda" else (lambda: None)

    def steps(mark):
        with torch.inference_mode(), precision.context(spec.precision, spec.device):
            return steps_torch.block_steps(spec.block, p, inputs, spec.cfg, spec.attn_impl, mark)

    def whole():
        with torch.inference_mode(), precision.context(spec.precision, spec.device):
            out = steps_torch.block_forward(spec.block, p, inputs, spec.cfg, spec.attn_impl)
        sync()
        return out

    whole_stats = timing.whole_median(whole, spec.device, settings)
    profiled = timing.profile_torch(steps, spec.repeats, spec.device, trace_path, whole=whole)
    mem = {"steps": step_memory.torch_step_memory(steps, spec.device)} if memory else None
    return whole_stats, profiled, mem


def run_profile(spec: ProfileSpec, out_dir: Path, peak: dict | None, memory: bool = True,
                trace: bool = True, whole_settings=None) -> dict:
    """Measure `spec`; returns the result dict bench.profile.report writes (files in out_dir).

    whole_settings: bench.case.Measure for the unprofiled block (default timing.WHOLE_SETTINGS).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    b, t = spec.batch, spec.seq_len
    flops = component_flops(spec.block, spec.cfg, b, t, spec.attn_impl)
    act_bytes, weight_bytes = widths(spec)
    traffic = component_bytes(spec.block, spec.cfg, b, t, act_bytes, spec.attn_impl,
                              weight_bytes_per_element=weight_bytes)
    p = cast(spec, float64_params(spec))
    inputs = cast(spec, float64_inputs(spec))
    settings = whole_settings or timing.WHOLE_SETTINGS
    load_before = _load()
    with fixed_threads(spec.threads, backend=spec.backend):
        if spec.backend == "numpy":
            whole, profiled, mem = _numpy_passes(spec, p, inputs, memory, settings)
        else:
            trace_path = out_dir / "trace.json" if trace else None
            whole, profiled, mem = _torch_passes(spec, p, inputs, memory, trace_path, settings)
    roof = roofline.ceilings(peak, spec.backend, spec.precision, spec.device)
    rows = roofline.step_rows(profiled["steps_s"], flops, traffic, roof, COMPONENT_LABELS)
    for row in rows:
        row.update((mem or {}).get("steps", {}).get(row["step"], {}))
    steps_sum = sum(r["time_s"] for r in rows)
    whole["paired_median_s"] = profiled["whole_paired_s"]
    overhead = steps_sum / whole["paired_median_s"] - 1
    overhead_timer = steps_sum / whole["median_s"] - 1
    return {"spec": spec.to_dict(), "label": spec.label(), "ceilings": roof,
            "rule": roofline.RULE, "overhead_fraction": roofline.OVERHEAD_FRACTION,
            "whole": whole, "steps_sum_s": steps_sum, "profiled_forward_s": profiled["wall_s"],
            "overhead": overhead, "overhead_vs_timer": overhead_timer,
            "within_tolerance": abs(overhead) <= TOLERANCE,
            "tolerance": TOLERANCE, "per_forward": profiled["per_forward"],
            "trace": profiled["trace"], "trace_note": profiled["trace_note"],
            "time_source": profiled.get("time_source", "perf_counter per step"),
            "kernels": profiled.get("kernels"), "memory_lines": (mem or {}).get("lines"),
            "bytes_per_element": act_bytes, "weight_bytes_per_element": weight_bytes,
            "load_avg": {"before": load_before, "after": _load(), "cpus": os.cpu_count()},
            "rows": rows, "n_layers": spec.cfg.n_layers if spec.block in ("model", "encoder") else 1}
