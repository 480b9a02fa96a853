"""Our blocks against torch.nn (MultiheadAttention, TransformerEncoderLayer/DecoderLayer,
Transformer), fast path off and on, given the same weights (written in with tfimpl.loaders).

float64: agreement to ~1e-10 relative. float32: our error against the float64 library result may
be at most a small multiple of the library's own float32 error against it (the flash-attention
tests' rule), plus a few float32 ulps for the cases where the library happens to be exact.
"""

import contextlib

import numpy as np
import pytest
import torch

import tfimpl.numpy as tn
import tfimpl.torch as tt
from tfimpl import loaders
from tfimpl import params as P
from tfimpl.config import ModelConfig

RTOL64 = 1e-10
FP32_FACTOR, FP32_FLOOR = 4.0, 4 * float(np.finfo(np.float32).eps)
D, H, F = 16, 4, 24
CFG = ModelConfig(d_model=D, n_heads=H, d_ff=F, n_layers=2, n_decoder_layers=2, layer_norm_eps=1e-5,
                  activation="relu")
SHAPES = [(1, 1), (2, 5), (3, 7)]


def rel_err(got, ref) -> float:
    got = got.detach().double().numpy() if isinstance(got, torch.Tensor) else np.asarray(got, np.float64)
    ref = ref.detach().double().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300))


def assert_fp32_as_good_as_library(ours32, lib32, ref64):
    ours, lib = rel_err(ours32, ref64), rel_err(lib32, ref64)
    print(f"fp32 error vs float64 library: ours {ours:.2e}, library {lib:.2e}")
    assert ours <= FP32_FACTOR * lib + FP32_FLOOR, f"ours {ours:.2e} vs library {lib:.2e}"


@contextlib.contextmanager
def fastpath(enabled: bool):
    before = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(enabled)
    try:
        with torch.no_grad():
            yield
    finally:
        torch.backends.mha.set_fastpath_enabled(before)


def padding_mask(batch, seq_len):
    lengths = np.maximum(seq_len - np.arange(batch), 1)
    return np.arange(seq_len)[None, :] < lengths[:, None]       # True = real token


def t(x, dtype=torch.float64):
    x = torch.from_numpy(np.asarray(x))
    return x if x.dtype == torch.bool else x.to(dtype)


def ours_all(fn_numpy, fn_torch, dtype):
    """Our outputs at `dtype`: numpy, torch explicit, torch sdpa."""
    np_dtype = {torch.float64: np.float64, torch.float32: np.float32}[dtype]
    return [fn_numpy(np_dtype), fn_torch(dtype, "explicit"), fn_torch(dtype, "sdpa")]


def check_against_library(fn_numpy, fn_torch, fn_library):
    """fn_library(dtype) -> reference; ours in float64 to 1e-10, in float32 as good as the library."""
    ref64 = fn_library(torch.float64)
    for ours in ours_all(fn_numpy, fn_torch, torch.float64):
        assert rel_err(ours, ref64) < RTOL64
    lib32 = fn_library(torch.float32)
    for ours in ours_all(fn_numpy, fn_torch, torch.float32):
        assert_fp32_as_good_as_library(ours, lib32, ref64)


def cast(params, np_dtype):
    return {k: v.astype(np_dtype) for k, v in params.items()}


# ---- MultiheadAttention -------------------------------------------------------------------------

def torch_mha(params, dtype):
    module = torch.nn.MultiheadAttention(D, H, batch_first=True, dtype=dtype).eval()
    module.load_state_dict(loaders.to_torch_mha_state_dict(params))
    return module


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("batch,seq_len", SHAPES)
def test_self_attention_with_padding(fast, batch, seq_len):
    p = P.init_params("mha", CFG, seed=1)
    x = np.random.default_rng(2).standard_normal((batch, seq_len, D))
    kpm = padding_mask(batch, seq_len)

    def library(dtype):
        module, xt = torch_mha(p, dtype), t(x, dtype)
        with fastpath(fast):
            return module(xt, xt, xt, key_padding_mask=t(~kpm), need_weights=False)[0]

    check_against_library(
        lambda d: tn.multi_head_attention(cast(p, d), x.astype(d), x.astype(d), H, key_padding_mask=kpm),
        lambda d, impl: tt.multi_head_attention(P.to_torch(p, d), t(x, d), t(x, d), H,
                                                key_padding_mask=t(kpm), attn_impl=impl),
        library)


@pytest.mark.parametrize("batch,seq_len", SHAPES)
def test_causal_cross_attention_and_weights(batch, seq_len):
    p = P.init_params("mha", CFG, seed=3)
    r = np.random.default_rng(4)
    xq, xkv = r.standard_normal((batch, seq_len, D)), r.standard_normal((batch, seq_len, D))
    causal_block = ~np.tri(seq_len, seq_len, dtype=bool)        # torch.nn: True = may NOT attend
    module = torch_mha(p, torch.float64)
    with fastpath(False):
        ref, ref_w = module(t(xq), t(xkv), t(xkv), attn_mask=t(causal_block), need_weights=True,
                            average_attn_weights=False)
    out, w = tn.multi_head_attention(p, xq, xkv, H, causal=True, return_weights=True)
    assert rel_err(out, ref) < RTOL64 and rel_err(w, ref_w) < RTOL64
    for impl in ("explicit", "sdpa"):
        out = tt.multi_head_attention(P.to_torch(p, torch.float64), t(xq), t(xkv), H, causal=True,
                                      attn_impl=impl)
        assert rel_err(out, ref) < RTOL64


