"""`python -m bench run CONFIG`: measure every case of a sweep into results/<config>-<time>/.

The driver: load and validate the config (a mistake is one line and exit 2, before any folder
exists), open the run folder (new, or an existing one to resume), hand the cases not yet done to
an executor, append each record as it comes back, and at the end write results.csv, the end
time in meta.json and the report.

Ctrl-C stops after the current case (a second Ctrl-C aborts at once), writes what it has,
prints the command that resumes, and exits 130. Resuming (--resume RUN_DIR, or --out pointing
at an existing run) keeps the `ok` and `skipped` records, reruns the failed cases and runs the
missing ones; a folder of another config (hash) or another machine/software is refused (exit 2).
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from bench.run import guard, passes
from bench.machine import peak
from bench.run import writer as w
from bench.analysis.compare import pass_agreement
from bench.analysis.describe import effective_description
from bench.config import ConfigError, load_config
from bench.machine.environment import collect_meta
from bench.run.executors import make_executor
from bench.run.progress import Progress
from bench.run.lock import LOCK_FILE, RunLock, RunLocked, describe_holder
from bench.run.runner import predict
from bench.run.writer import RunDirError

HELP = "measure every case of a YAML sweep into results/<run-id>/"
EPILOG = """examples:
  python -m bench run configs/smoke.yaml
  python -m bench run configs/seq_sweep.yaml --dry-run
  python -m bench run configs/seq_sweep.yaml --set threads=1 --set measure.budget_s=20
  python -m bench run configs/seq_sweep.yaml --isolation process --timeout 300
  python -m bench run configs/seq_sweep.yaml --resume results/seq_sweep-20260101-120000

