"""Run folders in real use: the lock, damaged files, the incomplete-run header, kill -9 + resume."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.cli import dispatch as main
from bench.config import load_config
from bench.run.lock import LOCK_FILE, RunLock, RunLocked, holder_running, read_holder
from bench.run.writer import RunDirError, check_run_dir, read_meta, read_records

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "configs" / "smoke.yaml")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def _bench(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "bench", *args], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _wait_for(predicate, proc, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not predicate() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


# ---- the lock ---------------------------------------------------------------------------

def test_lock_is_exclusive_and_names_the_holder(tmp_path):
    with RunLock(tmp_path / "run") as first:
        assert holder_running(first.run_dir)
        with pytest.raises(RunLocked) as err:
            RunLock(tmp_path / "run").acquire()
        message = str(err.value)
        assert f"pid {os.getpid()}" in message and socket.gethostname() in message
        assert "\n" not in message
    assert not holder_running(tmp_path / "run")
    RunLock(tmp_path / "run").acquire().release()           # free again


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    (run / LOCK_FILE).write_text(json.dumps({"pid": int(dead), "host": socket.gethostname(),
                                             "since": time.time() - 60}))
    lock = RunLock(run).acquire()
    try:
        assert lock.took_over["pid"] == int(dead)
        assert read_holder(run)["pid"] == os.getpid()
    finally:
        lock.release()


@pytest.mark.slow
def test_second_run_on_the_same_folder_is_refused_and_the_first_finishes(tmp_path):
    out = tmp_path / "run"
    # >= 1.5 s of timing per case: the 7 cases left outlast the second run's start-up
    slow = ["--set", "measure.min_time_s=1.5"]
    first = _bench("run", SMOKE, "--out", str(out), "--no-report", *slow)
    _wait_for(lambda: _lines(out / "records.jsonl") >= 1, first)
    assert first.poll() is None, first.communicate()
    second = subprocess.run([sys.executable, "-m", "bench", "run", SMOKE, "--out", str(out),
                             "--no-report", *slow], cwd=REPO, env=ENV, capture_output=True,
                            text=True, timeout=120)
    assert first.poll() is None, "the first run ended before the second was refused"
    assert second.returncode == 2
    err = second.stderr.strip().splitlines()
    assert len(err) == 1 and f"pid {first.pid}" in err[0] and socket.gethostname() in err[0]
    _, first_err = first.communicate(timeout=120)
    assert first.returncode == 0, first_err
    ids = [r["case_id"] for r in read_records(out)]
    assert len(ids) == len(set(ids)) == len(load_config(SMOKE).cases)
    assert read_meta(out)["status"] == "complete"


# ---- damaged files ------------------------------------------------------------------------

def _record(case_id, median=0.01):
    return {"case_id": case_id, "status": "ok", "impl": "torch", "block": "attention",
            "seq_len": 64, "samples_s": [median] * 5, "median_s": median}


def _folder(tmp_path, name="run", records=None, meta=None, config="name: smoke\n"):
    run = tmp_path / name
    run.mkdir()
    lines = records if records is not None else [json.dumps(_record(f"c{i}")) for i in range(3)]
    (run / "records.jsonl").write_text("".join(line + "\n" for line in lines))
    (run / "meta.json").write_text(meta if meta is not None else
                                   json.dumps({"status": "complete", "n_cases": 3}))
    (run / "config.yaml").write_text(config)
    return run


DAMAGES = {
    "records-mid-line": (dict(records=[json.dumps(_record("c0")), '{"case_id": "c1", "sta',
                                       json.dumps(_record("c2"))]), "records.jsonl: line 2"),
    "records-not-object": (dict(records=[json.dumps(_record("c0")), "[1, 2]",
                                         json.dumps(_record("c2"))]), "records.jsonl: line 2"),
    "meta": (dict(meta='{\n  "status": "complete",\n  "n_cases": 3,,\n}'), "meta.json: line 3"),
    "config": (dict(config="name: smoke\nmeasure: {warmup: 1\ngrid: [\n"), "config.yaml: line"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_damaged_file_is_one_line_naming_file_and_line(tmp_path, damage):
    kwargs, expected = DAMAGES[damage]
    run = _folder(tmp_path, **kwargs)
    with pytest.raises(RunDirError, match=expected.replace(".", r"\.")):
        check_run_dir(run)


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_report_and_compare_exit_2_without_traceback(tmp_path, damage, capsys):
    kwargs, expected = DAMAGES[damage]
    bad = _folder(tmp_path, "bad", **kwargs)
    good = _folder(tmp_path, "good")
    for argv in (["report", str(bad)], ["compare", str(good), str(bad)],
                 ["compare", str(bad), str(good)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0] and "Traceback" not in err[0], err


def test_resume_of_a_damaged_folder_exits_2(tmp_path, capsys):
    from bench.run.driver import fingerprint

    config = load_config(SMOKE)
    meta = json.dumps({"config_hash": config.config_hash, "fingerprint": fingerprint(),
                       "status": "interrupted", "n_cases": len(config.cases)})
    run = _folder(tmp_path, meta=meta, records=[json.dumps(_record("c0")), "garbage",
                                                json.dumps(_record("c2"))])
    before = (run / "records.jsonl").read_bytes()
    assert main(["run", SMOKE, "--resume", str(run), "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "records.jsonl: line 2" in err[0]
    assert (run / "records.jsonl").read_bytes() == before          # nothing rewritten
    assert not holder_running(run)                                  # the lock was let go


# ---- the incomplete-run header -----------------------------------------------------------

def test_header_of_an_interrupted_run_says_how_many_why_and_how_to_resume(tmp_path):
    from bench.analysis.incomplete import incomplete_header

    meta = {"status": "interrupted", "n_cases": 103, "resume_command":
            "python -m bench run configs/seq_sweep.yaml --resume results/x"}
    records = [{"case_id": f"c{i}", "status": "ok"} for i in range(13)]
    records.append({"case_id": "c13", "status": "failed: boom"})
    lines = incomplete_header(tmp_path, meta, records)
    text = "\n".join(lines)
    assert "13 of 103 cases" in lines[0] and "90 missing" in lines[0] and "1 failed" in lines[0]
    assert "interrupted" in text and "--resume results/x" in text
    assert incomplete_header(tmp_path, {"status": "complete", "n_cases": 1},
                             [{"case_id": "a", "status": "ok"}]) == []


def test_header_of_a_killed_run_and_a_running_one(tmp_path):
    from bench.analysis.incomplete import incomplete_header

    meta = {"status": "running", "n_cases": 4, "config_path": "configs/smoke.yaml"}
    killed = "\n".join(incomplete_header(tmp_path, meta, []))
    assert "killed" in killed and "0 of 4" in killed
    assert f"--resume {tmp_path}" in killed                         # built from meta
    with RunLock(tmp_path):
        running = "\n".join(incomplete_header(tmp_path, meta, []))
    assert "still running" in running and f"pid {os.getpid()}" in running


# ---- kill -9 at any moment, then resume ---------------------------------------------------

@pytest.mark.slow
def test_kill_9_at_any_moment_then_resume_loses_nothing_and_duplicates_nothing(tmp_path):
    out = tmp_path / "run"
    records_path = out / "records.jsonl"
    cases = load_config(SMOKE).cases
    seen_before_kill: dict[str, float] = {}          # case_id -> start_time of its record
    # kill while starting up (no meta.json yet or just written), then after 2 and 5 records
    for trigger in (lambda: out.exists(), lambda: _lines(records_path) >= 2,
                    lambda: _lines(records_path) >= 5):
        proc = _bench("run", SMOKE, "--out", str(out), "--no-report")
        _wait_for(trigger, proc)
        proc.kill()                                              # SIGKILL: no clean-up at all
        proc.wait(timeout=30)
        if (out / "meta.json").exists():
            complete = {r["case_id"]: r["start_time"] for r in read_records(out)
                        if r["status"] == "ok"}
            assert complete.items() >= seen_before_kill.items()      # nothing lost or redone
            seen_before_kill = complete
    done = subprocess.run([sys.executable, "-m", "bench", "run", SMOKE, "--out", str(out),
                           "--no-report"], cwd=REPO, env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    final = read_records(out)
    ids = [r["case_id"] for r in final]
    assert len(ids) == len(set(ids))                                 # none twice
    assert set(ids) == {c.case_id for c in cases}                    # none lost
    assert all(r["status"] == "ok" for r in final)
    kept = {r["case_id"]: r["start_time"] for r in final}
    assert kept.items() >= seen_before_kill.items()                 # measured once, kept
    assert read_meta(out)["status"] == "complete"


def test_a_process_worker_dies_with_its_killed_driver():
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux only")
    child = ("import os, sys, time; from bench.run.executors.process import _die_with_parent; "
             "_die_with_parent(int(sys.argv[1])); print('armed', flush=True); time.sleep(60)")
    driver = ("import os, subprocess, sys, time; "
              f"p = subprocess.Popen([sys.executable, '-c', {child!r}, str(os.getpid())], "
              "stdout=subprocess.PIPE, text=True); p.stdout.readline(); "
              "print(p.pid, flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", driver], cwd=REPO, env=ENV,
                            stdout=subprocess.PIPE, text=True)
    worker_pid = int(proc.stdout.readline())
    proc.kill()                                      # kill -9 of the driver
    proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            break
        try:                                         # reap it if it became our zombie
            os.waitpid(worker_pid, os.WNOHANG)
        except ChildProcessError:
            pass
        time.sleep(0.05)
    else:
        os.kill(worker_pid, 9)
        pytest.fail("the worker outlived its driver")
