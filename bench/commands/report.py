"""`python -m bench report RUN_DIR`: rebuild report.md, summary.json, report.html and plots/ from the records.

Reads only records.jsonl and meta.json; measures nothing. Exit 0 on success, 2 when RUN_DIR is
not a run folder or one of its files (records.jsonl, meta.json, config.yaml) is damaged: one
line naming the file and line, no traceback.
"""

from __future__ import annotations

import argparse
import sys

from bench.analysis.incomplete import run_state
from bench.analysis.rule import WINDOWS, FitRule
from bench.machine import peak
from bench.reader import RunDirError, check_run_dir

HELP = "rebuild report.md, summary.json, report.html and plots of a run folder"
EPILOG = """examples:
  python -m bench report results/seq_sweep-20261126-120000
  python -m bench report results/seq_sweep-20261126-120000 --min-time-ms 2 --ws-factor 4
  python -m bench report results/seq_sweep-20261126-120000 --window cache --ws-factor 2

The fit-range and verdict rules are written at the top of report.md."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = FitRule()
    parser.add_argument("run_dir", help="a run folder with records.jsonl and meta.json")
    parser.add_argument("--ws-factor", type=float, default=d.ws_factor,
                        help=f"time fits with --window cache: sizes whose working set is >= this x "
                             f"the last-level cache, when the sweep gets there (default {d.ws_factor:g})")
    parser.add_argument("--min-time-ms", type=float, default=d.min_time_s * 1e3,
                        help=f"time fits: sizes with median time >= this (default "
                             f"{d.min_time_s * 1e3:g} ms)")
    parser.add_argument("--top-octaves", type=int, default=d.top_octaves,
                        help=f"memory fits, and time fits of a cache-resident block: sizes "
                             f">= x_max / 2^this (default {d.top_octaves})")
    parser.add_argument("--min-points", type=int, default=d.min_points,
                        help=f"fewer sizes in a fit's range than this: 'not enough data' "
                             f"(default {d.min_points})")
    parser.add_argument("--tolerance", type=float, default=d.tolerance,
                        help=f"held when the CI lies within theory +- this (default "
                             f"{d.tolerance:g}; FLOPs use {d.flops_tolerance:g})")
    parser.add_argument("--window", choices=WINDOWS, default=d.window,
                        help=f"time fits' window: 'plateau' the top sizes whose rate stays "
                             f"within +-{d.plateau_band:.0%} of their own power law (no cache "
                             f"size used), 'cache' past --ws-factor x the reported last-level "
                             f"cache (default {d.window})")
    parser.add_argument("--seed", type=int, default=d.seed, help="bootstrap seed (default 0)")


def main(args: argparse.Namespace) -> int:
    try:
        records, meta = check_run_dir(args.run_dir)
        rule = FitRule(ws_factor=args.ws_factor, min_time_s=args.min_time_ms / 1e3,
                       top_octaves=args.top_octaves, min_points=args.min_points,
                       tolerance=args.tolerance, seed=args.seed,
                       window=args.window)
        from bench.analysis.report.markdown import write_report   # NumPy and pandas: not for --help

        paths = write_report(args.run_dir, rule, cached_peak=cached_peak)
    except (FileNotFoundError, ValueError, RunDirError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _note_incomplete(args.run_dir, meta, records)
    print(f"wrote {paths['report']}")
    print(f"wrote {paths['summary']}")
    print(f"wrote {paths['html']} ({paths['html'].stat().st_size / 1e6:.1f} MB, opens offline)")
    print(f"wrote {len(paths['plots'])} plot(s) under {paths['report'].parent / 'plots'}")
    return 0


def cached_peak(threads: int, device: str) -> dict | None:
    """The matmul peak bench.machine.peak cached on this machine for `threads` and `device`, or
    None; never measured (a report measures nothing). What the commands hand write_report: the
    analysis does not import bench.machine."""
    return peak.load_or_measure_peak(threads=threads, device=device, measure=False)


def _note_incomplete(run_dir, meta: dict, records: list[dict]) -> None:
    state = run_state(run_dir, meta, records)
    if not state["complete"]:
        print(f"note: incomplete run ({state['n_done']} of {state['n_cases']} cases): "
              f"{state['reason']}; resume with: {state['resume']}", file=sys.stderr)
