"""tfimpl.numpy block by block against hand-computed values, plus the parameter layout."""

import math
import tracemalloc

import numpy as np
import pytest
from scipy.special import erf
from scipy.special import softmax as scipy_softmax

import tfimpl.numpy as tn
from tfimpl import params as P
from tfimpl.config import PRESETS, ModelConfig

SMALL = ModelConfig(d_model=12, n_heads=3, d_ff=20, n_layers=2, n_decoder_layers=2, vocab_size=50,
                    max_position=16, layer_norm_eps=1e-5)


def rng(seed=0):
    return np.random.default_rng(seed)


# ---- softmax, layer norm, positions, activations ----------------------------------------------

def test_softmax_matches_scipy_and_survives_large_inputs():
    x = rng().standard_normal((3, 4, 7)) * 50 + 1000          # exp(1000) would overflow
    np.testing.assert_allclose(tn.softmax(x), scipy_softmax(x, axis=-1), rtol=1e-12)
    np.testing.assert_allclose(tn.softmax(x, axis=1), scipy_softmax(x, axis=1), rtol=1e-12)
    assert np.isfinite(tn.softmax(x)).all()


def test_softmax_in_place_blocks_and_empty_rows():
    x = rng().standard_normal((5, 3, 40000))                 # rows longer than one block
    expected = scipy_softmax(x, axis=-1)
    assert tn.softmax_(x) is x
    np.testing.assert_allclose(x, expected, rtol=1e-12)
    y = np.array([[0.0, -np.inf], [-np.inf, -np.inf]])
    np.testing.assert_array_equal(tn.softmax(y), [[1.0, 0.0], [0.0, 0.0]])


def test_layer_norm_by_hand():
    x = np.array([[1.0, 2.0, 3.0, 6.0]])
    mean, var = 3.0, (4 + 1 + 0 + 9) / 4
    w, b = np.array([1.0, 2.0, 0.5, 1.0]), np.array([0.0, 1.0, 0.0, -1.0])
    expected = (x - mean) / math.sqrt(var + 1e-5) * w + b
    np.testing.assert_allclose(tn.layer_norm(x, w, b, eps=1e-5), expected, rtol=1e-14)


def test_sinusoidal_positions_by_hand():
    pe = tn.sinusoidal_positional_encoding(5, 6)
    assert pe.shape == (5, 6)
    pos, i = 3, 2                                             # columns 4 (sin) and 5 (cos)
    angle = pos / 10000 ** (2 * i / 6)
    assert pe[pos, 4] == pytest.approx(math.sin(angle), abs=1e-15)
    assert pe[pos, 5] == pytest.approx(math.cos(angle), abs=1e-15)
    np.testing.assert_array_equal(pe[0], [0, 1, 0, 1, 0, 1])
    assert tn.sinusoidal_positional_encoding(4, 7).shape == (4, 7)   # odd width
    assert tn.sinusoidal_positional_encoding(3, 8, np.float32).dtype == np.float32


def test_learned_positions_slice_the_table():
    table = np.arange(20.0).reshape(10, 2)
    np.testing.assert_array_equal(tn.learned_positional_embedding(table, 3, offset=2), table[2:5])
    with pytest.raises(ValueError, match="max_position"):
        tn.learned_positional_embedding(table, 9, offset=2)


def test_activations_by_hand():
    x = np.linspace(-4, 4, 17)
    np.testing.assert_allclose(tn.gelu(x), [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x],
                               rtol=1e-14, atol=1e-16)
    expected_tanh = 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    np.testing.assert_allclose(tn.gelu_tanh(x), expected_tanh, rtol=1e-14, atol=1e-16)
    np.testing.assert_array_equal(tn.relu(x), np.maximum(x, 0))
    assert np.abs(tn.gelu(x) - tn.gelu_tanh(x)).max() < 1e-3  # the approximation is close


# ---- attention ----------------------------------------------------------------------------

