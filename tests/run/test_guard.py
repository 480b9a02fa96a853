"""bench.run.guard: cases predicted not to fit are skipped before they run."""

import dataclasses

import pytest

from bench.run import guard
from bench.case import Case, Measure
from bench.run.runner import run_case

GIB = 1024 ** 3
CASE = Case(impl="numpy", block="attention", batch=1, seq_len=256, d_model=32, n_heads=2,
            threads=1)


def test_parse_bytes():
    assert guard.parse_bytes("8GiB") == 8 * GIB
    assert guard.parse_bytes("512MiB") == 512 * 2 ** 20
    assert guard.parse_bytes("2GB") == 2 * 10 ** 9
    assert guard.parse_bytes(4096) == 4096
    with pytest.raises(ValueError):
        guard.parse_bytes("lots")


def test_memory_limit_is_rss_plus_available_minus_reserve_capped_by_max_memory():
    measure = Measure()
    total = 16 * GIB                       # reserve = max(1 GiB, 5% of 16 GiB) = 1 GiB
    assert guard.memory_limit(measure, rss=GIB, available=4 * GIB, total=total) == 4 * GIB
    capped = Measure(max_memory="2GiB")
    assert guard.memory_limit(capped, rss=GIB, available=4 * GIB, total=total) == 2 * GIB
    assert guard.memory_limit(measure, rss=GIB, available=0, total=total) == GIB


def test_need_grows_with_the_attention_matrix_and_includes_the_margin():
    small = guard.case_bytes(CASE)
    large = guard.case_bytes(dataclasses.replace(CASE, seq_len=512))
    # the B*H*T*T matrix dominates: doubling T roughly quadruples the activation term
    assert 3.0 < large / small < 4.5
    no_acc = Measure(accuracy=False)
    assert guard.predicted_need(CASE, no_acc) == int(small * (1 + guard.MARGIN))
    # with accuracy on, an fp32 case must also fit its float64 reference (8-byte elements)
    assert guard.predicted_need(CASE, Measure()) > guard.predicted_need(CASE, no_acc)


def test_check_fits_and_does_not_fit():
    measure = Measure(accuracy=False)
    need = guard.predicted_need(CASE, measure)
    plenty = guard.check(CASE, measure, rss=GIB, available=64 * GIB, total=64 * GIB)
    assert plenty is None
    # just under what is needed once the reserve is taken off
    tight = guard.check(CASE, measure, rss=GIB, available=GIB + need - 1, total=8 * GIB)
    assert tight is not None
    assert tight.startswith("needs ") and tight.endswith(" GiB available")


def test_check_reports_both_sides_in_gib():
    huge = dataclasses.replace(CASE, impl="torch", seq_len=65536, batch=64)
    reason = guard.check(huge, Measure(), rss=GIB, available=8 * GIB, total=8 * GIB)
    need_gib, limit_gib = (float(x) for x in
                           reason.removeprefix("needs ").removesuffix(" GiB available")
                           .split(" GiB, "))
    assert need_gib > 1000 and limit_gib == pytest.approx(8.0, abs=0.01)


def _must_not_prepare(case):
    raise AssertionError("a case the guard skips must not be prepared")


def test_run_case_skips_a_case_that_would_not_fit_max_memory():
    record = run_case(CASE, Measure(max_memory="1MiB"), prepare=_must_not_prepare)
    assert record["status"].startswith("skipped: needs ")
    assert record["status"].endswith(" GiB available")
    assert record["median_s"] is None and record["peak_bytes"] is None
