"""Each block, both backends (and torch sdpa), plus torch.nn's own modules where they exist.

Benchmark ids are `<block>-<impl>`; the group is the block, so pytest-benchmark's table and
the ratio summary in conftest.py compare like with like.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

import tfimpl.numpy as tn
import tfimpl.torch as tt
from tfimpl import loaders
from tfimpl import params as P

SEED = 0


def dims(sizes):
    return sizes["batch"], sizes["seq_len"], sizes["d_model"], sizes["n_heads"]


def inputs_np(*shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@contextlib.contextmanager
def torch_mode(fast_path: bool = True):
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(fast_path)
    try:
        with torch.inference_mode():
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def torch_call(fn, fast_path=True):
    def call():
        with torch_mode(fast_path):
            return fn()
    return call


# ---- core attention: q, k, v of shape (B, H, T, d_k) ---------------------------------------------

@pytest.mark.parametrize("impl", ["numpy", "torch", "torch-sdpa"])
def test_attention(run, benchmark, sizes, impl):
    benchmark.group = "attention"
    B, T, D, H = dims(sizes)
    q, k, v = (inputs_np(B, H, T, D // H, seed=s) for s in range(3))
    if impl == "numpy":
        run(lambda: tn.scaled_dot_product_attention(q, k, v))
    else:
        qt, kt, vt = map(torch.from_numpy, (q, k, v))
        attn_impl = "sdpa" if impl == "torch-sdpa" else "explicit"
        run(torch_call(lambda: tt.scaled_dot_product_attention(qt, kt, vt, attn_impl=attn_impl)))


# ---- multi-head self-attention ------------------------------------------------------------------

@pytest.mark.parametrize("impl", ["numpy", "torch", "torch-sdpa", "torch-nn-fast", "torch-nn-slow"])
def test_mha(run, benchmark, sizes, config_for, impl):
    benchmark.group = "mha"
    B, T, D, H = dims(sizes)
    cfg = config_for("relu")
    p = P.init_params("mha", cfg, SEED, dtype=np.float32)
    x = inputs_np(B, T, D)
    if impl == "numpy":
        run(lambda: tn.multi_head_attention(p, x, x, H))
        return
    xt = torch.from_numpy(x)
    if impl.startswith("torch-nn"):
        module = torch.nn.MultiheadAttention(D, H, batch_first=True).eval()
        module.load_state_dict(loaders.to_torch_mha_state_dict(p))
        run(torch_call(lambda: module(xt, xt, xt, need_weights=False)[0], fast_path=impl.endswith("fast")))
        return
    pt = P.to_torch(p)
    attn_impl = "sdpa" if impl == "torch-sdpa" else "explicit"
    run(torch_call(lambda: tt.multi_head_attention(pt, xt, xt, H, attn_impl=attn_impl)))


# ---- feed-forward ---------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("impl", ["numpy", "torch"])
def test_ffn(run, benchmark, sizes, config_for, impl, activation):
    benchmark.group = f"ffn[{activation}]"
    B, T, D, H = dims(sizes)
    cfg = config_for(activation)
    p = P.init_params("ffn", cfg, SEED, dtype=np.float32)
    x = inputs_np(B, T, D)
    if impl == "numpy":
        run(lambda: tn.feed_forward(p, x, activation))
    else:
        pt, xt = P.to_torch(p), torch.from_numpy(x)
        run(torch_call(lambda: tt.feed_forward(pt, xt, activation)))


# ---- encoder layer --------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("impl", ["numpy", "torch", "torch-sdpa", "torch-nn-fast", "torch-nn-slow"])
def test_encoder_layer(run, benchmark, sizes, config_for, impl, activation):
    benchmark.group = f"encoder_layer[{activation}]"
    B, T, D, H = dims(sizes)
    cfg = config_for(activation)
    p = P.init_params("encoder_layer", cfg, SEED, dtype=np.float32)
    x = inputs_np(B, T, D)
    if impl == "numpy":
        run(lambda: tn.encoder_layer(p, x, cfg))
        return
    xt = torch.from_numpy(x)
    if impl.startswith("torch-nn"):
        module = torch.nn.TransformerEncoderLayer(D, H, cfg.d_ff, dropout=0.0, activation=activation,
                                                  layer_norm_eps=cfg.layer_norm_eps, batch_first=True).eval()
        module.load_state_dict(loaders.to_torch_encoder_layer_state_dict(p))
        run(torch_call(lambda: module(xt), fast_path=impl.endswith("fast")))
        return
    pt = P.to_torch(p)
    attn_impl = "sdpa" if impl == "torch-sdpa" else "explicit"
    run(torch_call(lambda: tt.encoder_layer(pt, xt, cfg, attn_impl=attn_impl)))
