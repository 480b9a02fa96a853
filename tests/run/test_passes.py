"""Timing passes (bench.run.passes): later passes fold into their case's record, best pass wins."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.run import passes
from bench.run.writer import RunWriter, read_records

ROOT = Path(__file__).resolve().parents[2]


def _record(case_id, samples, status="ok"):
    return {"case_id": case_id, "status": status, "samples_s": samples, "median_s": None,
            "flops_analytic": 1e9, "interference": False}


def test_merge_takes_the_pass_with_the_lowest_median_and_keeps_every_sample():
    first = _record("a", [1.30, 1.31, 1.29])                 # a slow spell: the whole pass lifted
    later = passes.pass_line(_record("a", [1.00, 1.02, 0.99, 1.01]), 2)
    (merged,) = passes.merge([first, later])
    assert merged["passes"] == 2 and merged["best_pass"] == 2
    assert merged["pass_medians_s"] == pytest.approx([1.30, 1.005])
    assert merged["pass_spread"] == pytest.approx(1.30 / 1.005)
    assert merged["median_s"] == pytest.approx(1.005) and merged["min_s"] == 0.99
    assert merged["samples_s"] == [1.30, 1.31, 1.29, 1.00, 1.02, 0.99, 1.01]
    assert merged["sample_pass"] == [1, 1, 1, 2, 2, 2, 2]
    assert merged["gflops_per_s"] == pytest.approx(1 / 1.005)


def test_merge_leaves_single_pass_and_unmeasured_records_alone():
    plain = _record("b", [2.0])
    failed_pass = passes.pass_line(_record("a", [0.5], status="failed: boom"), 2)
    skipped = _record("c", None, status="skipped: budget")
    assert passes.merge([plain, _record("a", [1.0]), failed_pass, skipped]) == [
        plain, _record("a", [1.0]), skipped]


def test_compact_keeps_pass_lines_of_kept_cases(tmp_path):
    writer = RunWriter.create(tmp_path / "run", "name: x\n", {"status": "running"})
    writer.append(_record("a", [1.0]))
    writer.append(_record("b", [1.0], status="failed: x"))
    writer.append(passes.pass_line(_record("a", [0.9]), 2))
    writer.append(passes.pass_line(_record("b", [0.9]), 2))       # its case failed: dropped
    _, kept = RunWriter.reopen(tmp_path / "run")
    assert [(r["case_id"], r.get("passes")) for r in kept] == [("a", 2)]
    assert read_records(tmp_path / "run")[0]["median_s"] == 0.9


@pytest.mark.slow
def test_a_two_pass_run_times_every_case_twice(tmp_path):
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "bench", "run", "configs/smoke.yaml", "--out",
                    str(out), "--set", "measure.passes=2", "--no-report"], cwd=ROOT,
                   check=True, capture_output=True, text=True)
    lines = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    firsts = [line for line in lines if not passes.is_pass_line(line)]
    seconds = [line for line in lines if passes.is_pass_line(line)]
    assert sorted(r["case_id"] for r in firsts) == sorted(r["case_id"] for r in seconds)
    assert all(r["flops_counted"] is None for r in seconds if "flops_counted" in r)
    merged = read_records(out)
    assert len(merged) == len(firsts) and all(r["passes"] == 2 for r in merged)


def test_timing_only_keeps_the_config_but_takes_the_later_pass_minimum():
    from bench.case import Measure

    plain = passes.timing_only(Measure(min_repeats=5))
    assert plain.min_repeats == 5 and not (plain.count_flops or plain.measure_memory
                                          or plain.accuracy or plain.profile)
    lean = passes.timing_only(Measure(min_repeats=5, pass_min_repeats=2, max_repeats=10))
    assert (lean.min_repeats, lean.max_repeats, lean.min_time_s) == (2, 10, Measure.min_time_s)
    brief = passes.timing_only(Measure(min_time_s=0.2, pass_min_time_s=0.05, max_time_s=1.0))
    assert (brief.min_time_s, brief.max_time_s) == (0.05, 1.0)


def test_wants_pass_skips_long_cases_only_when_asked():
    from bench.case import Measure

    short = {"status": "ok", "median_s": 0.05}
    long = {"status": "ok", "median_s": 0.25}
    done = {"status": "ok", "median_s": 0.05, "passes": 3}
    assert passes.wants_pass(long, 2, Measure(passes=3))                  # no limit: every case
    assert not passes.wants_pass(long, 2, Measure(passes=3, pass_below_s=0.1))
    assert passes.wants_pass(short, 2, Measure(passes=3, pass_below_s=0.1))
    assert not passes.wants_pass(done, 3, Measure(passes=3))               # timed 3 times
    assert passes.wants_pass(done, 4, Measure(passes=4))
    assert not passes.wants_pass({"status": "failed: x", "median_s": 0.01}, 2, Measure())
    assert not passes.wants_pass({}, 2, Measure())


def test_pass_settings_are_checked_in_the_config(tmp_path):
    from bench.config import ConfigError, load_config

    bad = tmp_path / "bad.yaml"
    for setting, words in [("pass_min_repeats: -1", "int >= 0"),
                           ("pass_below_s: -0.5", ">= 0"),
                           ("pass_min_time_s: -1", ">= 0")]:
        bad.write_text(f"measure: {{{setting}}}\ngrid: {{impl: [numpy], seq_len: [8]}}\n")
        with pytest.raises(ConfigError, match=words):
            load_config(bad)


def test_a_run_names_its_pass_to_pass_agreement(capsys):
    from bench.commands.run import _pass_agreement

    steady = {"status": "ok", "median_s": 0.01, "pass_medians_s": [0.01, 0.0101, 0.0102]}
    noisy = {"status": "ok", "median_s": 0.01, "pass_medians_s": [0.01, 0.013, 0.0102]}
    _pass_agreement([steady] * 9)
    assert "in 100% of pass pairs" in capsys.readouterr().err
    _pass_agreement([noisy] * 9 + [{"status": "failed: x"}])
    err = capsys.readouterr().err
    assert "in 33% of pass pairs" in err and "noisy: two runs here may differ by up to ~30%" in err
    _pass_agreement([{"status": "ok", "median_s": 1e-5, "pass_medians_s": [1e-5, 2e-5]}])
    assert capsys.readouterr().err == ""                        # below 1 ms: no figure