# ---- encoder and decoder layers -----------------------------------------------------------------

def torch_encoder_layer(params, cfg, dtype):
    module = torch.nn.TransformerEncoderLayer(D, H, F, dropout=0.0, activation=cfg.activation,
                                              layer_norm_eps=cfg.layer_norm_eps, batch_first=True,
                                              norm_first=cfg.norm_first, dtype=dtype).eval()
    module.load_state_dict(loaders.to_torch_encoder_layer_state_dict(params))
    return module


@pytest.mark.parametrize("fast", [False, True])
@pytest.mark.parametrize("norm_first,activation", [(False, "relu"), (True, "gelu"), (False, "gelu")])
@pytest.mark.parametrize("batch,seq_len", SHAPES)
def test_encoder_layer(fast, norm_first, activation, batch, seq_len):
    cfg = CFG.replace(norm_first=norm_first, activation=activation)
    p = P.init_params("encoder_layer", cfg, seed=5)
    x = np.random.default_rng(6).standard_normal((batch, seq_len, D))
    kpm = padding_mask(batch, seq_len)

    def library(dtype):
        module = torch_encoder_layer(p, cfg, dtype)
        with fastpath(fast):
            return module(t(x, dtype), src_key_padding_mask=t(~kpm))

    check_against_library(
        lambda d: tn.encoder_layer(cast(p, d), x.astype(d), cfg, key_padding_mask=kpm),
        lambda d, impl: tt.encoder_layer(P.to_torch(p, d), t(x, d), cfg, key_padding_mask=t(kpm),
                                         attn_impl=impl),
        library)


def test_the_fast_path_is_really_taken_when_on():
    module = torch_encoder_layer(P.init_params("encoder_layer", CFG, seed=0), CFG, torch.float32)
    x = torch.randn(2, 5, D)
    names = {}
    for fast in (False, True):
        with fastpath(fast), torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            module(x)
        names[fast] = {event.name for event in prof.events()}
    assert "aten::_transformer_encoder_layer_fwd" in names[True]
    assert "aten::_transformer_encoder_layer_fwd" not in names[False]


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch,seq_len", SHAPES)
def test_decoder_layer(norm_first, batch, seq_len):
    cfg = CFG.replace(norm_first=norm_first)
    p = P.init_params("decoder_layer", cfg, seed=7)
    r = np.random.default_rng(8)
    x, mem = r.standard_normal((batch, seq_len, D)), r.standard_normal((batch, seq_len + 2, D))
    tgt_kpm, mem_kpm = padding_mask(batch, seq_len), padding_mask(batch, seq_len + 2)

    def library(dtype):
        module = torch.nn.TransformerDecoderLayer(D, H, F, dropout=0.0, activation=cfg.activation,
                                                  layer_norm_eps=cfg.layer_norm_eps, batch_first=True,
                                                  norm_first=norm_first, dtype=dtype).eval()
        module.load_state_dict(loaders.to_torch_decoder_layer_state_dict(p))
        causal = t(~np.tri(seq_len, seq_len, dtype=bool))        # True = may NOT attend
        with torch.no_grad():
            return module(t(x, dtype), t(mem, dtype), tgt_mask=causal, tgt_is_causal=True,
                          tgt_key_padding_mask=t(~tgt_kpm), memory_key_padding_mask=t(~mem_kpm))

    check_against_library(
        lambda d: tn.decoder_layer(cast(p, d), x.astype(d), mem.astype(d), cfg, key_padding_mask=tgt_kpm,
                                   memory_key_padding_mask=mem_kpm),
        lambda d, impl: tt.decoder_layer(P.to_torch(p, d), t(x, d), t(mem, d), cfg,
                                         key_padding_mask=t(tgt_kpm), memory_key_padding_mask=t(mem_kpm),
                                         attn_impl=impl),
        library)


# ---- the encoder-decoder Transformer ------------------------------------------------------------

@pytest.mark.filterwarnings("ignore:The PyTorch API of nested tensors")
@pytest.mark.parametrize("fast", [False, True])
def test_transformer(fast):
    cfg = CFG.replace(final_norm=True)
    p = P.init_params("transformer", cfg, seed=9)
    r = np.random.default_rng(10)
    src, tgt = r.standard_normal((3, 7, D)), r.standard_normal((3, 5, D))
    src_kpm = padding_mask(3, 7)

    def library(dtype):
        module = torch.nn.Transformer(D, H, cfg.n_layers, cfg.n_decoder_layers, F, dropout=0.0,
                                      activation=cfg.activation, layer_norm_eps=cfg.layer_norm_eps,
                                      batch_first=True, dtype=dtype).eval()
        module.load_state_dict(loaders.to_torch_transformer_state_dict(p))
        causal = t(~np.tri(5, 5, dtype=bool))
        with fastpath(fast):
            return module(t(src, dtype), t(tgt, dtype), tgt_mask=causal, tgt_is_causal=True,
                          src_key_padding_mask=t(~src_kpm), memory_key_padding_mask=t(~src_kpm))

    check_against_library(
        lambda d: tn.transformer(cast(p, d), src.astype(d), tgt.astype(d), cfg, src_key_padding_mask=src_kpm),
        lambda d, impl: tt.transformer(P.to_torch(p, d), t(src, d), t(tgt, d), cfg,
                                       src_key_padding_mask=t(src_kpm), attn_impl=impl),
        library)
