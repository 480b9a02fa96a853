"""A case planned: its declarations and every analytic fact about it, computed once.

    plan(case) -> Plan
        impl, block, mode     the declarations (bench/impls/, bench/blocks/__init__.py, bench/modes/__init__.py)
        cfg                   the tfimpl ModelConfig of the case's sizes
        backend               the impl's runtime ("numpy" | "torch" | ...)
        attn_path             how attention is computed (bench.impls.ATTENTION_PATHS names, or a
                              plugin's own), None for the FFN
        attn_materialised     True when the (B, H, T, T) matrix exists, False fused, None n/a
        bytes_per_element     activation width (bench.precision; 2 for amp-*)
        storage_bytes         width of weights and inputs as stored (4 for amp-*)
        flops_analytic        one call's FLOPs: the mode's parts of tfimpl.costs (forward,
                              + backward), or the impl's own cost model
        flops_by_component    the same by component (q_proj, attn_scores, ffn1, ...)
        peak_bytes_predicted  tfimpl.costs.predicted_peak_bytes (or the impl's own model)
        working_set_bytes     tfimpl.costs.footprint.working_set_bytes
        params                the block's parameter count (tfimpl.costs.param_counts)
        weight_bytes_predicted  bytes of the Linear weight matrices as the case stores them
                              (tfimpl.costs.quantized: int8 + scales + zero points under the
                              impl's `extra["int8_scheme"]` for int8, else storage width), None
                              for a block with no Linear
        int8_macs             int8 x int8 multiply-adds of one forward (int8 only, else None)

Hooks: a block, mode or implementation declaration may compute any of these itself
(`costs(case, cfg) -> dict`, with tfimpl.costs functions): the implementation's wins over the
mode's over the block's; what none gives comes from tfimpl.costs' generic functions.

`Plan.facts()` is what the record carries of it, so the analysis reads records and never
rebuilds a config or asks a declaration again. Every formula is in tfimpl.costs.

Tests: tests/analysis/test_report.py, tests/impls/test_plugins.py, tests/test_record.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import blocks, impls, modes, precision
from bench.blocks import Block
from bench.case import Case
from bench.impls.base import Impl
from bench.impls.common import model_config
from bench.modes import Mode
from bench.record import keys_of
from tfimpl import costs
from tfimpl.config import ModelConfig
from tfimpl.costs import footprint
from tfimpl.costs import quantized

_STORAGE_BYTES = {"float64": 8, "float32": 4, "bfloat16": 2, "float16": 2}
FACT_KEYS = keys_of("plan")                 # the record's fields a Plan fills (bench.record)


@dataclass(frozen=True)
class Plan:
    case: Case
    impl: Impl
    block: Block
    mode: Mode
    cfg: ModelConfig
    backend: str
    attn_path: str | None
    attn_materialised: bool | None
    bytes_per_element: int
    storage_bytes: int
    flops_analytic: int
    flops_by_component: dict
    peak_bytes_predicted: int
    working_set_bytes: int
    params: int
    weight_bytes_predicted: int | None = None
    int8_macs: int | None = None

    def facts(self) -> dict:
        return {key: getattr(self, key) for key in FACT_KEYS}


def bytes_per_element(name: str) -> int:
    """Activation width of the analytic model (2 for amp-*: activations are low precision)."""
    return precision.get(name).bytes_per_element


def storage_bytes(name: str) -> int:
    """Width of weights and inputs as stored (4 for amp-*: autocast keeps them fp32)."""
    return _STORAGE_BYTES[precision.get(name).storage]


def _analytic_flops(case: Case, block: Block, mode: Mode, cfg: ModelConfig) -> dict:
    parts = {"forward": costs.forward_flops, "backward": costs.backward_flops}
    total: dict = {}
    for part in mode.flops_parts:
        counts = parts[part](block.cost_block, cfg, case.batch, case.seq_len, causal=case.causal)
        for key, value in counts.items():
            if key in ("matmul", "elementwise"):
                continue
            name = key if part == "forward" else f"{key}_backward"
            if key == "total":
                total["total"] = total.get("total", 0) + int(value)
            else:
                total[name] = int(value)
    return total


def _weights(case: Case, block: Block, impl: Impl, cfg: ModelConfig) -> tuple:
    """(Linear weight bytes as stored, int8 MACs or None) from tfimpl.costs.quantized."""
    kind = block.cost_block
    if kind not in quantized.KINDS:
        return None, None
    attention = bool(impl.extra.get("int8_attention", True))
    if precision.get(case.precision).weights == "int8":
        scheme = impl.extra.get("int8_scheme", "per_channel_symmetric")
        stored = costs.int8_weight_bytes(kind, cfg, scheme, attention=attention)["total"]
        macs = costs.int8_macs(kind, cfg, case.batch, case.seq_len, attention)["int8_macs"]
        return stored, macs
    return costs.fp32_weight_bytes(kind, cfg, attention=attention,
                                   element_bytes=storage_bytes(case.precision)), None


def plan(case: Case) -> Plan:
    """Declarations and analytic facts of `case` (raises ValueError/ImplError when unknown)."""
    impl = impls.get(case.impl)
    block = blocks.get(case.block)
    mode = modes.get(case.mode)
    cfg = model_config(case)
    path = impl.attention_path(case.block)
    materialised = impl.materialises(case.block)
    e = bytes_per_element(case.precision)
    # what the declarations compute themselves: the impl's own model first, then the mode's,
    # then the block's; tfimpl.costs' generic functions fill in the rest
    own: dict = {}
    for hook in (block.costs, mode.costs, impl.costs):
        if hook is not None:
            own.update(hook(case, cfg))
    if "flops_analytic" in own:
        by_component = own.get("flops_by_component", {})
        flops_total = own["flops_analytic"]
    else:
        flops = _analytic_flops(case, block, mode, cfg)
        by_component = own.get("flops_by_component") or {k: v for k, v in flops.items()
                                                         if k != "total"}
        flops_total = flops["total"]
    if "peak_bytes_predicted" in own:
        peak = own["peak_bytes_predicted"]
    else:
        peak = costs.predicted_peak_bytes(block.cost_block, cfg, case.batch, case.seq_len, e,
                                          path or "explicit", mode.peak_mode,
                                          causal=case.causal, threads=case.threads,
                                          backend=impl.backend)
    if "working_set_bytes" in own:
        ws = own["working_set_bytes"]
    else:
        ws = footprint.working_set_bytes(block.cost_block, cfg, case.batch, case.seq_len, e,
                                         materialised)
    params = own["params"] if "params" in own else \
        costs.param_counts(block.param_kind, cfg)["total"]
    weight_bytes, int8_macs = _weights(case, block, impl, cfg)
    return Plan(case=case, impl=impl, block=block, mode=mode, cfg=cfg, backend=impl.backend,
                attn_path=path, attn_materialised=materialised, bytes_per_element=e,
                storage_bytes=storage_bytes(case.precision), flops_analytic=int(flops_total),
                flops_by_component={k: int(v) for k, v in by_component.items()},
                peak_bytes_predicted=int(peak), working_set_bytes=int(ws), params=int(params),
                weight_bytes_predicted=weight_bytes, int8_macs=int8_macs)
