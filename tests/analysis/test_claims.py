"""Claims: theory table, asymptotic-range rule and verdicts, on synthetic run data."""

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.analysis import claims, crossover
from bench.analysis.fits import PowerFit, fit_power_law
from bench.analysis.frame import records_frame

_spec = importlib.util.spec_from_file_location(
    "synthetic_run", Path(__file__).parent.parent / "data" / "synthetic_run.py")
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)

RULE = claims.FitRule(n_boot=400, window="cache")


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


def _sweep(times, ws_over_llc, metric_values=None):
    """A one-series sweep over octaves 32..2048 with the given times and working sets."""
    x = [32, 64, 128, 256, 512, 1024, 2048]
    return pd.DataFrame({"seq_len": x, "median_s": times, "ws_over_llc": ws_over_llc,
                         "flops": metric_values or [float(v) ** 2 for v in x],
                         "peak_bytes": metric_values or [float(v) for v in x]})


FAST_THEN_SLOW = [1e-4, 5e-4, 2e-3, 5e-3, 2e-2, 8e-2, 3e-1]


@pytest.mark.parametrize("metric", ["flops", "params"])
def test_fit_points_exact_counts_use_every_size(metric):
    """Under the time floor and inside the cache alike: a count has no regime."""
    g = _sweep(FAST_THEN_SLOW, [0.01, 0.02, 0.1, 0.5, 1, 3, 9])
    mask, regime = claims.fit_points(g, "seq_len", metric, RULE)
    assert regime == claims.REGIME_ALL and mask.all()


def test_fit_points_memory_top_three_octaves():
    g = _sweep(FAST_THEN_SLOW, [0.01] * 7)
    mask, regime = claims.fit_points(g, "seq_len", "memory", RULE)
    assert regime == claims.REGIME_TOP
    assert g["seq_len"][mask].tolist() == [256, 512, 1024, 2048]      # x >= 2048 / 8
    # counted down from the largest size that has a value
    g2 = g.assign(peak_bytes=[1.0, 2, 3, 4, 5, 6, np.nan])
    mask2, _ = claims.fit_points(g2, "seq_len", "memory", RULE)
    assert g2["seq_len"][mask2].tolist() == [128, 256, 512, 1024, 2048]
    mask3, _ = claims.fit_points(g, "seq_len", "memory", claims.FitRule(top_octaves=1))
    assert g["seq_len"][mask3].tolist() == [1024, 2048]


def test_fit_points_time_past_the_cache():
    """The working set crosses 2x LLC at 1024: only the sizes past it (and >= 1 ms) count."""
    g = _sweep(FAST_THEN_SLOW, [0.01, 0.03, 0.1, 0.4, 1.5, 3.0, 9.0])
    mask, regime = claims.fit_points(g, "seq_len", "time", RULE)
    assert regime == claims.REGIME_PAST_CACHE
    assert g["seq_len"][mask].tolist() == [1024, 2048]
    # past the cache but under the time floor: left out too
    g2 = g.assign(median_s=[1e-4] * 6 + [3e-1])
    assert g2["seq_len"][claims.fit_points(g2, "seq_len", "time", RULE)[0]].tolist() == [2048]


def test_fit_points_time_cache_resident():
    """Never reaches 2x LLC (fused SDPA): the top three octaves at >= 1 ms."""
    g = _sweep([1e-4, 2e-4, 4e-4, 8e-4, 2e-3, 8e-3, 3e-2], [0.01, 0.02, 0.05, 0.1, 0.3, 1.0, 1.9])
    mask, regime = claims.fit_points(g, "seq_len", "time", RULE)
    assert regime == claims.REGIME_IN_CACHE
    assert g["seq_len"][mask].tolist() == [512, 1024, 2048]             # 256 is under 1 ms
    unknown = g.assign(ws_over_llc=np.nan)
    mask_u, regime_u = claims.fit_points(unknown, "seq_len", "time", RULE)
    assert regime_u == claims.REGIME_CACHE_UNKNOWN and mask_u.tolist() == mask.tolist()


