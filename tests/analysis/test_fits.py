"""Fits on synthetic data with known exponents, noise and degenerate input."""

import math

import numpy as np
import pytest
from scipy.stats import theilslopes

from bench.analysis.fits import (NOT_ENOUGH, _pairwise_median_slopes, fit_power_law,
                                 fit_two_term, local_slopes)

X = np.array([1024, 1280, 1536, 2048, 2560, 3072, 4096], dtype=float)


@pytest.mark.parametrize("k", [1.0, 2.0, 3.0])
def test_exact_power_law_is_recovered_exactly(k):
    fit = fit_power_law(X, 3e-9 * X ** k)
    assert fit.ok
    assert fit.exponent == pytest.approx(k, abs=1e-12)
    assert fit.ci_low == pytest.approx(k, abs=1e-9) and fit.ci_high == pytest.approx(k, abs=1e-9)
    assert fit.r2 == pytest.approx(1.0)
    assert fit.intercept == pytest.approx(math.log(3e-9))
    assert (fit.n_points, fit.x_min, fit.x_max) == (7, 1024, 4096)


@pytest.mark.parametrize("k", [1.0, 2.0])
def test_noisy_power_law_recovered_within_ci(k):
    rng = np.random.default_rng(1)
    y = 2e-8 * X ** k * np.exp(rng.normal(0, 0.05, X.size))
    fit = fit_power_law(X, y, seed=3)
    assert fit.ci_low <= k <= fit.ci_high
    assert abs(fit.exponent - k) < 0.15
    assert fit.ci_high - fit.ci_low < 0.5
    assert fit.r2 > 0.95


def test_ci_coverage_is_sensible():
    """Nominal 95%: over 200 noisy data sets the true exponent falls inside ~90-100% of CIs."""
    rng = np.random.default_rng(42)
    x = np.geomspace(1000, 8000, 8)
    hits = 0
    for rep in range(200):
        y = x ** 2 * np.exp(rng.normal(0, 0.08, x.size))
        fit = fit_power_law(x, y, n_boot=400, seed=rep)
        hits += fit.ci_low <= 2.0 <= fit.ci_high
    assert 0.88 <= hits / 200 <= 1.0


def test_robust_to_one_aliased_point():
    """One size 3x slower (power-of-two cache aliasing) barely moves Theil-Sen."""
    y = X ** 2
    y[3] *= 3.0                      # n = 2048
    robust = fit_power_law(X, y)
    ls_slope = np.polyfit(np.log(X), np.log(y), 1)[0]
    assert abs(robust.exponent - 2.0) < 0.05
    assert abs(ls_slope - 2.0) > abs(robust.exponent - 2.0)


def test_bootstrap_slope_matches_scipy_theilslopes():
    rng = np.random.default_rng(0)
    lx = np.log(X)
    ly = 2 * lx + rng.normal(0, 0.1, X.size)
    ours = _pairwise_median_slopes(lx[None, :], ly[None, :])[0]
    assert ours == pytest.approx(theilslopes(ly, lx).slope)
    # a bootstrap resample repeats points: same answer as scipy on the resample itself
    dup = np.array([0, 0, 1, 1, 2, 5])
    assert _pairwise_median_slopes(lx[None, dup], ly[None, dup])[0] == pytest.approx(
        theilslopes(ly[dup], lx[dup]).slope)


@pytest.mark.parametrize("x, y, why", [
    ([1024.0], [1.0], "distinct x"),                                    # one point
    ([512, 512, 512, 512], [1, 2, 3, 4], "distinct x"),                 # constant x
    (X, np.full(X.size, 0.5), "constant"),                              # constant y
    (X, np.zeros(X.size), "distinct x"),                                # zeros
    (X, np.full(X.size, np.nan), "distinct x"),                         # NaN
    (X, -X ** 2, "distinct x"),                                         # negative
    ([1, 2, 3, np.nan, 5], [1, 4, 9, 16, -25], "distinct x"),           # 3 usable left
    ([], [], "distinct x"),                                             # nothing
])
def test_degenerate_input_is_not_enough_data(x, y, why):
    fit = fit_power_law(x, y)
    assert fit.status == NOT_ENOUGH and not fit.ok
    assert why in fit.reason
    assert math.isnan(fit.exponent) and math.isnan(fit.ci_low)


