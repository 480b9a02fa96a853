"""compare with the calibration probe: a drift of the whole machine cancels, a slower impl does not.

Synthetic runs: 3 impls x 8 sizes, 3 passes of 7 lognormal samples each (per-sample sigma 2%,
per-pass machine state sigma 2% shared with the probe, per-pass case noise sigma 2%), pass lines
folded by bench.reader on read; a small real pair with tests/data/slow_impl.py.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.analysis import compare as cmp
from bench.cli import dispatch as cli
from bench.reader import read_records

ROOT = Path(__file__).resolve().parents[2]
IMPLS = ("numpy", "torch", "torch-sdpa")
SIZES = (16, 32, 64, 128, 256, 512, 1024, 2048)


def _lines(seed, drift=1.0, slow_impl=None, slow=1.0, calib=True):
    rng = np.random.default_rng(seed)
    out = []
    for impl in IMPLS:
        for n in SIZES:
            center = 1e-3 * n / 64 * (slow if impl == slow_impl else 1.0) * drift
            cid = f"{impl}-{n}"
            for k in (1, 2, 3):
                machine = float(np.exp(rng.normal(0, 0.02)))
                level = center * machine * float(np.exp(rng.normal(0, 0.02)))
                samples = (level * np.exp(rng.normal(0, 0.02, 7))).tolist()
                line = {"case_id": cid, "status": "ok", "samples_s": samples,
                        "median_s": float(np.median(samples))}
                if calib:
                    c = 5e-3 * drift * machine * np.exp(rng.normal(0, 0.01, 6))
                    line.update(calib_s=float(c.min()), calib_probe=f"{impl[:5]} ffn",
                                calib_samples_s=c.tolist())
                if k == 1:
                    line.update(impl=impl, block="attention", seq_len=n, batch=1, threads=2,
                                precision="fp32", mode="forward")
                else:
                    line["pass"] = k
                out.append(line)
    return out


def _write(run_dir: Path, lines, claims=None, version=3):
    run_dir.mkdir()
    (run_dir / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (run_dir / "meta.json").write_text(json.dumps({"cpu": {"model": "x"},
                                                   **({"schema_version": version} if version > 1 else {})}))
    if claims is not None:
        (run_dir / "summary.json").write_text(json.dumps({"claims": claims}))
    return str(run_dir)


def _pair(tmp_path, **kw):
    calib = kw.pop("calib", True)
    version = 3 if calib else 1
    a = _write(tmp_path / "A", _lines(0, calib=calib), version=version)
    b = _write(tmp_path / "B", _lines(1, calib=calib, **kw), version=version)
    return a, b


@pytest.mark.parametrize("drift", [1.03, 1.20])
def test_a_drift_of_the_whole_machine_is_no_regression(tmp_path, capsys, drift):
    a, b = _pair(tmp_path, drift=drift)
    res = cmp.compare_records(read_records(a), read_records(b))
    assert res["regressions"] == 0 and res["calibration"]["n_corrected"] == 24
    assert res["calibration"]["probe_factor"] == pytest.approx(drift, rel=0.02)
    assert res["repeatability"]["run_wide"]["factor"] == pytest.approx(drift, rel=0.03)
    assert cli(["compare", a, b]) == 0
    out = capsys.readouterr().out
    assert (f"drift-corrected by the calibration probe timed beside each case: run-wide probe "
            f"ratio B/A = {drift:.2f}") in out
    assert "run-wide factor" in out and "inside each run" in out     # the raw figures stay


@pytest.mark.parametrize("slow", [1.10, 1.25])
@pytest.mark.parametrize("drift", [1.0, 1.20])
def test_exactly_the_slower_implementation_is_flagged(tmp_path, capsys, slow, drift):
    a, b = _pair(tmp_path, drift=drift, slow_impl="torch", slow=slow)
    res = cmp.compare_records(read_records(a), read_records(b))
    flagged = {r["impl"] for r in res["rows"] if r["status"] == cmp.REGRESSION}
    torch_rows = [r for r in res["rows"] if r["impl"] == "torch"]
    assert flagged <= {"torch"}
    n = sum(r["status"] == cmp.REGRESSION for r in torch_rows)
    if slow == 1.25:
        assert n == len(SIZES)
    else:                           # where its noise and the pair's scatter allow: 3.9 sigma
        assert n == sum(r["change"] > r["floor"] for r in torch_rows) >= 1
        assert all(r["floor"] >= res["scatter"]["floor"] for r in torch_rows)
    assert cli(["compare", a, b]) == 1


def test_the_scatter_yardstick_is_not_widened_by_one_slower_implementation(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "t").mkdir()
    same = cmp.compare_records(*(read_records(p) for p in _pair(tmp_path / "s", slow=1.0)))
    slow = cmp.compare_records(*(read_records(p) for p in _pair(tmp_path / "t", slow_impl="torch",
                                                                slow=1.25)))
    assert same["scatter"]["sigma"] == pytest.approx(slow["scatter"]["sigma"], rel=0.05)
    assert 0.01 < same["scatter"]["sigma"] < 0.05          # ~2% per pass, two runs
    assert cmp.scatter_z(124, 0.01) == pytest.approx(3.94, abs=0.01)
    assert cmp.scatter_z(1, 0.5) == 2.5


def test_records_without_calib_fall_back_to_the_raw_ratios(tmp_path, capsys):
    a, b = _pair(tmp_path, drift=1.20, calib=False)
    res = cmp.compare_records(read_records(a), read_records(b))
    assert res["calibration"]["n_corrected"] == 0 and "note" in res["calibration"]
    assert all(r["corrected"] == r["ratio"] and r["probe_ratio"] is None for r in res["rows"])
    assert res["regressions"] == 24                      # the drift is not removed
    assert cli(["compare", a, b]) == 1
    assert "no calibration probe" in capsys.readouterr().out


def test_calib_fields_fold_with_the_best_pass(tmp_path):
    (rec,) = [r for r in read_records(_write(tmp_path / "A", _lines(0))) if r["case_id"] == "numpy-64"]
    assert rec["passes"] == 3 and len(rec["pass_calib_s"]) == 3
    assert rec["calib_s"] == rec["pass_calib_s"][rec["best_pass"] - 1]


def test_the_smoothed_calib_ignores_one_spoiled_probe():
    recs = [{"status": "ok", "calib_s": 0.005, "calib_probe": "p"} for _ in range(9)]
    recs[4]["calib_s"] = 0.011                        # a busy moment
    smooth = cmp.smoothed_calib(recs)
    assert smooth[id(recs[4])] == 0.005


CONFIG = """name: slowpair
measure: {warmup: 1, min_repeats: 5, min_time_s: 0.02, budget_s: 10, passes: 2, accuracy: false,
          count_flops: false, measure_memory: false}
