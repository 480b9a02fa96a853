"""tfimpl.costs.training against measurement: saved activations, gradients, AdamW state.

Measured through the train mode's own steps (bench.modes.train: torch_train_step, whose
measure_bytes counts with bench.trackers.training's saved-tensor hooks, and numpy_train_step,
which counts the backward caches), each buffer once, weights and given inputs apart; fp32 and
fp64 on CPU.
"""

import contextlib
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from bench.modes import train  # noqa: E402
from tfimpl import params as P  # noqa: E402
from tfimpl.config import ModelConfig  # noqa: E402
from tfimpl.costs.training import (korthikanti_bytes, saved_activation_bytes,  # noqa: E402
                                   training_memory)

DTYPES = {4: (torch.float32, np.float32), 8: (torch.float64, np.float64)}


def cfg_for(**kw):
    base = dict(d_model=24, n_heads=3, d_ff=40, n_layers=3, vocab_size=30, max_position=16,
                layer_norm_eps=1e-5)
    return ModelConfig(**{**base, **kw})


def torch_step(block, cfg, b, t, e, attn_impl="explicit", causal=False):
    import tfimpl.torch as tt
    tdtype, _ = DTYPES[e]
    kind = "bert" if block == "model" else block
    p = P.to_torch(P.init_params(kind, cfg, seed=0), dtype=tdtype, requires_grad=True)
    rng = np.random.default_rng(1)
    if block == "model":
        ids = torch.from_numpy(rng.integers(0, cfg.vocab_size, (b, t)))
        return _torch_step(lambda: tt.bert(p, ids, cfg, attn_impl=attn_impl), p)
    x = torch.from_numpy(rng.standard_normal((b, t, cfg.d_model))).to(tdtype)
    if block == "encoder_layer":
        fwd = lambda: tt.encoder_layer(p, x, cfg, attn_impl=attn_impl)           # noqa: E731
    elif causal:
        fwd = lambda: tt.multi_head_attention(P.subtree(p, "layers.0.self_attn"), x, x,  # noqa: E731
                                              cfg.n_heads, causal=True, attn_impl=attn_impl)
    else:
        fwd = lambda: tt.encoder(p, x, cfg, attn_impl=attn_impl)                 # noqa: E731
    return _torch_step(fwd, p)


def _torch_step(forward, p):
    """The mode's torch step on `forward`: fn, the first output, measure_bytes."""
    fn = train.torch_train_step(forward, list(p.values()), contextlib.nullcontext)
    first = []

    def call():
        out = fn()
        first.append(out.double().numpy())
        return out
    return SimpleNamespace(fn=call, output=lambda: first[0], measure_bytes=fn.measure_bytes)


def numpy_step(block, cfg, b, t, e):
    from tfimpl.numpy import grad as ng
    _, ndtype = DTYPES[e]
    kind = "bert" if block == "model" else block
    p = {k: v.astype(ndtype) for k, v in P.init_params(kind, cfg, seed=0).items()}
    rng = np.random.default_rng(1)
    if block == "model":
        ids = rng.integers(0, cfg.vocab_size, (b, t))
        return train.numpy_train_step(
            lambda: ng.bert_forward(p, ids, cfg),
            lambda c, out: ng.bert_backward(c, np.ones_like(out[0]), np.ones_like(out[1]), cfg)[1],
            p, [ids])
    x = rng.standard_normal((b, t, cfg.d_model)).astype(ndtype)
    fwd, bwd = ((ng.encoder_layer_forward, ng.encoder_layer_backward) if block == "encoder_layer"
                else (ng.encoder_forward, ng.encoder_backward))
    return train.numpy_train_step(lambda: fwd(p, x, cfg),
                                  lambda c, out: bwd(c, np.ones_like(out), cfg)[1], p, [x])


CASES = [("encoder_layer", {}), ("encoder_layer", {"norm_first": True}),
         ("encoder", {}), ("encoder", {"norm_first": True, "final_norm": True}),
         ("encoder", {"activation": "relu"}), ("model", {})]


