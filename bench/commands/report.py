"""`python -m bench report RUN_DIR`: rebuild report.md, summary.json and plots/ from the records.

Reads only records.jsonl and meta.json; measures nothing. Exit 0 on success, 2 when RUN_DIR is
not a run folder.
"""

from __future__ import annotations

import argparse
import sys

HELP = "rebuild report.md, summary.json and plots of a run folder"
EPILOG = """examples:
  python -m bench report results/seq_sweep-20261126-120000
  python -m bench report results/seq_sweep-20261126-120000 --min-time-ms 2 --ws-factor 4

The fit-range and verdict rules are written at the top of report.md."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from bench.analysis.claims import FitRule

    d = FitRule()
    parser.add_argument("run_dir", help="a run folder with records.jsonl and meta.json")
    parser.add_argument("--ws-factor", type=float, default=d.ws_factor,
                        help=f"asymptotic sizes: working set >= this x the last-level cache "
                             f"(default {d.ws_factor:g})")
    parser.add_argument("--min-time-ms", type=float, default=d.min_time_s * 1e3,
                        help=f"asymptotic sizes: median time >= this (default "
                             f"{d.min_time_s * 1e3:g} ms)")
    parser.add_argument("--min-points", type=int, default=d.min_points,
                        help=f"fewer asymptotic sizes than this: 'not enough data' "
                             f"(default {d.min_points})")
    parser.add_argument("--tolerance", type=float, default=d.tolerance,
                        help=f"held when the CI lies within theory +- this (default "
                             f"{d.tolerance:g}; FLOPs use {d.flops_tolerance:g})")
    parser.add_argument("--seed", type=int, default=d.seed, help="bootstrap seed (default 0)")


def main(args: argparse.Namespace) -> int:
    from bench.analysis.claims import FitRule
    from bench.analysis.report import write_report

    try:
        rule = FitRule(ws_factor=args.ws_factor, min_time_s=args.min_time_ms / 1e3,
                       min_points=args.min_points, tolerance=args.tolerance, seed=args.seed)
        paths = write_report(args.run_dir, rule)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {paths['report']}")
    print(f"wrote {paths['summary']}")
    print(f"wrote {len(paths['plots'])} plot(s) under {paths['report'].parent / 'plots'}")
    return 0