def naive_attention(q, k, v, allowed):
    """One query at a time, the formula as written: softmax(q·kᵀ/√d) over allowed keys, · V."""
    B, H, Tq, d = q.shape
    out = np.zeros((B, H, Tq, v.shape[-1]))
    for b in range(B):
        for h in range(H):
            for i in range(Tq):
                s = np.array([q[b, h, i] @ k[b, h, j] / math.sqrt(d) for j in range(k.shape[2])])
                ok = allowed[b, h, i]
                if ok.any():
                    w = np.exp(s[ok] - s[ok].max())
                    out[b, h, i] = (w / w.sum()) @ v[b, h][ok]
    return out


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("tq,tk", [(1, 1), (5, 5), (3, 7)])
def test_attention_matches_naive_loop(tq, tk, causal):
    r = rng(1)
    q, k, v = r.standard_normal((2, 3, tq, 4)), r.standard_normal((2, 3, tk, 4)), r.standard_normal((2, 3, tk, 5))
    mask = np.ones((2, 1, 1, tk), bool)
    mask[1, ..., tk // 2 + 1:] = False                        # pad the second sequence
    allowed = np.broadcast_to(mask, (2, 3, tq, tk)) & (np.tri(tq, tk, dtype=bool) if causal else True)
    out, weights = tn.scaled_dot_product_attention(q, k, v, mask=mask, causal=causal, return_weights=True)
    np.testing.assert_allclose(out, naive_attention(q, k, v, allowed), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-12)
    assert not weights[~allowed].any()


def test_fully_masked_query_gets_zero_output():
    r = rng(2)
    q, k, v = (r.standard_normal((1, 1, 3, 4)) for _ in range(3))
    mask = np.array([[True, True, False], [False, False, False], [True, False, False]])
    out, w = tn.scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
    np.testing.assert_array_equal(out[0, 0, 1], 0.0)
    assert np.isfinite(out).all() and np.isfinite(w).all()


def test_split_and_merge_heads_round_trip():
    x = rng().standard_normal((2, 5, 12))
    heads = tn.split_heads(x, 3)
    assert heads.shape == (2, 3, 5, 4)
    np.testing.assert_array_equal(heads[1, 2, 4], x[1, 4, 8:12])
    np.testing.assert_array_equal(tn.merge_heads(heads), x)


def test_mha_equals_per_head_formula():
    p = P.init_params("mha", SMALL, seed=3)
    r = rng(4)
    xq, xkv = r.standard_normal((2, 4, 12)), r.standard_normal((2, 6, 12))
    got = tn.multi_head_attention(p, xq, xkv, 3)
    heads = []
    for h in range(3):
        sl = slice(4 * h, 4 * h + 4)
        q = xq @ p["q.weight"][sl].T + p["q.bias"][sl]
        k = xkv @ p["k.weight"][sl].T + p["k.bias"][sl]
        v = xkv @ p["v.weight"][sl].T + p["v.bias"][sl]
        heads.append(scipy_softmax(q @ k.transpose(0, 2, 1) / 2.0, axis=-1) @ v)
    expected = np.concatenate(heads, -1) @ p["o.weight"].T + p["o.bias"]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    # self-attention (fused QKV) equals cross-attention on a copy of the same input
    np.testing.assert_allclose(tn.multi_head_attention(p, xq, xq, 3),
                               tn.multi_head_attention(p, xq, xq.copy(), 3), rtol=1e-13, atol=1e-15)


def test_attention_peak_memory_is_one_score_matrix():
    """Peak = the (B, H, T, T) scores + the (B, H, T, d) output + a small per-tile workspace."""
    B, H, T, d = 1, 2, 2048, 8
    r = rng(5)
    q, k, v = (r.standard_normal((B, H, T, d)).astype(np.float32) for _ in range(3))
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    tn.scaled_dot_product_attention(q, k, v, causal=True)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    scores, small = B * H * T * T * 4, B * H * T * d * 4
    tile_workspace = 2 * 2**20                             # masks of the tiles in flight: <= 2 MiB
    assert scores + small <= peak <= scores + small + tile_workspace


# ---- feed-forward and layers ----------------------------------------------------------------

@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh"])
def test_feed_forward_by_formula(activation):
    p = P.init_params("ffn", SMALL, seed=6)
    x = rng(7).standard_normal((2, 3, 12))
    h = x @ p["ff1.weight"].T + p["ff1.bias"]
    act = {"relu": lambda z: np.maximum(z, 0), "gelu": lambda z: 0.5 * z * (1 + erf(z / math.sqrt(2))),
           "gelu_tanh": lambda z: 0.5 * z * (1 + np.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z ** 3)))}
    expected = act[activation](h) @ p["ff2.weight"].T + p["ff2.bias"]
    np.testing.assert_allclose(tn.feed_forward(p, x, activation), expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_by_formula(norm_first):
    cfg = SMALL.replace(norm_first=norm_first)
    p = P.init_params("encoder_layer", cfg, seed=8)
    x = rng(9).standard_normal((2, 5, 12))
    ln = lambda z, n: tn.layer_norm(z, p[f"{n}.weight"], p[f"{n}.bias"], cfg.layer_norm_eps)  # noqa: E731
    attn = lambda z: tn.multi_head_attention(P.subtree(p, "self_attn"), z, z, 3)  # noqa: E731
    ffn = lambda z: tn.feed_forward(P.subtree(p, "ffn"), z, cfg.activation)  # noqa: E731
    if norm_first:
        h = x + attn(ln(x, "norm1"))
        expected = h + ffn(ln(h, "norm2"))
    else:
        h = ln(x + attn(x), "norm1")
        expected = ln(h + ffn(h), "norm2")
    np.testing.assert_allclose(tn.encoder_layer(p, x, cfg), expected, rtol=1e-12, atol=1e-14)


def test_decoder_is_causal_and_transformer_runs():
    cfg = SMALL.replace(final_norm=True)
    p = P.init_params("transformer", cfg, seed=10)
    r = rng(11)
    src, tgt = r.standard_normal((2, 6, 12)), r.standard_normal((2, 4, 12))
    out = tn.transformer(p, src, tgt, cfg)
    assert out.shape == (2, 4, 12)
    tgt2 = tgt.copy()
    tgt2[:, 3] += 1.0                                        # change the last target position
    out2 = tn.transformer(p, src, tgt2, cfg)
    np.testing.assert_allclose(out2[:, :3], out[:, :3], rtol=1e-12)   # earlier ones do not see it
    assert not np.allclose(out2[:, 3], out[:, 3])


def test_bert_padding_does_not_leak():
    cfg = SMALL
    p = P.init_params("bert", cfg, seed=12)
    ids = rng(13).integers(0, cfg.vocab_size, (1, 6))
    mask = np.array([[1, 1, 1, 1, 0, 0]])
    hidden, pooled = tn.bert(p, ids, cfg, attention_mask=mask)
    ids2 = ids.copy()
    ids2[0, 4:] = (ids2[0, 4:] + 1) % cfg.vocab_size          # change padded tokens only
    hidden2, pooled2 = tn.bert(p, ids2, cfg, attention_mask=mask)
    np.testing.assert_allclose(hidden2[:, :4], hidden[:, :4], rtol=1e-12)
    np.testing.assert_allclose(pooled2, pooled, rtol=1e-12)
    assert hidden.shape == (1, 6, 12) and pooled.shape == (1, 12)


# ---- the parameter layout ---------------------------------------------------------------------

def test_bert_base_parameter_count():
    assert P.count(P.init_params("bert", PRESETS["bert-base"], seed=0, dtype=np.float32)) == 109_482_240


def test_params_are_seeded_and_dtype_is_a_cast():
    a = P.init_params("encoder_layer", SMALL, seed=1)
    b = P.init_params("encoder_layer", SMALL, seed=1, dtype=np.float32)
    c = P.init_params("encoder_layer", SMALL, seed=2)
    assert list(a) == list(b)
    for name in a:
        np.testing.assert_array_equal(a[name].astype(np.float32), b[name])
    assert not np.array_equal(a["self_attn.q.bias"], c["self_attn.q.bias"])
    assert np.abs(a["norm1.weight"] - 1).max() < 0.2 and np.abs(a["self_attn.q.bias"]).max() > 0
    assert P.init_params("attention", SMALL, seed=0) == {}
    assert set(P.subtree(a, "self_attn")) == {f"{n}.{l}" for n in "qkvo" for l in ("weight", "bias")}


def test_param_names_per_kind():
    cfg = SMALL.replace(final_norm=True)
    names = set(P.init_params("transformer", cfg, seed=0))
    assert "encoder.layers.1.ffn.ff2.bias" in names and "decoder.layers.1.cross_attn.o.weight" in names
    assert {"encoder.norm.weight", "decoder.norm.bias", "decoder.layers.0.norm3.weight"} <= names
    bert = set(P.init_params("bert", SMALL, seed=0))
    assert {"embeddings.word.weight", "embeddings.norm.bias", "pooler.weight",
            "encoder.layers.0.self_attn.q.weight"} <= bert


# ---- bad input ----------------------------------------------------------------------------

@pytest.mark.parametrize("call,match", [
    (lambda: P.init_params("rnn", SMALL, 0), "kind"),
    (lambda: P.subtree({"a.b": 1}, "c"), "prefix"),
    (lambda: tn.feed_forward(P.init_params("ffn", SMALL, 0), np.zeros((1, 2, 12)), "swish"), "activation"),
    (lambda: tn.split_heads(np.zeros((1, 2, 12)), 5), "n_heads"),
    (lambda: tn.multi_head_attention(P.init_params("mha", SMALL, 0), np.zeros((1, 2, 12)),
                                     np.zeros((1, 2, 12)), 5), "n_heads"),
    (lambda: tn.multi_head_attention(P.init_params("mha", SMALL, 0), np.zeros((1, 2, 10)),
                                     np.zeros((1, 2, 10)), 3), "x_q"),
    (lambda: tn.multi_head_attention(P.init_params("mha", SMALL, 0), np.zeros((1, 2, 12)),
                                     np.zeros((2, 2, 12)), 3), "x_kv"),
    (lambda: tn.multi_head_attention(P.init_params("mha", SMALL, 0), np.zeros((1, 2, 12)),
                                     np.zeros((1, 3, 12)), 3, key_padding_mask=np.ones((1, 2), bool)),
     "key_padding_mask"),
    (lambda: tn.scaled_dot_product_attention(np.zeros((1, 1, 2, 4)), np.zeros((1, 1, 3, 4)),
                                             np.zeros((1, 1, 3, 4)), mask=np.ones((2, 2), bool)), "mask"),
    (lambda: tn.scaled_dot_product_attention(np.zeros((1, 1, 2, 4)), np.zeros((1, 1, 3, 4)),
                                             np.zeros((1, 1, 3, 4)), mask=np.ones((2, 3))), "mask"),
    (lambda: tn.scaled_dot_product_attention(np.zeros((1, 2, 4)), np.zeros((1, 1, 3, 4)),
                                             np.zeros((1, 1, 3, 4))), "q"),
    (lambda: tn.scaled_dot_product_attention(np.zeros((1, 1, 2, 4)), np.zeros((1, 1, 3, 5)),
                                             np.zeros((1, 1, 3, 4))), "k"),
    (lambda: tn.scaled_dot_product_attention(np.zeros((1, 1, 2, 4)), np.zeros((1, 1, 3, 4)),
                                             np.zeros((1, 1, 2, 4))), "v"),
    (lambda: tn.layer_norm(np.zeros((2, 4)), np.ones(3), np.zeros(3)), "weight"),
    (lambda: tn.bert(P.init_params("bert", SMALL, 0), np.zeros((1, 3), int), SMALL,
                     token_type_ids=np.zeros((1, 4), int)), "token_type_ids"),
])
def test_bad_input_raises_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# ---- element-wise work shared between threads ------------------------------------------------------

def test_row_block_parallelism_gives_identical_results():
    from threadpoolctl import threadpool_limits

    x = rng(14).standard_normal((3, 50, 3000)).astype(np.float32)
    results = {}
    for threads in (1, 2):
        with threadpool_limits(limits=threads):
            results[threads] = (tn.softmax_(x.copy()), tn.gelu(x))
    for a, b in zip(results[1], results[2]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(results[1][0], scipy_softmax(x, axis=-1), rtol=1e-5)


def test_gelu_into_a_strided_out():
    x = rng(15).standard_normal((4, 6))
    out = np.zeros((6, 4)).T                                   # not C-contiguous
    assert tn.gelu(x, out=out) is out
    np.testing.assert_allclose(out, 0.5 * x * (1 + erf(x / math.sqrt(2))), rtol=1e-14)
