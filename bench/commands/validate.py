"""`python -m bench validate CONFIG [--set key=value ...]`: check a config, list its cases.

Measures nothing and writes nothing. Exit 0 when the config is valid, 2 (with one line on
stderr naming the file and key) when it is not.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench import capabilities
from bench.case import Measure
from bench.config import ConfigError, load_config

HELP = "check a config and list its cases; measures nothing"
EPILOG = """examples:
  python -m bench validate configs/seq_sweep.yaml
  python -m bench validate configs/smoke.yaml --set threads=1 --set "seq_len=[64,128]"
  python -m bench validate configs/model_sweep.yaml --json > cases.jsonl

exit status: 0 valid, 2 invalid (the message names the file, the key and what is allowed)"""

# Short column headers for the Case fields (others use the field name).
HEADERS = {"batch": "B", "seq_len": "T", "d_model": "d", "n_heads": "h", "layers": "L",
           "threads": "thr"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="a sweep YAML file, e.g. configs/seq_sweep.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a Case field everywhere (threads=1, seq_len=[64,128]) "
                             "or a section key (measure.min_time_s=0.05); repeatable")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per case (with case_id and sweep) instead "
                             "of the table")


def main(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        for case, sweep in zip(config.cases, config.case_sweeps):
            print(json.dumps({"case_id": case.case_id, "sweep": sweep, **case.to_dict()}))
        return 0
    print(describe(config))
    return 0


def describe(config) -> str:
    """The config as text: header, the values shared by all cases, and a table of the rest."""

    lines = [f"{config.path}: {config.name}" + (f" - {config.description}"
                                                 if config.description else "")]
    default_measure = Measure()
    changed = {k: v for k, v in config.measure.to_dict().items()
               if getattr(default_measure, k) != v}
    lines.append("measure: " + " ".join(f"{k}={v}" for k, v in config.measure.to_dict().items()
                                        if k in changed or k in ("warmup", "min_repeats",
                                                                 "min_time_s", "budget_s")))
    lines.append("executor: " + " ".join(f"{k}={v}" for k, v in config.executor.to_dict().items()
                                         if v is not None))

    rows = [{"sweep": sweep, **case.to_dict()} for case, sweep in zip(config.cases,
                                                                       config.case_sweeps)]
    columns = list(rows[0])
    varying = [c for c in columns if len({r[c] for r in rows}) > 1]
    shared = [c for c in columns if c not in varying]
    lines.append("same for every case: " + " ".join(f"{c}={rows[0][c]}" for c in shared))
    lines.append("")
    lines.extend(_table(rows, varying, [c.case_id for c in config.cases]))
    lines.append("")
    notes = sorted({note for case in config.cases if (note := capabilities.caveat(case))})
    lines.extend(f"note: {note}" for note in notes)
    lines.append(f"{len(config.cases)} cases, config hash {config.config_hash[:12]}")
    return "\n".join(lines)


def _table(rows: list[dict], columns: list[str], case_ids: list[str]) -> list[str]:
    headers = ["#"] + [HEADERS.get(c, c) for c in columns] + ["case_id"]
    body = [[str(i + 1)] + [str(row[c]) for c in columns] + [cid]
            for i, (row, cid) in enumerate(zip(rows, case_ids))]
    widths = [max(len(r[j]) for r in [headers] + body) for j in range(len(headers))]
    numeric = [all(r[j].isdigit() for r in body) for j in range(len(headers))]

    def fmt(cells):
        return "  ".join(cell.rjust(w) if num else cell.ljust(w)
                         for cell, w, num in zip(cells, widths, numeric)).rstrip()

    return [fmt(headers)] + [fmt(r) for r in body]
