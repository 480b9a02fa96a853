"""bench.run.driver: the run's wall-clock budget (measure.run_budget_s) decides how many later
timing passes run, never which cases; meta.json and the report say what was spent where."""

import json
from pathlib import Path

from bench.case import Measure
from bench.run import schedule
from support import run

SMOKE = str(Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml")


def test_a_pass_is_estimated_from_its_cases_calls():
    m = Measure(warmup=1, min_repeats=3, min_time_s=0.05, pass_min_repeats=1, pass_min_time_s=0.025)
    records = [{"median_s": 0.001}, {"median_s": 0.5}]
    # a 1 ms case: its 25 ms floor + 2 warm-up/probe calls; a 0.5 s case: one call + 2
    expected = (0.025 + 2 * 0.001) + (0.5 + 2 * 0.5) + 2 * schedule.PASS_CASE_OVERHEAD_S
    assert abs(schedule.estimate_pass_s(records, m) - expected) < 1e-12


def test_no_budget_always_fits_and_a_spent_one_does_not():
    assert schedule.fits_budget(Measure(), 1e9) == (True, "")
    fits, reason = schedule.fits_budget(Measure(run_budget_s=1.0), 5.0)
    assert not fits and "run_budget_s = 1 s" in reason


def _run(capsys, tmp_path, budget):
    out = tmp_path / f"b{budget}"
    rc, _, err = run(capsys, "run", SMOKE, "--out", str(out), "--set", "measure.passes=3",
                     "--set", f"measure.run_budget_s={budget}", "--set", "threads=2",
                     "--no-report")
    assert rc == 0, err
    meta = json.loads((out / "meta.json").read_text())
    lines = [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]
    return meta["run_budget"], lines, err


def test_a_tight_budget_leaves_passes_out_but_keeps_every_case(capsys, tmp_path):
    budget, lines, err = _run(capsys, tmp_path, 1)
    assert budget["passes_done"] == 1 and budget["left_out"]["passes"] == [2, 3]
    assert "left out" in err
    assert len([x for x in lines if "pass" not in x]) == 8          # every case of pass 1
    assert not [x for x in lines if "pass" in x]


def test_an_ample_budget_runs_every_pass(capsys, tmp_path):
    budget, lines, _ = _run(capsys, tmp_path, 1000)
    assert budget["passes_done"] == 3 and "left_out" not in budget
    assert set(budget["passes_s"]) == {"2", "3"} and budget["pass_1_s"] > 0
    assert len([x for x in lines if x.get("pass") == 3]) == 8


def test_the_report_says_where_the_time_went():
    from bench.analysis.describe import budget_sentence

    meta = {"run_budget": {"start_s": 3.2, "peak_cached": True, "pass_1_s": 98.0,
                           "passes_s": {"2": 23.0, "3": 22.5}, "passes_done": 3,
                           "passes_planned": 4, "budget_s": 170, "end_s": 150,
                           "left_out": {"passes": [4], "reason": "pass 4 (~23 s) would end"}}}
    text = budget_sentence(meta)
    assert "pass 1 98 s" in text and "passes 2-3 23/22 s" in text and "run budget 170 s" in text
    assert "3 of 4 passes" in text and budget_sentence({}) == ""


def test_a_partial_pass_takes_whole_blocks_that_fit(monkeypatch):
    from bench.case import Case

    cases = [Case(impl="numpy", block="attention", seq_len=n) for n in (32, 64)] + \
            [Case(impl="numpy", block="ffn", seq_len=n) for n in (32, 64)]
    slow = {cases[0].case_id: 5.0, cases[1].case_id: 5.0}          # attention: ~32 s of pass
    merged = {c.case_id: {"median_s": slow.get(c.case_id, 0.001)} for c in cases}
    m = Measure(warmup=1, min_repeats=3, pass_min_repeats=1, pass_min_time_s=0.025,
                run_budget_s=100.0)
    monkeypatch.setattr(schedule, "process_elapsed_s", lambda: 80.0)   # 10 s left after the reserve
    chosen, blocks = schedule.partial_pass(cases, merged, m, scale=1.0)
    assert blocks == ["ffn"] and chosen == cases[2:]                 # never half a block
    monkeypatch.setattr(schedule, "process_elapsed_s", lambda: 95.0)   # nothing left
    assert schedule.partial_pass(cases, merged, m, scale=1.0) == ([], [])


def test_the_report_names_a_partial_pass():
    from bench.analysis.describe import budget_sentence

    meta = {"run_budget": {"start_s": 3.0, "peak_cached": True, "pass_1_s": 90.0,
                           "passes_s": {"2": 23.0, "3": 9.0}, "passes_done": 3,
                           "passes_planned": 4, "budget_s": 170, "end_s": 160,
                           "left_out": {"passes": [4], "reason": "pass 3 (~23 s) would end",
                                        "partial_pass": {"pass": 3, "blocks": ["ffn"]}}}}
    text = budget_sentence(meta)
    assert "2 of 4 passes over every case, pass 3 over block(s) ffn only" in text
