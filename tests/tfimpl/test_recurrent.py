"""tfimpl.numpy.recurrent and tfimpl.torch.recurrent against torch.nn.LSTM / nn.GRU (float64),
and the NumPy BPTT (tfimpl.numpy.grad.recurrent) against torch autograd."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tfimpl.numpy import recurrent as nr  # noqa: E402
from tfimpl.numpy.grad import recurrent as gr  # noqa: E402
from tfimpl.params import init_params, recurrent_shapes  # noqa: E402
from tfimpl.config import ModelConfig  # noqa: E402
from tfimpl.torch import recurrent as tr  # noqa: E402

TOL = 1e-12
NN = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU}


def _module(kind, n_in, hid, layers, seed=0):
    torch.manual_seed(seed)
    return NN[kind](n_in, hid, num_layers=layers, batch_first=True).double()


def _state(kind, layers, batch, hid, rng):
    h0 = rng.standard_normal((layers, batch, hid))
    return (h0, rng.standard_normal((layers, batch, hid))) if kind == "lstm" else h0


def _t(state):
    if isinstance(state, tuple):
        return tuple(torch.from_numpy(s) for s in state)
    return None if state is None else torch.from_numpy(state)


def _flat(state):
    return list(state) if isinstance(state, tuple) else [state]


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("with_state", [False, True])
def test_forward_parity_with_torch_nn(kind, layers, with_state):
    n_in, hid, batch, steps = 5, 7, 3, 6
    rng = np.random.default_rng(layers)
    module = _module(kind, n_in, hid, layers)
    p = {k: v.detach().numpy() for k, v in module.state_dict().items()}   # loads as it stands
    x = rng.standard_normal((batch, steps, n_in))
    state = _state(kind, layers, batch, hid, rng) if with_state else None
    with torch.no_grad():
        ref_out, ref_state = module(torch.from_numpy(x), _t(state))
    fns = {"numpy": (nr.lstm if kind == "lstm" else nr.gru),
           "torch": (tr.lstm if kind == "lstm" else tr.gru)}
    for name, fn in fns.items():
        args = (p, x, state) if name == "numpy" else (
            {k: torch.from_numpy(v) for k, v in p.items()}, torch.from_numpy(x), _t(state))
        out, st = fn(*args)
        assert np.max(np.abs(np.asarray(out) - ref_out.numpy())) <= TOL, name
        for a, b in zip(_flat(st), _flat(ref_state)):
            assert np.max(np.abs(np.asarray(a) - b.numpy())) <= TOL, name


@pytest.mark.parametrize("kind", ["lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
@pytest.mark.parametrize("with_state", [False, True])
def test_bptt_matches_autograd(kind, layers, with_state):
    n_in, hid, batch, steps = 4, 6, 2, 5
    rng = np.random.default_rng(10 + layers)
    module = _module(kind, n_in, hid, layers, seed=layers)
    p = {k: v.detach().numpy().copy() for k, v in module.state_dict().items()}
    x = rng.standard_normal((batch, steps, n_in))
    state = _state(kind, layers, batch, hid, rng) if with_state else None
    g_out = rng.standard_normal((batch, steps, hid))
    g_state = _state(kind, layers, batch, hid, rng)
    xt = torch.from_numpy(x).requires_grad_(True)
    st = _t(state)
    if st is not None:
        st = tuple(s.requires_grad_(True) for s in _flat(st))
        st = st if kind == "lstm" else st[0]
    out, last = module(xt, st)
    loss = (out * torch.from_numpy(g_out)).sum() + sum(
        (a * torch.from_numpy(b)).sum() for a, b in zip(_flat(last), _flat(g_state)))
    loss.backward()
    forward = gr.lstm_forward if kind == "lstm" else gr.gru_forward
    backward = gr.lstm_backward if kind == "lstm" else gr.gru_backward
    y, cache = forward(p, x, state)
    np.testing.assert_allclose(y, out.detach().numpy(), rtol=0, atol=TOL)
    dx, grads, d_state = backward(cache, g_out, g_state)
    assert np.max(np.abs(dx - xt.grad.numpy())) <= TOL
    for name, param in module.named_parameters():
        assert np.max(np.abs(grads[name] - param.grad.numpy())) <= TOL, name
    if with_state:
        for a, b in zip(_flat(d_state), _flat(st)):
            assert np.max(np.abs(a - b.grad.numpy())) <= TOL
    else:
        assert d_state is None


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_init_params_layout_is_torch_state_dict(kind):
    cfg = ModelConfig(d_model=8, n_heads=1, d_ff=8, n_layers=2)
    p = init_params(kind, cfg, seed=0)
    module = NN[kind](8, 8, num_layers=2, batch_first=True)
    assert {k: tuple(v.shape) for k, v in module.state_dict().items()} == \
        {k: v.shape for k, v in p.items()}
    module.load_state_dict({k: torch.from_numpy(v).float() for k, v in p.items()})
    assert recurrent_shapes(kind, 8, 8, 2) == {k: v.shape for k, v in p.items()}


def test_bad_input_says_what():
    p = init_params("lstm", ModelConfig(d_model=4, n_heads=1, d_ff=4, n_layers=1), seed=0)
    with pytest.raises(ValueError, match="batch first"):
        nr.lstm(p, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="does not fit"):
        nr.gru(p, np.zeros((1, 3, 4)))
