"""compare: time ratio + one-sided Mann-Whitney U on raw samples, exit 1 on a regression."""

import json
import math

import numpy as np
import pytest

from bench.analysis import compare as cmp
from bench.analysis import compare_text
from bench.cli import dispatch as cli


def _rec(case_id, samples, **fields):
    base = {"impl": "torch", "block": "attention", "batch": 1, "seq_len": 512, "d_model": 768,
            "n_heads": 12, "d_ff": 3072, "layers": 1, "precision": "fp32", "device": "cpu",
            "threads": 2, "mode": "forward", "activation": "gelu", "norm_first": False,
            "causal": False, "vocab_size": 30522, "seed": 0}
    base.update(fields)
    return {**base, "case_id": case_id, "status": "ok", "samples_s": list(samples),
            "median_s": float(np.median(samples))}


def _noisy(center, n, seed):
    return (center * np.exp(np.random.default_rng(seed).normal(0, 0.01, n))).tolist()


def _write(run_dir, records):
    run_dir.mkdir()
    (run_dir / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run_dir / "meta.json").write_text(json.dumps({"cpu": {"model": "x"}}))
    return str(run_dir)


def test_clear_regression_is_flagged():
    a = [_rec("c1", _noisy(0.010, 7, 0)), _rec("c2", _noisy(0.020, 7, 1))]
    b = [_rec("c1", _noisy(0.013, 7, 2)), _rec("c2", _noisy(0.020, 7, 3))]
    res = cmp.compare_records(a, b)
    rows = {r["case_id_a"]: r for r in res["rows"]}
    assert rows["c1"]["status"] == cmp.REGRESSION
    assert rows["c1"]["ratio"] == pytest.approx(1.3, rel=0.05)
    assert rows["c1"]["p_slower"] < 0.01
    assert rows["c2"]["status"] == cmp.UNCHANGED
    assert res["regressions"] == 1


def test_identical_runs_have_no_regression():
    a = [_rec(f"c{i}", _noisy(0.01 * (i + 1), 7, i)) for i in range(4)]
    res = cmp.compare_records(a, a)
    assert res["regressions"] == 0 and res["counts"][cmp.UNCHANGED] == 4
    assert all(r["ratio"] == 1.0 for r in res["rows"])


def test_improvement_and_small_change_are_not_regressions():
    a = [_rec("fast", _noisy(0.010, 7, 0)), _rec("small", _noisy(0.010, 7, 1))]
    b = [_rec("fast", _noisy(0.007, 7, 2)), _rec("small", _noisy(0.0102, 7, 3))]
    rows = {r["case_id_a"]: r for r in cmp.compare_records(a, b)["rows"]}
    assert rows["fast"]["status"] == cmp.IMPROVEMENT
    assert rows["small"]["status"] == cmp.UNCHANGED        # 2% < 5% threshold


def test_too_few_samples_cannot_reach_alpha():
    """3 + 3 samples: the exact one-sided p is at least 1/20, never below alpha = 0.01."""
    assert cmp.min_p_value(3, 3) == pytest.approx(1 / 20)
    assert cmp.min_p_value(5, 5) == pytest.approx(1 / 252)
    a = [_rec("c", [0.010, 0.0101, 0.0099])]
    b = [_rec("c", [0.020, 0.0201, 0.0199])]
    row = cmp.compare_records(a, b)["rows"][0]
    assert row["status"] == cmp.TOO_FEW and row["p_slower"] >= 0.05


def test_match_on_fields_with_ignore():
    a = [_rec("id-a", _noisy(0.010, 7, 0), threads=1)]
    b = [_rec("id-b", _noisy(0.020, 7, 1), threads=2)]
    assert cmp.compare_records(a, b)["n_common"] == 0
    res = cmp.compare_records(a, b, ignore=("threads",))
    assert res["n_common"] == 1 and res["regressions"] == 1
    with pytest.raises(ValueError, match="ignore"):
        cmp.compare_records(a, b, ignore=("colour",))
    with pytest.raises(ValueError, match="alpha"):
        cmp.compare_records(a, b, alpha=0)


def test_failed_cases_are_not_compared():
    a = [_rec("c", _noisy(0.01, 7, 0))]
    b = [{**_rec("c", _noisy(0.05, 7, 1)), "status": "failed: boom"}]
    res = cmp.compare_records(a, b)
    assert res["n_common"] == 0 and res["only_a"] == 1 and res["regressions"] == 0


def test_cli_exit_codes_and_json(tmp_path, capsys):
    base = [_rec("c1", _noisy(0.010, 9, 0)), _rec("c2", _noisy(0.030, 9, 1))]
    slow = [_rec("c1", _noisy(0.015, 9, 2)), _rec("c2", _noisy(0.030, 9, 3))]
    run_a = _write(tmp_path / "a", base)
    run_b = _write(tmp_path / "b", slow)
    assert cli(["compare", run_a, run_a]) == 0
    assert cli(["compare", run_a, run_b]) == 1
    out = capsys.readouterr().out
    assert "regression" in out and "1 regression(s)" in out
    assert cli(["compare", run_a, run_b, "--threshold", "0.6"]) == 0
    capsys.readouterr()
    assert cli(["compare", run_a, run_b, "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["regressions"] == 1 and data["rows"][0]["case_id_a"] == "c1"
    assert cli(["compare", run_a, str(tmp_path / "missing")]) == 2


# ---- any sample count, multiple comparisons, repeatability ---------------------------------

def test_min_p_value_never_overflows():
    assert cmp.min_p_value(600, 600) == 0.0                # underflows, was OverflowError
    assert cmp.log_min_p_value(600, 600) == pytest.approx(-math.log(math.comb(1200, 600)))


def test_holm_by_hand():
    # sorted p 0.01, 0.02, 0.04 with m = 3: 0.03, max(0.03, 0.04), max(0.04, 0.04)
    assert cmp.holm([0.04, 0.01, 0.02]) == pytest.approx([0.04, 0.03, 0.04])
    assert cmp.holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])
    assert cmp.holm([]) == []


