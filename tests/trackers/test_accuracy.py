"""bench.trackers.accuracy: error metrics (hand-computed), and the rounding-error tolerance model checked
on real computations of our implementations: fp64 vs fp64 is exactly 0, fp32 ~1e-7..1e-6,
bf16 ~1e-3..1e-2, and a perturbed output fails."""

import math

import numpy as np
import pytest
import torch

from bench.trackers import accuracy as A
from bench import precision as P
from tfimpl.config import ModelConfig
from tfimpl.params import init_params

# ---- the metrics, by hand -------------------------------------------------------------------


def test_errors_by_hand():
    errs = A.errors(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0]))
    assert errs["max_abs_err"] == 1.0
    assert errs["max_rel_err"] == pytest.approx(1.0 / (4.0 + 1e-2 * 4.0))
    assert errs["rel_l2_err"] == pytest.approx(1.0 / math.sqrt(1 + 4 + 16))


def test_relative_floor_keeps_near_zero_references_finite():
    # |ref| = 1e-12 next to 1: without the floor the relative error would be ~1e9.
    errs = A.errors(np.array([1e-6, 1.0]), np.array([1e-12, 1.0]))
    assert errs["max_rel_err"] == pytest.approx((1e-6 - 1e-12) / (1e-12 + 1e-2))
    assert A.errors(np.zeros(3), np.zeros(3)) == {"max_abs_err": 0.0, "max_rel_err": 0.0,
                                                   "rel_l2_err": 0.0}
    assert A.errors(np.ones(3), np.zeros(3))["rel_l2_err"] == math.inf


def test_errors_accepts_bf16_tensors_exactly():
    ref = torch.tensor([1.0, 3.0], dtype=torch.float64)
    out = torch.tensor([1.0, 3.0], dtype=torch.bfloat16)       # both exactly representable
    assert A.errors(out, ref)["max_abs_err"] == 0.0
    out = torch.tensor([1.0 + 2 ** -7, 3.0], dtype=torch.bfloat16)
    assert A.errors(out, ref)["max_abs_err"] == 2 ** -7


def test_errors_rejects_mismatched_or_empty():
    with pytest.raises(ValueError, match=r"shape \(2,\).*shape \(3,\)"):
        A.errors(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="empty"):
        A.errors(np.ones(0), np.ones(0))


def test_non_finite_output_is_never_within_tolerance():
    errs = A.errors(np.array([np.nan, 1.0]), np.array([1.0, 1.0]))
    assert math.isnan(errs["rel_l2_err"])
    assert A.within_tolerance(errs, "bf16", reduction=4)[0] is False


def test_attention_errors_are_prefixed():
    errs = A.attention_errors(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)))
    assert errs == {"attn_max_abs_err": 0.0, "attn_max_rel_err": 0.0, "attn_rel_l2_err": 0.0}
    assert set(A.NULL_ATTENTION_ERRORS) == set(errs)


# ---- the tolerance model, by hand -------------------------------------------------------------


def test_expected_tolerance_by_hand():
    u32 = 2.0 ** -24
    assert A.expected_tolerance("fp32", 100) == pytest.approx(4 * (u32 + 10 * u32))
    assert A.expected_tolerance("fp32", 100, model="worst") == pytest.approx(4 * 101 * u32)
    assert A.expected_tolerance("bf16", 100, depth=3, safety=1) == pytest.approx(
        3 * (2.0 ** -8 + 10 * u32))
    assert A.expected_tolerance("fp64", 1, safety=1) == 2 * 2.0 ** -53
    # bf16 accumulates in fp32: its bound is set by rounding the operands, not by K
    assert A.expected_tolerance("bf16", 4096) < 1.1 * A.expected_tolerance("bf16", 16)
    assert A.expected_tolerance("fp32", 4096) > 10 * A.expected_tolerance("fp32", 16)


@pytest.mark.parametrize("kwargs, match", [
    ({"reduction": 0}, "reduction"), ({"reduction": 8, "depth": 0}, "depth"),
    ({"reduction": 8, "model": "typical"}, "model"),
])
def test_expected_tolerance_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        A.expected_tolerance("fp32", **kwargs)


def test_within_tolerance_compares_rel_l2():
    bound = A.expected_tolerance("fp32", 64)
    assert A.within_tolerance({"rel_l2_err": bound * 0.99}, "fp32", 64) == (True, bound)
    assert A.within_tolerance({"rel_l2_err": bound * 1.01}, "fp32", 64) == (False, bound)
    assert A.within_tolerance({"attn_rel_l2_err": 0.0}, "fp32", 64, prefix="attn_")[0]


# ---- real computations: our implementations at each precision vs their fp64 run --------------

D, H, T = 256, 4, 128


def _torch_run(name, fn, *arrays):
    """fn on the arrays cast for `name`, under its context (the runner's path)."""
    with torch.no_grad(), P.context(name, "cpu"):
        return fn(*[P.cast_input(a, name, "torch") for a in arrays])


