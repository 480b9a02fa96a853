"""bench.cli: one entry path. `python -m bench` and the installed `tfbench` script apply the same
process settings (bench.machine.process) and record them alike in meta.json; the parser imports
only the module of the command that runs."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--set", "seq_len=16", "--set", "impl=numpy", "--set", "block=ffn",
        "--set", "measure.min_time_s=0.001", "--set", "measure.passes=1", "--no-report"]


def _clean_env() -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in ("THP_MEM_ALLOC_ENABLE", "OPENBLAS_THREAD_TIMEOUT", "TFBENCH_MALLOC")}
    env["PYTHONPATH"] = str(ROOT)
    return env


def _entry_points() -> dict:
    """How a user starts tfbench: `python -m bench`, and the console script pyproject installs
    (`tfbench`; where it is not on PATH, the same two lines the script runs)."""
    script = shutil.which("tfbench")
    console = [script] if script else [sys.executable, "-c",
                                       "import sys; from bench.cli import main; sys.exit(main())"]
    return {"python -m bench": [sys.executable, "-m", "bench"], "tfbench": console}


@pytest.mark.slow
def test_both_entries_record_the_same_process_settings(tmp_path):
    seen = {}
    for name, argv in _entry_points().items():
        out = tmp_path / name.replace(" ", "_")
        subprocess.run(argv + ["run", "configs/smoke.yaml", "--out", str(out)] + TINY,
                       cwd=ROOT, env=_clean_env(), check=True, capture_output=True, timeout=300)
        seen[name] = json.loads((out / "meta.json").read_text())["process"]
    assert seen["tfbench"] == seen["python -m bench"]
    assert seen["tfbench"]["env"] == {"THP_MEM_ALLOC_ENABLE": "1", "OPENBLAS_THREAD_TIMEOUT": "4"}
    assert seen["tfbench"]["malloc_reason"] != "not applied"


def test_the_parser_imports_only_the_command_that_runs():
    code = ("import sys; from bench import cli; cli.build_parser(); "
            "loaded = sorted(m for m in sys.modules if m.startswith('bench.commands.')); "
            "heavy = 'numpy' in sys.modules, 'torch' in sys.modules; "
            "cli.build_parser('params'); "
            "after = sorted(m for m in sys.modules if m.startswith('bench.commands.')); "
            "print(loaded, after, *heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_clean_env(),
                         check=True, capture_output=True, text=True).stdout.strip()
    assert out.startswith("[] ['bench.commands.model_args', 'bench.commands.params']"), out
    assert out.endswith("False False"), out


def test_help_lists_every_command_without_importing_them(capsys):
    from bench import cli

    with pytest.raises(SystemExit):
        cli.dispatch(["--help"])
    text = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in text


def test_no_command_prints_help_and_exits_2(capsys):
    from bench import cli

    assert cli.dispatch([]) == 2
    assert "COMMAND" in capsys.readouterr().out
