"""Ctrl-C mid-sweep, a torn last line and a failed case, then resume: every case exactly once."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.config import load_config
from bench.run.writer import read_meta, read_records

REPO = Path(__file__).resolve().parents[2]
SMOKE = "configs/smoke.yaml"


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


@pytest.mark.slow
def test_sigint_stops_after_the_current_case_and_resume_completes(tmp_path):
    out = tmp_path / "run"
    records_path = out / "records.jsonl"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "bench", "run", SMOKE, "--out", str(out),
                             "--no-report"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while _lines(records_path) < 1 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)                  # what Ctrl-C delivers
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err

    cases = load_config(REPO / SMOKE).cases
    first = read_records(out)
    assert 1 <= len(first) < len(cases)              # stopped mid-sweep, after a whole case
    assert read_meta(out)["status"] == "interrupted"
    assert (out / "results.csv").exists()
    resume = err.strip().splitlines()[-1].strip()
    assert resume.startswith("python -m bench run") and f"--resume {out}" in resume

    # a kill while writing leaves a torn tail; a failed case must be rerun, not kept
    failed = dict(first[0], status="failed: RuntimeError: flaky")
    lines = [json.dumps(failed)] + [json.dumps(r) for r in first[1:]]
    records_path.write_text("\n".join(lines) + '\n{"case_id": "torn", "sta')

    argv = shlex.split(resume)
    assert argv[:3] == ["python", "-m", "bench"]
    done = subprocess.run([sys.executable] + argv[1:], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr

    final = read_records(out)
    ids = [r["case_id"] for r in final]
    assert len(ids) == len(set(ids))                 # never a case twice
    assert set(ids) == {c.case_id for c in cases}    # the union is the whole sweep
    assert all(r["status"] == "ok" for r in final)
    assert b"torn" not in records_path.read_bytes()
    meta = read_meta(out)
    assert meta["status"] == "complete" and len(meta["sessions"]) == 2
    assert [s["status"] for s in meta["sessions"]] == ["interrupted", "complete"]