def _assert_precision_behaves(name, errs, reduction, depth):
    ok, bound = A.within_tolerance(errs, name, reduction, depth)
    assert ok, f"{name}: rel_l2_err {errs['rel_l2_err']:.3g} > bound {bound:.3g}"
    rel = errs["rel_l2_err"]
    if name == "fp64":
        assert errs == {"max_abs_err": 0.0, "max_rel_err": 0.0, "rel_l2_err": 0.0}
    elif name == "fp32":
        assert 1e-9 < rel < 1e-5                        # ~1e-7..1e-6: really fp32, not fp64
    else:                                               # bf16 / amp-bf16
        assert 1e-4 < rel < 5e-2                        # ~1e-3..1e-2
        assert not A.within_tolerance(errs, "fp32", reduction, depth)[0]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    cfg = ModelConfig(d_model=D, n_heads=H, d_ff=4 * D, n_layers=1)
    return {"x": rng.standard_normal((1, T, D)),
            "qkv": [rng.standard_normal((1, H, T, D // H)) for _ in range(3)],
            "mha": init_params("mha", cfg, seed=0),
            "layer": init_params("encoder_layer", cfg, seed=0), "cfg": cfg}


PRECISIONS = ["fp64", "fp32", "bf16", "amp-bf16"]


@pytest.mark.parametrize("name", PRECISIONS)
def test_linear(name, data):
    from tfimpl.torch.linear import linear

    w = data["mha"]["q.weight"]
    ref = _torch_run("fp64", linear, data["x"], w)
    errs = A.errors(_torch_run(name, linear, data["x"], w), ref)
    _assert_precision_behaves(name, errs, reduction=D, depth=1)


@pytest.mark.parametrize("name", ["fp64", "fp32", "bf16"])
def test_softmax(name, data):
    from tfimpl.torch.softmax import softmax

    scores = data["qkv"][0] @ data["qkv"][1].transpose(0, 1, 3, 2) / math.sqrt(D // H)
    errs = A.errors(_torch_run(name, softmax, scores), _torch_run("fp64", softmax, scores))
    _assert_precision_behaves(name, errs, reduction=T, depth=2)


@pytest.mark.parametrize("name", PRECISIONS)
def test_attention_output_and_weights(name, data):
    from tfimpl.torch.attention import scaled_dot_product_attention as sdpa

    def run(q, k, v):
        return sdpa(q, k, v, return_weights=True)

    out_ref, w_ref = _torch_run("fp64", run, *data["qkv"])
    out, w = _torch_run(name, run, *data["qkv"])
    _assert_precision_behaves(name, A.errors(out, out_ref), reduction=T, depth=3)
    attn = A.attention_errors(w, w_ref)
    assert A.within_tolerance(attn, name, T, depth=2, prefix="attn_")[0]


@pytest.mark.parametrize("name", PRECISIONS)
def test_multi_head_attention(name, data):
    from tfimpl.torch.attention import multi_head_attention

    def run(x, *weights):
        p = dict(zip(data["mha"], weights))
        return multi_head_attention(p, x, x, H)

    weights = list(data["mha"].values())
    errs = A.errors(_torch_run(name, run, data["x"], *weights),
                    _torch_run("fp64", run, data["x"], *weights))
    _assert_precision_behaves(name, errs, reduction=D, depth=5)


@pytest.mark.parametrize("name", ["fp64", "fp32"])
def test_numpy_encoder_layer(name, data):
    from tfimpl.numpy.layers import encoder_layer

    def run(name):
        p = P.cast_params(data["layer"], name, "numpy")
        return encoder_layer(p, P.cast_input(data["x"], name, "numpy"), data["cfg"])

    errs = A.errors(run(name), run("fp64"))
    _assert_precision_behaves(name, errs, reduction=4 * D, depth=10)


# ---- a perturbed output must fail -------------------------------------------------------------


@pytest.mark.parametrize("name, noise", [("fp32", 1e-4), ("bf16", 0.1)])
def test_perturbed_output_fails(name, noise, data):
    from tfimpl.torch.linear import linear

    w = data["mha"]["q.weight"]
    ref = _torch_run("fp64", linear, data["x"], w)
    out = _torch_run(name, linear, data["x"], w).double()
    assert A.within_tolerance(A.errors(out, ref), name, D)[0]
    bumped = out * (1 + noise * torch.from_numpy(np.random.default_rng(1).standard_normal(out.shape)))
    assert not A.within_tolerance(A.errors(bumped, ref), name, D)[0]
    one_bad = out.clone()
    one_bad.view(-1)[7] += 1e3 * out.abs().max()          # a single wrong element
    assert not A.within_tolerance(A.errors(one_bad, ref), name, D)[0]


@pytest.mark.parametrize("name", PRECISIONS)
@pytest.mark.parametrize("attn_impl", ["explicit", "sdpa"])
def test_torch_encoder_layer(name, attn_impl, data):
    from tfimpl.torch.layers import encoder_layer

    names = list(data["layer"])

    def run(x, *weights):
        return encoder_layer(dict(zip(names, weights)), x, data["cfg"], attn_impl=attn_impl)

    weights = list(data["layer"].values())
    errs = A.errors(_torch_run(name, run, data["x"], *weights),
                    _torch_run("fp64", run, data["x"], *weights))
    _assert_precision_behaves(name, errs, reduction=4 * D, depth=10)