def test_bad_points_dropped_but_fit_still_made():
    y = X ** 2
    y[0] = np.nan
    y[1] = 0.0
    fit = fit_power_law(X, y)
    assert fit.ok and fit.n_points == 5 and "2 point(s)" in fit.reason
    assert fit.exponent == pytest.approx(2.0)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="same length"):
        fit_power_law([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="min_points"):
        fit_power_law(X, X, min_points=1)


def test_local_slopes_hand_computed():
    x = [256, 512, 1024, 1024, 2048]
    y = [1.0, 4.0, 32.0, 32.0, 128.0]      # slopes 2, 3, 2
    s = local_slopes(x, y)
    assert [(r["x_lo"], r["x_hi"]) for r in s] == [(256, 512), (512, 1024), (1024, 2048)]
    assert [r["slope"] for r in s] == pytest.approx([2.0, 3.0, 2.0])
    assert local_slopes([1.0], [1.0]) == []


def test_two_term_recovers_known_crossover():
    """t = a n^2 d + b n d^2 + c with b d / a = 4608 (the BERT-base layer's FLOP crossover)."""
    d = 768
    a, c = 1e-12, 2e-4
    b = 4608 * a / d
    n = np.array([128, 256, 384, 512, 768, 1024, 1536, 2048, 3072, 4096, 6144, 8192], float)
    t = a * n ** 2 * d + b * n * d ** 2 + c
    fit = fit_two_term(n, np.full(n.size, d), t)
    assert fit.ok
    assert fit.crossover(d) == pytest.approx(4608, rel=1e-6)
    assert fit.c == pytest.approx(c, rel=1e-5)
    assert fit.max_abs_rel_residual < 1e-8
    # with 3% noise the crossover is still found within 10%
    rng = np.random.default_rng(7)
    noisy = fit_two_term(n, np.full(n.size, d), t * np.exp(rng.normal(0, 0.03, n.size)))
    assert noisy.crossover(d) == pytest.approx(4608, rel=0.10)
    assert 0.01 < noisy.max_abs_rel_residual < 0.2


def test_two_term_with_n_and_d_varying():
    a, b, c = 2e-12, 5e-13, 0.0
    n = np.array([256, 512, 1024, 2048, 512, 512, 512, 512], float)
    d = np.array([768, 768, 768, 768, 256, 512, 1024, 2048], float)
    fit = fit_two_term(n, d, a * n ** 2 * d + b * n * d ** 2 + c)
    assert fit.a == pytest.approx(a, rel=1e-6) and fit.b == pytest.approx(b, rel=1e-6)
    assert fit.crossover(1024) == pytest.approx(b * 1024 / a, rel=1e-6)
    assert np.allclose(fit.predict(1000, 500), a * 1000 ** 2 * 500 + b * 1000 * 500 ** 2)


def test_two_term_coefficients_are_non_negative():
    n = np.array([100, 200, 400, 800, 1600], float)
    t = 5.0 - 1e-3 * n          # decreasing: an unconstrained fit would want b < 0
    fit = fit_two_term(n, np.full(n.size, 64.0), t)
    assert fit.ok and fit.a >= 0 and fit.b >= 0 and fit.c >= 0


def test_two_term_not_enough_data():
    fit = fit_two_term([512, 1024, np.nan], [768, 768, 768], [1.0, 2.0, 3.0])
    assert fit.status == NOT_ENOUGH and math.isnan(fit.crossover(768))
    with pytest.raises(ValueError, match="same length"):
        fit_two_term([1, 2], [1], [1, 2])


def test_two_term_fits_a_width_sweep_at_fixed_n():
    """n fixed, d varying (model_sweep): n²d and nd² are d and d², still separable."""
    import numpy as np

    from bench.analysis.fits import fit_two_term

    d = np.array([256, 384, 512, 768, 1024, 1536, 2048, 3072], float)
    n = np.full_like(d, 256.0)
    t = 2e-12 * n ** 2 * d + 5e-12 * n * d ** 2 + 1e-4
    fit = fit_two_term(n, d, t)
    assert fit.ok and fit.a == pytest.approx(2e-12, rel=1e-6)
    assert fit.b == pytest.approx(5e-12, rel=1e-6) and fit.c == pytest.approx(1e-4, rel=1e-4)
    few = fit_two_term(n[:3], d[:3], t[:3])
    assert not few.ok and "3 distinct (n, d)" in few.reason
