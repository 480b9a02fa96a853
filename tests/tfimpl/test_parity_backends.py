"""tfimpl.numpy against tfimpl.torch (explicit and sdpa) block by block, same weights, float64.

The two backends mirror each other name for name, so every block is compared the same way:
run both on the same seeded params and inputs, ask for agreement to ~1e-10 relative.
"""

import numpy as np
import pytest
import torch

import tfimpl.numpy as tn
import tfimpl.torch as tt
from tfimpl import params as P
from tfimpl.config import ModelConfig

RTOL64 = 1e-10
CFG = ModelConfig(d_model=12, n_heads=3, d_ff=20, n_layers=2, n_decoder_layers=2, vocab_size=40,
                  max_position=24, layer_norm_eps=1e-5)
SHAPES = [(1, 1), (2, 5), (3, 7)]          # (batch, seq_len): T=1 and non-powers of two
IMPLS = ["explicit", "sdpa"]


def rel_err(got, ref) -> float:
    got = got.detach().double().numpy() if isinstance(got, torch.Tensor) else np.asarray(got)
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300))


def padding_mask(batch, seq_len):
    """(B, T) True = real token; sequence b has seq_len - b real tokens (at least one)."""
    lengths = np.maximum(seq_len - np.arange(batch), 1)
    return np.arange(seq_len)[None, :] < lengths[:, None]


def t(x):
    return torch.from_numpy(np.asarray(x))


def inputs(batch, seq_len, seed=0, d=CFG.d_model):
    return np.random.default_rng(seed).standard_normal((batch, seq_len, d))


# ---- small pieces -----------------------------------------------------------------------------

def test_softmax_layer_norm_positions_activations():
    x = np.random.default_rng(0).standard_normal((3, 5, 7)) * 30
    x[0, 0] = -np.inf                                                     # an empty row -> zeros
    assert rel_err(tt.softmax(t(x)), tn.softmax(x)) < RTOL64
    assert rel_err(tt.softmax(t(x), axis=1), tn.softmax(x, axis=1)) < RTOL64
    finite = x[1:]
    assert rel_err(tt.softmax(t(finite)), torch.softmax(t(finite), -1).numpy()) < RTOL64
    assert rel_err(tt.softmax_(t(finite).clone()), tn.softmax(finite)) < RTOL64
    w, b = np.random.default_rng(1).standard_normal((2, 7))
    assert rel_err(tt.layer_norm(t(x[1:]), t(w), t(b), 1e-5), tn.layer_norm(x[1:], w, b, 1e-5)) < RTOL64
    assert rel_err(tt.sinusoidal_positional_encoding(9, 10, torch.float64),
                   tn.sinusoidal_positional_encoding(9, 10)) < RTOL64
    for name in ("relu", "gelu", "gelu_tanh"):
        assert rel_err(getattr(tt, name)(t(finite)), getattr(tn, name)(finite)) < RTOL64


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("batch,seq_len", SHAPES)
@pytest.mark.parametrize("masking", ["none", "padding", "causal", "both"])
def test_scaled_dot_product_attention(impl, batch, seq_len, masking):
    r = np.random.default_rng(2)
    q, k, v = (r.standard_normal((batch, 3, seq_len, 4)) for _ in range(3))
    mask = padding_mask(batch, seq_len)[:, None, None, :] if masking in ("padding", "both") else None
    causal = masking in ("causal", "both")
    ref, ref_w = tn.scaled_dot_product_attention(q, k, v, mask=mask, causal=causal, return_weights=True)
    tmask = None if mask is None else t(mask)
    out = tt.scaled_dot_product_attention(t(q), t(k), t(v), mask=tmask, causal=causal, attn_impl=impl)
    assert rel_err(out, ref) < RTOL64
    out, weights = tt.scaled_dot_product_attention(t(q), t(k), t(v), mask=tmask, causal=causal,
                                                   return_weights=True, attn_impl=impl)
    assert rel_err(out, ref) < RTOL64 and rel_err(weights, ref_w) < RTOL64


