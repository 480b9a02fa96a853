"""bench.run.runner.run_case: the record's shape, error paths, and the measurements against theory."""

import dataclasses
import os
import socket
import time

import numpy as np
import pytest

from bench.case import CASE_FIELDS, Case, Measure
from bench.impls.prepare import Prepared, Unsupported
from bench.run.runner import RECORD_KEYS, run_case

FAST = Measure(warmup=1, min_repeats=3, min_time_s=0.0, max_time_s=1.0)
SMALL = Case(impl="numpy", block="ffn", batch=1, seq_len=16, d_model=32, n_heads=2, d_ff=64,
             threads=1)


def _fake(fn, output=None):
    return Prepared(fn=fn, output=lambda: np.zeros(3) if output is None else output,
                    backend="numpy", device="cpu")


def test_record_has_every_key_and_the_case_fields():
    record = run_case(SMALL, FAST)
    assert record["status"] == "ok"
    assert tuple(record) == RECORD_KEYS
    assert {k: record[k] for k in CASE_FIELDS} == SMALL.to_dict()
    assert record["case_id"] == SMALL.case_id
    assert record["n_samples"] == len(record["samples_s"]) >= 3
    assert min(record["samples_s"]) == record["min_s"] > 0
    assert record["hostname"] == socket.gethostname() and record["pid"] == os.getpid()
    assert record["start_time"] <= record["end_time"]
    assert record["elapsed_s"] == pytest.approx(record["end_time"] - record["start_time"])
    assert record["flops_counted"] is None and record["flops_match"] is None   # numpy
    assert record["gflops_per_s"] == pytest.approx(
        record["flops_analytic"] / record["median_s"] / 1e9)
    assert record["peak_method"] == "tracemalloc" and record["peak_bytes"] > 0
    assert 0 < record["rel_l2_err"] < 1e-5            # fp32 against its float64 reference
    assert record["attn_max_abs_err"] is None          # an FFN has no attention weights


def test_fp64_case_is_its_own_reference_error_zero():
    record = run_case(dataclasses.replace(SMALL, precision="fp64"), FAST)
    assert record["status"] == "ok"
    assert record["max_abs_err"] == 0.0 and record["rel_l2_err"] == 0.0


def test_one_fp64_reference_serves_every_implementation_of_a_block(monkeypatch):
    from bench.impls.common import REFERENCES

    REFERENCES.clear()
    case = Case(impl="numpy", block="attention", seq_len=24, d_model=32, n_heads=4, threads=1)
    first = run_case(case, FAST)
    second = run_case(dataclasses.replace(case, impl="torch"), FAST)
    assert first["accuracy_reference"] == second["accuracy_reference"] == "numpy"
    REFERENCES.clear()                            # torch against its own fp64 run this time
    own = run_case(dataclasses.replace(case, impl="torch"), FAST)
    assert own["accuracy_reference"] == "torch"
    for key in ("rel_l2_err", "max_abs_err", "attn_rel_l2_err"):  # fp64 runs agree to ~1e-15
        assert second[key] == pytest.approx(own[key], rel=1e-6)
    other = run_case(dataclasses.replace(case, impl="torch", seq_len=32), FAST)
    assert other["accuracy_reference"] == "torch"               # other sizes: its own reference


def _raises(case):
    raise RuntimeError("boom\nwith a second line")


def test_an_exception_becomes_a_failed_record_with_measurements_null():
    record = run_case(SMALL, FAST, prepare=_raises)
    assert record["status"] == "failed: RuntimeError: boom with a second line"
    assert tuple(record) == RECORD_KEYS
    for key in ("samples_s", "median_s", "flops_analytic", "peak_bytes", "max_abs_err"):
        assert record[key] is None
    assert record["hostname"] and record["pid"] == os.getpid() and record["end_time"]


def test_memory_error_in_the_timed_call_is_recorded_not_raised():
    def prepare(case):
        def fn():
            raise MemoryError("Unable to allocate 1.00 TiB")
        return _fake(fn)

    record = run_case(SMALL, FAST, prepare=prepare)
    assert record["status"] == "failed: MemoryError: Unable to allocate 1.00 TiB"


def test_unsupported_is_a_skip():
    def prepare(case):
        raise Unsupported("no such thing")

    assert run_case(SMALL, FAST, prepare=prepare)["status"] == "skipped: no such thing"


def test_registry_unsupported_combination_is_skipped():
    case = Case(impl="torch-nn", block="ffn", mode="train", seq_len=8, d_model=16,
                n_heads=2, d_ff=32, threads=1)
    assert run_case(case, FAST)["status"].startswith("skipped: ")


def test_budget_probe_skips_a_slow_case_after_one_call():
    calls = []

    def prepare(case):
        def fn():
            calls.append(1)
            time.sleep(0.05)
        return _fake(fn)

    measure = Measure(warmup=2, min_repeats=20, min_time_s=0.0, budget_s=0.3)
    record = run_case(SMALL, measure, prepare=prepare)
    assert record["status"].startswith("skipped: estimated ")
    assert "> budget 0.3 s" in record["status"]
    assert len(calls) == 1                             # the probe, nothing more


def test_keyboard_interrupt_is_not_swallowed():
    def prepare(case):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_case(SMALL, FAST, prepare=prepare)


# --- the measurements against the analytic model (integration) -----------------------------

T = 1024
LONG = Measure(warmup=1, min_repeats=2, min_time_s=0.0, max_time_s=1.0, accuracy=False)


@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_materialised_attention_peak_is_one_attention_matrix(impl):
    """At T >= 1024 the explicit path's peak is the B*H*T*T score matrix (+ O(T*d_k)): 5%."""
    case = Case(impl=impl, block="attention", batch=1, seq_len=T, d_model=32, n_heads=2,
                precision="fp32", threads=1)
    record = run_case(case, LONG)
    assert record["status"] == "ok"
    matrix = case.batch * case.n_heads * T * T * 4
    assert record["peak_bytes"] == pytest.approx(matrix, rel=0.05)
    assert record["peak_bytes"] == pytest.approx(record["peak_bytes_predicted"], rel=0.05)
    if impl == "torch":
        # counted (FlopCounterMode) equals analytic for the explicit torch path, exactly
        assert record["flops_counted"] == record["flops_analytic"] == 4 * T * T * 32
        assert record["flops_match"] is True
        assert record["peak_method"] == "torch-profiler"
