"""bench history: run folders grouped by machine and config, verdicts and medians over runs,
damaged folders skipped with a reason, exit codes."""

import json
import shutil
from pathlib import Path

import pytest

from bench.analysis import history
from support import run

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT / "results" / "reference"
XEON = ROOT / "tests" / "data" / "runs" / "xeon-207"


def _slower_copy(src: Path, dst: Path, impl: str, factor: float) -> None:
    """A copy of run `src` whose `impl` cases are `factor` slower (samples and medians)."""
    shutil.copytree(src, dst)
    lines, ids = [], set()
    for line in (dst / "records.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("impl") == impl:
            ids.add(r["case_id"])
        if r.get("case_id") in ids and r.get("samples_s"):          # the record and its passes
            r["samples_s"] = [s * factor for s in r["samples_s"]]
            for key in ("median_s", "min_s", "mean_s", "iqr_s", "std_s"):
                if r.get(key) is not None:
                    r[key] *= factor
        lines.append(json.dumps(r))
    (dst / "records.jsonl").write_text("\n".join(lines) + "\n")
    meta = json.loads((dst / "meta.json").read_text())
    meta["start_time"] += 3600
    (dst / "meta.json").write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("results")
    shutil.copytree(REFERENCE, root / "a-reference")
    _slower_copy(REFERENCE, root / "b-slower", "numpy", 1.5)
    shutil.copytree(XEON, root / "c-xeon")
    (root / "d-damaged").mkdir()
    (root / "d-damaged" / "records.jsonl").write_text('{"case_id": "x"}\n{"torn\n[1, 2]\n')
    (root / "e-notes").mkdir()
    return root


def test_runs_are_grouped_by_machine_and_config_and_damage_is_skipped(results):
    runs, skipped = history.load_runs([results])
    assert sorted(r["name"] for r in runs) == ["a-reference", "b-slower", "c-xeon"]
    assert {Path(f).name for f, _ in skipped} == {"d-damaged", "e-notes"}
    assert all(why for _, why in skipped)
    groups = history.group_runs(runs)
    assert sorted(len(v) for v in groups.values()) == [1, 2]


def test_the_latest_runs_slower_cases_are_flagged_and_no_others(results):
    runs, _ = history.load_runs([results / "a-reference", results / "b-slower"])
    cases = history.case_history(runs)
    flagged = {c["label"].split("/")[0] for c in cases if c["flagged"]}
    assert flagged == {"numpy"}
    assert all(c["outside"] for c in cases if c["flagged"])
    assert not any(c["flagged"] or c["outside"] for c in cases if c["label"].startswith("torch"))


def test_claims_over_runs_keep_each_runs_verdict(results):
    runs, _ = history.load_runs([results / "a-reference", results / "b-slower"])
    claims = history.claim_history(runs)
    first = json.loads((REFERENCE / "summary.json").read_text())["claims"]
    assert len(claims) == len(first)
    key = (first[0]["id"], first[0]["impl"], first[0]["precision"])
    assert [c["verdict"] for c in claims[key]] == [first[0]["verdict"]] * 2


def test_the_command_writes_the_page_and_lists_the_skipped(capsys, results, tmp_path):
    out = tmp_path / "h.html"
    rc, stdout, err = run(capsys, "history", str(results), "--out", str(out))
    assert rc == 0, err
    assert "3 run(s) in 2 group(s), 2 skipped" in stdout and "skipped" in err
    text = out.read_text()
    assert 'id="skipped"' in text and "d-damaged" in text and "b-slower" in text


def test_no_run_at_all_is_exit_2_and_no_page(capsys, tmp_path):
    (tmp_path / "nothing").mkdir()
    rc, _, err = run(capsys, "history", str(tmp_path / "nothing"), "--out", str(tmp_path / "h.html"))
    assert rc == 2 and "no readable run folder" in err and not (tmp_path / "h.html").exists()
    rc, _, err = run(capsys, "history", str(tmp_path), "--out", str(tmp_path / "no" / "h.html"))
    assert rc == 2 and "does not exist" in err