def test_attention_with_a_fully_masked_query_is_zero_in_every_impl():
    r = np.random.default_rng(3)
    q, k, v = (r.standard_normal((1, 2, 3, 4)) for _ in range(3))
    mask = np.array([[True, False, True], [False, False, False], [True, True, True]])
    ref = tn.scaled_dot_product_attention(q, k, v, mask=mask)
    assert not ref[:, :, 1].any()
    for impl in IMPLS:
        assert rel_err(tt.scaled_dot_product_attention(t(q), t(k), t(v), mask=t(mask), attn_impl=impl), ref) < RTOL64


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("batch,seq_len", SHAPES)
def test_multi_head_attention_self_and_cross(impl, batch, seq_len):
    p = P.init_params("mha", CFG, seed=4)
    pt = P.to_torch(p, torch.float64)
    x, mem = inputs(batch, seq_len, 5), inputs(batch, seq_len + 2, 6)
    kpm = padding_mask(batch, seq_len + 2)
    ref = tn.multi_head_attention(p, x, x, 3, causal=True)
    assert rel_err(tt.multi_head_attention(pt, t(x), t(x), 3, causal=True, attn_impl=impl), ref) < RTOL64
    ref, ref_w = tn.multi_head_attention(p, x, mem, 3, key_padding_mask=kpm, return_weights=True)
    out, w = tt.multi_head_attention(pt, t(x), t(mem), 3, key_padding_mask=t(kpm), return_weights=True,
                                     attn_impl=impl)
    assert rel_err(out, ref) < RTOL64 and rel_err(w, ref_w) < RTOL64


@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh"])
def test_feed_forward(activation):
    p = P.init_params("ffn", CFG, seed=7)
    x = inputs(2, 5, 8)
    assert rel_err(tt.feed_forward(P.to_torch(p, torch.float64), t(x), activation),
                   tn.feed_forward(p, x, activation)) < RTOL64


# ---- layers, stacks, models ---------------------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch,seq_len", SHAPES)
def test_encoder_and_decoder_layers(impl, norm_first, batch, seq_len):
    cfg = CFG.replace(norm_first=norm_first, activation="gelu" if norm_first else "relu")
    kpm = padding_mask(batch, seq_len)
    x, mem = inputs(batch, seq_len, 9), inputs(batch, seq_len + 3, 10)
    mem_kpm = padding_mask(batch, seq_len + 3)
    p = P.init_params("encoder_layer", cfg, seed=11)
    ref = tn.encoder_layer(p, x, cfg, key_padding_mask=kpm)
    out = tt.encoder_layer(P.to_torch(p, torch.float64), t(x), cfg, key_padding_mask=t(kpm), attn_impl=impl)
    assert rel_err(out, ref) < RTOL64
    p = P.init_params("decoder_layer", cfg, seed=12)
    ref = tn.decoder_layer(p, x, mem, cfg, key_padding_mask=kpm, memory_key_padding_mask=mem_kpm)
    out = tt.decoder_layer(P.to_torch(p, torch.float64), t(x), t(mem), cfg, key_padding_mask=t(kpm),
                           memory_key_padding_mask=t(mem_kpm), attn_impl=impl)
    assert rel_err(out, ref) < RTOL64


@pytest.mark.parametrize("impl", IMPLS)
def test_stacks_transformer_and_bert(impl):
    cfg = CFG.replace(final_norm=True)
    src, tgt = inputs(2, 6, 13), inputs(2, 5, 14)
    src_kpm = padding_mask(2, 6)
    p = P.init_params("transformer", cfg, seed=15)
    ref = tn.transformer(p, src, tgt, cfg, src_key_padding_mask=src_kpm)
    out = tt.transformer(P.to_torch(p, torch.float64), t(src), t(tgt), cfg,
                         src_key_padding_mask=t(src_kpm), attn_impl=impl)
    assert rel_err(out, ref) < RTOL64
    p = P.init_params("bert", CFG, seed=16)
    ids = np.random.default_rng(17).integers(0, CFG.vocab_size, (2, 6))
    types = (np.arange(6)[None, :] >= 3).astype(np.int64).repeat(2, 0)
    att = padding_mask(2, 6).astype(np.int64)
    hidden, pooled = tn.bert(p, ids, CFG, token_type_ids=types, attention_mask=att)
    hidden_t, pooled_t = tt.bert(P.to_torch(p, torch.float64), t(ids), CFG, token_type_ids=t(types),
                                 attention_mask=t(att), attn_impl=impl)
    assert rel_err(hidden_t, hidden) < RTOL64 and rel_err(pooled_t, pooled) < RTOL64


# ---- autograd and low precision (torch only) -----------------------------------------------------

def test_gradients_agree_between_explicit_and_sdpa():
    cfg = CFG
    p = P.to_torch(P.init_params("encoder_layer", cfg, seed=18), torch.float64, requires_grad=True)
    x = t(inputs(2, 5, 19)).requires_grad_(True)
    kpm = t(padding_mask(2, 5))
    grads = {}
    for impl in IMPLS:
        out = tt.encoder_layer(p, x, cfg, key_padding_mask=kpm, attn_impl=impl)
        grads[impl] = torch.autograd.grad(out.square().sum(), [x, p["self_attn.q.weight"]])
    for a, b in zip(grads["explicit"], grads["sdpa"]):
        assert rel_err(a, b.numpy()) < RTOL64


