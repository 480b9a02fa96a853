"""GPT-2 (tfimpl.numpy.gpt, tfimpl.torch.gpt) against HuggingFace `GPT2LMHeadModel`, same weights.

A small non-default config is built offline from `GPT2Config` and our seeded weights written into
it with tfimpl.loaders.to_hf_gpt2_state_dict. float64: prefill hidden states and logits, decode
steps against HF's step-by-step logits with its cache, padding through the attention mask, all
<= 1e-10 relative; our cached decode equals our full recompute to rounding. float32: ours within
a small multiple of HuggingFace's own float32 error against its float64 result.
"""

import os

import numpy as np
import pytest
import torch

import tfimpl.numpy.gpt as ng
import tfimpl.torch.gpt as tg
from tfimpl import loaders
from tfimpl import params as P

transformers = pytest.importorskip("transformers")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

RTOL64 = 1e-10
FP32_FACTOR, FP32_FLOOR = 4.0, 4 * float(np.finfo(np.float32).eps)
VOCAB, POSITIONS = 61, 40


def rel_err(got, ref) -> float:
    got = got.detach().double().numpy() if isinstance(got, torch.Tensor) else np.asarray(got, np.float64)
    ref = ref.detach().double().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300))


def hf_config(attn_implementation="eager"):
    return transformers.GPT2Config(vocab_size=VOCAB, n_positions=POSITIONS, n_embd=24, n_layer=3,
                                   n_head=4, n_inner=40, layer_norm_epsilon=1e-6,
                                   resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
                                   bos_token_id=0, eos_token_id=0,
                                   attn_implementation=attn_implementation)


@pytest.fixture(scope="module")
def setup():
    config = hf_config()
    cfg = loaders.config_from_hf_gpt2(config)
    params = P.init_params("gpt", cfg, seed=5)
    return config, cfg, params


def hf_model(config, params, dtype):
    model = transformers.GPT2LMHeadModel(config).to(dtype).eval()
    model.load_state_dict(loaders.to_hf_gpt2_state_dict(params))
    return model


def ids_of(batch, seq_len, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, (batch, seq_len))


def our_backends(params, np_dtype=np.float64, torch_dtype=torch.float64):
    """(name, module, params, to_input) for numpy, torch explicit, torch sdpa."""
    p_np = {k: v.astype(np_dtype) for k, v in params.items()}
    p_t = P.to_torch(params, torch_dtype)
    as_t = lambda a: None if a is None else torch.from_numpy(np.asarray(a))   # noqa: E731
    return [("numpy", ng, p_np, np.asarray, {}),
            ("torch", tg, p_t, as_t, {"attn_impl": "explicit"}),
            ("torch-sdpa", tg, p_t, as_t, {"attn_impl": "sdpa"})]


def test_config_and_loader_round_trip(setup):
    config, cfg, params = setup
    assert cfg.decoder_only and cfg.norm_first and cfg.final_norm and cfg.activation == "gelu_tanh"
    assert cfg.layer_norm_eps == 1e-6 and cfg.d_ff == 40 and cfg.n_layers == 3
    model = hf_model(config, params, torch.float64)
    back = loaders.from_hf_gpt2(model.state_dict())
    assert set(back) == set(params)
    assert all(np.array_equal(back[k], params[k]) for k in params)
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()   # tied


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("seq_len", [1, 9])
def test_prefill_hidden_and_logits_match_huggingface(setup, attn_implementation, seq_len):
    _, cfg, params = setup
    model = hf_model(hf_config(attn_implementation), params, torch.float64)
    ids = ids_of(2, seq_len)
    with torch.no_grad():
        ref_hidden = model.transformer(torch.from_numpy(ids)).last_hidden_state
        ref_logits = model(torch.from_numpy(ids)).logits
        for name, mod, p, to_in, kw in our_backends(params):
            hidden, logits, cache = mod.gpt(p, to_in(ids), cfg, **kw)
            assert cache is None
            assert rel_err(hidden, ref_hidden) < RTOL64, name
            assert rel_err(logits, ref_logits) < RTOL64, name


