"""tfimpl.numpy.optim.AdamW against torch.optim.AdamW, float64, several steps."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tfimpl.numpy.optim import AdamW  # noqa: E402


def _run_both(n_steps, seed=0, **kw):
    rng = np.random.default_rng(seed)
    params = {"w": rng.standard_normal((5, 3)), "b": rng.standard_normal(5)}
    grads_seq = [{n: rng.standard_normal(a.shape) * 10 ** rng.uniform(-6, 1) for n, a in params.items()}
                 for _ in range(n_steps)]
    tparams = {n: torch.tensor(a, requires_grad=True) for n, a in params.items()}
    topt = torch.optim.AdamW(list(tparams.values()), **kw)
    ours = {n: a.copy() for n, a in params.items()}
    opt = AdamW(**kw)
    for grads in grads_seq:
        for n, t in tparams.items():
            t.grad = torch.from_numpy(grads[n].copy())
        topt.step()
        opt.step(ours, grads)
    return params, ours, tparams, opt, topt


@pytest.mark.parametrize("kw", [
    {},
    {"lr": 3e-2, "weight_decay": 0.0},
    {"lr": 1e-1, "betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.3},
    {"lr": 5e-2, "amsgrad": True},
])
def test_adamw_equals_torch_float64(kw):
    start, ours, tparams, opt, topt = _run_both(7, **kw)
    for name, t in tparams.items():
        ref = t.detach().numpy()
        assert np.abs(ours[name] - start[name]).max() > 1e-4      # it moved
        assert np.abs(ours[name] - ref).max() <= 1e-12 * np.abs(ref).max(), name
        tstate = topt.state[t]
        assert np.allclose(opt.state[name]["m"], tstate["exp_avg"].numpy(), rtol=1e-12, atol=0)
        assert np.allclose(opt.state[name]["v"], tstate["exp_avg_sq"].numpy(), rtol=1e-12, atol=0)


def test_state_bytes_and_restore():
    start, ours, _, opt, _ = _run_both(2, lr=1e-2)
    assert opt.state_bytes() == 2 * sum(a.nbytes for a in start.values())   # m and v
    saved, before = opt.state_dict(), {n: a.copy() for n, a in ours.items()}
    grads = {n: np.ones_like(a) for n, a in ours.items()}
    opt.step(ours, grads)
    after_first = {n: a.copy() for n, a in ours.items()}
    opt.load_state_dict(saved)
    for n in ours:
        ours[n][...] = before[n]
    opt.step(ours, grads)
    for n in ours:                                                # the same step again, exactly
        assert np.array_equal(ours[n], after_first[n])


def test_bad_arguments():
    with pytest.raises(ValueError, match="betas"):
        AdamW(betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="lr"):
        AdamW(lr=-1)