def test_explicit_attention_gradient_is_right():
    r = np.random.default_rng(20)
    q, k, v = (t(r.standard_normal((1, 2, 3, 4))).requires_grad_(True) for _ in range(3))
    mask = t(np.array([True, True, False]))
    assert torch.autograd.gradcheck(
        lambda a, b, c: tt.scaled_dot_product_attention(a, b, c, mask=mask, causal=True), (q, k, v))


@pytest.mark.parametrize("dtype,tol", [(torch.bfloat16, 5e-2), (torch.float16, 5e-3)])
@pytest.mark.parametrize("impl", IMPLS)
def test_half_precisions_run_and_stay_close(dtype, tol, impl):
    """Smoke test, tiny shapes only (fp16 matmul on CPU is very slow)."""
    p = P.init_params("encoder_layer", CFG, seed=21)
    x = inputs(2, 4, 22)
    kpm = padding_mask(2, 4)
    ref = tn.encoder_layer(p, x, CFG, key_padding_mask=kpm)
    out = tt.encoder_layer(P.to_torch(p, dtype), t(x).to(dtype), CFG, key_padding_mask=t(kpm),
                           attn_impl=impl)
    assert out.dtype == dtype
    assert rel_err(out.float(), ref) < tol


def test_float32_stays_float32_in_both_backends():
    p = P.init_params("encoder_layer", CFG, seed=23, dtype=np.float32)
    x = inputs(1, 3, 24).astype(np.float32)
    assert tn.encoder_layer(p, x, CFG).dtype == np.float32
    assert tt.encoder_layer(P.to_torch(p), t(x), CFG).dtype == torch.float32


# ---- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("call,match", [
    (lambda: tt.scaled_dot_product_attention(torch.zeros(1, 1, 2, 4), torch.zeros(1, 1, 2, 4),
                                             torch.zeros(1, 1, 2, 4), attn_impl="flash"), "attn_impl"),
    (lambda: tt.scaled_dot_product_attention(torch.zeros(1, 1, 2, 4), torch.zeros(1, 1, 3, 4),
                                             torch.zeros(1, 1, 3, 4), mask=torch.ones(3, 3, dtype=torch.bool)),
     "mask"),
    (lambda: tt.multi_head_attention(P.to_torch(P.init_params("mha", CFG, 0)), torch.zeros(1, 2, 12),
                                     torch.zeros(1, 2, 12), 5), "n_heads"),
    (lambda: tt.multi_head_attention(P.to_torch(P.init_params("mha", CFG, 0)), torch.zeros(1, 2, 12),
                                     torch.zeros(1, 2, 12), 3, key_padding_mask=torch.ones(1, 3, dtype=torch.bool)),
     "key_padding_mask"),
    (lambda: tt.feed_forward(P.to_torch(P.init_params("ffn", CFG, 0)), torch.zeros(1, 2, 12), "tanh"),
     "activation"),
    (lambda: tt.linear(torch.zeros(2, 5), torch.zeros(3, 4)), "x"),
    (lambda: tt.encoder_layer(P.to_torch(P.init_params("encoder_layer", CFG, 0)), torch.zeros(2, 12), CFG), "x"),
])
def test_torch_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_backends_mirror_each_other_name_for_name():
    public = lambda mod: {n for n in dir(mod) if not n.startswith("_")}  # noqa: E731
    assert set(tn.__all__) == set(tt.__all__)
    for name in tn.__all__:
        assert name in public(tt)


# ---- memory: the explicit path holds one score matrix (plus the small output) ---------------------

def torch_cpu_peak_bytes(fn) -> int:
    """Peak of the running sum of allocations seen by the profiler's [memory] events."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    current = peak = 0
    for event in events:
        current += event.nbytes()
        peak = max(peak, current)
    return peak


@pytest.mark.parametrize("masking", ["none", "causal", "padding"])
def test_torch_explicit_attention_peak_is_one_score_matrix(masking):
    B, H, T, d = 1, 2, 1024, 8
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(B, H, T, d, generator=g) for _ in range(3))
    mask = torch.ones(B, 1, 1, T, dtype=torch.bool) if masking == "padding" else None
    with torch.no_grad():
        peak = torch_cpu_peak_bytes(lambda: tt.scaled_dot_product_attention(q, k, v, mask=mask,
                                                                            causal=masking == "causal"))
    scores, small = B * H * T * T * 4, B * H * T * d * 4
    assert scores <= peak <= 1.01 * (scores + small)
