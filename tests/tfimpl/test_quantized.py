"""int8 from first principles (tfimpl.numpy/torch.quantized) and its cost model
(tfimpl.costs.quantized): NumPy == torch on the integers, the library's dynamic-quantized Linear
within both roundings, bytes exactly, int8 MACs by hand."""

import numpy as np
import pytest
import torch

from tfimpl import costs
from tfimpl.config import ModelConfig
from tfimpl.numpy import quantized as nq
from tfimpl.params import init_params
from tfimpl.torch import quantized as tq

CFG = ModelConfig(d_model=32, n_heads=4, d_ff=64, n_layers=2, vocab_size=50, max_position=16)


def _xw(rows=24, d_in=32, d_out=48, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((rows, d_in)).astype(np.float32),
            rng.standard_normal((d_out, d_in)).astype(np.float32),
            rng.standard_normal(d_out).astype(np.float32))


def test_numpy_and_torch_integers_agree_bit_for_bit():
    x, w, b = _xw()
    wq_np, ws_np = nq.quantize_per_channel(w)
    wq_t, ws_t = tq.quantize_per_channel(torch.from_numpy(w))
    assert wq_np.dtype == np.int8 and wq_t.dtype == torch.int8
    np.testing.assert_array_equal(wq_np, wq_t.numpy())
    np.testing.assert_array_equal(ws_np, ws_t.numpy())
    y_np, acc_np = nq.linear_int8(x, wq_np, ws_np, b, return_acc=True)
    y_t, acc_t = tq.linear_int8(torch.from_numpy(x), wq_t, ws_t, torch.from_numpy(b),
                                return_acc=True)
    assert acc_np.dtype == np.int32 and acc_t.dtype == torch.int32
    np.testing.assert_array_equal(acc_np, acc_t.numpy())          # the integer part: exact
    np.testing.assert_array_equal(y_np, y_t.numpy())              # same float32 rescale


def test_symmetric_ranges_and_zero_rows():
    w = np.zeros((3, 4), np.float32)
    w[1] = [1.0, -2.0, 0.5, 2.0]
    q, s = nq.quantize_per_channel(w)
    assert q[1].max() == 127 and q[1].min() == -127 and s[0] == 1.0 and not q[0].any()


def test_error_within_the_stated_bound():
    x, w, b = _xw(seed=1)
    y = nq.linear_int8(x, *nq.quantize_per_channel(w))
    exact = x.astype(np.float64) @ w.astype(np.float64).T
    slack = 1e-5 * np.abs(x).astype(np.float64) @ np.abs(w).T        # float32 rescale rounding
    assert np.all(np.abs(y - exact) <= nq.error_bound(x, w) + slack)


def test_against_torch_dynamic_quantized_linear_within_both_roundings():
    """torch's quantize_dynamic Linear: activations per tensor, asymmetric uint8 (7-bit range
    with reduce_range), weights per tensor, symmetric int8 (scale absmax/127.5: the extreme
    weight is clamped, off by up to one step). Ours and theirs each stay within their rounding
    of x·Wᵀ, so they differ by at most the sum of the two bounds."""
    x, w, b = _xw(seed=2)
    linear = torch.nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(w))
        linear.bias.copy_(torch.from_numpy(b))
    qlinear = torch.ao.quantization.quantize_dynamic(torch.nn.Sequential(linear), {torch.nn.Linear},
                                                     dtype=torch.qint8)[0]
    with torch.no_grad():
        theirs = qlinear(torch.from_numpy(x)).numpy().astype(np.float64)
    ours = nq.linear_int8(x, *nq.quantize_per_channel(w), b).astype(np.float64)
    xa, wa = np.abs(x).astype(np.float64), np.abs(w).astype(np.float64)
    s_x = (max(x.max(), 0) - min(x.min(), 0)) / 127.0           # reduce_range: 128 levels
    s_w = qlinear.weight().q_scale()
    # Σ_i |Δx_i||w_i| + |x_i||Δw_i| + |Δx_i||Δw_i|, |Δx| <= s_x/2, |Δw| <= s_w (the clamp)
    theirs_bound = (s_x / 2 * wa.sum(1)[None] + xa.sum(1)[:, None] * s_w
                    + s_x / 2 * s_w * w.shape[1])
    slack = 1e-5 * xa @ wa.T
    assert np.all(np.abs(ours - theirs) <= nq.error_bound(x, w) + theirs_bound + slack)
    exact = x.astype(np.float64) @ w.astype(np.float64).T + b
    assert np.linalg.norm(ours - exact) / np.linalg.norm(exact) < 2e-2