exit status: 0 done (failed cases are records, not errors), 2 bad config or run folder,
130 interrupted (Ctrl-C; the command to resume is printed)."""

RESULTS_ROOT = "results"
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="sweep file (configs/*.yaml)")
    parser.add_argument("--out", metavar="DIR",
                        help="run folder (default results/<name>-<YYYYmmdd-HHMMSS>); "
                             "an existing run there is resumed")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a Case field or measure.KEY (YAML value); repeatable")
    parser.add_argument("--dry-run", action="store_true",
                        help="list the cases with predicted FLOPs and memory; run nothing")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue an interrupted run: keep ok/skipped cases, rerun the rest")
    parser.add_argument("--isolation", choices=("inline", "process"),
                        help="process: a fresh process per case (crash- and timeout-proof)")
    parser.add_argument("--executor", choices=("inline", "process", "ray"),
                        help="where cases run (default: the config's executor.kind, "
                             "or process when isolation is process)")
    parser.add_argument("--ray-address", metavar="ADDR",
                        help="ray: cluster address (default: executor.address, RAY_ADDRESS, "
                             "else a local instance)")
    parser.add_argument("--exclusive", choices=("node", "device"),
                        help="ray: one case per node, or per GPU (CPU cases: always node)")
    parser.add_argument("--timeout", type=float, metavar="S",
                        help="kill a case after S seconds (process and ray executors)")
    parser.add_argument("--no-report", action="store_true",
                        help="skip the analysis (report.md, plots) at the end")
    parser.add_argument("--peak", action="store_true",
                        help="re-measure the machine's matmul peak even if cached (by default "
                             "it is measured once per machine and thread count, then cached)")


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


def main(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, args.overrides)
        measure = _measure(config, args)
        executor_name = _executor_name(config, args, measure)
        if args.timeout is not None and not args.timeout > 0:
            raise ValueError(f"--timeout must be > 0 seconds, got {args.timeout}")
        from bench.impls.common import SEEDED

        SEEDED.cap_bytes                  # TFBENCH_SEED_CACHE_MB checked before any case runs
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.dry_run:
        return _dry_run(config, measure, executor_name)
    return _run(config, measure, executor_name, args)


def _measure(config, args):
    import dataclasses

    changes = {}
    if args.timeout is not None:
        changes["timeout_s"] = float(args.timeout)
    if args.isolation is not None:
        changes["isolation"] = args.isolation
    return dataclasses.replace(config.measure, **changes)


def _executor_name(config, args, measure) -> str:
    if args.executor:
        return args.executor
    if args.isolation:
        return "process" if args.isolation == "process" else "inline"
    if config.executor.kind != "inline":
        return config.executor.kind
    return "process" if measure.isolation == "process" else "inline"


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
# --dry-run


def _dry_run(config, measure, executor_name: str) -> int:
    print(f"{config.name}: {len(config.cases)} case(s), executor {executor_name}, "
          f"config hash {config.config_hash[:12]}")
    print(f"{'#':>4}  {'GFLOP':>10}  {'peak MiB':>9}  {'needs MiB':>9}  case")
    total_flops = 0
    for i, case in enumerate(config.cases, 1):
        try:
            p = predict(case)
            need = guard.predicted_need(case, measure)
            total_flops += p["flops_analytic"]
            print(f"{i:>4}  {p['flops_analytic'] / 1e9:>10.4g}  "
                  f"{p['peak_bytes_predicted'] / 2 ** 20:>9.4g}  {need / 2 ** 20:>9.4g}  {case.label()}")
        except Exception as exc:          # one bad prediction should not hide the rest
            print(f"{i:>4}  {'?':>10}  {'?':>9}  {'?':>9}  {case.label()}  ({exc})")
    print(f"total: {total_flops / 1e9:.4g} GFLOP per call summed over cases; nothing measured, "
          "nothing written")
    return 0


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


def _open_run_dir(target: Path, config, measure, executor_name, args):
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
    meta = _initial_meta(config, measure, executor_name, args)
    writer = w.RunWriter.create(target, _config_text(config), meta)
    return writer, [], False


def _lock_and_open(config, measure, executor_name, args):
    """(lock, writer, done, resumed): the folder locked first, then opened under the lock.

    A folder this call created is removed again when opening fails."""

    target = _target_dir(config, args)
    created = not target.exists()
    lock = RunLock(target).acquire()            # RunLocked: held by a live run
    try:
        writer, done, resumed = _open_run_dir(target, config, measure, executor_name, args)
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


def _initial_meta(config, measure, executor_name, args) -> dict:
    meta = dict(collect_meta())
    meta.update(
        config_name=config.name, config_path=str(config.path), config_hash=config.config_hash,
        description=effective_description(config.description, args.overrides,
                                          [c.to_dict() for c in config.cases]),
        configured_description=config.description, overrides=list(args.overrides),
        n_cases=len(config.cases), measure=measure.to_dict(), executor=executor_name,
        executor_config=config.executor.to_dict(), fingerprint=fingerprint(),
        start_time=time.time(), end_time=None, status="running", sessions=[],
        machine_peak=_machine_peak(args.peak, config),
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


def _run(config, measure, executor_name, args) -> int:
    try:
        executor = make_executor(executor_name,
                                 **_executor_options(config, executor_name, measure, args))
        for check in ("connect", "check_cluster"):       # ray: fail before a folder exists
            if hasattr(executor, check):
                getattr(executor, check)()
        lock, writer, done, resumed = _lock_and_open(config, measure, executor_name, args)
    except (RunDirError, RunLocked, ValueError, ConnectionError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return _run_locked(config, measure, executor, executor_name, writer, done, resumed,
                           args)
    finally:
        lock.release()


def _run_locked(config, measure, executor, executor_name, writer, done, resumed, args) -> int:
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
    try:
        records = executor.run(pending, measure, on_start=progress.start)
        try:
            for record in records:
                writer.append(record)
                progress.finish(record)
                if stop.requested:
                    break
        finally:
            records.close()
        status = "interrupted" if stop.requested else "complete"
        if status == "complete":
            status = _later_passes(config, measure, executor, writer, stop)
    except KeyboardInterrupt:
        status = "aborted"
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)     # let the bookkeeping finish
        try:
            _finish(writer, config, session, status, args)
        finally:
            signal.signal(signal.SIGINT, previous)
    if status == "complete" and measure.passes > 1:
        _pass_agreement(writer.records())
    if status == "complete" and not args.no_report:
        _report(writer.run_dir)
    if status in ("interrupted", "aborted"):
        recorded = len({r["case_id"] for r in writer.records()})
        print(f"{status}: {recorded}/{len(config.cases)} case(s) recorded in {writer.run_dir}\n"
              f"resume with:\n  {_resume_command(args, writer.run_dir)}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _later_passes(config, measure, executor, writer, stop) -> str:
    """Timing passes 2..measure.passes over the ok cases (bench.run.passes.wants_pass): each timed again
    after all the others, its timing appended as a pass line. "complete" or "interrupted"."""
    for index in range(2, measure.passes + 1):
        merged = {r["case_id"]: r for r in writer.records()}
        todo = [c for c in config.cases
                if passes.wants_pass(merged.get(c.case_id, {}), index, measure)]
        if not todo:
            continue
        progress = Progress(len(todo))
        progress.note(f"timing pass {index}/{measure.passes}: {len(todo)} case(s), time only")
        progress.begin()
        records = executor.run(todo, passes.timing_only(measure), on_start=progress.start)
        try:
            for record in records:
                writer.append(passes.pass_line(record, index))
                progress.finish(record)
                if stop.requested:
                    break
        finally:
            records.close()
        if stop.requested:
            return "interrupted"
    return "complete"


def _pass_agreement(records: list[dict], min_time_s: float = 1e-3) -> None:
    """One line after the passes: how well the same case agreed with itself (the machine's own
    repeatability, bench.analysis.compare.pass_agreement), so a noisy machine is named at once."""
    w = pass_agreement(records, min_time_s)
    if not w["n"]:
        return
    share = w["share_pairs_within_5pct"]
    verdict = ("steady" if share >= 0.9 else
               f"noisy: two runs here may differ by up to ~{w['spread_p90'] - 1:.0%} in a case; "
               f"`python -m bench noise` looks closer")
    print(f"passes: the same case agreed with itself within +-5% in {share:.0%} of pass pairs "
          f"(spread max/min p50 {w['spread_p50']:.2f}, p90 {w['spread_p90']:.2f}, {w['n']} cases "
          f">= {min_time_s * 1e3:g} ms): {verdict}", file=sys.stderr)


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


def _report(run_dir: Path) -> None:
    from bench.analysis.report.markdown import write_report   # NumPy, pandas, torch: not for --help

    try:
        write_report(run_dir)
    except Exception as exc:                 # the records are safe; say what went wrong
        import traceback

        traceback.print_exc()
        print(f"error: the report failed ({type(exc).__name__}: {exc}); records are intact "
              f"in {run_dir}; retry with: python -m bench report {run_dir}", file=sys.stderr)
    else:
        print(f"report: {run_dir / 'report.md'}", file=sys.stderr)
