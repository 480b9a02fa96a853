"""`python -m bench run CONFIG`: measure every case of a sweep into results/<config>-<time>/.

The command: load and validate the config (a mistake is one line and exit 2, before any folder
exists), then bench.run.driver runs it (the folder, the executor, the passes, Ctrl-C and resume:
its docstring), then this module prints how well the passes agreed and writes the report.

Ctrl-C stops after the current case (a second Ctrl-C aborts at once), writes what it has,
prints the command that resumes, and exits 130. Resuming (--resume RUN_DIR, or --out pointing
at an existing run) keeps the `ok` and `skipped` records, reruns the failed cases and runs the
missing ones; a folder of another config (hash) or another machine/software is refused (exit 2).

Tests: tests/impls/test_keras_import.py, tests/run/test_passes.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.analysis.compare import pass_agreement
from bench.analysis.describe import effective_description
from bench.commands.report import cached_peak
from bench.config import ConfigError, load_config
from bench.run import driver, guard
from bench.run.driver import EXIT_BAD_INPUT
from bench.run.runner import predict

HELP = "measure every case of a YAML sweep into results/<run-id>/"
EPILOG = """examples:
  python -m bench run configs/smoke.yaml
  python -m bench run configs/seq_sweep.yaml --dry-run
  python -m bench run configs/seq_sweep.yaml --set threads=1 --set measure.budget_s=20
  python -m bench run configs/seq_sweep.yaml --isolation process --timeout 300
  python -m bench run configs/seq_sweep.yaml --resume results/seq_sweep-20260101-120000

exit status: 0 done (failed cases are records, not errors), 2 bad config or run folder,
130 interrupted (Ctrl-C; the command to resume is printed)."""



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
    description = effective_description(config.description, args.overrides,
                                        [c.to_dict() for c in config.cases])

    def on_complete(records: list, run_dir: Path) -> None:
        if measure.passes > 1:
            _pass_agreement(records)
        if not args.no_report:
            _report(run_dir)

    return driver.run(config, measure, executor_name, args, description, on_complete)


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


def _report(run_dir: Path) -> None:
    from bench.analysis.report.markdown import write_report   # NumPy, pandas, torch: not for --help

    try:
        write_report(run_dir, cached_peak=cached_peak)   # a run without a peak: the cached one
    except Exception as exc:                 # the records are safe; say what went wrong
        import traceback

        traceback.print_exc()
        print(f"error: the report failed ({type(exc).__name__}: {exc}); records are intact "
              f"in {run_dir}; retry with: python -m bench report {run_dir}", file=sys.stderr)
    else:
        print(f"report: {run_dir / 'report.md'} (interactive: {run_dir / 'report.html'})",
              file=sys.stderr)