def test_encoder_layer_int8_numpy_torch_and_float64():
    from tfimpl.numpy.layers import encoder_layer

    p = init_params("encoder_layer", CFG, 0)
    x = np.random.default_rng(3).standard_normal((2, 8, CFG.d_model))
    q_np = nq.quantize_params(p)
    q_t = tq.quantize_params(p)
    y_np = nq.encoder_layer_int8(q_np, x, CFG)
    y_t = tq.encoder_layer_int8(q_t, torch.from_numpy(x), CFG).numpy()
    ref = encoder_layer(p, x, CFG)
    rel = lambda a, r: np.linalg.norm(a - r) / np.linalg.norm(r)      # noqa: E731
    assert rel(y_np, ref) < 3e-2 and rel(y_t, ref) < 3e-2
    assert rel(y_np, y_t) < 1e-3          # float32 steps may flip a rounding, rarely


@pytest.mark.parametrize("kind", ["ffn", "encoder_layer"])
def test_int8_weight_bytes_equal_the_cost_model(kind):
    p = init_params(kind, CFG, 0)
    names = nq.LINEARS if kind == "encoder_layer" else ("ff1", "ff2")
    q = nq.quantize_params(p, names)
    stored = sum(q[f"{n}.weight_q"].nbytes + q[f"{n}.weight_scale"].nbytes for n in names)
    model = costs.int8_weight_bytes(kind, CFG, "per_channel_symmetric")
    assert stored == model["total"]
    assert model["int8"] == sum(p[f"{n}.weight"].size for n in names)
    assert costs.fp32_weight_bytes(kind, CFG) == sum(p[f"{n}.weight"].size * 4 for n in names)


def test_bert_base_bytes_and_macs_by_hand():
    base = ModelConfig(d_model=768, n_heads=12, d_ff=3072, n_layers=12)
    per_layer = 4 * 768 * 768 + 2 * 768 * 3072                      # 7,077,888 weights
    t = costs.int8_weight_bytes("model", base, "per_tensor")
    assert t["int8"] == 12 * per_layer + 768 * 768                  # + the pooler
    assert t["scales"] == 4 * (12 * 6 + 1) and t["zero_points"] == 12 * 6 + 1
    c = costs.int8_weight_bytes("encoder_layer", base)
    assert c["scales"] == 4 * (4 * 768 + 3072 + 768)
    assert 3.9 < costs.fp32_weight_bytes("encoder_layer", base) / c["total"] < 4.0
    m = costs.int8_macs("encoder_layer", base, 1, 128)
    assert m["int8_macs"] == 128 * per_layer
    assert m["fp32_flops"] == 2 * 2 * 128 * 128 * 768               # QKᵀ and PV


def test_quantize_module_swaps_every_linear_for_the_int8_one():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))
    x = torch.randn(3, 5, 8)
    q = tq.quantize_module(model)
    assert [type(m).__name__ for m in q] == ["Int8Linear", "GELU", "Int8Linear"]
    assert type(model[0]) is torch.nn.Linear                       # the original untouched
    w0, s0 = tq.quantize_per_channel(model[0].weight.detach())
    hidden = torch.nn.functional.gelu(tq.linear_int8(x, w0, s0, model[0].bias.detach()))
    w2, s2 = tq.quantize_per_channel(model[2].weight.detach())
    with torch.no_grad():
        torch.testing.assert_close(q(x), tq.linear_int8(hidden, w2, s2, model[2].bias.detach()),
                                   rtol=0, atol=0)
