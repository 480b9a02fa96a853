"""`python -m bench history DIR...`: every run folder under DIR(s) on one HTML page, over time.

Runs are grouped by machine and config (bench.analysis.history): per group the runs table, the
verdict of every claim in every run, each fitted exponent over runs with its CI, and each case's
median over runs against its band, the cases `bench compare` flags in the latest run marked.
Folders that are not readable runs are listed on the page as skipped, with the reason.

Exit status: 0 page written (also when folders were skipped), 2 no run found or bad input.

Tests: tests/analysis/test_history.py.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.analysis.history import HISTORY_FILE, write_history

HELP = "one HTML page of many runs: verdicts, exponents and case medians over time"
EPILOG = """examples:
  python -m bench history results/                      # every run folder under results/
  python -m bench history results/a results/b --out /tmp/history.html"""
EXIT_BAD_INPUT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dirs", nargs="+", metavar="DIR",
                        help="run folders, or folders holding run folders (results/)")
    parser.add_argument("--out", default=None,
                        help="the page to write (default: history.html in the first DIR)")


def main(args: argparse.Namespace) -> int:
    first = Path(args.dirs[0])
    out = Path(args.out) if args.out else (first if first.is_dir() else first.parent) / HISTORY_FILE
    if not out.parent.is_dir():
        print(f"error: --out {out}: folder {out.parent} does not exist", file=sys.stderr)
        return EXIT_BAD_INPUT
    result = write_history(args.dirs, out)
    for folder, why in result["skipped"]:
        print(f"skipped {folder}: {why}", file=sys.stderr)
    if not result["runs"]:
        print(f"error: no readable run folder in {' '.join(args.dirs)}", file=sys.stderr)
        out.unlink(missing_ok=True)
        return EXIT_BAD_INPUT
    print(f"wrote {out}: {result['runs']} run(s) in {result['groups']} group(s), "
          f"{len(result['skipped'])} skipped")
    return 0
