"""`python -m bench <command>` and the installed `tfbench <command>`: one entry for both.

`main()` is what both call (bench/__main__.py and pyproject's console script): it applies the
process settings (bench.machine.process: huge pages, OpenBLAS workers that sleep, an allocator
that keeps freed memory) before NumPy or torch load, then `dispatch`es to one sub-command per
module under `bench/commands/`. Each command module defines `HELP` (one line),
`add_arguments(parser)` and `main(args) -> int`; only the module of the command being run is
imported, so `--help` stays fast and an optional dependency (ray, transformers) is needed only
by the command that uses it. Nothing here imports NumPy or torch.
Tests: tests/test_cli.py.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bench.machine import process

# name -> (module, one-line help). Order is the order `--help` shows.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("bench.commands.run", "measure every case of a YAML sweep into results/<run-id>/"),
    "validate": ("bench.commands.validate", "check a config and list its cases; measures nothing"),
    "report": ("bench.commands.report", "rebuild report.md, summary.json, report.html and plots of a run folder"),
    "compare": ("bench.commands.compare", "compare two runs case by case; exit 1 on a regression"),
    "history": ("bench.commands.history", "one HTML page of many runs: verdicts, exponents and case medians over time"),
    "peak": ("bench.commands.peak", "measure this machine's matmul peak (GFLOP/s) per dtype"),
    "noise": ("bench.commands.noise", "how steady this machine is: fixed probes timed in turns, slot by slot"),
    "profile": ("bench.commands.profile", "per-step time of a model or block against FLOPs, bytes and the roofline"),
    "params": ("bench.commands.params", "parameter breakdown of a model preset or explicit size"),
    "flops": ("bench.commands.flops", "forward/backward FLOPs per component of a model"),
    "figures": ("bench.commands.figures", "draw positional-encoding and attention-pattern figures"),
    "explain": ("bench.commands.explain", "worked examples, step by step, beside the library call"),
}

EPILOG = """examples:
  python -m bench run configs/seq_sweep.yaml
  python -m bench run configs/smoke.yaml --out /tmp/smoke --set threads=1
  python -m bench run configs/seq_sweep.yaml --dry-run
  python -m bench report results/seq_sweep-20261126-120000
  python -m bench compare results/A results/B
  python -m bench history results/
  python -m bench noise --seconds 60
  python -m bench params bert-base
  python -m bench flops bert-base --seq-len 512
  python -m bench explain attention

`python -m bench COMMAND --help` documents each command."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only `command`'s module is imported (for its arguments), none when None."""
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="tfbench: measure what happens inside a Transformer and check it against theory.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_line) in COMMANDS.items():
        p = sub.add_parser(name, help=help_line, description=help_line,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(_module=module_name)
        module = _import_command(module_name) if name == command else None
        if module is not None:
            module.add_arguments(p)
            if getattr(module, "EPILOG", None):
                p.epilog = module.EPILOG
    return parser


def _import_command(module_name: str):
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None
        raise


def main(argv: list[str] | None = None) -> int:
    """The entry of `python -m bench` and `tfbench`: process settings, then the command."""
    process.apply()
    return dispatch(argv)


def dispatch(argv: list[str] | None = None) -> int:
    """Parse `argv` (default sys.argv[1:]) and run its command; the process as it is."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    module = _import_command(args._module)
    if module is None:
        print(f"error: command {args.command!r} is not available in this build", file=sys.stderr)
        return 2
    return int(module.main(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
