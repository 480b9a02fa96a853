"""`python -m bench run`: the smoke sweep end to end, dry run, bad input, mixing runs refused."""

import json
from pathlib import Path

import pytest

from bench.cli import dispatch as main
from bench.config import load_config
from bench.run.writer import read_meta, read_records

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "configs" / "smoke.yaml")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """One real run of configs/smoke.yaml, shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("smoke") / "run"
    assert main(["run", SMOKE, "--out", str(out)]) == 0
    return out


def test_smoke_run_writes_the_folder_with_one_record_per_case(smoke_run):
    config = load_config(SMOKE)
    records = read_records(smoke_run)
    assert sorted(r["case_id"] for r in records) == sorted(c.case_id for c in config.cases)
    assert all(r["status"] == "ok" for r in records), [r["status"] for r in records]
    meta = read_meta(smoke_run)
    assert meta["config_hash"] == config.config_hash and meta["status"] == "complete"
    assert meta["start_time"] <= meta["end_time"] and meta["n_records"] == len(records)
    assert meta["measure"]["warmup"] == config.measure.warmup
    assert "versions" in meta                                   # bench.machine.environment.collect_meta
    assert (smoke_run / "config.yaml").exists()
    import pandas as pd

    frame = pd.read_csv(smoke_run / "results.csv")
    assert len(frame) == len(records) and "median_s" in frame


def test_rerun_into_the_same_folder_runs_nothing_and_duplicates_nothing(smoke_run, capsys):
    before = (smoke_run / "records.jsonl").read_bytes()
    assert main(["run", SMOKE, "--out", str(smoke_run), "--no-report"]) == 0
    assert (smoke_run / "records.jsonl").read_bytes() == before
    assert "0 case(s) to run" in capsys.readouterr().err
    assert len(read_meta(smoke_run)["sessions"]) == 2


def test_a_folder_of_another_config_is_refused(smoke_run, capsys):
    before = (smoke_run / "records.jsonl").read_bytes()
    code = main(["run", SMOKE, "--out", str(smoke_run), "--set", "seq_len=[8]"])
    assert code == 2
    err = capsys.readouterr().err
    assert "another config" in err and len(err.strip().splitlines()) == 1
    assert (smoke_run / "records.jsonl").read_bytes() == before


def test_a_config_error_is_one_line_exit_2_and_no_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {impl: [numpy], seq_len: [-4]}\n")
    out = tmp_path / "out"
    assert main(["run", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seq_len" in err[0]
    assert not out.exists() and not (tmp_path / "results").exists()


def test_resume_of_a_missing_folder_is_refused(tmp_path, capsys):
    assert main(["run", SMOKE, "--resume", str(tmp_path / "nowhere")]) == 2
    assert "not a tfbench run" in capsys.readouterr().err


def test_dry_run_lists_predictions_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", SMOKE, "--dry-run"]) == 0
    out = capsys.readouterr().out
    config = load_config(SMOKE)
    assert f"{len(config.cases)} case(s)" in out
    for case in config.cases:
        assert case.label() in out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_process_isolation_from_the_command_line(tmp_path):
    out = tmp_path / "run"
    code = main(["run", SMOKE, "--out", str(out), "--isolation", "process", "--timeout", "120",
                 "--no-report", "--set", "impl=numpy", "--set", "block=ffn",
                 "--set", "seq_len=16"])
    assert code == 0
    (record,) = read_records(out)
    assert record["status"] == "ok" and record["executor"] == "process"
    meta = json.loads((out / "meta.json").read_text())
    assert meta["executor"] == "process" and meta["measure"]["timeout_s"] == 120


def test_first_ctrl_c_asks_to_stop_the_second_aborts():
    import io

    from bench.run.driver import StopRequest

    stop = StopRequest(stream=io.StringIO())
    stop(2, None)
    assert stop.requested and "after the current case" in stop.stream.getvalue()
    with pytest.raises(KeyboardInterrupt):
        stop(2, None)


def test_progress_lines_and_eta_from_finished_cases():
    import io

    from bench.case import Case
    from bench.run.progress import Progress, format_duration, format_result

    assert format_duration(75.2) == "1:15" and format_duration(3725) == "1:02:05"
    assert format_duration(None) == "?"
    now = [100.0]
    stream = io.StringIO()
    progress = Progress(4, stream=stream, clock=lambda: now[0])
    case = Case(impl="numpy", block="ffn", seq_len=16)
    progress.start(case)
    assert progress.eta() is None
    now[0] += 10.0
    record = {**case.to_dict(), "status": "ok", "median_s": 0.00123, "gflops_per_s": 45.6,
              "peak_bytes": 12_300_000, "unstable": False}
    progress.finish(record)
    assert progress.eta() == pytest.approx(30.0)               # 10 s per case, 3 left
    progress.start(case)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/4] numpy/ffn") and "ETA ?" in lines[0]
    assert lines[1].startswith("[1/4] ok") and "1.23 ms" in lines[1]
    assert "45.6 GFLOP/s" in lines[1] and "11.73 MiB" in lines[1]
    assert "elapsed 0:10  ETA 0:30" in lines[2]
    failed = {**record, "status": "failed: timeout after 5 s"}
    assert format_result(failed).startswith("failed: timeout after 5 s  numpy/ffn")
