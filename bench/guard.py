"""Memory guard: skip a case that would not fit, before it runs.

Prediction (all from the analytic model, `tfimpl.costs`, plus sizes of what `bench.registry`
allocates):

    case_bytes = activation peak (costs.predicted_peak_bytes, the case's precision and mode)
               + weights at the case's precision (+ the float64 originals they are cast from)
               + inputs (+ their grads for forward+backward; weight grads are in costs)
    need       = max(case_bytes, reference_bytes if accuracy is on) · (1 + MARGIN)

where the float64 accuracy reference runs after the case's own objects are released, so the two
do not add, except the case's output and (attention, mha) its B·H·T·T attention weights, which
are kept for the comparison. The activation peak is the model's as is (bench.registry.attn_impl_of picks its
attention mode: torch.nn's MATH sdpa and HF's eager attention are "library", two B·H·T·T
matrices at once). The limit is what this process may still grow to:

    limit = rss_now + (available - RESERVE)        available: psutil.virtual_memory().available
    limit = min(limit, Measure.max_memory)         when set (a cap on the process' footprint)

A case with rss_now + need > limit is recorded `skipped: needs X GiB, Y GiB available` (both
include the current RSS), so a planned case never drives the machine into swap or the OOM killer.
"""

from __future__ import annotations

import dataclasses

from bench.case import Case, Measure

GIB = 1024 ** 3
MARGIN = 0.25                     # allocator slack, temporaries the model does not count
RESERVE_BYTES = 1 * GIB           # left free for the OS and everything else on the machine
RESERVE_FRACTION = 0.05           # ... or this share of total memory, whichever is larger

_STORAGE_BYTES = {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2}


def parse_bytes(value: str | int) -> int:
    """`"8GiB"`, `"512MiB"`, `"16GB"`, `4096` -> bytes (bench.config.parse_bytes)."""
    from bench.config import parse_bytes as parse

    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return parse(value)


def bytes_per_element(precision: str) -> int:
    """Activation width of the analytic model (2 for amp-*: activations are low precision)."""
    from bench.precision import get

    return get(precision).bytes_per_element


def storage_bytes(precision: str) -> int:
    """Width of weights and inputs as stored (4 for amp-*: autocast keeps them fp32)."""
    from bench.precision import get

    return _STORAGE_BYTES[get(precision).storage]


def _input_elements(case: Case) -> int:
    per_token = 3 * case.d_model if case.block == "attention" else case.d_model
    return case.batch * case.seq_len * per_token


def case_bytes(case: Case) -> int:
    """Predicted extra bytes while `case` is prepared and run once (see the module docstring)."""
    from bench.registry import PARAM_KIND, model_config
    from bench.runner import predict
    from tfimpl import costs

    cfg = model_config(case)
    activations = predict(case)["peak_bytes_predicted"]
    elem = storage_bytes(case.precision)
    n_params = costs.param_counts(PARAM_KIND[case.block], cfg)["total"]
    weights = n_params * (elem + (8 if elem != 8 else 0))     # cast copy + float64 originals
    inputs = _input_elements(case) * (elem + 8)
    if case.mode != "forward":                                 # (weight grads: in costs)
        inputs += _input_elements(case) * elem
    return int(activations + weights + inputs)


def predicted_need(case: Case, measure: Measure) -> int:
    """Bytes the case needs above the current RSS, margin included."""
    need = case_bytes(case)
    if measure.accuracy and case.precision != "fp64":
        reference = dataclasses.replace(case, precision="fp64", mode="forward")
        output = case.batch * case.seq_len * case.d_model * 8 * 2
        if case.block in ("attention", "mha") and case.impl in ("numpy", "torch"):
            # the explicit paths hand back their attention weights, kept for the comparison
            output += (case.batch * case.n_heads * case.seq_len ** 2
                       * storage_bytes(case.precision))
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
          available: int | None = None, total: int | None = None) -> str | None:
    """None when the case fits; else the skip reason `needs X GiB, Y GiB available`."""
    import psutil

    if rss is None:
        rss = psutil.Process().memory_info().rss
    if available is None or total is None:
        vm = psutil.virtual_memory()
        available = vm.available if available is None else available
        total = vm.total if total is None else total
    need = rss + predicted_need(case, measure)
    limit = memory_limit(measure, rss, available, total)
    if need > limit:
        return f"needs {need / GIB:.2f} GiB, {limit / GIB:.2f} GiB available"
    return None