def test_decode_steps_match_huggingface_with_its_cache(setup):
    config, cfg, params = setup
    model = hf_model(config, params, torch.float64)
    ids = ids_of(2, 12, seed=1)
    prompt, steps = 5, 7
    with torch.no_grad():
        out = model(torch.from_numpy(ids[:, :prompt]), use_cache=True)
        hf_cache, hf_logits = out.cache, [out.logits[:, -1]]
        for t in range(prompt, prompt + steps - 1):
            out = model(torch.from_numpy(ids[:, t:t + 1]), cache=hf_cache, use_cache=True)
            hf_logits.append(out.logits[:, -1])
        for name, mod, p, to_in, kw in our_backends(params):
            logits, cache = mod.prefill(p, to_in(ids[:, :prompt]), cfg, capacity=prompt + 2, **kw)
            assert rel_err(logits, hf_logits[0]) < RTOL64, name
            for step, t in enumerate(range(prompt, prompt + steps - 1), start=1):
                logits, cache = mod.decode_step(p, to_in(ids[:, t]), cfg, cache, **kw)
                assert rel_err(logits, hf_logits[step]) < RTOL64, (name, step)
            assert cache.length == prompt + steps - 1 and cache.capacity >= cache.length  # it grew


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_cached_decode_equals_full_recompute(setup, dtype):
    _, cfg, params = setup
    ids = ids_of(3, 11, seed=2)
    np_dtype, torch_dtype = getattr(np, dtype), getattr(torch, dtype)
    tol = 1e-13 if dtype == "float64" else 2e-6
    with torch.no_grad():
        for name, mod, p, to_in, kw in our_backends(params, np_dtype, torch_dtype):
            logits, cache = mod.prefill(p, to_in(ids[:, :4]), cfg, capacity=11, **kw)
            for t in range(4, 11):
                full = mod.gpt(p, to_in(ids[:, :t]), cfg, logits="last", **kw)[1][:, 0]
                assert rel_err(logits, full) < tol, (name, t)
                logits, cache = mod.decode_step(p, to_in(ids[:, t]), cfg, cache, **kw)
            assert cache.nbytes == 2 * cfg.n_layers * 3 * 11 * cfg.d_model * np.dtype(np_dtype).itemsize


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_through_the_attention_mask_as_huggingface(setup, side):
    config, cfg, params = setup
    model = hf_model(config, params, torch.float64)
    seq_len, lengths = 8, np.array([8, 5, 2])
    ids = ids_of(3, seq_len, seed=3)
    real = np.arange(seq_len)[None, :] < lengths[:, None]                       # (B, T) right-padded
    if side == "left":
        real = real[:, ::-1].copy()
    mask = real.astype(np.int64)
    step_ids = ids_of(3, 2, seed=4)
    with torch.no_grad():
        out = model(torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), use_cache=True)
        ref_prefill, hf_cache = out.logits, out.cache
        mask2 = np.concatenate([mask, np.ones((3, 1), np.int64)], axis=1)
        ref_step = model(torch.from_numpy(step_ids[:, :1]), attention_mask=torch.from_numpy(mask2),
                         cache=hf_cache, use_cache=True).logits[:, 0]
        for name, mod, p, to_in, kw in our_backends(params):
            cache = mod.new_cache(cfg, 3, seq_len + 1, **({} if name == "numpy" else
                                                            {"dtype": torch.float64}))
            _, logits, cache = mod.gpt(p, to_in(ids), cfg, attention_mask=to_in(mask), cache=cache, **kw)
            got = logits.numpy() if isinstance(logits, torch.Tensor) else logits
            assert rel_err(got[real], ref_prefill.numpy()[real]) < RTOL64, name   # real tokens only
            logits, _ = mod.decode_step(p, to_in(step_ids[:, 0]), cfg, cache, attention_mask=to_in(mask2), **kw)
            assert rel_err(logits, ref_step) < RTOL64, name


def test_float32_within_the_tolerance_model(setup):
    config, cfg, params = setup
    ids = ids_of(2, 10, seed=6)
    with torch.no_grad():
        ref64 = hf_model(config, params, torch.float64)(torch.from_numpy(ids)).logits
        lib32 = hf_model(config, params, torch.float32)(torch.from_numpy(ids)).logits
        bound = FP32_FACTOR * rel_err(lib32, ref64) + FP32_FLOOR
        for name, mod, p, to_in, kw in our_backends(params, np.float32, torch.float32):
            logits = mod.gpt(p, to_in(ids), cfg, **kw)[1]
            assert logits.dtype in (np.float32, torch.float32)
            assert rel_err(logits, ref64) <= bound, name


