"""The sub-quadratic attention blocks through the harness (bench/blocks/sparse.py,
bench/impls/sparse_ours.py): counted FLOPs == analytic, peaks near predicted, the price's
numbers, and bad window / global_tokens / inputs values as one-line errors (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import capabilities
from bench.blocks import sparse
from bench.case import Case, Measure
from bench.config import ConfigError, load_config
from bench.run.runner import run_case
from tfimpl import pretrained

ROOT = Path(__file__).resolve().parents[2]
FAST = Measure(warmup=1, min_repeats=2, min_time_s=0.0, max_time_s=0.5, calibrate=False)
SMALL = dict(batch=1, seq_len=300, d_model=64, n_heads=2, threads=1)


@pytest.mark.parametrize("impl,block,extra", [
    ("torch", "window_attention", {"window": 32}),
    ("torch", "global_attention", {"window": 32, "global_tokens": 4, "causal": True}),
    ("torch", "linear_attention", {"causal": True}),
    ("torch", "banded_attention", {"window": 32}),
    ("torch-sdpa", "banded_attention", {"window": 32}),
    ("numpy", "window_attention", {"window": 17}),
])
def test_sparse_cases_run_count_and_price(impl, block, extra):
    pytest.importorskip("torch")
    record = run_case(Case(impl=impl, block=block, **SMALL, **extra), FAST)
    assert record["status"] == "ok", record["status"]
    if impl != "numpy":
        assert record["flops_match"] is True
    assert record["peak_bytes"] == pytest.approx(record["peak_bytes_predicted"], rel=0.3)
    assert 0 <= record["approx_rel_l2_err"] < 10           # random inputs: see the report
    assert record["rel_l2_err"] < 1e-5                      # fp32 against its own fp64 run
    if block == "linear_attention":
        assert record["attn_mass_captured"] is None
    else:
        assert 0 < record["attn_mass_captured"] <= 1
        assert record["attn_path"] in ("window", "window+global", "explicit", "sdpa")


def test_price_is_zero_when_the_pattern_is_everything():
    case = Case(impl="numpy", block="global_attention", seq_len=40, d_model=32, n_heads=2,
                window=5, global_tokens=40)
    got = sparse.price(case, sparse.make_inputs(case))
    assert got["approx_rel_l2_err"] < 1e-14 and got["attn_mass_captured"] == pytest.approx(1.0)
    assert got["useful_fraction"] == 1.0


def test_price_mass_by_hand():
    """One head, n = 3, w = 1: the mass kept is the mean of the diagonal of the exact weights."""
    case = Case(impl="numpy", block="window_attention", batch=1, seq_len=3, d_model=2, n_heads=1,
                window=1)
    x = sparse.make_inputs(case)
    s = x["q"][0, 0] @ x["k"][0, 0].T / np.sqrt(2)
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    got = sparse.price(case, x)
    assert got["attn_mass_captured"] == pytest.approx(np.diag(p).mean(), rel=1e-12)
    approx, exact = x["v"][0, 0], p @ x["v"][0, 0]           # w = 1: each row is its own value
    assert got["approx_rel_l2_err"] == pytest.approx(
        np.linalg.norm(approx - exact) / np.linalg.norm(exact), rel=1e-12)


def test_pattern_rows_are_rows_of_the_mask():
    from tfimpl.numpy.sparse_attention import window_mask

    rows = np.array([0, 3, 17, 29])
    for w, g, causal in [(1, 0, False), (4, 0, True), (7, 3, False), (6, 2, True)]:
        assert np.array_equal(sparse.pattern_rows(rows, 30, w, g, causal),
                              window_mask(30, w, causal, g)[rows])


@pytest.mark.skipif(not pretrained.available(), reason="needs the pretrained MiniLM package")
def test_pretrained_inputs_are_minilm_qkv():
    x = sparse.pretrained_qkv(2, 20)
    assert x["q"].shape == (2, 12, 20, 32)
    assert not np.allclose(x["q"][0], x["q"][1])             # two layers


@pytest.mark.parametrize("fields,key", [
    ({"block": "window_attention", "window": 0}, "window"),
    ({"block": "window_attention", "window": 600, "seq_len": 512}, "window"),
    ({"block": "global_attention", "window": 8, "global_tokens": 600, "seq_len": 512},
     "global_tokens"),
    ({"block": "attention", "window": 8}, "window"),
    ({"block": "linear_attention", "global_tokens": 2}, "global_tokens"),
    ({"block": "attention", "inputs": "pretrained"}, "inputs"),
    ({"block": "window_attention", "window": 8, "inputs": "pretrained"}, "d_model"),
])
def test_bad_values_name_their_key(fields, key):
    case = Case(impl="torch", **{"seq_len": 512, **fields})
    problem = capabilities.check_fields(case)
    assert problem is not None and problem[0] == key, problem


@pytest.mark.parametrize("fixed,message", [
    ("{block: window_attention, window: 0}", "window"),
    ("{block: window_attention, window: -3}", "window"),
    ("{block: window_attention, window: 1024}", "window=1024 is wider"),
    ("{block: global_attention, window: 8, global_tokens: 999}", "global_tokens"),
    ("{block: linear_attention, inputs: mixed}", "inputs"),
])
def test_bad_config_is_one_line_error_naming_the_key(tmp_path, fixed, message):
    config = tmp_path / "c.yaml"
    config.write_text(f"fixed: {{impl: torch, seq_len: 512, {fixed[1:]}\n")
    with pytest.raises(ConfigError) as err:
        load_config(config)
    assert message in str(err.value) and "\n" not in str(err.value)
    key = "global_tokens" if "global" in message else message.split("=")[0]
    assert key in str(err.value)


def test_bad_config_exits_2(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("fixed: {impl: torch, seq_len: 512, block: window_attention, window: 0}\n")
    result = subprocess.run([sys.executable, "-m", "bench", "validate", str(config)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2, result.stderr
    assert "window" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("TFBENCH_FLEX"),
                    reason="compiles FlexAttention (~1.5 min on a 2-core CPU): set TFBENCH_FLEX=1")
def test_torch_flex_compiles_or_says_why():
    pytest.importorskip("torch")
    record = run_case(Case(impl="torch-flex", block="window_attention", window=32, **SMALL), FAST)
    assert record["status"] == "ok" or record["status"].startswith("skipped: "), record["status"]
    if record["status"] == "ok":
        assert record["compile_s"] > 0 and record["median_s"] < record["compile_s"]
