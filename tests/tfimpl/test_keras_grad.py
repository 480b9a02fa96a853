"""Gradients from tf.GradientTape (Keras layers) against torch autograd (tfimpl.torch), float64.

loss = Σ out ⊙ G for a fixed random G, so d loss / d out = G; the tape's gradients for the
input and every Keras variable are mapped back to tfimpl's layout (tfimpl.keras.loaders) and
compared with torch's for the same seeded weights.
"""

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
    pytest.skip("needs the [tf] extra: pip install 'tfbench[tf]'", allow_module_level=True)

import torch  # noqa: E402

import tfimpl.torch as tt  # noqa: E402
from tfimpl import params as P  # noqa: E402
from tfimpl.config import ModelConfig  # noqa: E402
from tfimpl.keras import loaders  # noqa: E402
from tfimpl.keras._backend import tf  # noqa: E402
from tfimpl.keras.attention import keras_attention_mask  # noqa: E402

RTOL64 = 1e-10
GELU_RTOL64 = 1e-7              # TF's float64 GELU uses 1/√2 rounded to float32 (test_keras_parity)
CFG = ModelConfig(d_model=12, n_heads=3, d_ff=20, n_layers=1, layer_norm_eps=1e-5, activation="relu")
B, T = 2, 5


def rel_err(got, ref) -> float:
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300))


def _keras_call(kind, layer, x, kpm, cfg):
    mask = None if kpm is None else keras_attention_mask(None, tf.constant(kpm), B, T, T)
    if kind == "mha":
        return layer(x, x, attention_mask=mask)
    if kind == "ffn":
        return layer(x)
    return layer(x, attention_mask=mask)


def _torch_call(kind, p, x, kpm, cfg):
    if kind == "mha":
        return tt.multi_head_attention(p, x, x, cfg.n_heads, key_padding_mask=kpm)
    if kind == "ffn":
        return tt.feed_forward(p, x, cfg.activation)
    return tt.encoder_layer(p, x, cfg, key_padding_mask=kpm)


def _build(kind, p, cfg):
    if kind == "mha":
        return loaders.build_mha(p, cfg.n_heads, dtype="float64")
    if kind == "ffn":
        return loaders.build_ffn(p, cfg.activation, dtype="float64")
    return loaders.build_encoder_layer(p, cfg, dtype="float64")


def keras_grads(kind, p, x, g, kpm, cfg):
    layer = _build(kind, p, cfg)
    xt = tf.Variable(x)
    weights = loaders.variables(layer, kind)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(_keras_call(kind, layer, xt, kpm, cfg) * g)
    dx, *dw = tape.gradient(loss, [xt, *weights])
    return dx.numpy(), loaders.grads_to_params(layer, kind, dw, P.param_shapes(kind, cfg))


def torch_grads(kind, p, x, g, kpm, cfg):
    pt = P.to_torch(p, dtype=torch.float64, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    kt = None if kpm is None else torch.from_numpy(kpm)
    (_torch_call(kind, pt, xt, kt, cfg) * torch.from_numpy(g)).sum().backward()
    return xt.grad.numpy(), {k: v.grad.numpy() for k, v in pt.items()}


@pytest.mark.parametrize("kind,cfg_kw,padded", [
    ("mha", {}, False), ("mha", {}, True), ("ffn", {}, False), ("ffn", {"activation": "gelu"}, False),
    ("encoder_layer", {}, False), ("encoder_layer", {}, True),
    ("encoder_layer", {"norm_first": True}, True), ("encoder_layer", {"activation": "gelu"}, True),
])
def test_gradient_tape_matches_torch_autograd(kind, cfg_kw, padded):
    cfg = ModelConfig(**{**CFG.__dict__, **cfg_kw})
    r = np.random.default_rng(0)
    p = P.init_params(kind, cfg, seed=1)
    x, g = r.standard_normal((B, T, cfg.d_model)), r.standard_normal((B, T, cfg.d_model))
    kpm = (np.arange(T)[None] < np.array([[T], [T - 2]])) if padded else None   # (B, T)
    kdx, kdw = keras_grads(kind, p, x, g, kpm, cfg)
    tdx, tdw = torch_grads(kind, p, x, g, kpm, cfg)
    tol = GELU_RTOL64 if cfg.activation == "gelu" else RTOL64
    assert rel_err(kdx, tdx) < tol
    assert kdw.keys() == tdw.keys()
    scale = max(np.abs(v).max() for v in tdw.values())
    for name in tdw:
        if name.endswith("k.bias"):                   # softmax ignores a per-query shift: dL/db_K = 0
            assert max(np.abs(kdw[name]).max(), np.abs(tdw[name]).max()) < 1e-13 * scale, name
        else:
            assert rel_err(kdw[name], tdw[name]) < tol, name
