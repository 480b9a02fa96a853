"""The run-folder driver of `bench run`: lock the folder, open it (new or resumed, checked
against the config's hash and the machine's fingerprint), hand the pending cases to the executor,
append each record as it comes back, then the later timing passes, then the meta's bookkeeping.
Ctrl-C stops after the current case (twice: at once) and keeps everything measured.

Only this process writes the folder (bench.run.writer); the command (bench/commands/run.py)
parses the arguments and writes the report after a complete run.
Tests: tests/run/test_run_cli.py, tests/run/test_resume.py, tests/run/test_rundir.py.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Callable

from bench import metrics
from bench.machine import peak
from bench.machine.environment import collect_meta
from bench.run import passes, schedule
from bench.run import writer as w
from bench.run.executors import make_executor
from bench.run.lock import LOCK_FILE, RunLock, RunLocked, describe_holder
from bench.run.progress import Progress
from bench.run.writer import RunDirError

RESULTS_ROOT = "results"
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class StopRequest:
    """SIGINT handler: the first Ctrl-C asks to stop after the current case, the second aborts."""

    def __init__(self, stream=None):
        self.requested = False
        self.stream = stream if stream is not None else sys.stderr

    def __call__(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        self.stream.write("\nCtrl-C: stopping after the current case "
                          "(Ctrl-C again to abort it now)\n")
        self.stream.flush()


def _executor_options(config, executor_name: str, measure, args) -> dict:
    if executor_name == "process":
        return {"timeout_s": measure.timeout_s}
    if executor_name == "ray":
        ex = config.executor
        return {"address": getattr(args, "ray_address", None) or ex.address,
                "exclusive": getattr(args, "exclusive", None) or ex.exclusive,
                "retries": ex.retries, "timeout_s": measure.timeout_s}
    return {}


# ------------------------------------------------------------------------------------------
# the run


def fingerprint() -> dict:
    """What must not change between a run and its resumption: machine and key software."""
    import platform

    import numpy
    import torch

    return {"hostname": platform.node(), "machine": platform.machine(),
            "python": platform.python_version(), "numpy": numpy.__version__,
            "torch": torch.__version__, "cpu_count": os.cpu_count()}


def _resume_command(args, run_dir: Path) -> str:
    argv = ["python", "-m", "bench", "run", str(args.config),
            "--resume", str(run_dir)]
    for item in args.overrides:
        argv += ["--set", item]
    for flag in ("isolation", "executor", "timeout", "ray_address", "exclusive"):
        value = getattr(args, flag, None)
        if value is not None:
            argv += [f"--{flag.replace('_', '-')}", str(value)]
    if args.no_report:
        argv.append("--no-report")
    return shlex.join(argv)


def _target_dir(config, args) -> Path:
    """The run folder this command writes: --resume, --out, or a new results/<name>-<time>."""

    if args.resume and args.out and Path(args.resume).resolve() != Path(args.out).resolve():
        raise w.RunDirError("give --resume RUN_DIR or --out DIR, not two different folders")
    target = Path(args.resume or args.out) if (args.resume or args.out) else None
    if args.resume and not (target / w.META_FILE).exists():
        raise w.RunDirError(f"--resume {target}: no {w.META_FILE} there; not a tfbench run folder")
    return target if target is not None else w.new_run_dir(RESULTS_ROOT, config.name)


def _open_run_dir(target: Path, config, measure, executor_name, args, description: str):
    """(writer, done records, resumed?) or raises RunDirError with a one-line reason.

    Called with the folder's lock held (bench.run.lock), so the checks below cannot race with
    another run of the same folder."""

    if (target / w.META_FILE).exists():
        meta = w.read_meta(target)
        if meta.get("config_hash") != config.config_hash:
            raise w.RunDirError(
                f"{target} holds a run of another config (hash {str(meta.get('config_hash'))[:12]}"
                f", {meta.get('config_name')!r}); this config's hash is {config.config_hash[:12]}."
                " Use another --out, or the same config and --set values as that run")
        now = fingerprint()
        before = meta.get("fingerprint", {})
        changed = {k: (before.get(k), v) for k, v in now.items() if before.get(k) != v}
        if changed:
            detail = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise w.RunDirError(f"{target} was recorded on another machine or software "
                                f"({detail}); start a new run instead of mixing them")
        writer, done = w.RunWriter.reopen(target)
        return writer, done, True
    if target.exists() and not w.unfinished_creation(target, also_allowed=(LOCK_FILE,)):
        raise w.RunDirError(f"--out {target} exists, is not empty and is not a tfbench run")
    meta = _initial_meta(config, measure, executor_name, args, description)
    writer = w.RunWriter.create(target, _config_text(config), meta)
    return writer, [], False


def _lock_and_open(config, measure, executor_name, args, description: str):
    """(lock, writer, done, resumed): the folder locked first, then opened under the lock.

    A folder this call created is removed again when opening fails."""

    target = _target_dir(config, args)
    created = not target.exists()
    lock = RunLock(target).acquire()            # RunLocked: held by a live run
    try:
        writer, done, resumed = _open_run_dir(target, config, measure, executor_name, args,
                                              description)
    except BaseException:
        lock.release()
        if created:
            lock.path.unlink(missing_ok=True)
            try:
                target.rmdir()
            except OSError:
                pass
        raise
    if lock.took_over:

        print(f"note: {target}: took over the lock of a run that is gone "
              f"({describe_holder(lock.took_over)})", file=sys.stderr)
    return lock, writer, done, resumed


def _config_text(config) -> str:
    import yaml

    header = (f"# {config.name}: the config as run (--set applied), from {config.path}\n"
              f"# config hash {config.config_hash}\n")
    return header + yaml.safe_dump(config.raw, sort_keys=False)


def _initial_meta(config, measure, executor_name, args, description: str) -> dict:
    meta = dict(collect_meta())
    started = time.monotonic()
    machine_peak = _machine_peak(args.peak, config)
    cached = bool(machine_peak) and machine_peak.get("source") == "cache"
    meta.update(
        config_name=config.name, config_path=str(config.path), config_hash=config.config_hash,
        description=description,
        configured_description=config.description, overrides=list(args.overrides),
        n_cases=len(config.cases), measure=measure.to_dict(), executor=executor_name,
        executor_config=config.executor.to_dict(), fingerprint=fingerprint(),
        start_time=time.time(), end_time=None, status="running", sessions=[],
        machine_peak=machine_peak,
        run_budget={"budget_s": measure.run_budget_s or None,
                    "peak_s": round(time.monotonic() - started, 2), "peak_cached": cached},
    )
    return meta


RUN_PEAK_BUDGET_S = 6.0            # timed matmul seconds when a run measures the peak itself
RUN_BANDWIDTH_BUDGET_S = 2.0       # ... and timed STREAM seconds


def _machine_peak(remeasure: bool, config=None):
    """The matmul peak (bench.machine.peak) at the cases' most common thread count: cached, else
    measured once and cached; --peak re-measures."""
    from collections import Counter

    threads = Counter(c.threads for c in config.cases).most_common(1)[0][0] if config else None
    try:
        # half of `bench peak`'s budget: a run's first measurement is context for "% of peak";
        # `python -m bench peak` re-measures with the full budget
        return peak.load_or_measure_peak(threads=threads, cache=not remeasure, measure=True,
                                         time_budget_s=RUN_PEAK_BUDGET_S,
                                         bandwidth_budget_s=RUN_BANDWIDTH_BUDGET_S)
    except Exception as exc:                 # the peak is context, never a reason to stop
        print(f"note: machine peak unavailable ({type(exc).__name__}: {exc})", file=sys.stderr)
        return None


def run(config, measure, executor_name, args, description: str,
        on_complete: Callable[[list, Path], None] | None = None) -> int:
    """Measure `config`'s pending cases into the run folder args names (--out, --resume or a
    new results/<name>-<time>), locked; then the later passes; then `on_complete(records,
    run_dir)` (the command's report). The exit status: 0, 2 bad input, 130 interrupted."""
    try:
        executor = make_executor(executor_name,
                                 **_executor_options(config, executor_name, measure, args))
        for check in ("connect", "check_cluster"):       # ray: fail before a folder exists
            if hasattr(executor, check):
                getattr(executor, check)()
        lock, writer, done, resumed = _lock_and_open(config, measure, executor_name, args,
                                                     description)
    except (RunDirError, RunLocked, ValueError, ConnectionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return _run_locked(config, measure, executor, executor_name, writer, done, resumed,
                           args, on_complete)
    finally:
        lock.release()


def _run_locked(config, measure, executor, executor_name, writer, done, resumed, args,
                on_complete) -> int:
    done_ids = {r["case_id"] for r in done}
    pending = [c for c in config.cases if c.case_id not in done_ids]
    session = {"start_time": time.time(), "resumed": resumed, "executor": executor_name,
               "argv": sys.argv[1:], "pending": len(pending)}
    # Written before the first case: a run killed outright (kill -9, power) still tells the
    # report how to resume it.
    writer.update_meta(n_cases=len(config.cases),
                       resume_command=_resume_command(args, writer.run_dir))
    progress = Progress(len(pending), already_done=len(config.cases) - len(pending))
    progress.note(f"run folder: {writer.run_dir}")
    progress.begin()

    stop = StopRequest()
    previous = signal.signal(signal.SIGINT, stop)
    status = "running"
    spent = {"start_s": round(schedule.process_elapsed_s(), 2)}
    pass_started = time.monotonic()
    try:
        records = executor.run(pending, measure, on_start=progress.start)
        try:
            for record in records:
                record = metrics.fill(record)       # columns of metrics with a value hook
                writer.append(record)
                progress.finish(record)
                if stop.requested:
                    break
        finally:
            records.close()
        status = "interrupted" if stop.requested else "complete"
        spent["pass_1_s"] = round(time.monotonic() - pass_started, 2)
        if status == "complete":
            status = _later_passes(config, measure, executor, writer, stop, spent)
    except KeyboardInterrupt:
        status = "aborted"
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)     # let the bookkeeping finish
        try:
            _record_budget(writer, measure, spent)
            _finish(writer, config, session, status, args)
        finally:
            signal.signal(signal.SIGINT, previous)
    if status == "complete" and on_complete is not None:
        on_complete(writer.records(), writer.run_dir)
    if status in ("interrupted", "aborted"):
        recorded = len({r["case_id"] for r in writer.records()})
        print(f"{status}: {recorded}/{len(config.cases)} case(s) recorded in {writer.run_dir}\n"
              f"resume with:\n  {_resume_command(args, writer.run_dir)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _later_passes(config, measure, executor, writer, stop, spent: dict) -> str:
    """Timing passes 2..measure.passes over the ok cases (bench.run.passes.wants_pass): each timed again
    after all the others, its timing appended as a pass line. With measure.run_budget_s a pass
    runs only if it should end within the budget (the report's time kept): fewer passes first,
    never fewer cases. Where a whole pass no longer fits, the time left goes to a partial pass
    over whole blocks (every case of a block or none, in the config's order, each block only if
    it still fits: bench.run.schedule.partial_pass), so a claim's sizes are never timed in different numbers of
    passes. `spent` gets each pass's seconds, the blocks of a partial pass and the reason the
    rest was left out. "complete" or "interrupted"."""
    spent.setdefault("passes_s", {})
    last = None                                   # (seconds, estimate) of the pass before
    for index in range(2, measure.passes + 1):
        merged = {r["case_id"]: r for r in writer.records()}
        todo = [c for c in config.cases
                if passes.wants_pass(merged.get(c.case_id, {}), index, measure)]
        if not todo:
            continue
        scale = last[0] / last[1] if last and last[1] > 0 else 1.0   # measured / estimated
        estimate = scale * schedule.estimate_pass_s([merged[c.case_id] for c in todo], measure)
        fits, reason = schedule.fits_budget(measure, estimate)
        partial = None
        if not fits:
            todo, partial = schedule.partial_pass(todo, merged, measure, scale)
            spent["left_out"] = {"passes": list(range(index + (1 if todo else 0),
                                                      measure.passes + 1)),
                                 "reason": f"pass {index} (~{estimate:.0f} s) {reason}"}
            if todo:
                spent["left_out"]["partial_pass"] = {"pass": index, "blocks": partial}
            note = (f"pass {index} over block(s) {', '.join(partial)} only; " if todo else "")
            print(f"note: {note}passes {index + (1 if todo else 0)}-{measure.passes} left out: "
                  f"{spent['left_out']['reason']}", file=sys.stderr)
            if not todo:
                break
        progress = Progress(len(todo))
        progress.note(f"timing pass {index}/{measure.passes}: {len(todo)} case(s), time only"
                      + (f" (block(s) {', '.join(partial)})" if partial else ""))
        progress.begin()
        started = time.monotonic()
        planned = schedule.estimate_pass_s([merged[c.case_id] for c in todo], measure)
        records = executor.run(todo, passes.timing_only(measure), on_start=progress.start)
        try:
            for record in records:
                writer.append(passes.pass_line(record, index))
                progress.finish(record)
                if stop.requested:
                    break
        finally:
            records.close()
        last = (time.monotonic() - started, planned)
        spent["passes_s"][str(index)] = round(last[0], 2)
        if stop.requested:
            return "interrupted"
        if partial:
            break
    return "complete"


def _record_budget(writer, measure, spent: dict) -> None:
    """meta.json "run_budget": the budget, the peak's seconds (from the folder's creation) and
    this session's: start-up, pass 1, each later pass, what was left out and why."""
    budget = dict(writer.read_meta().get("run_budget") or {})
    budget.update(spent, budget_s=measure.run_budget_s or None,
                  passes_done=1 + len(spent.get("passes_s", {})) if "pass_1_s" in spent else 0,
                  passes_planned=measure.passes, end_s=round(schedule.process_elapsed_s(), 2))
    writer.update_meta(run_budget=budget)


def _finish(writer, config, session, status, args) -> None:
    """results.csv and meta (end time, status, this session); the records stay as written."""
    records = writer.records()
    if records:
        writer.write_csv()
    meta = writer.read_meta()
    session.update(end_time=time.time(), status=status)
    ids = {r["case_id"] for r in records}
    complete = status == "complete" and all(c.case_id in ids for c in config.cases)
    writer.update_meta(end_time=session["end_time"],
                       status="complete" if complete else status,
                       sessions=list(meta.get("sessions", [])) + [session],
                       n_records=len(records))
