"""`torch-sdpa`: tfimpl.torch with torch's fused F.scaled_dot_product_attention (the (B, H, T, T)
matrix never exists; the weights are not exposed).

Tests: tests/test_precision.py, tests/profile/test_profile.py, tests/run/test_runner.py.
"""

from __future__ import annotations

from bench.blocks import gpt as decode
from bench.case import Case
from bench.impls import sparse_ours
from bench.impls.base import Impl, Prepared
from bench.impls.torch_ours import BLOCKS, PRECISIONS, build_tfimpl_torch


def build(case: Case) -> Prepared:
    return build_tfimpl_torch(case, "sdpa")


IMPL = Impl(
    name="torch-sdpa", description="tfimpl.torch, attention through the fused SDPA kernel",
    backend="torch", blocks=BLOCKS + ("banded_attention",), precisions=PRECISIONS,
    modes=("forward", "forward+backward", "train"), devices=("cpu", "cuda"),
    attention="sdpa", exposes_weights=False, build=build, rules=decode.rules,
    costs=sparse_ours.sdpa_costs)