def test_greedy_generation_matches_huggingface_generate(setup):
    config, cfg, params = setup
    model = hf_model(config, params, torch.float64)
    ids = ids_of(2, 4, seed=7)
    with torch.no_grad():
        ref = model.generate(torch.from_numpy(ids), attention_mask=torch.ones(2, 4, dtype=torch.long),
                             max_new_tokens=6, min_new_tokens=6, do_sample=False,
                             pad_token_id=0).numpy()
        assert np.array_equal(ng.greedy_generate(params, ids, cfg, 6), ref)
        assert np.array_equal(ng.greedy_generate(params, ids, cfg, 6, use_cache=False), ref)
        pt = P.to_torch(params, torch.float64)
        assert np.array_equal(tg.greedy_generate(pt, torch.from_numpy(ids), cfg, 6,
                                                 attn_impl="sdpa").numpy(), ref)


def test_context_beyond_the_position_table_is_a_value_error(setup):
    _, cfg, params = setup
    with pytest.raises(ValueError, match="max_position"):
        ng.gpt(params, ids_of(1, POSITIONS + 1), cfg)
    logits, cache = ng.prefill(params, ids_of(1, POSITIONS), cfg)
    with pytest.raises(ValueError, match="max_position"):
        ng.decode_step(params, np.array([1]), cfg, cache)
    with pytest.raises(ValueError, match="max_position"):
        tg.gpt(P.to_torch(params, torch.float64), torch.from_numpy(ids_of(1, POSITIONS + 1)), cfg)


def test_offset_causal_mask_is_bottom_right_aligned():
    import tfimpl.numpy.attention as na
    import tfimpl.torch.attention as ta

    expected = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)                     # 2 queries after 2 cached
    assert np.array_equal(na.causal_mask(2, 4, offset=2), expected)
    assert np.array_equal(ta.causal_mask(2, 4, offset=2).numpy(), expected)
    assert np.array_equal(na.causal_mask(3, 3), np.tri(3, dtype=bool))       # offset 0 unchanged
    r = np.random.default_rng(0)
    q, k, v = r.standard_normal((1, 2, 2, 4)), r.standard_normal((1, 2, 4, 4)), r.standard_normal((1, 2, 4, 3))
    ref = na.scaled_dot_product_attention(q, k, v, mask=expected)
    assert np.allclose(na.scaled_dot_product_attention(q, k, v, causal=True, causal_offset=2), ref,
                       rtol=1e-13, atol=0)
    for impl in ("explicit", "sdpa"):
        got = ta.scaled_dot_product_attention(*map(torch.from_numpy, (q, k, v)), causal=True,
                                              causal_offset=2, attn_impl=impl)
        assert np.allclose(got.numpy(), ref, rtol=1e-13, atol=0), impl


def test_packed_inference_layout_gives_the_same_logits():
    """tfimpl.torch.gpt.pack_for_inference (fused Q/K/V, (in, out) weights, the head's (D, V)
    copy) changes the layout, not the numbers: prefill and decode equal the parameter layout."""
    import numpy as np
    import torch

    import tfimpl.torch.gpt as tg
    from tfimpl import params as P
    from tfimpl.config import PRESETS

    cfg = PRESETS["gpt2"].replace(vocab_size=97, max_position=32, n_layers=2, d_model=64,
                                  n_heads=4, d_ff=256)
    p = P.to_torch(P.init_params("gpt", cfg, seed=3, dtype=np.float64), torch.float64)
    packed = tg.pack_for_inference(p)
    assert "layers.0.self_attn.q.weight" not in packed and tg.PACKED.join(["layers.0.", ""]) in packed
    ids = torch.randint(0, 97, (2, 7), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        want, cache_a = tg.prefill(p, ids[:, :6], cfg, capacity=7)
        got, cache_b = tg.prefill(packed, ids[:, :6], cfg, capacity=7)
        step_a, _ = tg.decode_step(p, ids[:, 6], cfg, cache_a)
        step_b, _ = tg.decode_step(packed, ids[:, 6], cfg, cache_b)
    for a, b in ((want, got), (step_a, step_b)):
        assert float((a - b).abs().max() / a.abs().max()) < 1e-12
