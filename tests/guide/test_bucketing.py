"""Padding vs length bucketing: analytic wasted FLOPs, and the measured comparison's shape."""

import pytest

from tfimpl.config import ModelConfig
from tfimpl.costs import forward_flops
from tfimpl.costs.training import padded_batches, padding_flops

CFG = ModelConfig(d_model=32, n_heads=2, d_ff=64, n_layers=2)


def test_batches_in_order_or_sorted():
    assert padded_batches([5, 1, 4, 2], 2, bucketed=False) == [[5, 1], [4, 2]]
    assert padded_batches([5, 1, 4, 2], 2, bucketed=True) == [[1, 2], [4, 5]]


def test_wasted_flops_by_hand():
    lengths = [8, 2, 6, 4]
    f = lambda b, t: forward_flops("encoder", CFG, b, t)["total"]   # noqa: E731
    padded = padding_flops("encoder", CFG, lengths, 2, bucketed=False)
    bucketed = padding_flops("encoder", CFG, lengths, 2, bucketed=True)
    useful = f(1, 8) + f(1, 2) + f(1, 6) + f(1, 4)
    assert padded == {"useful": useful, "computed": f(2, 8) + f(2, 6),
                      "wasted": f(2, 8) + f(2, 6) - useful}
    assert bucketed["computed"] == f(2, 4) + f(2, 8)
    assert 0 < bucketed["wasted"] < padded["wasted"]
    assert padding_flops("encoder", CFG, [4, 4, 4, 4], 2, True)["wasted"] == 0
    with pytest.raises(ValueError, match="positive"):
        padding_flops("encoder", CFG, [0, 3], 2, True)


def test_measured_comparison_runs_both_orders():
    pytest.importorskip("torch")
    from bench.guide.bucketing import compare
    out = compare([30, 3, 28, 5, 25, 2, 27, 4], 2, CFG, repeats=2)
    for name in ("padded", "bucketed"):
        assert out[name]["seconds"] > 0 and len(out[name]["samples_s"]) == 2
    assert out["bucketed"]["padding_share"] < out["padded"]["padding_share"]
    assert out["bucketed"]["wasted"] < out["padded"]["wasted"]
