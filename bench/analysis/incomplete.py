"""The first lines of a report on a run that did not finish: how much is there, why, how to resume.

A run is incomplete when meta.json's status is not `complete`, or when fewer cases are done
(status ok or skipped) than the config has (`n_cases`). The reason comes from the status the
driver wrote (`interrupted`: Ctrl-C, stopped after a case; `aborted`: a second Ctrl-C) or, when
it still says `running`, from the run folder's lock: held means a run is in progress, free
means the run was killed before it could write anything (kill -9, out of memory, power).

Tests: tests/run/test_rundir.py.
"""

from __future__ import annotations

import shlex
from pathlib import Path

from bench.reader import describe_holder, holder_running, is_done, read_holder

REASONS = {
    "interrupted": "it was interrupted (Ctrl-C; it stopped after the case in progress)",
    "aborted": "it was aborted (a second Ctrl-C stopped the case in progress)",
    "killed": ("it was killed or crashed before it could finish (meta.json still says running "
               "and no process holds the run folder)"),
}


def run_state(run_dir: str | Path, meta: dict, records: list[dict]) -> dict:
    """{"complete", "n_cases", "n_done", "n_failed", "reason", "resume"} for a run folder."""
    done = {r.get("case_id") for r in records if is_done(r)}
    failed = {r.get("case_id") for r in records if str(r.get("status", "")).startswith("failed")}
    n_cases = meta.get("n_cases")
    status = meta.get("status")
    if status == "running":
        if holder_running(run_dir):
            reason = f"it is still running ({describe_holder(read_holder(run_dir))})"
        else:
            reason = REASONS["killed"]
    elif status in REASONS:
        reason = REASONS[status]
    elif status == "complete":
        reason = "its last session ended, yet some cases have no record"
    else:
        reason = f"meta.json gives status {status!r}"
    complete = status == "complete" and (n_cases is None or len(done) >= n_cases)
    return {"complete": complete, "n_cases": n_cases, "n_done": len(done),
            "n_failed": len(failed - done), "reason": reason,
            "resume": meta.get("resume_command") or _fallback_resume(run_dir, meta)}


def _fallback_resume(run_dir, meta: dict) -> str:
    argv = ["python", "-m", "bench", "run", str(meta.get("config_path") or "CONFIG"),
            "--resume", str(run_dir)]
    for item in meta.get("overrides") or []:
        argv += ["--set", str(item)]
    return shlex.join(argv)


def incomplete_header(run_dir: str | Path, meta: dict, records: list[dict]) -> list[str]:
    """Markdown lines for the top of report.md; [] for a complete run."""
    state = run_state(run_dir, meta, records)
    if state["complete"]:
        return []
    of = f"{state['n_cases']}" if state["n_cases"] is not None else "an unknown number of"
    missing = (f", {state['n_cases'] - state['n_done']} missing"
               if state["n_cases"] is not None else "")
    failed = f" ({state['n_failed']} failed, to be rerun)" if state["n_failed"] else ""
    return [f"> **Incomplete run: {state['n_done']} of {of} cases recorded{missing}{failed}.** "
            f"The run did not finish because {state['reason']}. Fits and plots below use only "
            "the cases recorded so far.",
            ">",
            f"> Resume with: `{state['resume']}`", ""]