def test_thousands_of_samples_per_case():
    n = 2000
    a = [_rec(f"c{i}", _noisy(0.001 * (i + 2), n, i)) for i in range(20)]
    b = [_rec(f"c{i}", _noisy(0.001 * (i + 2) * (1.2 if i == 3 else 1.0), n, 100 + i))
         for i in range(20)]
    res = cmp.compare_records(a, b)
    rows = {r["case_id_a"]: r for r in res["rows"]}
    assert res["regressions"] == 1 and rows["c3"]["status"] == cmp.REGRESSION
    assert rows["c3"]["p_slower_holm"] < 1e-10 and rows["c3"]["n_a"] == n
    assert all(r["status"] == cmp.UNCHANGED for k, r in rows.items() if k != "c3")
    rep = res["repeatability"]["timed"]
    assert rep["n"] == 20 and rep["within_5pct"] == 19 and rep["share_within_5pct"] == 0.95
    assert rep["worst_ratio"] == pytest.approx(1.2, rel=0.01) and rep["beyond_15pct"] == 1


def test_correction_removes_a_chance_finding():
    """One p = 0.004 among 50 cases passes alpha = 0.01 alone, not after Holm (0.2)."""
    rows = [{"p_slower": 0.004 if i == 0 else 0.5} for i in range(50)]
    assert cmp.holm([r["p_slower"] for r in rows])[0] == pytest.approx(0.2)


def test_repeatability_counts_only_timed_cases_in_the_timed_share():
    a = [_rec("fast", _noisy(0.0001, 50, 0)), _rec("slow", _noisy(0.01, 50, 1))]
    b = [_rec("fast", _noisy(0.00013, 50, 2)), _rec("slow", _noisy(0.0102, 50, 3))]
    rep = cmp.compare_records(a, b)["repeatability"]
    assert rep["timed"]["n"] == 1 and rep["timed"]["within_5pct"] == 1
    assert rep["all"]["n"] == 2 and rep["all"]["within_5pct"] == 1
    assert rep["all"]["worst_ratio"] == pytest.approx(1.3, rel=0.02)


def test_cli_prints_repeatability_and_never_crashes_into_exit_1(tmp_path, capsys, monkeypatch):
    base = [_rec(f"c{i}", _noisy(0.002, 1200, i)) for i in range(5)]
    run_a = _write(tmp_path / "a", base)
    assert cli(["compare", run_a, run_a]) == 0
    out = capsys.readouterr().out
    assert "within +-5%: 5 (100%)" in out and "worst B/A 1.000" in out

    def boom(*args, **kwargs):
        raise OverflowError("int too large to convert to float")

    import bench.commands.compare as command

    monkeypatch.setattr(command, "compare_records", boom)
    assert cli(["compare", run_a, run_a]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "OverflowError" in err[0]


def test_within_run_agreement_of_passes_by_hand():
    w = cmp.within_run([[1.0, 1.02, 1.2], [2.0, 2.0], [5.0]])
    # case 1: pairs (1, 1.02) in, (1, 1.2) and (1.02, 1.2) out -> 1/3; case 2: 1/1; case 3: one pass
    assert w["n"] == 2 and w["share_pairs_within_5pct"] == pytest.approx((1 / 3 + 1) / 2)
    assert w["spread_p50"] == pytest.approx((1.2 + 1.0) / 2)
    assert cmp.within_run([[1.0]])["share_pairs_within_5pct"] is None


def test_compare_prints_each_runs_pass_agreement_when_timed_in_passes(tmp_path, capsys):
    a = [dict(_rec(f"c{i}", _noisy(0.002, 30, i)), pass_medians_s=[0.002, 0.0021, 0.0026])
         for i in range(3)]
    b = [_rec(f"c{i}", _noisy(0.002, 30, 10 + i)) for i in range(3)]          # one pass
    rep = cmp.compare_records(a, b)["repeatability"]
    assert rep["within_run_a"]["n"] == 3 and rep["within_run_b"]["n"] == 0
    assert rep["within_run_a"]["spread_p90"] == pytest.approx(1.3)
    assert cli(["compare", _write(tmp_path / "a", a), _write(tmp_path / "b", b)]) in (0, 1)
    line = [x for x in capsys.readouterr().out.splitlines() if x.startswith("inside each run")]
    assert len(line) == 1 and "A 33% of pass pairs within +-5%" in line[0] and "; B" not in line[0]


def test_run_wide_factor_is_the_median_ratio_and_the_cases_scatter_around_it():
    rows = [{"ratio": r} for r in (0.95, 0.96, 0.96, 0.97, 0.80)]
    w = cmp.run_wide(rows)
    assert w["n"] == 5 and w["factor"] == pytest.approx(0.96)
    assert w["share_within_5pct"] == pytest.approx(4 / 5) and w["beyond_15pct"] == 1
    assert cmp.run_wide([])["factor"] is None
    a = [_rec(f"c{i}", _noisy(0.002, 30, i)) for i in range(4)]
    b = [_rec(f"c{i}", _noisy(0.0019, 30, 10 + i)) for i in range(4)]     # all 5% faster
    rep = cmp.compare_records(a, b)["repeatability"]
    assert rep["run_wide"]["factor"] == pytest.approx(0.95, rel=0.02)
    assert rep["run_wide"]["share_within_5pct"] == 1.0
    assert any(line.startswith("run-wide factor") and "B/A 0.9" in line
               for line in compare_text.format_repeatability(rep))