@pytest.mark.parametrize("block,kw", CASES)
@pytest.mark.parametrize("e", [4, 8])
@pytest.mark.parametrize("attn_impl", ["explicit", "sdpa"])
def test_torch_training_bytes_match_the_model(block, kw, e, attn_impl):
    cfg = cfg_for(**kw)
    b, t = 2, 7
    measured = torch_step(block, cfg, b, t, e, attn_impl).measure_bytes()
    predicted = training_memory(block, cfg, b, t, e, backend="torch", attn_impl=attn_impl)
    assert measured["gradient_bytes"] == predicted["gradients"]
    assert measured["optimizer_state_bytes"] == predicted["optimizer_state"]
    assert measured["saved_activation_bytes"] == predicted["saved_activations"], measured


@pytest.mark.parametrize("attn_impl", ["explicit", "sdpa"])
def test_torch_batch_of_one_saves_the_qkv_buffer(attn_impl):
    cfg = cfg_for()
    measured = torch_step("encoder", cfg, 1, 9, 4, attn_impl).measure_bytes()
    predicted = training_memory("encoder", cfg, 1, 9, 4, backend="torch", attn_impl=attn_impl)
    assert measured["saved_activation_bytes"] == predicted["saved_activations"]


def test_torch_causal_mask_is_counted():
    cfg = cfg_for(n_layers=1)
    got = torch_step("encoder", cfg, 2, 5, 4, causal=True).measure_bytes()["saved_activation_bytes"]
    layer = saved_activation_bytes("encoder_layer", cfg, 2, 5, 4, causal=True)
    assert layer["causal_mask"] == 25                              # T² bools
    n, d, e = 2 * 5, 24, 4
    # self-attention alone on a given x: q/√d_k, k, v, merged heads, P (B·H·T²), the mask
    assert got == 4 * n * d * e + 2 * 3 * 5 * 5 * e + 25


@pytest.mark.parametrize("block,kw", CASES)
@pytest.mark.parametrize("e", [4, 8])
def test_numpy_training_bytes_match_the_model(block, kw, e):
    cfg = cfg_for(**kw)
    b, t = 2, 7
    measured = numpy_step(block, cfg, b, t, e).measure_bytes()
    predicted = training_memory(block, cfg, b, t, e, backend="numpy")
    assert measured["gradient_bytes"] == predicted["gradients"]
    assert measured["optimizer_state_bytes"] == predicted["optimizer_state"]
    assert measured["saved_activation_bytes"] == predicted["saved_activations"], measured


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_train_step_restores_weights(backend):
    cfg = cfg_for()
    step = (torch_step if backend == "torch" else numpy_step)("encoder", cfg, 2, 5, 8)
    as_array = (lambda o: o.double().numpy()) if backend == "torch" else np.asarray   # noqa: E731
    a, b = as_array(step.fn()), as_array(step.fn())
    assert np.array_equal(a, b) and np.array_equal(step.output(), a)


def test_adamw_state_is_two_moments_per_parameter():
    cfg = cfg_for()
    mem = training_memory("model", cfg, 1, 4, 4, backend="numpy")
    n = P.count(P.init_params("bert", cfg, 0))
    assert mem["optimizer_state"] == 2 * n * 4 == 2 * mem["weights"]


def test_korthikanti_formula():
    cfg = ModelConfig()                                   # BERT-base: h 768, a 12, L 12
    s, b = 512, 8
    assert korthikanti_bytes(cfg, b, s) == s * b * 768 * 12 * (34 + 5 * 12 * s // 768)


def test_checkpoint_keeps_layer_inputs_and_one_layer():
    cfg = cfg_for(n_layers=4)
    full = saved_activation_bytes("encoder", cfg, 2, 64, 4)["total"]
    ckpt = saved_activation_bytes("encoder", cfg, 2, 64, 4, checkpoint=True)
    layer = (saved_activation_bytes("encoder_layer", cfg, 2, 64, 4, input_requires_grad=True)["total"]
             + 2 * 64 * 24 * 4)                                # one layer's set, its input included
    assert ckpt["layer_inputs"] == 3 * 2 * 64 * 24 * 4 and ckpt["one_layer_recomputed"] == layer
    assert ckpt["total"] < full / 2
    with pytest.raises(ValueError, match="stacks"):
        saved_activation_bytes("encoder_layer", cfg, 2, 64, 4, checkpoint=True)
