"""tfimpl.keras (Keras 3 on TensorFlow) against tfimpl.numpy and tfimpl.torch, block by block.

Same seeded weights (tfimpl's layout, loaded into Keras' kernels by tfimpl.keras.loaders) and
inputs. float64: agreement to ~1e-10 relative, except where TensorFlow's exact GELU rounds its
constant 1/√2 to float32 (tested on its own below). float32: Keras' error against the float64
NumPy reference must be of the size of PyTorch's own float32 error on the same case.
"""

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
    pytest.skip("needs the [tf] extra: pip install 'tfbench[tf]'", allow_module_level=True)

import torch  # noqa: E402

import tfimpl.keras as tk  # noqa: E402
import tfimpl.numpy as tn  # noqa: E402
import tfimpl.torch as tt  # noqa: E402
from tfimpl import params as P  # noqa: E402
from tfimpl.config import ModelConfig  # noqa: E402
from tfimpl.keras import loaders  # noqa: E402
from tfimpl.keras._backend import keras, tf  # noqa: E402

RTOL64 = 1e-10
GELU_RTOL64 = 1e-7              # float64 GELU in TF: its 1/√2 is a float32 constant (rel. 1.2e-8);
                                # so is attention's 1/√d_k unless exact (d_k = 4 here: 0.5)
CFG = ModelConfig(d_model=12, n_heads=3, d_ff=20, n_layers=2, vocab_size=40, max_position=24,
                  layer_norm_eps=1e-5, activation="relu")
SHAPES = [(1, 1), (2, 5), (3, 7)]
MASKINGS = ["none", "padding", "causal", "both"]
pytestmark = pytest.mark.filterwarnings("ignore:You are using a softmax over axis")   # T = 1


def rel_err(got, ref) -> float:
    got = np.asarray(got.numpy() if hasattr(got, "numpy") else got, dtype=np.float64)
    return float(np.abs(got - ref).max() / max(np.abs(ref).max(), 1e-300))


def padding_mask(batch, seq_len):
    """(B, T) True = real token; sequence b has seq_len - b real tokens (at least one)."""
    lengths = np.maximum(seq_len - np.arange(batch), 1)
    return np.arange(seq_len)[None, :] < lengths[:, None]


def inputs(batch, seq_len, seed=0, d=CFG.d_model):
    return np.random.default_rng(seed).standard_normal((batch, seq_len, d))


def cfg_with(**kw) -> ModelConfig:
    return ModelConfig(**{**CFG.__dict__, **kw})


def f32_bound(torch_err: float) -> float:
    """Keras' float32 error may be 10x PyTorch's on the same case (different sum orders), not more."""
    return max(10 * torch_err, 1e-6)


# ---- the mapping ----------------------------------------------------------------------------

def test_mha_kernels_are_weight_transposed_per_head_and_read_back_exactly():
    p = P.init_params("mha", CFG, seed=0)
    layer = loaders.build_mha(p, CFG.n_heads, dtype="float64")
    d, h, dh = CFG.d_model, CFG.n_heads, CFG.d_head
    q_kernel = layer.query_dense.kernel.numpy()
    assert q_kernel.shape == (d, h, dh) and layer.query_dense.bias.shape == (h, dh)
    assert layer.output_dense.kernel.shape == (h, dh, d)
    # head 1's query projection: rows dh..2dh of our (out, in) weight
    np.testing.assert_array_equal(q_kernel[:, 1, :], p["q.weight"][dh:2 * dh].T)
    np.testing.assert_array_equal(layer.output_dense.kernel.numpy()[2], p["o.weight"][:, 2 * dh:].T)
    back = loaders.read(layer, "mha", P.param_shapes("mha", CFG))
    assert all(np.array_equal(back[k], p[k]) for k in p)


def test_every_kind_round_trips_and_a_wrong_name_is_refused():
    cfg = cfg_with(final_norm=True)
    for kind, build in (("encoder_layer", lambda p: loaders.build_encoder_layer(p, cfg, "float64")),
                        ("encoder", lambda p: loaders.build_encoder(p, cfg, "float64")),
                        ("bert", lambda p: loaders.build_bert(p, cfg, "float64"))):
        p = P.init_params(kind, cfg, seed=1)
        back = loaders.read(build(p), kind, P.param_shapes(kind, cfg))
        assert back.keys() == p.keys() and all(np.array_equal(back[k], p[k]) for k in p), kind
    p = P.init_params("ffn", CFG, seed=0)
    p["ff3.weight"] = p.pop("ff2.weight")
    with pytest.raises(ValueError, match=r"missing \['ff2.weight'\], unexpected \['ff3.weight'\]"):
        loaders.build_ffn(p, "relu", dtype="float64")


