"""int8 in the libraries (bench.impls.quantize; torch-nn and hf-bert at precision int8): the
Linear weights' bytes as stored == tfimpl.costs' model exactly, outputs near fp64, the rules."""

import dataclasses

import numpy as np
import pytest

from bench import capabilities
from bench.case import Case
from bench.impls import quantize
from bench.impls.prepare import prepare
from bench.plan import plan

BASE = Case(batch=2, seq_len=12, d_model=32, n_heads=2, d_ff=64, layers=2, vocab_size=50,
            precision="int8", threads=1)


def _rel(a, b):
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


@pytest.mark.parametrize("impl, block", [
    ("torch-nn", "ffn"), ("torch-nn", "encoder_layer"), ("hf-bert", "encoder_layer"),
    ("hf-bert", "model"),
])
def test_int8_weight_bytes_are_the_cost_model_and_4x_smaller(impl, block):
    case = dataclasses.replace(BASE, impl=impl, block=block)
    assert capabilities.check_fields(case) is None
    prepared = prepare(case)
    prepared.fn()
    int8 = plan(case)
    assert prepared.weight_bytes == int8.weight_bytes_predicted
    assert int8.int8_macs > 0
    fp32_case = dataclasses.replace(case, precision="fp32")
    fp32 = prepare(fp32_case)
    fp32.fn()
    assert fp32.weight_bytes == plan(fp32_case).weight_bytes_predicted
    assert 3.5 < fp32.weight_bytes / prepared.weight_bytes < 4.0
    ref = prepare(dataclasses.replace(case, precision="fp64"))
    ref.fn()
    assert _rel(prepared.output(), ref.output()) < 5e-2          # int8 rounding, not a bug
    assert _rel(fp32.output(), ref.output()) < 1e-5


def test_torch_nn_int8_leaves_attention_in_float32():
    case = dataclasses.replace(BASE, impl="torch-nn", block="encoder_layer")
    assert plan(case).int8_macs == 2 * 12 * (2 * 32 * 64)         # ff1 + ff2 only


@pytest.mark.parametrize("impl, field, fragment", [
    ("torch-nn", "block", "has none"),
    ("hf-bert", "mode", "forward only"),
])
def test_int8_rules_are_one_line(impl, field, fragment):
    block = "mha" if impl == "torch-nn" else "encoder_layer"
    mode = "forward" if impl == "torch-nn" else "forward+backward"
    got = capabilities.check_fields(dataclasses.replace(BASE, impl=impl, block=block, mode=mode))
    assert got[0] == field and fragment in got[1] and "\n" not in got[1]


def test_reduce_range_follows_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(quantize, "cpu_flags", lambda wanted: ["avx512_vnni"])
    assert quantize.vnni() is True and quantize.reduce_range() is False
    monkeypatch.setattr(quantize, "cpu_flags", lambda wanted: [])
    assert quantize.reduce_range() is True
    monkeypatch.setattr(quantize, "cpu_flags", lambda wanted: None)
    assert quantize.vnni() is None and quantize.reduce_range() is True
