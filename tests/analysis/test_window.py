"""The rate-plateau fit window (bench.analysis.window): synthetic cache steps, no plateau, a
flat sweep; and two real runs (an AMD EPYC reporting a 32 MiB L3, a 2-vCPU Xeon VM reporting
its host's 260 MiB) whose every headline time claim the plateau window decides."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.analysis import claims, verdicts
from bench.analysis.fits import fit_power_law
from bench.analysis.frame import load_run
from bench.analysis.rule import REGIME_NO_PLATEAU, REGIME_PLATEAU, FitRule
from bench.analysis.window import plateau_window

ROOT = Path(__file__).parent.parent.parent
RUNS = {"amd-reference": ROOT / "results" / "reference",
        "xeon-207": ROOT / "tests" / "data" / "runs" / "xeon-207"}
SIZES = np.array([32, 64, 128, 256, 384, 512, 768, 1024, 1344, 1536, 1792, 2048, 3072, 4096.])
RULE = FitRule()


def _sweep(k: float, step_at: float | None, seed: int, drop: float = 3.0, noise: float = 0.02):
    """time = work / rate, work = n^k; the rate drops `drop`x for n >= step_at (the working set
    past a cache); 2% multiplicative noise, seeded."""
    rng = np.random.default_rng(seed)
    rate = np.where(SIZES >= step_at, 1.0 / drop, 1.0) if step_at else np.ones_like(SIZES)
    return 1e-7 * SIZES ** k / rate * np.exp(rng.normal(0, noise, SIZES.shape))


@pytest.mark.parametrize("k", [1.0, 2.0])
@pytest.mark.parametrize("step_at", [256, 512, 1024, 1344])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_window_starts_at_the_cache_step(k, step_at, seed):
    t = _sweep(k, step_at, seed)
    floor = t >= 0                                       # no floor here: the step alone
    mask, start = plateau_window(SIZES, t, floor, RULE.min_points, RULE.plateau_band)
    i_step, i_start = int(np.searchsorted(SIZES, step_at)), int(np.searchsorted(SIZES, start))
    assert abs(i_start - i_step) <= 1, (start, step_at)
    fit = fit_power_law(SIZES[mask], t[mask], min_points=RULE.min_points, n_boot=400, seed=0)
    assert fit.ci_low <= k <= fit.ci_high, (fit.exponent, fit.ci_low, fit.ci_high)


def test_flat_sweep_takes_every_size_above_the_floor():
    t = _sweep(2.0, None, seed=3)
    floor = t >= 1e-3
    mask, start = plateau_window(SIZES, t, floor, RULE.min_points, RULE.plateau_band)
    assert mask.tolist() == floor.tolist() and start == SIZES[floor].min()


def test_no_plateau_is_not_enough_data():
    """A staircase: the rate halves at every other size up to the top; no run of 4 sizes on
    one power law, so no window, and the fit says not enough data."""
    rate = 0.5 ** (np.arange(len(SIZES)) // 2)
    t = 1e-7 * SIZES ** 2 / rate
    mask, start = plateau_window(SIZES, t, t > 0, RULE.min_points, RULE.plateau_band)
    assert start is None and not mask.any()
    g = pd.DataFrame({"seq_len": SIZES, "median_s": t, "ws_over_llc": np.nan,
                      "llc_bytes": np.nan})
    m, regime = claims.fit_points(g, "seq_len", "time", RULE)
    assert regime == REGIME_NO_PLATEAU and not m.any()
    assert "no rate plateau" in RULE.regime_text(regime)


def test_isolated_outlier_is_bridged_two_are_a_step():
    t = _sweep(2.0, None, seed=4)
    t[7] *= 1.5                                          # one aliasing size (1024)
    mask, start = plateau_window(SIZES, t, t > 0, RULE.min_points, RULE.plateau_band)
    assert start == SIZES[0]
    t[6] *= 1.5                                          # two in a row: a step
    mask, start = plateau_window(SIZES, t, t > 0, RULE.min_points, RULE.plateau_band)
    assert start == SIZES[8]


def test_rule_options():
    assert FitRule().window == "plateau"
    with pytest.raises(ValueError, match="window"):
        FitRule(window="llc")
    with pytest.raises(ValueError, match="plateau_band"):
        FitRule(plateau_band=0)
    text = FitRule().regime_text(REGIME_PLATEAU, start=512, variable="seq_len")
    assert text.startswith("rate plateau from n = 512: rate within ±20% of the top sizes'")


HEADLINE = {("attention", "seq_len"), ("ffn", "seq_len"), ("ffn", "d_model"),
            ("attention", "d_model")}
# The one claim the data leave open: torch's bare attention on the Xeon slows by 25% as d
# grows 256 -> 2048 (rate 208 -> 157 GFLOP/s), so its exponent 1.2 has a CI reaching past
# 1.3 = theory + tolerance under either window: a measurement, not a window, question.
OPEN = {("xeon-207", "attention", "d_model", "torch")}


@pytest.fixture(scope="module", params=sorted(RUNS))
def run(request):
    df, meta = load_run(RUNS[request.param])
    return request.param, df


def _headline(entries):
    return [e for e in entries if e["metric"] == "time" and e["precision"] == "fp32"
            and (e["block"], e["variable"]) in HEADLINE and e.get("mode") in (None, "forward")]


def test_every_headline_time_claim_is_decided(run):
    name, df = run
    entries = _headline(claims.fit_all(df, FitRule(n_boot=1000)))
    impls = {(e["block"], e["variable"]): set() for e in entries}
    for e in entries:
        impls[(e["block"], e["variable"])].add(e["impl"])
        assert e["regime"] == REGIME_PLATEAU, e
        assert e["regime_text"].startswith("rate plateau from "), e["regime_text"]
        if (name, e["block"], e["variable"], e["impl"]) in OPEN:
            assert e["verdict"] == claims.NOT_ENOUGH and e["ci_high"] > 1.3 > e["ci_low"]
            continue
        assert e["verdict"] in (claims.HELD, claims.NOT_HELD), (e["impl"], e["block"],
                                                                e["variable"], e["exponent"])
    assert impls[("attention", "seq_len")] == {"numpy", "torch", "torch-sdpa", "torch-nn"}
    assert {"numpy", "torch", "torch-nn"} <= impls[("ffn", "seq_len")]
    assert impls[("ffn", "d_model")] and impls[("attention", "d_model")]
    rows = [r for r in verdicts.scaling_rows(entries, df) if r.metric == "time"]
    assert rows and all("(rate plateau;" in r.fit_range for r in rows)


def test_xeon_cache_rule_still_available_and_starved():
    """The old rule on the Xeon VM (LLC reported 260 MiB): attention vs n for numpy and torch
    has 1 size past 2x LLC, not enough data; the plateau window decides both."""
    df, _ = load_run(RUNS["xeon-207"])
    for window, want in (("cache", claims.NOT_ENOUGH), ("plateau", claims.HELD)):
        entries = _headline(claims.fit_all(df, FitRule(window=window, n_boot=400)))
        for impl in ("numpy", "torch"):
            e = next(e for e in entries if e["impl"] == impl and e["block"] == "attention"
                     and e["variable"] == "seq_len")
            assert e["verdict"] == want, (window, impl, e["exponent"])