# ---- attention ----------------------------------------------------------------------------

@pytest.mark.parametrize("batch,seq_len", SHAPES)
@pytest.mark.parametrize("masking", MASKINGS)
def test_scaled_dot_product_attention_float64(batch, seq_len, masking):
    r = np.random.default_rng(2)
    q, k, v = (r.standard_normal((batch, 3, seq_len, 4)) for _ in range(3))
    mask = padding_mask(batch, seq_len)[:, None, None, :] if masking in ("padding", "both") else None
    causal = masking in ("causal", "both")
    ref, ref_w = tn.scaled_dot_product_attention(q, k, v, mask=mask, causal=causal, return_weights=True)
    out = tk.scaled_dot_product_attention(q, k, v, mask=mask, causal=causal)   # keras.ops path
    assert rel_err(out, ref) < RTOL64
    out, weights = tk.scaled_dot_product_attention(q, k, v, mask=mask, causal=causal,
                                                   return_weights=True)       # the layer's path
    assert rel_err(out, ref) < RTOL64 and rel_err(weights, ref_w) < RTOL64


@pytest.mark.parametrize("batch,seq_len", SHAPES)
@pytest.mark.parametrize("masking", MASKINGS)
def test_multi_head_attention_float64_with_weights(batch, seq_len, masking):
    p = P.init_params("mha", CFG, seed=3)
    x = inputs(batch, seq_len)
    kpm = padding_mask(batch, seq_len) if masking in ("padding", "both") else None
    causal = masking in ("causal", "both")
    ref, ref_w = tn.multi_head_attention(p, x, x, CFG.n_heads, key_padding_mask=kpm, causal=causal,
                                         return_weights=True)
    out = tk.multi_head_attention(p, x, x, CFG.n_heads, key_padding_mask=kpm, causal=causal)
    assert rel_err(out, ref) < RTOL64
    out, weights = tk.multi_head_attention(p, x, x, CFG.n_heads, key_padding_mask=kpm,
                                           causal=causal, return_weights=True)
    assert tuple(weights.shape) == (batch, CFG.n_heads, seq_len, seq_len)      # (B, H, Tq, Tk)
    assert rel_err(out, ref) < RTOL64 and rel_err(weights, ref_w) < RTOL64


def test_cross_attention_and_a_keras_shaped_mask():
    p = P.init_params("mha", CFG, seed=4)
    xq, xkv = inputs(2, 3, seed=5), inputs(2, 6, seed=6)
    mask = np.random.default_rng(7).random((2, 3, 6)) < 0.7
    mask[..., 0] = True                                                       # every query sees a key
    ref = tn.multi_head_attention(p, xq, xkv, CFG.n_heads, mask=mask[:, None])   # ours: (B, 1, Tq, Tk)
    assert rel_err(tk.multi_head_attention(p, xq, xkv, CFG.n_heads, mask=mask[:, None]), ref) < RTOL64
    assert rel_err(tk.multi_head_attention(p, xq, xkv, CFG.n_heads, mask=mask), ref) < RTOL64  # Keras'
    with pytest.raises(ValueError, match="one mask for all heads"):
        tk.multi_head_attention(p, xq, xkv, CFG.n_heads, mask=np.ones((2, 3, 3, 6), bool))


def test_fully_masked_query_row_zero_with_weights_uniform_without():
    """Keras' two paths differ on a row with no allowed key: the Softmax layer (weights asked
    for) zeroes it, as ours does; keras.ops.dot_product_attention (-1e9 fill) averages all keys."""
    r = np.random.default_rng(8)
    q, k, v = (r.standard_normal((1, 2, 3, 4)) for _ in range(3))
    mask = np.array([[True, False, True], [False, False, False], [True, True, True]])
    ours, ours_w = tn.scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
    assert not ours_w[:, :, 1].any()
    out, w = tk.scaled_dot_product_attention(q, k, v, mask=mask, return_weights=True)
    assert rel_err(w, ours_w) < RTOL64 and rel_err(out, ours) < RTOL64
    fused = tk.scaled_dot_product_attention(q, k, v, mask=mask).numpy()
    rows = [0, 2]
    assert rel_err(fused[:, :, rows], ours[:, :, rows]) < RTOL64
    np.testing.assert_allclose(fused[:, :, 1], v.mean(axis=2), rtol=1e-12)    # uniform weights
    p = P.init_params("mha", CFG, seed=19)                                    # the layer does both
    x = inputs(1, 3, seed=20)
    kmask = np.broadcast_to(mask, (1, 3, 3))
    with_w, _ = tk.multi_head_attention(p, x, x, CFG.n_heads, mask=kmask, return_weights=True)
    without = tk.multi_head_attention(p, x, x, CFG.n_heads, mask=kmask)
    ref = tn.multi_head_attention(p, x, x, CFG.n_heads, mask=mask)
    assert rel_err(with_w, ref) < RTOL64
    assert rel_err(without.numpy()[:, rows], ref[:, rows]) < RTOL64
    assert rel_err(without.numpy()[:, 1], ref[:, 1]) > 1e-3


