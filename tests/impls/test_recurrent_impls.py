"""The lstm / gru blocks through the harness (bench/impls/recurrent.py): counted FLOPs equal
tfimpl.costs.recurrent's, every implementation computes the same layer, bad input is a one-line
config error (exit 2)."""

from __future__ import annotations

import re

import numpy as np
import pytest

import support
from bench import blocks, capabilities
from bench.case import Case, Measure
from bench.impls import prepare
from bench.plan import plan
from bench.run.runner import run_case

pytest.importorskip("torch")

FAST = Measure(warmup=1, min_repeats=1, min_time_s=0.0, max_time_s=0.2, calibrate=False,
               measure_memory=False)


def _case(**kw):
    base = dict(block="lstm", batch=2, seq_len=12, d_model=16, threads=1, layers=2)
    return Case(**{**base, **kw})


@pytest.mark.parametrize("block", ["lstm", "gru"])
@pytest.mark.parametrize("impl", ["torch", "torch-nn"])
@pytest.mark.parametrize("mode", ["forward", "forward+backward", "train"])
def test_flops_counted_equal_analytic(block, impl, mode):
    record = run_case(_case(block=block, impl=impl, mode=mode), FAST)
    assert record["status"] == "ok", record["status"]
    assert record["flops_counted"] == record["flops_analytic"]
    assert record["flops_match"] is True


@pytest.mark.parametrize("block", ["lstm", "gru"])
def test_all_implementations_compute_the_same_layer(block):
    outs = {}
    for impl in ("numpy", "torch", "torch-nn"):
        prepared = prepare.prepare(_case(block=block, impl=impl, precision="fp64"))
        prepared.fn()
        outs[impl] = prepared.output()
    assert outs["numpy"].shape == (2, 12, 16)
    for impl in ("torch", "torch-nn"):
        assert np.max(np.abs(outs[impl] - outs["numpy"])) <= 1e-12, impl


def test_numpy_backward_runs_in_the_grad_modes():
    for mode in ("forward+backward", "train"):
        record = run_case(_case(impl="numpy", mode=mode), FAST)
        assert record["status"] == "ok", record["status"]
    assert plan(_case(impl="numpy", mode="forward+backward")).flops_analytic == \
        3 * plan(_case(impl="numpy")).flops_analytic


def test_plan_takes_the_cost_model_of_the_block():
    facts = plan(_case(block="gru", impl="torch-nn"))
    # nn.GRU multiplies the zero initial state too: T recurrent steps per layer, not T - 1
    g, b, t, d = 48, 2, 12, 16
    assert facts.flops_by_component == {"input_proj": 2 * 2 * b * t * d * g,
                                        "recurrent": 2 * 2 * b * t * d * g}
    assert facts.params == 2 * (3 * d * 2 * d + 6 * d)
    assert plan(_case(block="gru", impl="torch")).flops_by_component["recurrent"] == \
        2 * 2 * b * (t - 1) * d * g


def test_declarations():
    for name in ("lstm", "gru"):
        decl = blocks.get(name)
        assert not decl.heads and not decl.causal and not decl.attention
        assert blocks.theory_exponent(name, "time", "seq_len") == 1.0
        assert blocks.theory_exponent(name, "flops", "d_model") == 2.0
    # no heads: a width that no head count divides is fine
    assert capabilities.check(_case(impl="torch", d_model=100)) is None


@pytest.mark.parametrize("section, key, fragment", [
    ("fixed: {block: lstm, impl: torch, n_heads: 4}", "fixed.n_heads", "has no attention heads"),
    ("fixed: {block: gru, impl: torch, causal: true}", "fixed.causal", "causal masking"),
    ("fixed: {block: lstm, impl: torch-sdpa}", "fixed.impl", "cannot run block 'lstm'"),
    ("fixed: {block: gru, impl: keras}", "fixed.impl", ""),
    ("fixed: {block: ffn, impl: torch-nn, mode: train, n_heads: 1}", "fixed.mode",
     "cannot run mode .train."),
])
def test_bad_input_is_a_one_line_error(tmp_path, capsys, section, key, fragment):
    config = tmp_path / "c.yaml"
    config.write_text(f"{section}\ngrid: {{seq_len: [16], d_model: [8]}}\n")
    rc, _, err = support.run(capsys, "validate", str(config))
    assert rc == 2
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and f"{key}:" in lines[0], err
    assert re.search(fragment, lines[0]), err
