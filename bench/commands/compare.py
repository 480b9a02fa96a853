"""`python -m bench compare RUN_A RUN_B`: case-by-case time ratio, regressions flagged, and how
well the two runs repeat (share within +-5% / +-10%, worst ratio).

Exit status: 0 no regression, 1 at least one regression (B slower than A by more than
--threshold with one-sided Mann-Whitney p < --alpha after Holm's correction for the number of
cases), 2 bad input (a missing or damaged run folder, a bad option): one line, no traceback.
Usable in CI: a crash can never read as "regression".

Printed first, where both folders have summary.json (bench report): verdict-level agreement,
`claims_agreement`: of the claims in both (matched on id + impl + precision), the share with the
same verdict, and whether every fitted exponent's (kind scaling or params) two CIs overlap,
listing those that do not. Then the drift-corrected case table (bench.analysis.compare).

Tests: tests/analysis/test_compare.py, tests/analysis/test_compare_drift.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bench.analysis.compare import compare_records
from bench.analysis.compare_text import format_table
from bench.reader import RunDirError, check_run_dir

HELP = "compare two runs case by case; exit 1 on a regression"
EPILOG = """examples:
  python -m bench compare results/A results/B
  python -m bench compare results/A results/B --threshold 0.10 --alpha 0.05 --json
  python -m bench compare results/one-thread results/two-threads --ignore threads

exit status: 0 no regression, 1 regression(s) flagged, 2 bad input"""

EXIT_REGRESSION = 1
EXIT_BAD_INPUT = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", help="baseline run folder (results/<run-id>)")
    parser.add_argument("run_b", help="run folder to check against the baseline")
    parser.add_argument("--threshold", type=float, default=0.05,
                        help="relative slowdown that counts (median B / median A - 1); "
                             "default 0.05")
    parser.add_argument("--alpha", type=float, default=0.01,
                        help="family-wise significance level (one-sided Mann-Whitney U on the "
                             "raw samples, Holm-corrected over the cases); default 0.01")
    parser.add_argument("--min-time-ms", type=float, default=1.0,
                        help="repeatability figures: also over the cases with a median >= this "
                             "in both runs (default 1)")
    parser.add_argument("--ignore", action="append", default=[], metavar="FIELD",
                        help="match cases ignoring this case field (e.g. threads); repeatable")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")


def claims_agreement(claims_a: list, claims_b: list) -> dict:
    """Same verdict share and non-overlapping exponent CIs of the claims in both runs."""
    def key(c):
        return (c.get("id"), c.get("impl"), c.get("precision"))

    a = {key(c): c for c in claims_a if isinstance(c, dict)}
    b = {key(c): c for c in claims_b if isinstance(c, dict)}
    common = [k for k in a if k in b]
    same = sum(a[k].get("verdict") == b[k].get("verdict") for k in common)
    apart, fitted = [], 0
    for k in common:
        ca, cb = a[k], b[k]
        bounds = [ca.get("ci_low"), ca.get("ci_high"), cb.get("ci_low"), cb.get("ci_high")]
        if ca.get("kind") not in ("scaling", "params") or not all(
                isinstance(x, (int, float)) for x in bounds):
            continue
        fitted += 1
        if max(bounds[0], bounds[2]) > min(bounds[1], bounds[3]):
            apart.append({"id": k[0], "impl": k[1], "precision": k[2],
                          "ci_a": bounds[:2], "ci_b": bounds[2:]})
    return {"n_common": len(common), "same_verdict": same,
            "share_same_verdict": same / len(common) if common else None,
            "fitted": fitted, "ci_apart": apart}


def format_claims(agree: dict) -> list[str]:
    if not agree["n_common"]:
        return ["verdicts: no claim in both runs' summary.json"]
    lines = [f"verdicts: {agree['same_verdict']} of {agree['n_common']} claims "
             f"({agree['share_same_verdict']:.0%}) have the same verdict in both runs; "
             + (f"every fitted exponent's two CIs overlap ({agree['fitted']})"
                if not agree["ci_apart"] else
                f"{len(agree['ci_apart'])} of {agree['fitted']} fitted exponents' CIs do not "
                f"overlap:")]
    for c in agree["ci_apart"]:
        lines.append(f"  {c['id']} {c['impl']} {c['precision']}: A [{c['ci_a'][0]:.3g}, "
                     f"{c['ci_a'][1]:.3g}], B [{c['ci_b'][0]:.3g}, {c['ci_b'][1]:.3g}]")
    return lines


def _claims(run_dir: str) -> list | None:
    try:
        summary = json.loads((Path(run_dir) / "summary.json").read_text())
    except (OSError, ValueError):
        return None
    claims = summary.get("claims") if isinstance(summary, dict) else None
    return claims if isinstance(claims, list) else None


def main(args: argparse.Namespace) -> int:
    try:
        return _main(args)
    except Exception as exc:               # a bug must not read as a regression (exit 1)
        print(f"error: compare failed ({type(exc).__name__}: {exc})", file=sys.stderr)
        return EXIT_BAD_INPUT


def _main(args: argparse.Namespace) -> int:
    runs = []
    for name in (args.run_a, args.run_b):
        try:
            runs.append(check_run_dir(name))
        except RunDirError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    try:
        result = compare_records(runs[0][0], runs[1][0], args.threshold, args.alpha,
                                 tuple(args.ignore), min_time_s=args.min_time_ms / 1e3)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    claims = [_claims(args.run_a), _claims(args.run_b)]
    if claims[0] is not None and claims[1] is not None:
        result["claims"] = claims_agreement(*claims)
    cpu_a, cpu_b = ((m.get("cpu") or {}).get("model") for _, m in runs)
    if cpu_a != cpu_b:
        result["warning"] = f"different CPUs: A {cpu_a!r}, B {cpu_b!r}"
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        if result.get("claims"):
            print("\n".join(format_claims(result["claims"])))
        if result.get("warning"):
            print(f"warning: {result['warning']}")
        print(format_table(result, args.run_a, args.run_b))
    if result["n_common"] == 0:
        print("note: no case was measured in both runs", file=sys.stderr)
    return EXIT_REGRESSION if result["regressions"] else 0
