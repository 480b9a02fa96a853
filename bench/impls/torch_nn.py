"""`torch-nn`: torch's own modules, loaded with the same seeded weights.

    attention      F.scaled_dot_product_attention under the MATH backend (torch's materialised
                   reference: scores and probabilities at once -> attention path "library")
    mha            nn.MultiheadAttention (batch_first)
    ffn            nn.Sequential(Linear, activation, Linear)
    encoder_layer  nn.TransformerEncoderLayer;  encoder: nn.TransformerEncoder
    lstm, gru      nn.LSTM / nn.GRU, batch_first (bench/impls/recurrent.py; also in train mode)

In forward mode torch.nn's eval fast path may run (`Prepared.fastpath` says so); FLOPs are then
counted with it off (`flops_fn`), because FlopCounterMode sees 0 inside it. The mha and layer
modules' fast path materialises one matrix and their training path is fused, so the "explicit"
memory model bounds both.

int8: torch's quantize_dynamic (bench.impls.quantize) on the loaded float32 module: it takes
the FFN's nn.Linear layers only (nn.MultiheadAttention's projections are no nn.Linear modules,
so attention stays float32: `extra["int8_attention"] = False`, which the cost model follows).

Tests: tests/tfimpl/test_costs_counted.py, tests/test_precision.py, tests/run/test_runner.py.
"""

from __future__ import annotations

import contextlib

from bench.case import Case
from bench.impls import recurrent
from bench.impls.base import Impl, Prepared
from bench.impls.common import (load_state, make_params, model_config, needs_grad,
                                torch_device, torch_inputs, torch_precision, torch_runner)
from bench.impls.quantize import linear_weight_bytes, quantize_torch
from bench.impls.torch_ours import PRECISIONS
from tfimpl import loaders


def _nn_activation(name: str):
    """What nn.TransformerEncoderLayer accepts: the strings keep its fast path available."""
    import torch.nn.functional as F

    if name in ("relu", "gelu"):
        return name
    return lambda x: F.gelu(x, approximate="tanh")


def _nn_act_module(name: str):
    import torch.nn as nn

    return {"relu": nn.ReLU(), "gelu": nn.GELU(), "gelu_tanh": nn.GELU(approximate="tanh")}[name]


def _nn_state(case: Case, params: dict) -> dict:
    """Our seeded parameters in the torch.nn module's state-dict layout (via tfimpl.loaders)."""
    if case.block == "ffn":                     # nn.Sequential(Linear, act, Linear): 0 and 2
        return {"0.weight": params["ff1.weight"], "0.bias": params["ff1.bias"],
                "2.weight": params["ff2.weight"], "2.bias": params["ff2.bias"]}
    convert = {"mha": loaders.to_torch_mha_state_dict,
               "encoder_layer": loaders.to_torch_encoder_layer_state_dict,
               "encoder": loaders.to_torch_encoder_state_dict}[case.block]
    return convert(params)


def build(case: Case) -> Prepared:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    if case.block in recurrent.RECURRENT_BLOCKS:               # nn.LSTM / nn.GRU
        return recurrent.build_torch_nn(case)
    cfg = model_config(case)
    device = torch_device(case)
    dtype, _ = torch_precision(case)
    grad = needs_grad(case)
    inputs = torch_inputs(case, dtype, device, requires_grad=grad)
    D, H, T = case.d_model, case.n_heads, case.seq_len
    causal_mask = (torch.ones(T, T, dtype=torch.bool, device=device).triu(1)
                   if case.causal else None)               # (T, T) True = masked out (torch.nn)
    module = None
    fastpath = None
    if case.block == "attention":
        q, k, v = inputs["q"], inputs["k"], inputs["v"]

        def call():
            with sdpa_kernel(SDPBackend.MATH):
                return F.scaled_dot_product_attention(q, k, v, is_causal=case.causal)
    else:
        x = inputs["x"]
        if case.block == "mha":
            module = nn.MultiheadAttention(D, H, dropout=0.0, batch_first=True)
            call = lambda: module(x, x, x, need_weights=False, attn_mask=causal_mask,  # noqa: E731
                                  is_causal=case.causal)[0]
        elif case.block == "ffn":
            module = nn.Sequential(nn.Linear(D, case.d_ff), _nn_act_module(case.activation),
                                   nn.Linear(case.d_ff, D))
            call = lambda: module(x)                                             # noqa: E731
        else:
            layer = nn.TransformerEncoderLayer(
                D, H, case.d_ff, dropout=0.0, activation=_nn_activation(case.activation),
                layer_norm_eps=cfg.layer_norm_eps, batch_first=True, norm_first=case.norm_first)
            module = (layer if case.block == "encoder_layer" else
                      nn.TransformerEncoder(layer, case.layers, enable_nested_tensor=False))
            call = lambda: module(x)                                             # noqa: E731
        module.to(device=device, dtype=dtype).eval()       # first: loading copies into its dtype
        load_state(module, _nn_state(case, make_params(case, cfg)), f"torch-nn {case.block}")
        module.requires_grad_(grad)
        if case.block != "ffn" and case.mode == "forward":
            fastpath = bool(torch.backends.mha.get_fastpath_enabled())
        if case.precision == "int8":                     # linear1/linear2 (ffn: both Linears)
            module = quantize_torch(module)
            call, fastpath = _without_fastpath(call), False   # it reads linear1.weight.device
    params = list(module.parameters()) if module is not None else []
    leaves = [t for t in params + list(inputs.values()) if t.requires_grad]
    fn, output = torch_runner(case, call, leaves)

    def flops_fn():
        with fastpath_disabled():
            return fn()

    return Prepared(fn=fn, output=output, backend="torch", device=case.device,
                    flops_fn=flops_fn if fastpath else fn, fastpath=fastpath,
                    weight_bytes=linear_weight_bytes(module) if module is not None else None)


def rules(case: Case) -> tuple[str, str] | None:
    if case.precision == "int8" and case.block not in INT8_BLOCKS:
        return "block", (f"torch-nn int8 quantizes nn.Linear modules: block {case.block!r} has "
                         f"none (int8 runs: {', '.join(INT8_BLOCKS)})")
    if case.precision == "int8" and case.mode != "forward":
        return "mode", "int8 (dynamic quantization) runs forward only"
    return None


def _rules(case: Case) -> tuple[str, str] | None:
    """int8's rules (rules above), then the recurrent blocks' (train mode for those only)."""
    return rules(case) or recurrent.rules(case)


def _without_fastpath(call):
    def run():
        with fastpath_disabled():
            return call()
    return run


@contextlib.contextmanager
def fastpath_disabled():
    import torch

    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


INT8_BLOCKS = ("ffn", "encoder_layer", "encoder")

IMPL = Impl(
    name="torch-nn", description="torch's own modules (MATH sdpa for the bare attention block)",
    backend="torch", blocks=("attention", "mha", "ffn", "encoder_layer", "encoder")
    + recurrent.RECURRENT_BLOCKS,
    precisions=PRECISIONS + ("int8",), modes=("forward", "forward+backward", "train"),
    devices=("cpu", "cuda"), attention={"attention": "library", "*": "explicit"},
    exposes_weights=False, build=build, rules=_rules, costs=recurrent.costs,
    extra={"zero_state_matmul": True, "int8_scheme": "per_tensor", "int8_attention": False})
