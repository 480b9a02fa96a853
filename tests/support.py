"""Helpers several test modules share (imported as `support`: pytest puts tests/ on sys.path)."""

import json

from bench.cli import dispatch as main  # the command without the process settings (pytest's process)


def run(capsys, *argv):
    """`python -m bench ARGV` in process: (exit code, stdout, stderr)."""
    rc = main(list(argv))
    captured = capsys.readouterr()
    return rc, captured.out, captured.err


def run_json(capsys, *argv):
    """The same with --json: the parsed output (the command must succeed)."""
    rc, out, err = run(capsys, *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


class StepClock:
    """Each read advances by `step`: every timed block lasts exactly one step."""

    def __init__(self, step):
        self.step, self.now = step, 0.0

    def __call__(self):
        self.now += self.step
        return self.now


def reference_page(folder):
    """results/reference copied into `folder`, its report.html written there:
    (run folder, page path, summary.json as a dict)."""
    import shutil
    from pathlib import Path

    from bench.analysis.frame import load_run
    from bench.analysis.report import html

    run = Path(folder) / "reference"
    shutil.copytree(Path(__file__).resolve().parents[1] / "results" / "reference", run)
    df, meta = load_run(run)
    summary = json.loads((run / "summary.json").read_text())
    return run, html.write_html(run, df, meta, summary), summary
