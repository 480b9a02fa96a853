"""A user's implementation plugs in from outside the package (examples/chunked_attention.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import capabilities, impls
from bench.case import Case, Measure
from bench.plan import plan
from bench.run.runner import run_case

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "examples.chunked_attention:IMPL"
FAST = Measure(warmup=1, min_repeats=3, min_time_s=0.0, max_time_s=1.0)


@pytest.fixture(autouse=True)
def _examples_importable(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))


def test_plugin_resolves_and_is_checked_like_a_builtin():
    decl = impls.get(PLUGIN)
    assert decl.name == "chunked" and decl.backend == "torch"
    ok = Case(impl=PLUGIN, block="attention", seq_len=64, d_model=64, n_heads=4)
    assert capabilities.check(ok) is None
    assert "cannot run block 'ffn'" in capabilities.check(Case(impl=PLUGIN, block="ffn"))
    assert "cannot run precision 'fp16'" in capabilities.check(
        Case(impl=PLUGIN, block="attention", precision="fp16"))


def test_plugin_case_counts_flops_as_analytic_and_memory_as_predicted():
    """Its own cost model: FLOPs (tfimpl.costs) == counted; peak within 5% of measured."""
    case = Case(impl=PLUGIN, block="attention", batch=2, seq_len=384, d_model=128, n_heads=4,
                threads=1)
    record = run_case(case, FAST)
    assert record["status"] == "ok", record["status"]
    assert record["flops_match"] is True
    assert record["peak_bytes"] == pytest.approx(record["peak_bytes_predicted"], rel=0.05)
    assert record["attn_path"] == "chunked" and record["attn_materialised"] is None
    assert record["rel_l2_err"] < 1e-5
    facts = plan(case)
    assert facts.working_set_bytes < 2 * 4 * 384 * 384 * 4          # far below the T² matrix


def test_unknown_plugins_are_one_line_config_errors(tmp_path):
    for impl, message in [("nosuch.module:IMPL", "cannot import 'nosuch.module'"),
                          ("examples.chunked_attention:NOPE", "has no 'NOPE'"),
                          ("examples.chunked_attention:CHUNK", "not a bench.impls.Impl"),
                          ("jax", "unknown impl 'jax'")]:
        config = tmp_path / "c.yaml"
        config.write_text(f"fixed: {{block: attention, impl: {json.dumps(impl)}}}\n")
        result = subprocess.run([sys.executable, "-m", "bench", "validate", str(config)],
                                capture_output=True, text=True, cwd=ROOT)
        assert result.returncode == 2
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr


def test_entry_point_names_resolve(monkeypatch):
    impls.get.cache_clear()
    monkeypatch.setattr(impls, "_entry_point",
                        lambda name: PLUGIN if name == "my-chunked" else None)
    try:
        assert impls.get("my-chunked") is impls.get(PLUGIN)
    finally:
        impls.get.cache_clear()
