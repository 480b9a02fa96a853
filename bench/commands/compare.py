"""`python -m bench compare RUN_A RUN_B`: case-by-case time ratio, regressions flagged.

Exit status: 0 no regression, 1 at least one regression (B slower than A by more than
--threshold with one-sided Mann-Whitney p < --alpha), 2 bad input. Usable in CI.
"""

from __future__ import annotations

import argparse
import json
import sys

HELP = "compare two runs case by case; exit 1 on a regression"
EPILOG = """examples:
  python -m bench compare results/A results/B
  python -m bench compare results/A results/B --threshold 0.10 --alpha 0.05 --json
  python -m bench compare results/one-thread results/two-threads --ignore threads

exit status: 0 no regression, 1 regression(s) flagged, 2 bad input"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", help="baseline run folder (results/<run-id>)")
    parser.add_argument("run_b", help="run folder to check against the baseline")
    parser.add_argument("--threshold", type=float, default=0.05,
                        help="relative slowdown that counts (median B / median A - 1); "
                             "default 0.05")
    parser.add_argument("--alpha", type=float, default=0.01,
                        help="significance level of the one-sided Mann-Whitney U test on the raw "
                             "samples; default 0.01")
    parser.add_argument("--ignore", action="append", default=[], metavar="FIELD",
                        help="match cases ignoring this case field (e.g. threads); repeatable")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")


def main(args: argparse.Namespace) -> int:
    from pathlib import Path

    from bench.analysis.compare import compare_records, format_table
    from bench.writer import RECORDS_FILE, read_meta, read_records

    runs = []
    for name in (args.run_a, args.run_b):
        path = Path(name)
        if not (path / RECORDS_FILE).is_file():
            print(f"error: {name}: no {RECORDS_FILE} (not a tfbench run folder)", file=sys.stderr)
            return 2
        runs.append((read_records(path), read_meta(path)))
    try:
        result = compare_records(runs[0][0], runs[1][0], args.threshold, args.alpha,
                                 tuple(args.ignore))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cpu_a, cpu_b = ((m.get("cpu") or {}).get("model") for _, m in runs)
    if cpu_a != cpu_b:
        result["warning"] = f"different CPUs: A {cpu_a!r}, B {cpu_b!r}"
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        if result.get("warning"):
            print(f"warning: {result['warning']}")
        print(format_table(result, args.run_a, args.run_b))
    if result["n_common"] == 0:
        print("note: no case was measured in both runs", file=sys.stderr)
    return 1 if result["regressions"] else 0
