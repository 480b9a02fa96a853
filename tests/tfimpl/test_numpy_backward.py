"""tfimpl.numpy.grad against torch autograd on tfimpl.torch's blocks: same weights, float64.

Loss L = Σ out ⊙ G for a random G, so ∂L/∂out = G and every backward is checked on a generic
direction. Every parameter and the input are compared, relative to the largest reference entry.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import tfimpl.torch as tt  # noqa: E402
from tfimpl import params as P  # noqa: E402
from tfimpl.config import ModelConfig  # noqa: E402
from tfimpl.numpy import grad as ng  # noqa: E402

RTOL = 1e-10
SHAPES = [(1, 1), (2, 5), (3, 7)]          # (batch, seq_len): T=1 and odd sizes


def cfg_for(**kw):
    base = dict(d_model=12, n_heads=3, d_ff=20, n_layers=2, vocab_size=40, max_position=24,
                layer_norm_eps=1e-5)
    return ModelConfig(**{**base, **kw})


def rel_err(got, ref) -> float:
    ref = ref.detach().double().numpy() if isinstance(ref, torch.Tensor) else np.asarray(ref)
    assert np.shape(got) == ref.shape, (np.shape(got), ref.shape)
    return float(np.abs(np.asarray(got) - ref).max() / max(np.abs(ref).max(), 1e-300))


def leaf(x):
    return torch.tensor(np.asarray(x), dtype=torch.float64, requires_grad=True)


def padding_mask(batch, seq_len):
    """(B, T) True = real token; sequence b has seq_len - b real tokens (at least one)."""
    lengths = np.maximum(seq_len - np.arange(batch), 1)
    return np.arange(seq_len)[None, :] < lengths[:, None]


def torch_grads(out, grad_out, tensors: dict):
    (out * torch.from_numpy(grad_out)).sum().backward()
    return {name: t.grad for name, t in tensors.items()}


def assert_grads(ours: dict, ref: dict):
    """Every gradient within RTOL of torch's, relative to its own largest entry.

    The key bias is the exception: softmax ignores a constant added to a row of scores, and
    q·b_K is such a constant, so ∂L/∂b_K = 0 exactly; both sides hold rounding noise, checked
    to be at that level against the block's largest gradient."""
    assert set(ours) == set(ref), set(ours) ^ set(ref)
    scale = max(float(r.detach().abs().max()) for r in ref.values())
    for name in ref:
        assert ref[name] is not None, f"{name}: torch has no gradient"
        if name.endswith("k.bias"):
            assert np.abs(ours[name]).max() < 1e-13 * scale, name
            assert float(ref[name].abs().max()) < 1e-13 * scale, name
            continue
        assert rel_err(ours[name], ref[name]) < RTOL, name


def assert_nonzero_grads(grads: dict, seq_len: int):
    """A test that compares zeros with zeros proves nothing: the gradients must carry signal.
    Exempt: the key bias (see assert_grads), and with one token (softmax over a single key is
    1 whatever the score) the query and key projections."""
    for name, g in grads.items():
        if name.endswith("k.bias") or (seq_len == 1 and any(
                part in name for part in ("q.weight", "q.bias", "k.weight"))):
            continue
        assert np.abs(g).max() > 0, name


# ---- primitives -------------------------------------------------------------------------------

def test_softmax_backward():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 4, 7)) * 3
    g = rng.standard_normal(x.shape)
    y, cache = ng.softmax_forward(x)
    dx, _ = ng.softmax_backward(cache, g)
    xt = leaf(x)
    (torch.softmax(xt, -1) * torch.from_numpy(g)).sum().backward()
    assert rel_err(y, torch.softmax(xt, -1)) < RTOL
    assert rel_err(dx, xt.grad) < RTOL


@pytest.mark.parametrize("with_residual", [False, True])
def test_layer_norm_backward(with_residual):
    rng = np.random.default_rng(1)
    x, r, g = rng.standard_normal((3, 2, 9, 6))
    w, b = 1 + 0.1 * rng.standard_normal((2, 6))
    residual = r if with_residual else None
    y, cache = ng.layer_norm_forward(x, w, b, 1e-5, residual=residual)
    dx, grads = ng.layer_norm_backward(cache, g)
    ts = {"x": leaf(x), "weight": leaf(w), "bias": leaf(b)}
    if with_residual:
        ts["r"] = leaf(r)
    out = tt.layer_norm(ts["x"], ts["weight"], ts["bias"], 1e-5, residual=ts.get("r"))
    ref = torch_grads(out, g, ts)
    assert rel_err(y, out) < RTOL
    ours = {"x": dx, **grads, **({"r": dx} if with_residual else {})}
    assert_grads(ours, ref)


