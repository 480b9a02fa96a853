"""A metric registered by a plugin module (examples/bytes_moved.py) becomes a record column, is
fitted against the swept variable and gets a verdict row, with no package file touched."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import metrics

ROOT = Path(__file__).resolve().parents[2]


def _bench(*args):
    out = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True,
                         text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bytes") / "run"
    _bench("run", "examples/bytes_moved.yaml", "--out", str(out))
    return out


def test_the_column_lands_in_every_measured_record(run):
    records = [json.loads(line) for line in (run / "records.jsonl").read_text().splitlines()]
    ok = [r for r in records if r["status"] == "ok"]
    assert ok and all(r["bytes_moved_min"] > 0 for r in ok)
    attn = sorted((r["seq_len"], r["bytes_moved_min"]) for r in ok
                  if r["block"] == "attention" and r["impl"] == "numpy")
    (t0, b0), (t1, b1) = attn[0], attn[1]
    assert b1 / b0 > (t1 / t0) ** 1.5            # the n² matrix dominates


def test_fits_and_verdict_rows_for_the_metric(run):
    summary = json.loads((run / "summary.json").read_text())
    fits = [f for f in summary["fits"] if f["metric"] == "bytes"]
    assert {(f["impl"], f["block"]) for f in fits} == {
        (i, b) for i in ("numpy", "torch") for b in ("attention", "ffn")}
    rows = [r for r in summary["claims"] if r["metric"] == "bytes"]
    assert {r["id"] for r in rows} == {"attention.bytes.seq_len", "ffn.bytes.seq_len"}
    assert all(r["verdict"] == "held" for r in rows)
    assert all(r["sentence"].startswith("Minimum bytes moved of ") for r in rows)
    assert "bytes_vs_seq_len_attention" in summary["plots"]


def test_report_imports_the_plugin_again_and_gives_the_same_claims(run):
    before = json.loads((run / "summary.json").read_text())["claims"]
    (run / "summary.json").unlink()
    _bench("report", str(run))
    assert json.loads((run / "summary.json").read_text())["claims"] == before


def test_a_bad_fit_range_is_a_value_error():
    with pytest.raises(ValueError, match="fit_range"):
        metrics.register(metrics.Metric("bad", "bad_col", "x", "x", fit_range="everything"))
    assert "bad" not in metrics.METRICS


def test_fill_computes_hooked_columns_for_measured_records_only():
    m = metrics.Metric("twice", "twice_n", "tokens", "2n", fit_range="all",
                       value=lambda r: 2.0 * r["seq_len"])
    metrics.register(m)
    try:
        assert metrics.fill({"status": "ok", "seq_len": 8})["twice_n"] == 16.0
        assert metrics.fill({"status": "failed: x", "seq_len": 8})["twice_n"] is None
    finally:
        del metrics.METRICS["twice"]
