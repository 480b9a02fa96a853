"""Sliding-window, global-token and linear attention (tfimpl/*/sparse_attention.py) and their
costs (tfimpl/costs/sparse.py): parity with the dense masked reference and the quadratic form at
float64, NumPy == torch, FLOPs == FlopCounterMode, pair counts == the mask, peaks == the tracker."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from tfimpl.costs import sparse as cs  # noqa: E402
from tfimpl.numpy import sparse_attention as ns  # noqa: E402
from tfimpl.torch import sparse_attention as ts  # noqa: E402

TOL = 1e-12
CASES = [(n, w, g, causal) for n, w, g, causal in
         itertools.product((1, 7, 64, 130), (1, 2, 5, 64, 100), (0, 1, 9), (False, True))
         if w <= n and g <= n]


def _qkv(n, d=8, b=2, h=3, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal((b, h, n, d)) for _ in range(3))


def _t(*arrays):
    return tuple(torch.from_numpy(a) for a in arrays)


@pytest.mark.parametrize("n,w,g,causal", CASES)
def test_window_and_global_equal_masked_dense(n, w, g, causal):
    q, k, v = _qkv(n)
    ref = ns.banded_attention(q, k, v, w, causal, g)                   # dense, (n, n) mask
    ours = ns.global_window_attention(q, k, v, w, g, causal)
    theirs = ts.global_window_attention(*_t(q, k, v), w, g, causal).numpy()
    sdpa = ts.banded_attention(*_t(q, k, v), w, causal, g, attn_impl="sdpa").numpy()
    for got in (ours, theirs, sdpa):
        assert np.abs(got - ref).max() <= TOL
    if g == 0:
        assert np.abs(ns.sliding_window_attention(q, k, v, w, causal) - ref).max() <= TOL
        assert np.abs(ts.sliding_window_attention(*_t(q, k, v), w, causal).numpy() - ref).max() <= TOL


def test_masks_mirror_and_match_the_definition():
    for n, w, g, causal in CASES:
        m = ns.window_mask(n, w, causal, g)
        assert np.array_equal(m, ts.window_mask(n, w, causal, g).numpy())
        assert int(m.sum()) == cs.pattern_pairs(n, w, g, causal)
        if causal and not g:
            assert set(m.sum(1)[w - 1:]) <= {w}                       # w keys per row, away from 0
    i, j = np.indices((9, 9))
    assert np.array_equal(ns.window_mask(9, 3), np.abs(i - j) <= 1)   # odd w: symmetric


@pytest.mark.parametrize("n", [1, 5, 64, 65, 200])
@pytest.mark.parametrize("causal", [False, True])
def test_linear_attention_equals_its_quadratic_form(n, causal):
    q, k, v = _qkv(n, seed=n)
    mask = np.random.default_rng(1).random((2, n)) > 0.3
    mask[:, 0] = True
    for m in (None, mask):
        ref = ns.linear_attention_quadratic(q, k, v, causal, m)
        tm = None if m is None else torch.from_numpy(m)
        got = [ns.linear_attention(q, k, v, causal, m),
               ts.linear_attention(*_t(q, k, v), causal, tm).numpy(),
               ts.linear_attention_quadratic(*_t(q, k, v), causal, tm).numpy()]
        for x in got:
            assert np.abs(x - ref).max() <= TOL


def test_linear_attention_quadratic_form_by_hand():
    q, k, v = _qkv(6, d=4, b=1, h=1)
    phi = lambda x: np.where(x > 0, x + 1, np.exp(x))                  # noqa: E731
    a = np.tril(phi(q[0, 0]) @ phi(k[0, 0]).T)
    expect = (a @ v[0, 0]) / a.sum(1, keepdims=True)
    assert np.abs(ns.linear_attention(q, k, v, causal=True)[0, 0] - expect).max() <= TOL


def _counted(fn):
    mode = FlopCounterMode(display=False)
    with mode, torch.inference_mode():
        fn()
    return mode.get_total_flops()


@pytest.mark.parametrize("n,w,g", [(100, 16, 0), (257, 64, 0), (130, 5, 3), (300, 100, 17)])
@pytest.mark.parametrize("causal", [False, True])
def test_flops_counted_equal_analytic(n, w, g, causal):
    q, k, v = _t(*_qkv(n, d=16, b=1, h=2))
    counted = _counted(lambda: ts.global_window_attention(q, k, v, w, g, causal))
    assert counted == cs.window_flops(1, 2, n, 16, w, g)["total"]
    assert _counted(lambda: ts.linear_attention(q, k, v, causal)) == \
        cs.linear_flops(1, 2, n, 16, causal)["total"]
    assert _counted(lambda: ts.banded_attention(q, k, v, w, causal, g)) == \
        cs.dense_flops(1, 2, n, 16)["total"]


def test_band_pairs_closed_form_against_a_loop():
    for n, left, right in itertools.product(range(0, 12), range(0, 14), range(0, 14)):
        loop = sum(min(n - 1, i + right) - max(0, i - left) + 1 for i in range(n))
        assert cs.band_pairs(n, left, right) == loop


def test_useful_fraction_falls_as_one_over_n():
    assert cs.useful_fraction(4096, 256) < 0.0625 < cs.useful_fraction(2048, 256) * 1.01
    assert cs.useful_fraction(100, 100) < 1 == cs.useful_fraction(100, 100, 100)


@pytest.mark.parametrize("n,w,g,causal", [(1024, 64, 0, False), (2048, 256, 0, True),
                                          (2048, 256, 16, False)])
def test_peaks_match_the_trackers(n, w, g, causal):
    from bench.trackers.memory import peak_numpy, peak_torch_cpu

    h, d = 4, 32
    q, k, v = (torch.randn(1, h, n, d) for _ in range(3))
    with torch.inference_mode():
        torch_win = peak_torch_cpu(lambda: ts.global_window_attention(q, k, v, w, g, causal))
        torch_lin = peak_torch_cpu(lambda: ts.linear_attention(q, k, v, causal))
    qn, kn, vn = (x.numpy() for x in (q, k, v))
    numpy_win = peak_numpy(lambda: ns.global_window_attention(qn, kn, vn, w, g, causal))
    # global: torch's matmul copies of the strided probability slices are not modelled
    rel = 0.05 if not g else 0.25
    assert torch_win == pytest.approx(cs.window_peak_bytes(1, h, n, d, w, 4, g), rel=rel)
    assert numpy_win == pytest.approx(cs.window_peak_bytes(1, h, n, d, w, 4, g, "numpy"), rel=max(rel, 0.1))
    assert torch_lin == pytest.approx(cs.linear_peak_bytes(1, h, n, d, 4, causal), rel=0.05)


@pytest.mark.parametrize("module", [ns, ts])
def test_bad_windows_are_errors_naming_the_argument(module):
    q, k, v = _qkv(8)
    if module is ts:
        q, k, v = _t(q, k, v)
    with pytest.raises(ValueError, match="window"):
        module.sliding_window_attention(q, k, v, 0)
    with pytest.raises(ValueError, match="window"):
        module.sliding_window_attention(q, k, v, 9)
    with pytest.raises(ValueError, match="global_tokens"):
        module.global_window_attention(q, k, v, 3, 9)
    with pytest.raises(ValueError, match="self-attention"):
        module.linear_attention(q, k[:, :, :4], v[:, :, :4])


@pytest.mark.parametrize("n,w,g,causal", [(300, 32, 0, False), (300, 31, 4, True), (257, 64, 0, True)])
def test_flex_attention_pattern_equals_the_mask(n, w, g, causal):
    pytest.importorskip("torch.nn.attention.flex_attention")
    q, k, v = _t(*_qkv(n, d=16, b=1, h=2))
    got = ts.flex_window_attention(q, k, v, w, causal, g).numpy()      # eager: no compile
    assert np.abs(got - ts.banded_attention(q, k, v, w, causal, g).numpy()).max() <= TOL
