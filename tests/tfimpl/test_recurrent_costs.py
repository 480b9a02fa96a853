"""tfimpl.costs.recurrent against torch.nn's parameter counts, FlopCounterMode on the explicit
torch path, and the bytes tfimpl.numpy.grad.recurrent actually keeps for BPTT."""

import numpy as np
import pytest

from tfimpl.costs import recurrent as rc
from tfimpl.numpy.grad import recurrent as gr
from tfimpl.params import init_params
from tfimpl.config import ModelConfig

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("sizes", [(5, 7), (16, 16), (64, 32)])
def test_params_equal_torch_nn(kind, layers, sizes):
    n_in, hid = sizes
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[kind](n_in, hid, num_layers=layers)
    counted = sum(p.numel() for p in module.parameters())
    assert rc.recurrent_params(kind, n_in, hid, layers)["total"] == counted
    g = 4 if kind == "lstm" else 3        # the docstring's formula, layer 0
    assert rc.recurrent_params(kind, n_in, hid, 1)["total"] == g * hid * (n_in + hid) + 2 * g * hid


def _count(fn):
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("with_state", [False, True])
def test_flops_counted_equal_analytic(kind, layers, with_state):
    from tfimpl.torch import recurrent as tr

    B, T, D = 2, 9, 12
    p = {k: torch.from_numpy(v) for k, v in init_params(
        kind, ModelConfig(d_model=D, n_heads=1, d_ff=D, n_layers=layers), seed=0).items()}
    x = torch.randn(B, T, D, dtype=torch.float64)
    h0 = torch.randn(layers, B, D, dtype=torch.float64)
    state = ((h0, h0.clone()) if kind == "lstm" else h0) if with_state else None
    fn = tr.lstm if kind == "lstm" else tr.gru
    with torch.no_grad():
        counted = _count(lambda: fn(p, x, state))
    fwd = rc.recurrent_flops(kind, B, T, D, D, layers, initial_state=with_state)
    assert counted == fwd["matmul"]
    g = rc.gate_rows(kind, D)
    assert fwd["matmul"] == layers * (2 * B * T * D * g + 2 * B * (T - (not with_state)) * D * g)
    for t in p.values():
        t.requires_grad_(True)
    x.requires_grad_(True)
    both = _count(lambda: fn(p, x, state)[0].sum().backward())
    bwd = rc.recurrent_backward_flops(kind, B, T, D, D, layers, initial_state=with_state,
                                      state_grad=False)
    assert both == fwd["matmul"] + bwd["matmul"]
    if with_state:                                # a state that needs its gradient too
        h0.requires_grad_(True)
        state = (h0, h0.detach().clone().requires_grad_(True)) if kind == "lstm" else h0
        both = _count(lambda: fn(p, x, state)[0].sum().backward())
        assert both == 3 * fwd["matmul"]


def test_step_flops_sum_to_the_sequence():
    step = rc.recurrent_step_flops("lstm", 3, 8, 8)
    seq = rc.recurrent_flops("lstm", 3, 10, 8, 8, initial_state=True)
    assert 10 * step["matmul"] == seq["matmul"] == 16 * 3 * 10 * 8 * 8
    assert seq["sequential_steps"] == 10


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_saved_bytes_are_what_bptt_keeps(kind):
    from bench.trackers.training import numpy_cache_bytes

    B, T, D, L = 2, 7, 6, 2
    p = init_params(kind, ModelConfig(d_model=D, n_heads=1, d_ff=D, n_layers=L), seed=1)
    x = np.random.default_rng(0).standard_normal((B, T, D))
    forward = gr.lstm_forward if kind == "lstm" else gr.gru_forward
    _, cache = forward(p, x)
    kept = numpy_cache_bytes({"layers": cache["layers"]}, list(p.values()) + [x])
    assert kept == rc.recurrent_saved_bytes(kind, B, T, D, L, 8)


def test_state_is_independent_of_n():
    a = rc.recurrent_state_bytes("lstm", 4, 256, 2, 4)
    assert a == 2 * 2 * 4 * 256 * 4
    assert rc.recurrent_state_bytes("gru", 4, 256, 2, 4) == a // 2
    p1 = rc.recurrent_peak_bytes("lstm", 1, 1000, 64, 64, 1, 4)
    p2 = rc.recurrent_peak_bytes("lstm", 1, 2000, 64, 64, 1, 4)
    assert p2 - p1 == 1000 * (4 * 64 + 64) * 4                       # O(n): a_x and the output


def test_bad_kind_is_an_error():
    with pytest.raises(ValueError, match="kind"):
        rc.recurrent_params("rnn", 4, 4)
