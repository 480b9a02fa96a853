"""The README's findings section generated from a run folder (bench.analysis.report.findings)."""

import json

import pytest

from bench.analysis.report import findings

ROWS = [
    {"kind": "scaling", "claim": "Attention: O(n²) time", "impl": "numpy", "precision": "fp32",
     "theory_text": "n^2", "value": 2.02, "ci_low": 1.9, "ci_high": 2.1, "unit": "exponent",
     "verdict": "held", "sentence": "..."},
    {"kind": "precision", "claim": "mixed precision is ~2× faster than fp32", "impl": "torch",
     "precision": "bf16", "theory_text": "~2×", "value": 0.33, "ci_low": 0.3, "ci_high": 0.35,
     "unit": "× fp32 speed", "verdict": "did not hold", "sentence": "bf16 (torch) ran at 0.33×."},
]
META = {"cpu": {"model": "Example CPU", "logical_cores": 2}, "cache_bytes": {"L3": 32 * 2 ** 20},
        "cpu_flags": ["avx2", "avx512f"]}


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "reference"
    d.mkdir()
    (d / "summary.json").write_text(json.dumps({"run": "reference", "n_ok": 9, "n_records": 10,
                                                "claims": ROWS}))
    (d / "meta.json").write_text(json.dumps(META))
    return d


def test_findings_name_the_machine_and_every_verdict(run_dir):
    text = findings.findings(run_dir)
    assert text.startswith("Measured on 2 cores of Example CPU (L3 32 MiB; avx512_bf16: no, "
                           "AMX-BF16: no), run `reference` (9 of 10 cases measured)")
    assert "2 claims tested, 1 held, 1 did not hold, 0 not enough data" in text
    assert "A different CPU gives different answers" in text
    assert "numpy fp32 2.02 [1.90, 2.10] **held**" in text
    assert "torch bf16 0.33× [0.30, 0.35] **did not hold**" in text
    assert "  bf16 (torch) ran at 0.33×." in text


def test_write_replaces_only_the_marked_section(run_dir, tmp_path, capsys):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\nbefore\n{findings.START}\nold text\n{findings.END}\nafter\n")
    assert findings.main([str(run_dir), "--write", str(readme)]) == 0
    text = readme.read_text()
    assert "old text" not in text and text.startswith("# x\nbefore\n")
    assert text.endswith(f"{findings.END}\nafter\n") and "Example CPU" in text
    readme.write_text("no markers\n")
    assert findings.main([str(run_dir), "--write", str(readme)]) == 2
    assert findings.main([str(tmp_path / "missing")]) == 2
    assert "error:" in capsys.readouterr().err
