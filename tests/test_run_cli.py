"""`python -m bench run`: the smoke sweep end to end, dry run, bad input, mixing runs refused."""

import json
from pathlib import Path

import pytest

from bench.cli import main
from bench.config import load_config
from bench.writer import read_meta, read_records

REPO = Path(__file__).resolve().parents[1]
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
    assert "versions" in meta                                   # bench.environment.collect_meta
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
