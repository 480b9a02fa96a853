"""bench.run.executors: inline and process (spawned, crash- and timeout-proof) executors."""

import os
import signal
import time

import numpy as np
import pytest

from bench.case import Case, Measure
from bench.run.executors import make_executor
from bench.run.executors.inline import InlineExecutor
from bench.run.executors.process import ProcessExecutor, describe_exit
from bench.impls.prepare import Prepared
from bench.run.runner import RECORD_KEYS

MEASURE = Measure(warmup=1, min_repeats=3, min_time_s=0.0, max_time_s=1.0, accuracy=False)


def _case(seq_len: int) -> Case:
    return Case(impl="numpy", block="ffn", batch=1, seq_len=seq_len, d_model=16, n_heads=2,
                d_ff=32, threads=1)


OK, CRASH, HANG, RAISE = _case(8), _case(9), _case(10), _case(11)


def scripted_prepare(case: Case) -> Prepared:
    """Module level, so a spawned worker can unpickle it: behaviour chosen by seq_len."""
    if case.seq_len == CRASH.seq_len:
        os.kill(os.getpid(), signal.SIGKILL)          # a segfault / OOM kill, as seen from outside
    if case.seq_len == HANG.seq_len:
        time.sleep(120)
    if case.seq_len == RAISE.seq_len:
        raise ValueError("bad case")
    x = np.ones((4, 4))
    return Prepared(fn=lambda: x @ x, output=lambda: x, backend="numpy", device="cpu")


def test_inline_yields_records_in_order_and_reports_starts():
    started = []
    records = list(InlineExecutor(prepare=scripted_prepare).run(
        [OK, RAISE], MEASURE, on_start=started.append))
    assert started == [OK, RAISE]
    assert [r["case_id"] for r in records] == [OK.case_id, RAISE.case_id]
    assert records[0]["status"] == "ok"
    assert records[1]["status"] == "failed: ValueError: bad case"
    assert all(r["executor"] == "inline" and r["pid"] == os.getpid() for r in records)


@pytest.mark.slow
def test_process_runs_in_a_fresh_process_and_survives_a_crash():
    executor = ProcessExecutor(prepare=scripted_prepare, timeout_s=120)
    records = list(executor.run([OK, CRASH], MEASURE))
    ok, crashed = records
    assert tuple(ok) == RECORD_KEYS and tuple(crashed) == RECORD_KEYS
    assert ok["status"] == "ok" and ok["executor"] == "process"
    assert ok["pid"] != os.getpid() and ok["median_s"] > 0
    assert crashed["status"] == "failed: worker died with signal 9 (SIGKILL)"
    assert crashed["case_id"] == CRASH.case_id and crashed["median_s"] is None
    assert crashed["end_time"] >= crashed["start_time"] and crashed["hostname"]


def test_process_kills_a_case_past_its_timeout():
    start = time.monotonic()
    (record,) = ProcessExecutor(prepare=scripted_prepare, timeout_s=3.0).run([HANG], MEASURE)
    assert record["status"] == "failed: timeout after 3 s"
    assert record["executor"] == "process"
    assert 3.0 <= time.monotonic() - start < 60


def test_process_timeout_defaults_to_measure_timeout():
    measure = Measure(timeout_s=2.5, accuracy=False)
    (record,) = ProcessExecutor(prepare=scripted_prepare).run([HANG], measure)
    assert record["status"] == "failed: timeout after 2.5 s"


def test_describe_exit():
    assert describe_exit(-9) == "worker died with signal 9 (SIGKILL)"
    assert describe_exit(-11) == "worker died with signal 11 (SIGSEGV)"
    assert describe_exit(3) == "worker exited with code 3"
    assert describe_exit(0) == "worker exited without a result"


def test_make_executor():
    assert isinstance(make_executor("inline"), InlineExecutor)
    assert make_executor("process", timeout_s=5).timeout_s == 5
    with pytest.raises(ValueError, match="inline, process, ray"):
        make_executor("threads")