@pytest.mark.parametrize("bias", [True, False])
def test_linear_backward(bias):
    rng = np.random.default_rng(2)
    x, w, b, g = rng.standard_normal((2, 3, 5)), rng.standard_normal((7, 5)), rng.standard_normal(7), None
    g = rng.standard_normal((2, 3, 7))
    y, cache = ng.linear_forward(x, w, b if bias else None)
    dx, grads = ng.linear_backward(cache, g)
    ts = {"x": leaf(x), "weight": leaf(w), **({"bias": leaf(b)} if bias else {})}
    out = tt.linear(ts["x"], ts["weight"], ts.get("bias"))
    assert rel_err(y, out) < RTOL
    assert_grads({"x": dx, **grads}, torch_grads(out, g, ts))


@pytest.mark.parametrize("name", ["relu", "gelu", "gelu_tanh"])
def test_activation_backward(name):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 11)) * 3
    x[0, :3] = [0.0, -1e-3, 5.0]                     # relu's kink and a saturated gelu value
    g = rng.standard_normal(x.shape)
    y, cache = ng.activation_forward(name, x)
    dx, _ = ng.activation_backward(cache, g)
    xt = leaf(x)
    out = getattr(tt, name)(xt)
    (out * torch.from_numpy(g)).sum().backward()
    assert rel_err(y, out) < RTOL
    assert rel_err(dx, xt.grad) < RTOL


def test_tanh_backward():
    x, g = np.random.default_rng(4).standard_normal((2, 5, 6))
    y, cache = ng.tanh_forward(x)
    dx, _ = ng.tanh_backward(cache, g)
    xt = leaf(x)
    (torch.tanh(xt) * torch.from_numpy(g)).sum().backward()
    assert rel_err(dx, xt.grad) < RTOL


# ---- attention --------------------------------------------------------------------------------

@pytest.mark.parametrize("batch,seq_len", SHAPES)
@pytest.mark.parametrize("masking", ["none", "padding", "causal", "padding+causal"])
def test_sdpa_backward(batch, seq_len, masking):
    rng = np.random.default_rng(5)
    heads, d_k = 3, 4
    q, k, v = rng.standard_normal((3, batch, heads, seq_len, d_k))
    g = rng.standard_normal((batch, heads, seq_len, d_k))
    mask = padding_mask(batch, seq_len)[:, None, None, :] if "padding" in masking else None
    causal = "causal" in masking
    out_np, cache = ng.sdpa_forward(q, k, v, mask=mask, causal=causal)
    (dq, dk, dv), _ = ng.sdpa_backward(cache, g)
    ts = {"q": leaf(q), "k": leaf(k), "v": leaf(v)}
    out = tt.scaled_dot_product_attention(ts["q"], ts["k"], ts["v"], causal=causal,
                                          mask=None if mask is None else torch.from_numpy(mask))
    assert rel_err(out_np, out) < RTOL
    assert_grads({"q": dq, "k": dk, "v": dv}, torch_grads(out, g, ts))


def test_sdpa_backward_cross_lengths_and_empty_rows():
    """Tq != Tk; a query that may attend to nothing has zero output and sends no gradient."""
    rng = np.random.default_rng(6)
    q = rng.standard_normal((1, 2, 3, 4))
    k, v = rng.standard_normal((2, 1, 2, 5, 4))
    g = rng.standard_normal((1, 2, 3, 4))
    mask = np.ones((1, 1, 3, 5), bool)
    mask[..., 1, :] = False                                    # query 1 sees no key
    _, cache = ng.sdpa_forward(q, k, v, mask=mask)
    (dq, dk, dv), _ = ng.sdpa_backward(cache, g)
    assert np.all(np.isfinite(dq)) and np.all(dq[:, :, 1] == 0)
    keep = [0, 2]                                              # the same without that query
    _, cache2 = ng.sdpa_forward(q[:, :, keep], k, v)
    (dq2, dk2, dv2), _ = ng.sdpa_backward(cache2, g[:, :, keep])
    assert rel_err(dq[:, :, keep], dq2) < RTOL
    assert rel_err(dk, dk2) < RTOL and rel_err(dv, dv2) < RTOL


