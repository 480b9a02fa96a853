"""`measure.profile: true`: the per-step breakdown attached to a run's record (the `step_time`
metric of bench.metrics).

For a case our step-wise forwards can run (impl numpy, torch or torch-sdpa; mode forward; a
post-norm block), after the case is timed and under the same threads, `profile_fields` profiles
PROFILE_REPEATS forwards (bench.profile.timing: torch.profiler ranges or NumPy step timers, no
trace file) and returns the record fields:
    profile_steps_s      {step: median seconds per forward}     (steps: tfimpl.costs.components)
    profile_steps_flops  {step: analytic FLOPs}                 (tfimpl.costs.component_flops)
    profile_steps_bytes  {step: minimum bytes}                  (tfimpl.costs.component_bytes)
    profile_sum_s        the steps' sum per forward
    profile_overhead     profile_sum_s / median_s - 1 (the profile against the timed block)
    profile_status       "ok" | "skipped: <why>" (other fields null then)

The weights and inputs are the case's own numbers (same seeds, same formulas as the harness).
"""

from __future__ import annotations

from bench import precision
from bench.impls.common import model_config
from bench.profile import spec as profile_spec
from bench.profile import steps_numpy, timing
from bench.profile.spec import ProfileSpec, widths
from bench.record import keys_of
from tfimpl.costs import component_bytes, component_flops
PROFILE_KEYS = keys_of("profile")           # the record's profile_* fields (bench.record)
PROFILE_REPEATS = 3
IMPLS = ("numpy", "torch", "torch-sdpa")
BLOCKS = ("attention", "mha", "ffn", "encoder_layer", "encoder", "model")


def why_not(case) -> str | None:
    """Why the step-wise forward cannot profile `case`, or None."""
    if case.impl not in IMPLS:
        return f"the step-wise profile runs {', '.join(IMPLS)}, not {case.impl}"
    if case.block not in BLOCKS:
        return f"the step-wise profile has no block {case.block}"
    if case.mode != "forward":
        return f"the step-wise profile runs the forward only, not {case.mode}"
    if case.causal or case.norm_first:
        return "the step-wise profile runs unmasked post-norm blocks only"
    return None


def spec_of(case):
    """The ProfileSpec of a harness case (its ModelConfig, seeds, threads, precision)."""
    return ProfileSpec(target=case.block, block=case.block, preset="case", cfg=model_config(case),
                       impl=case.impl, batch=case.batch, seq_len=case.seq_len,
                       precision=case.precision, device=case.device, threads=case.threads,
                       repeats=PROFILE_REPEATS, seed=case.seed)


def measure_steps(spec) -> dict[str, float]:
    """{step: median seconds} over spec.repeats profiled forwards, threads as they are now."""
    p = profile_spec.cast(spec, profile_spec.float64_params(spec))
    inputs = profile_spec.cast(spec, profile_spec.float64_inputs(spec))
    if spec.backend == "numpy":
        return timing.profile_numpy(
            lambda marks: steps_numpy.block_steps(spec.block, p, inputs, spec.cfg, marks),
            spec.repeats)["steps_s"]
    import torch

    from bench.profile import steps_torch       # imports torch: only for a torch case

    def forward(mark):
        with torch.inference_mode(), precision.context(spec.precision, spec.device):
            return steps_torch.block_steps(spec.block, p, inputs, spec.cfg, spec.attn_impl, mark)

    return timing.profile_torch(forward, spec.repeats, spec.device)["steps_s"]


def profile_fields(case, median_s: float | None) -> dict:
    """The record's profile_* fields for `case` (timed at `median_s`); never raises."""
    out = dict.fromkeys(PROFILE_KEYS)
    reason = why_not(case)
    if reason:
        out["profile_status"] = f"skipped: {reason}"
        return out
    try:
        spec = spec_of(case)
        steps = measure_steps(spec)
        flops = component_flops(spec.block, spec.cfg, spec.batch, spec.seq_len, spec.attn_impl)
        act, weight = widths(spec)
        moved = component_bytes(spec.block, spec.cfg, spec.batch, spec.seq_len, act,
                                spec.attn_impl, weight_bytes_per_element=weight)
    except Exception as exc:                  # the profile is an extra: the record stays ok
        out["profile_status"] = f"failed: {type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
        return out
    total = sum(steps.get(name, 0.0) for name in flops)
    out.update(profile_steps_s={name: steps.get(name) for name in flops},
               profile_steps_flops=flops,
               profile_steps_bytes={name: moved[name]["total"] for name in flops},
               profile_sum_s=total,
               profile_overhead=(total / median_s - 1) if median_s else None,
               profile_status="ok")
    return out