defaults: {batch: 1, d_model: 256, n_heads: 4, d_ff: 1024, precision: fp32, threads: 1, block: ffn}
grid:
  impl: ["tests.data.slow_impl:IMPL", numpy]
  seq_len: [128, 256, 512]
"""


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("TFBENCH_TIMING_TESTS") != "1",
                    reason="a timing test (two real runs, ~20 s): it needs a quiet machine, a busy "
                           "2-core VM can move a tiny numpy case by 20%; TFBENCH_TIMING_TESTS=1 runs it")
def test_a_real_pair_flags_the_slowed_plugin(tmp_path, capsys):
    cfg = tmp_path / "slow.yaml"
    cfg.write_text(CONFIG)
    runs = []
    for name, slow in (("A", "0"), ("B", "0.25")):
        out = tmp_path / name
        env = {**os.environ, "TFBENCH_TEST_SLOWDOWN": slow}
        subprocess.run([sys.executable, "-m", "bench", "run", str(cfg), "--out", str(out),
                        "--no-report"], cwd=ROOT, env=env, check=True, capture_output=True)
        runs.append(str(out))
    res = cmp.compare_records(read_records(runs[0]), read_records(runs[1]))
    slow_rows = [r for r in res["rows"] if r["impl"].startswith("tests.data.slow_impl")]
    assert all(r["calib_a_s"] and r["calib_b_s"] for r in res["rows"])
    assert 1.1 < np.median([r["corrected"] for r in slow_rows]) < 1.6      # 1.25 made
    assert any(r["status"] == cmp.REGRESSION for r in slow_rows)
    assert not [r for r in res["rows"] if r not in slow_rows and r["status"] == cmp.REGRESSION]


def _claim(cid, verdict, lo, hi, kind="scaling"):
    return {"id": cid, "kind": kind, "impl": "torch", "precision": "fp32", "verdict": verdict,
            "value": None if lo is None else (lo + hi) / 2, "ci_low": lo, "ci_high": hi}


def test_verdict_agreement_is_printed_first(tmp_path, capsys):
    ca = [_claim("attention.time.seq_len", "held", 1.9, 2.1), _claim("ffn.time.seq_len", "held", 0.9, 1.1),
          _claim("crossover", "held", None, None, kind="crossover")]
    cb = [_claim("attention.time.seq_len", "held", 1.95, 2.2), _claim("ffn.time.seq_len", "did not hold", 1.3, 1.5),
          _claim("crossover", "held", None, None, kind="crossover")]
    a = _write(tmp_path / "A", _lines(0), claims=ca)
    b = _write(tmp_path / "B", _lines(1, drift=1.2), claims=cb)
    assert cli(["compare", a, b]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("verdicts: 2 of 3 claims (67%) have the same verdict in both runs; "
                             "1 of 2 fitted exponents' CIs do not overlap:")
    assert out[1].strip().startswith("ffn.time.seq_len torch fp32: A [0.9, 1.1], B [1.3, 1.5]")
    assert out[2].startswith("drift-corrected")
