"""Memory guard: skip a case that would not fit, before it runs.

Prediction (all from the analytic model, `tfimpl.costs`, plus sizes of what `bench.impls.prepare`
allocates):

    case_bytes = activation peak (costs.predicted_peak_bytes, the case's precision and mode)
               + weights at the case's precision (+ the float64 originals they are cast from)
               + inputs (+ their grads for forward+backward; weight grads are in costs)
    need       = max(case_bytes, reference_bytes if accuracy is on) · (1 + MARGIN)

where the float64 accuracy reference runs after the case's own objects are released, so the two
do not add, except the case's output and (attention, mha) its B·H·T·T attention weights, which
are kept for the comparison. The activation peak is the model's as is (bench.plan: the impl's declared attention
path: torch.nn's MATH sdpa and HF's eager attention are "library", two B·H·T·T
matrices at once). The limit is what this process may still grow to:

    limit = rss_now + (available - RESERVE)        available: psutil.virtual_memory().available
    limit = min(limit, Measure.max_memory)         when set (a cap on the process' footprint)

A case with rss_now + need > limit is recorded `skipped: needs X GiB, Y GiB available` (both
include the current RSS), so a planned case never drives the machine into swap or the OOM killer.
"""

from __future__ import annotations

import dataclasses

import psutil

from bench.case import Case, Measure
from bench.config import parse_bytes as config_parse_bytes
from bench.plan import Plan, plan
from tfimpl.costs import footprint

GIB = 1024 ** 3
MARGIN = 0.25                     # allocator slack, temporaries the model does not count
RESERVE_BYTES = 1 * GIB           # left free for the OS and everything else on the machine
RESERVE_FRACTION = 0.05           # ... or this share of total memory, whichever is larger



def parse_bytes(value: str | int) -> int:
    """`"8GiB"`, `"512MiB"`, `"16GB"`, `4096` -> bytes (bench.config.parse_bytes)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return config_parse_bytes(value)


def case_bytes(case: Case, planned: Plan | None = None) -> int:
    """Predicted extra bytes while `case` is prepared and run once (see the module docstring)."""
    planned = planned or plan(case)
    cfg, elem = planned.cfg, planned.storage_bytes
    weights = planned.params * (elem + (8 if elem != 8 else 0))   # cast copy + float64 originals
    n_inputs = footprint.input_elements(case.block, cfg, case.batch, case.seq_len)
    inputs = n_inputs * (elem + 8)
    if planned.mode.grad:                                      # (weight grads: in costs)
        inputs += n_inputs * elem
    return int(planned.peak_bytes_predicted + weights + inputs)


def predicted_need(case: Case, measure: Measure, planned: Plan | None = None) -> int:
    """Bytes the case needs above the current RSS, margin included."""
    planned = planned or plan(case)
    need = case_bytes(case, planned)
    if measure.accuracy and case.precision != "fp64":
        reference = dataclasses.replace(case, precision="fp64",
                                        mode=planned.mode.reference_mode)
        output = case.batch * case.seq_len * case.d_model * 8 * 2
        if planned.block.attention and planned.impl.exposes_weights and planned.attn_materialised:
            # the explicit paths hand back their attention weights, kept for the comparison
            output += footprint.attention_weights_bytes(planned.cfg, case.batch, case.seq_len,
                                                        case.seq_len, planned.storage_bytes)
        need = max(need, case_bytes(reference) + output)
    return int(need * (1 + MARGIN))


def memory_limit(measure: Measure, rss: int, available: int, total: int) -> int:
    """What this process may grow to: RSS + available − reserve, capped by max_memory."""
    reserve = max(RESERVE_BYTES, int(RESERVE_FRACTION * total))
    limit = rss + max(available - reserve, 0)
    if measure.max_memory is not None:
        limit = min(limit, parse_bytes(measure.max_memory))
    return limit


def check(case: Case, measure: Measure, rss: int | None = None,
          available: int | None = None, total: int | None = None,
          planned: Plan | None = None) -> str | None:
    """None when the case fits; else the skip reason `needs X GiB, Y GiB available`."""

    if rss is None:
        rss = psutil.Process().memory_info().rss
    if available is None or total is None:
        vm = psutil.virtual_memory()
        available = vm.available if available is None else available
        total = vm.total if total is None else total
    need = rss + predicted_need(case, measure, planned)
    limit = memory_limit(measure, rss, available, total)
    if need > limit:
        return f"needs {need / GIB:.2f} GiB, {limit / GIB:.2f} GiB available"
    return None
