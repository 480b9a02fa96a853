"""Claims: theory table, asymptotic-range rule and verdicts, on synthetic run data."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.analysis import claims
from bench.analysis.fits import PowerFit, fit_power_law
from bench.analysis.frame import records_frame

_spec = importlib.util.spec_from_file_location(
    "synthetic_run", Path(__file__).parent / "data" / "synthetic_run.py")
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)

RULE = claims.FitRule(n_boot=400)


@pytest.fixture(scope="module")
def frame():
    return records_frame(synthetic.make_records(seed=0), synthetic.META)


@pytest.fixture(scope="module")
def entries(frame):
    return claims.fit_all(frame, RULE)


def _find(entries, **match):
    found = [e for e in entries if all(e[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, len(found))
    return found[0]


def test_theory_table():
    assert claims.theory_exponent("attention", "time", "seq_len") == 2
    assert claims.theory_exponent("attention", "memory", "seq_len", "materialised") == 2
    assert claims.theory_exponent("attention", "memory", "seq_len", "fused") == 1
    assert claims.theory_exponent("attention", "memory", "seq_len", None) is None
    assert claims.theory_exponent("ffn", "time", "seq_len") == 1
    assert claims.theory_exponent("ffn", "flops", "d_model") == 2
    assert claims.theory_exponent("ffn", "time", "d_model", ffn_ratio_fixed=False) is None
    assert claims.theory_exponent("mha", "time", "seq_len") is None
    assert claims.theory_exponent("encoder_layer", "params", "d_model") == 2


@pytest.mark.parametrize("ci, expected", [
    ((1.95, 2.12), claims.HELD),
    ((2.04, 2.08), claims.HELD),          # theory outside a tight CI but within tolerance
    ((2.35, 2.60), claims.NOT_HELD),
    ((1.20, 1.60), claims.NOT_HELD),
    ((1.80, 2.50), claims.NOT_ENOUGH),    # straddles the band edge: cannot decide
])
def test_verdict_rule(ci, expected):
    fit = PowerFit("ok", exponent=sum(ci) / 2, ci_low=ci[0], ci_high=ci[1])
    assert claims.verdict(fit, 2.0, 0.3) == expected


def test_verdict_without_data_or_theory():
    assert claims.verdict(fit_power_law([1.0], [1.0]), 2.0, 0.3) == claims.NOT_ENOUGH
    assert claims.verdict(PowerFit("ok", exponent=2, ci_low=2, ci_high=2), None, 0.3) is None


def test_attention_time_fits_past_the_cache_cliff(entries):
    """Synthetic data: 3.3x cliff when B*H*T*T*4 outgrows 32 MiB, aliasing at numpy T=1024."""
    for impl in ("numpy", "torch"):
        e = _find(entries, impl=impl, block="attention", precision="fp32", metric="time",
                  variable="seq_len")
        assert e["verdict"] == claims.HELD
        assert e["range"] == [1536.0, 4096.0]      # 12*1536^2*4 B = 108 MiB >= 64 MiB
        assert e["ci_low"] <= 2.0 <= e["ci_high"]
        assert e["full_range_exponent"] > 2.2      # the naive fit across the cliff is off
        assert max(s["slope"] for s in e["local_slopes"]) > 3.5


def test_flops_exact_and_memory_by_path(entries):
    e = _find(entries, impl="torch", block="attention", precision="fp32", metric="flops",
              variable="seq_len")
    assert e["exponent"] == pytest.approx(2.0) and e["verdict"] == claims.HELD
    assert "counted" in e["method"]
    fused = _find(entries, impl="torch-sdpa", block="attention", precision="fp32",
                  metric="memory", variable="seq_len")
    assert fused["theory"] == 1.0 and fused["verdict"] == claims.HELD
    assert fused["exponent"] == pytest.approx(1.0, abs=0.02)


def test_ffn_in_n_and_d(entries):
    e = _find(entries, impl="torch", block="ffn", precision="fp32", metric="time",
              variable="seq_len")
    assert e["verdict"] == claims.HELD and e["ci_low"] <= 1.0 <= e["ci_high"]
    d = _find(entries, impl="torch", block="ffn", precision="fp32", metric="time",
              variable="d_model")
    assert d["theory"] == 2.0 and d["verdict"] == claims.HELD


def test_too_few_asymptotic_points_is_not_enough_data():
    """A sweep that stops at 8192: only 3 FFN lengths pass 2x L3 -> no fit of what is left."""
    recs = [r for r in synthetic.make_records(seed=0)
            if r["block"] == "ffn" and r["seq_len"] <= 8192 and r["d_model"] == 768]
    entries = claims.fit_all(records_frame(recs, synthetic.META), RULE)
    e = _find(entries, impl="torch", block="ffn", precision="fp32", metric="time",
              variable="seq_len")
    assert e["verdict"] == claims.NOT_ENOUGH
    assert e["exponent"] is None and e["points_asymptotic"] == 3
    assert "need 4" in e["reason"]
    assert e["full_range_exponent"] == pytest.approx(1.0, abs=0.1)   # context, not a verdict


def test_params_per_layer(entries):
    e = _find(entries, metric="params")
    assert e["counts_match_costs"]
    assert e["verdict"] == claims.HELD and e["exponent"] == pytest.approx(2.0, abs=0.01)
    c = {r["d_model"]: r["params"] for r in e["counts"]}
    assert c[768] == 7_087_872           # one BERT-base layer


def test_summary_keys_present(entries):
    needed = {"impl", "block", "precision", "metric", "variable", "exponent", "ci_low", "ci_high",
              "theory", "verdict", "r2", "n_points", "range", "method"}
    for e in entries:
        assert needed <= set(e)


def test_asymptotic_mask_rule():
    g = pd.DataFrame({"median_s": [5e-4, 2e-3, 2e-3, 5e-3],
                      "ws_over_llc": [4.0, 1.0, 2.0, np.nan]})
    assert claims.asymptotic_mask(g, RULE).tolist() == [False, False, True, False]
    unknown = g.assign(ws_over_llc=np.nan)          # cache size unknown: only the time floor
    assert claims.asymptotic_mask(unknown, RULE).tolist() == [False, True, True, True]


def test_two_term_crossover_on_fused_path(frame):
    """torch-sdpa: attention at 40 GFLOP/s, linear work at 50 -> time crossover 0.8 x FLOP's."""
    rows = claims.two_term_fits(frame, RULE)
    r = next(x for x in rows if x["impl"] == "torch-sdpa" and x["block"] == "encoder_layer"
             and x["precision"] == "fp32")
    assert r["crossover_analytic"] == 4608            # 2*768 + 3072
    assert r["crossover_fitted"] == pytest.approx(0.8 * 4608, rel=0.1)
    mha = next(x for x in rows if x["impl"] == "torch-sdpa" and x["block"] == "mha"
               and x["precision"] == "fp32")
    assert mha["crossover_analytic"] == 1536 and mha["crossover_fitted"] == pytest.approx(
        0.8 * 1536, rel=0.1)
    assert any(x["block"] == "mha+ffn" for x in rows)


def test_analytic_crossovers():
    assert claims.analytic_crossover("encoder_layer", 768, 12, 3072) == 4608
    assert claims.analytic_crossover("mha", 512, 8, 2048) == 1024
    assert claims.share_crossover_analytic("mha / encoder_layer", 768, 12, 3072) == 1536
    assert claims.share_crossover_analytic("attention / (attention + ffn)", 768, 12, 3072) == 3072


def test_attention_share_source(frame):
    share = claims.attention_share(frame[frame["ok"]])
    assert set(share["source"]) == {"encoder_layer"}
    assert share["share"].between(0, 1).all()
    no_layer = frame[frame["ok"] & (frame["block"] != "encoder_layer")]
    share2 = claims.attention_share(no_layer)
    assert set(share2["blocks"]) == {"mha / (mha + ffn)"}


def test_empty_and_all_failed_frames():
    assert claims.fit_all(records_frame([], {}), RULE) == []
    recs = [synthetic.record("torch", "attention", "fp32", t, 768, None, status="failed: x")
            for t in (512, 1024)]
    assert claims.fit_all(records_frame(recs, synthetic.META), RULE) == []
