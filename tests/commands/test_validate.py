"""`python -m bench validate`: exit 0 with a case table, exit 2 with one line on stderr."""

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.cli import dispatch as main

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "configs" / "smoke.yaml"


def test_valid_config_lists_cases(capsys):
    assert main(["validate", str(SMOKE), "--set", "threads=1"]) == 0
    out = capsys.readouterr().out
    assert "8 cases" in out and "config hash" in out
    table = out[out.index("#  impl"):].splitlines()
    assert table[0].split() == ["#", "impl", "block", "T", "case_id"]   # only varying columns
    assert table[1].split()[:4] == ["1", "numpy", "attention", "16"]
    assert "d_model=64" in out and "threads=1" in out                    # the shared values


def test_set_changes_the_listing(capsys):
    assert main(["validate", str(SMOKE), "--set", "threads=1", "--set", "seq_len=[8,16,24]",
                 "--set", "impl=torch"]) == 0
    assert "6 cases" in capsys.readouterr().out


def test_json_lists_one_object_per_case(capsys):
    assert main(["validate", str(SMOKE), "--set", "threads=1", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == 8 and len({r["case_id"] for r in rows}) == 8
    assert rows[0]["sweep"] == "smoke" and rows[0]["impl"] == "numpy"


def test_invalid_config_exits_2_with_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid: {seq_len: [16, -4]}\ndefaults: {threads: 1}\n")
    assert main(["validate", str(bad)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"error: {bad}: grid.seq_len: must be a positive int, got -4\n"


def test_bad_set_exits_2(capsys):
    assert main(["validate", str(SMOKE), "--set", "colour=red"]) == 2
    assert capsys.readouterr().err.startswith("error: --set: colour: unknown key")


def test_subprocess_exit_2_no_traceback_nothing_written(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("defaults: {d_model: 100, n_heads: 12, threads: 1}\ngrid: {seq_len: [8]}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "bench", "validate", str(bad)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert lines[0].startswith(f"error: {bad}: defaults.d_model: d_model=100 is not divisible")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]    # nothing written