def _torch_params(params):
    return P.to_torch(params, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize("batch,seq_len", SHAPES)
@pytest.mark.parametrize("padding", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_mha_self_attention_backward(batch, seq_len, padding, causal):
    cfg = cfg_for()
    params = P.init_params("mha", cfg, seed=7)
    rng = np.random.default_rng(8)
    x = rng.standard_normal((batch, seq_len, cfg.d_model))
    g = rng.standard_normal(x.shape)
    kpm = padding_mask(batch, seq_len) if padding else None
    out_np, cache = ng.mha_forward(params, x, x, cfg.n_heads, key_padding_mask=kpm, causal=causal)
    (dxq, dxkv), grads = ng.mha_backward(cache, g)
    ts = {**_torch_params(params), "x": leaf(x)}
    out = tt.multi_head_attention(ts, ts["x"], ts["x"], cfg.n_heads, causal=causal,
                                  key_padding_mask=None if kpm is None else torch.from_numpy(kpm))
    assert rel_err(out_np, out) < RTOL
    assert_grads({**grads, "x": dxq + dxkv}, torch_grads(out, g, ts))
    assert_nonzero_grads(grads, seq_len)


@pytest.mark.parametrize("padding", [False, True])
def test_mha_cross_attention_backward(padding):
    cfg = cfg_for()
    params = P.init_params("mha", cfg, seed=9)
    rng = np.random.default_rng(10)
    x_q, x_kv = rng.standard_normal((2, 3, cfg.d_model)), rng.standard_normal((2, 5, cfg.d_model))
    g = rng.standard_normal(x_q.shape)
    kpm = padding_mask(2, 5) if padding else None
    _, cache = ng.mha_forward(params, x_q, x_kv, cfg.n_heads, key_padding_mask=kpm)
    (dxq, dxkv), grads = ng.mha_backward(cache, g)
    ts = {**_torch_params(params), "x_q": leaf(x_q), "x_kv": leaf(x_kv)}
    out = tt.multi_head_attention(ts, ts["x_q"], ts["x_kv"], cfg.n_heads,
                                  key_padding_mask=None if kpm is None else torch.from_numpy(kpm))
    assert_grads({**grads, "x_q": dxq, "x_kv": dxkv}, torch_grads(out, g, ts))


# ---- feed-forward, layers, stack --------------------------------------------------------------

@pytest.mark.parametrize("activation", ["relu", "gelu", "gelu_tanh"])
@pytest.mark.parametrize("batch,seq_len", SHAPES)
def test_feed_forward_backward(activation, batch, seq_len):
    cfg = cfg_for()
    params = P.init_params("ffn", cfg, seed=11)
    rng = np.random.default_rng(12)
    x = rng.standard_normal((batch, seq_len, cfg.d_model))
    g = rng.standard_normal(x.shape)
    out_np, cache = ng.feed_forward_forward(params, x, activation)
    dx, grads = ng.feed_forward_backward(cache, g)
    ts = {**_torch_params(params), "x": leaf(x)}
    out = tt.feed_forward(ts, ts["x"], activation)
    assert rel_err(out_np, out) < RTOL
    assert_grads({**grads, "x": dx}, torch_grads(out, g, ts))


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("padding", [False, True])
@pytest.mark.parametrize("batch,seq_len", SHAPES)
@pytest.mark.parametrize("activation", ["gelu", "relu"])
def test_encoder_layer_backward(norm_first, padding, batch, seq_len, activation):
    cfg = cfg_for(norm_first=norm_first, activation=activation)
    params = P.init_params("encoder_layer", cfg, seed=13)
    rng = np.random.default_rng(14)
    x = rng.standard_normal((batch, seq_len, cfg.d_model))
    g = rng.standard_normal(x.shape)
    kpm = padding_mask(batch, seq_len) if padding else None
    out_np, cache = ng.encoder_layer_forward(params, x, cfg, key_padding_mask=kpm)
    dx, grads = ng.encoder_layer_backward(cache, g, cfg)
    ts = {**_torch_params(params), "x": leaf(x)}
    out = tt.encoder_layer(ts, ts["x"], cfg,
                           key_padding_mask=None if kpm is None else torch.from_numpy(kpm))
    assert rel_err(out_np, out) < RTOL
    assert_grads({**grads, "x": dx}, torch_grads(out, g, ts))
    assert_nonzero_grads(grads, seq_len)


@pytest.mark.parametrize("norm_first,final_norm", [(False, False), (True, True), (True, False)])
@pytest.mark.parametrize("padding", [False, True])
def test_encoder_backward(norm_first, final_norm, padding):
    cfg = cfg_for(norm_first=norm_first, final_norm=final_norm, n_layers=3, activation="gelu_tanh")
    params = P.init_params("encoder", cfg, seed=15)
    rng = np.random.default_rng(16)
    x = rng.standard_normal((3, 7, cfg.d_model))
    g = rng.standard_normal(x.shape)
    kpm = padding_mask(3, 7) if padding else None
    seen = []
    out_np, cache = ng.encoder_forward(params, x, cfg, key_padding_mask=kpm)
    dx, grads = ng.encoder_backward(cache, g, cfg, on_layer=lambda i, gi: seen.append(i))
    ts = {**_torch_params(params), "x": leaf(x)}
    out = tt.encoder(ts, ts["x"], cfg, key_padding_mask=None if kpm is None else torch.from_numpy(kpm))
    assert rel_err(out_np, out) < RTOL
    assert_grads({**grads, "x": dx}, torch_grads(out, g, ts))
    assert seen == [2, 1, 0]


# ---- BERT -------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch,seq_len", SHAPES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("loss_on", ["both", "hidden", "pooled"])
def test_bert_backward(batch, seq_len, masked, loss_on):
    cfg = cfg_for()
    params = P.init_params("bert", cfg, seed=17)
    rng = np.random.default_rng(18)
    ids = rng.integers(0, cfg.vocab_size, (batch, seq_len))
    ids[0, :2] = 5                                            # a repeated id: the scatter-add sums
    types = rng.integers(0, cfg.type_vocab_size, (batch, seq_len))
    attn = padding_mask(batch, seq_len).astype(np.int64) if masked else None
    g_hidden = rng.standard_normal((batch, seq_len, cfg.d_model)) if loss_on != "pooled" else None
    g_pooled = rng.standard_normal((batch, cfg.d_model)) if loss_on != "hidden" else None
    (hidden, pooled), cache = ng.bert_forward(params, ids, cfg, types, attn)
    none, grads = ng.bert_backward(cache, g_hidden, g_pooled, cfg)
    assert none is None
    ts = _torch_params(params)
    h_t, p_t = tt.bert(ts, torch.from_numpy(ids), cfg, torch.from_numpy(types),
                       None if attn is None else torch.from_numpy(attn))
    assert rel_err(hidden, h_t) < RTOL and rel_err(pooled, p_t) < RTOL
    loss = 0
    if g_hidden is not None:
        loss = loss + (h_t * torch.from_numpy(g_hidden)).sum()
    if g_pooled is not None:
        loss = loss + (p_t * torch.from_numpy(g_pooled)).sum()
    loss.backward()
    ref = {name: (t.grad if t.grad is not None else torch.zeros_like(t)) for name, t in ts.items()}
    assert_grads(grads, ref)
    assert np.abs(grads["embeddings.word.weight"]).max() > 0
    assert np.abs(grads["encoder.layers.0.self_attn.v.weight"]).max() > 0


# ---- GPT-2-style decoder (training form, no KV cache) ----------------------------------------

@pytest.mark.parametrize("batch,seq_len", SHAPES)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("loss_on", ["both", "logits"])
def test_gpt_backward(batch, seq_len, masked, loss_on):
    gpt_t = pytest.importorskip("tfimpl.torch.gpt")
    cfg = cfg_for(activation="gelu_tanh", norm_first=True, final_norm=True)
    params = P.init_params("gpt", cfg, seed=19)
    rng = np.random.default_rng(20)
    ids = rng.integers(0, cfg.vocab_size, (batch, seq_len))
    attn = padding_mask(batch, seq_len).astype(np.int64) if masked else None
    g_logits = rng.standard_normal((batch, seq_len, cfg.vocab_size))
    g_hidden = rng.standard_normal((batch, seq_len, cfg.d_model)) if loss_on == "both" else None
    (hidden, logits), cache = ng.gpt_forward(params, ids, cfg, attn)
    _, grads = ng.gpt_backward(cache, g_hidden, g_logits, cfg)
    ts = _torch_params(params)
    h_t, l_t, _ = gpt_t.gpt(ts, torch.from_numpy(ids), cfg,
                           attention_mask=None if attn is None else torch.from_numpy(attn))
    assert rel_err(hidden, h_t) < RTOL and rel_err(logits, l_t) < RTOL
    loss = (l_t * torch.from_numpy(g_logits)).sum()
    if g_hidden is not None:
        loss = loss + (h_t * torch.from_numpy(g_hidden)).sum()
    loss.backward()
    ref = {name: (t.grad if t.grad is not None else torch.zeros_like(t)) for name, t in ts.items()}
    assert_grads(grads, ref)
    assert np.abs(grads["layers.0.ffn.ff1.weight"]).max() > 0