def test_float64_attention_scale_is_rounded_to_float32_unless_exact():
    """Keras casts the Python float 1/√d_k to the tensor's dtype through a float32 constant:
    exact for d_k = 4 (0.5, the tests above), rounded for d_k = 8 (rel. error ~1e-8)."""
    r = np.random.default_rng(21)
    q, k, v = (r.standard_normal((2, 2, 5, 8)) for _ in range(3))
    ref, ref_w = tn.scaled_dot_product_attention(q, k, v, return_weights=True)
    scale32 = float(np.float32(1 / np.sqrt(8)))
    scores = np.einsum("bhqd,bhkd->bhqk", q, k) * scale32                    # (B, H, Tq, Tk)
    w32 = np.exp(scores - scores.max(-1, keepdims=True))
    w32 /= w32.sum(-1, keepdims=True)
    for out, w in (tk.scaled_dot_product_attention(q, k, v, return_weights=True),
                   (tk.scaled_dot_product_attention(q, k, v), None)):
        assert rel_err(out, w32 @ v) < 1e-13                                  # the rounded scale
        assert 1e-10 < rel_err(out, ref) < GELU_RTOL64                        # vs the exact one
        if w is not None:
            assert rel_err(w, w32) < 1e-13 and 1e-10 < rel_err(w, ref_w) < GELU_RTOL64


# ---- feed-forward, GELU -------------------------------------------------------------------

def test_tf_exact_gelu_in_float64_uses_a_float32_constant():
    """tf.nn.gelu casts 1/√2 from a float32 constant: NumPy with that constant agrees exactly."""
    from scipy.special import erfc

    x = np.random.default_rng(9).standard_normal(4096) * 3
    c32 = float(np.float32(1 / np.sqrt(2)))
    got = tk.gelu(x).numpy()
    assert rel_err(got, 0.5 * x * erfc(-x * c32)) < 1e-15
    err = rel_err(got, tn.gelu(x))
    assert 1e-10 < err < GELU_RTOL64                                           # the constant's error
    assert rel_err(tk.relu(x), tn.relu(x)) == 0.0
    assert rel_err(tk.gelu_tanh(x), tn.gelu_tanh(x)) < GELU_RTOL64


@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("batch,seq_len", SHAPES)
def test_feed_forward_float64(activation, batch, seq_len):
    p = P.init_params("ffn", CFG, seed=10)
    x = inputs(batch, seq_len) * 5
    tol = RTOL64 if activation == "relu" else GELU_RTOL64
    assert rel_err(tk.feed_forward(p, x, activation), tn.feed_forward(p, x, activation)) < tol


# ---- encoder layer, stack, BERT ------------------------------------------------------------

@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("padded", [False, True])
def test_encoder_layer_float64(norm_first, activation, padded):
    cfg = cfg_with(norm_first=norm_first, activation=activation)
    p = P.init_params("encoder_layer", cfg, seed=11)
    x = inputs(3, 7)
    kpm = padding_mask(3, 7) if padded else None
    ref = tn.encoder_layer(p, x, cfg, key_padding_mask=kpm)
    tol = RTOL64 if activation == "relu" else GELU_RTOL64
    assert rel_err(tk.encoder_layer(p, x, cfg, key_padding_mask=kpm), ref) < tol


@pytest.mark.parametrize("final_norm", [False, True])
def test_encoder_stack_float64(final_norm):
    cfg = cfg_with(final_norm=final_norm, norm_first=final_norm)
    p = P.init_params("encoder", cfg, seed=12)
    x, kpm = inputs(2, 6), padding_mask(2, 6)
    ref = tn.encoder(p, x, cfg, key_padding_mask=kpm)
    assert rel_err(tk.encoder(p, x, cfg, key_padding_mask=kpm), ref) < RTOL64