def test_fused_attention_time_gets_a_verdict_in_cache():
    """Synthetic fused SDPA up to T = 4096: working set 4·T·D·4 B ≤ 48 MiB, never 64 MiB;
    time ∝ T² at 40 GFLOP/s. The whole sweep (to 16384) does pass 2x LLC: the other regime."""
    recs = [r for r in synthetic.make_records(seed=0)
            if r["impl"] == "torch-sdpa" and r["block"] == "attention" and r["seq_len"] <= 4096]
    entries = claims.fit_all(records_frame(recs, synthetic.META), RULE)
    e = _find(entries, impl="torch-sdpa", block="attention", precision="fp32", metric="time",
              variable="seq_len")
    assert e["regime"] == claims.REGIME_IN_CACHE
    assert e["range"] == [512.0, 4096.0]                # the top three octaves
    assert e["verdict"] == claims.HELD and e["theory"] == 2.0
    assert any("(the cache-resident regime)" in n for n in e["notes"])
    m = _find(entries, impl="torch-sdpa", block="attention", precision="fp32", metric="memory",
              variable="seq_len")
    assert m["regime"] == claims.REGIME_TOP and m["range"] == [512.0, 4096.0]
    assert m["theory"] == 1.0 and m["verdict"] == claims.HELD
    f = _find(entries, impl="torch-sdpa", block="attention", precision="fp32", metric="flops",
              variable="seq_len")
    assert f["regime"] == claims.REGIME_ALL and f["range"] == [128.0, 4096.0]
    assert f["verdict"] == claims.HELD
    full = _find(claims.fit_all(records_frame(synthetic.make_records(seed=0), synthetic.META),
                                RULE), impl="torch-sdpa", block="attention", precision="fp32",
                 metric="time", variable="seq_len")
    assert full["regime"] == claims.REGIME_PAST_CACHE and full["range"] == [6144.0, 16384.0]


def test_fit_rule_rejects_bad_octaves():
    with pytest.raises(ValueError, match="top_octaves"):
        claims.FitRule(top_octaves=0)


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
    assert crossover.analytic_crossover("encoder_layer", 768, 12, 3072) == 4608
    assert crossover.analytic_crossover("mha", 512, 8, 2048) == 1024
    assert crossover.share_crossover_analytic("mha / encoder_layer", 768, 12, 3072) == 1536
    assert crossover.share_crossover_analytic("attention / (attention + ffn)", 768, 12, 3072) == 3072


def test_attention_share_source(frame):
    share = crossover.attention_share(frame[frame["ok"]])
    assert set(share["source"]) == {"encoder_layer"}
    assert share["share"].between(0, 1).all()
    no_layer = frame[frame["ok"] & (frame["block"] != "encoder_layer")]
    share2 = crossover.attention_share(no_layer)
    assert set(share2["blocks"]) == {"mha / (mha + ffn)"}


def test_empty_and_all_failed_frames():
    assert claims.fit_all(records_frame([], {}), RULE) == []
    recs = [synthetic.record("torch", "attention", "fp32", t, 768, None, status="failed: x")
            for t in (512, 1024)]
    assert claims.fit_all(records_frame(recs, synthetic.META), RULE) == []


@pytest.mark.parametrize("lo, hi, words", [
    (20, 40, "across the 32 MiB last-level cache"),
    (40, 80, "across 2× the 32 MiB last-level cache"),
    (18, 21, "near the 32 MiB last-level cache without crossing it"),
    (1, 2, "with no cache boundary there"),
    (100, 200, "with no cache boundary there"),
])
def test_cache_boundary_words(lo, hi, words):
    mib = 2 ** 20
    assert words in claims.cache_boundary_words(lo * mib, hi * mib, 32 * mib, 2.0)


def test_report_command_selects_the_window():
    import argparse

    from bench.commands import report

    parser = argparse.ArgumentParser()
    report.add_arguments(parser)
    assert parser.parse_args(["run"]).window == "plateau"
    assert parser.parse_args(["run", "--window", "cache"]).window == "cache"
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--window", "llc"])