def test_bert_float64_with_attention_mask():
    cfg = cfg_with(activation="gelu", layer_norm_eps=1e-12)
    p = P.init_params("bert", cfg, seed=13)
    r = np.random.default_rng(14)
    ids, types = r.integers(0, cfg.vocab_size, (2, 6)), r.integers(0, 2, (2, 6))
    am = padding_mask(2, 6).astype(np.int64)
    ref_h, ref_p = tn.bert(p, ids, cfg, token_type_ids=types, attention_mask=am)
    hidden, pooled = tk.bert(p, ids, cfg, token_type_ids=types, attention_mask=am)
    assert rel_err(hidden, ref_h) < GELU_RTOL64 and rel_err(pooled, ref_p) < GELU_RTOL64
    emb = tk.bert_embeddings(p, ids, cfg, token_type_ids=types)
    assert rel_err(emb, tn.bert_embeddings(p, ids, cfg, token_type_ids=types)) < RTOL64


# ---- float32 against PyTorch's own float32 error ------------------------------------------

def _f32_case(block, cfg, x, kpm):
    """(Keras float32 output, torch float32 output, NumPy float64 reference) of one block."""
    p64 = P.init_params(block, cfg, seed=15)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    pt = P.to_torch(p64, dtype=torch.float32)
    xt = torch.from_numpy(x.astype(np.float32))
    kt = None if kpm is None else torch.from_numpy(kpm)
    x32 = x.astype(np.float32)
    if block == "mha":
        return (tk.multi_head_attention(p32, x32, x32, cfg.n_heads, key_padding_mask=kpm),
                tt.multi_head_attention(pt, xt, xt, cfg.n_heads, key_padding_mask=kt),
                tn.multi_head_attention(p64, x, x, cfg.n_heads, key_padding_mask=kpm))
    if block == "ffn":
        return (tk.feed_forward(p32, x32, cfg.activation), tt.feed_forward(pt, xt, cfg.activation),
                tn.feed_forward(p64, x, cfg.activation))
    return (tk.encoder_layer(p32, x32, cfg, key_padding_mask=kpm),
            tt.encoder_layer(pt, xt, cfg, key_padding_mask=kt),
            tn.encoder_layer(p64, x, cfg, key_padding_mask=kpm))


@pytest.mark.parametrize("block", ["mha", "ffn", "encoder_layer"])
@pytest.mark.parametrize("padded", [False, True])
def test_float32_error_matches_torch_float32(block, padded):
    cfg = ModelConfig(d_model=64, n_heads=4, d_ff=256, n_layers=1, layer_norm_eps=1e-5)
    x = inputs(2, 33, seed=16, d=64)
    kpm = padding_mask(2, 33) if padded else None
    got, torch_out, ref = _f32_case(block, cfg, x, kpm)
    assert got.dtype == tf.float32
    torch_err = rel_err(torch_out, ref)
    assert 0 < torch_err < 1e-5
    assert rel_err(got, ref) < f32_bound(torch_err)


def test_float32_attention_weights_match_torch_float32():
    p64 = P.init_params("mha", CFG, seed=17)
    x = inputs(2, 9, seed=18)
    kpm = padding_mask(2, 9)
    _, ref_w = tn.multi_head_attention(p64, x, x, CFG.n_heads, key_padding_mask=kpm, return_weights=True)
    xt = torch.from_numpy(x.astype(np.float32))
    _, tw = tt.multi_head_attention(P.to_torch(p64, dtype=torch.float32), xt, xt, CFG.n_heads,
                                    key_padding_mask=torch.from_numpy(kpm), return_weights=True)
    p32 = {k: v.astype(np.float32) for k, v in p64.items()}
    x32 = x.astype(np.float32)
    _, kw = tk.multi_head_attention(p32, x32, x32, CFG.n_heads, key_padding_mask=kpm,
                                    return_weights=True)
    assert rel_err(kw, ref_w) < f32_bound(rel_err(tw, ref_w))


def test_keras_runs_on_the_tensorflow_backend():
    assert keras.backend.backend() == "tensorflow"


def test_explain_topics_check_the_keras_call():
    import io
    import re

    from bench.guide.explain import explain
    from bench.guide.printer import Printer

    for topic, n_checks in (("attention", 2), ("mha", 2), ("ffn", 1), ("encoder_layer", 1)):
        out = io.StringIO()
        explain(topic, Printer(out))
        diffs = [float(d) for d in re.findall(r"max \|ours - Keras\| = (\S+)", out.getvalue())]
        assert len(diffs) == n_checks and max(diffs) < 1e-7, (topic, diffs)   # float32 constants
