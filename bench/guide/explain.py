"""Worked examples: each block on a tiny input, step by step, beside the PyTorch call.

Every topic draws a seeded input, computes each intermediate with plain NumPy (the formula on
the line above it), checks the steps against our function in `tfimpl.numpy`, and checks ours
against the library (`F.softmax`, `nn.LayerNorm`, `F.scaled_dot_product_attention`,
`nn.MultiheadAttention`, `nn.Linear`+`nn.GELU`, `nn.TransformerEncoderLayer`, `nn.LSTM`). Everything runs
in float64, so an honest difference is at the level of float64 rounding (~1e-16).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from bench.guide import keras_calls
from bench.guide.gradients import explain_gradients
from bench.guide.lstm import explain_lstm
from bench.guide.printer import STEPS, Printer
from tfimpl.config import ModelConfig
from tfimpl.loaders import to_torch_encoder_layer_state_dict, to_torch_mha_state_dict
from tfimpl.numpy.attention import multi_head_attention, scaled_dot_product_attention
from tfimpl.numpy.feed_forward import feed_forward
from tfimpl.numpy.layer_norm import layer_norm
from tfimpl.numpy.layers import encoder_layer as np_encoder_layer
from tfimpl.numpy.softmax import softmax as np_softmax
from tfimpl.params import param_shapes, subtree


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))


def _n(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy()


def example_params(kind: str, cfg: ModelConfig, seed: int) -> dict[str, np.ndarray]:
    """Our parameter layout (tfimpl.params.param_shapes) with values sized for a worked example.

    A linear's weight ~ N(0, 1/d_in) keeps activations O(1), so attention patterns are visibly
    uneven (BERT's N(0, 0.02²) init would make every weight ≈ 1/T); biases ~ N(0, 0.1²);
    layer-norm gains ~ 1 + N(0, 0.1²).
    """
    rng = np.random.default_rng(seed)
    params = {}
    for name, shape in param_shapes(kind, cfg).items():
        if name.endswith(".weight") and len(shape) == 2:
            params[name] = rng.normal(size=shape) / math.sqrt(shape[1])
        elif name.endswith(".weight"):
            params[name] = 1.0 + 0.1 * rng.normal(size=shape)
        else:
            params[name] = 0.1 * rng.normal(size=shape)
    return params


# ---------------------------------------------------------------------------------- softmax
def softmax(pr: Printer, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pr.header("softmax: turn a row of scores into weights that are positive and sum to 1",
              "softmax(x)_j = exp(x_j - m) / Σ_k exp(x_k - m),   m = max_k x_k",
              "(subtracting m changes nothing mathematically and keeps exp from overflowing)")
    x = np.round(rng.normal(0.0, 2.0, size=(2, 5)), 2)
    x[1] += 1000.0                                      # a row that overflows a naive exp
    pr.step("x: two rows of 5 scores (row 1 shifted by +1000)", x)
    m = pr.step("m = max_j x_ij", x.max(axis=-1, keepdims=True))
    z = pr.step("z = x - m   (largest entry of each row becomes 0)", x - m)
    e = pr.step("e = exp(z)   (all in (0, 1], no overflow)", np.exp(z))
    s = pr.step("s = Σ_j e_ij", e.sum(axis=-1, keepdims=True))
    p = pr.step("p = e / s", e / s)
    pr.step("Σ_j p_ij   (each row sums to 1)", p.sum(axis=-1))
    with np.errstate(over="ignore", invalid="ignore"):
        naive = np.exp(x) / np.exp(x).sum(axis=-1, keepdims=True)
    pr.step("for contrast, naive exp(x) / Σ exp(x) without subtracting m", naive,
            note="exp(1000) overflows to inf and inf/inf = nan: why every library subtracts m")
    pr.section("check")
    pr.check("steps vs tfimpl.numpy.softmax.softmax", p, np_softmax(x, axis=-1),
             what=STEPS)
    pr.check("tfimpl.numpy softmax vs torch.nn.functional.softmax(x, dim=-1)",
             np_softmax(x, axis=-1), _n(F.softmax(_t(x), dim=-1)))


# -------------------------------------------------------------------------------- layernorm
def layernorm(pr: Printer, seed: int) -> None:
    rng = np.random.default_rng(seed)
    eps = 1e-5
    pr.header("layer norm: normalise each token's vector, then scale and shift it",
              "y = γ ⊙ (x - μ) / √(σ² + ε) + β,   μ, σ² over the last axis (σ² biased, /D)",
              f"3 tokens, D = 6, ε = {eps:g}")
    x = pr.step("x: 3 tokens × D=6", rng.normal(2.0, 3.0, size=(3, 6)))
    gamma = pr.step("γ (weight, learned)", rng.normal(1.0, 0.1, size=6))
    beta = pr.step("β (bias, learned)", rng.normal(0.0, 0.1, size=6))
    mu = pr.step("μ = mean_j x_ij", x.mean(axis=-1, keepdims=True))
    var = pr.step("σ² = mean_j (x_ij - μ_i)²", ((x - mu) ** 2).mean(axis=-1, keepdims=True))
    xhat = pr.step("x̂ = (x - μ) / √(σ² + ε)", (x - mu) / np.sqrt(var + eps))
    pr.step("each row of x̂ now has mean 0 and variance 1 (mean, var per row)",
            np.stack([xhat.mean(axis=-1), xhat.var(axis=-1)], axis=-1))
    y = pr.step("y = γ ⊙ x̂ + β", gamma * xhat + beta)
    ours = layer_norm(x, gamma, beta, eps=eps)
    ln = torch.nn.LayerNorm(6, eps=eps, dtype=torch.float64)
    with torch.no_grad():
        ln.weight.copy_(_t(gamma))
        ln.bias.copy_(_t(beta))
        ref = _n(ln(_t(x)))
    pr.section("check")
    pr.check("steps vs tfimpl.numpy.layer_norm.layer_norm", y, ours, what=STEPS)
    pr.check("tfimpl.numpy layer_norm vs torch.nn.LayerNorm(6, eps=1e-5)", ours, ref)


# -------------------------------------------------------------------------------- attention
def attention(pr: Printer, seed: int) -> None:
    rng = np.random.default_rng(seed)
    T, d = 4, 8
    pr.header(f"attention: one head on {T} tokens, d_model = d_k = {d}",
              "Attention(Q, K, V) = softmax(Q·Kᵀ / √d_k) · V     (Vaswani et al. 2017, eq. 1)",
              "Q = X·W_Q, K = X·W_K, V = X·W_V: each token asks (Q), advertises (K), carries (V)")
    X = pr.step(f"X: {T} token vectors, one per row", rng.normal(size=(T, d)))
    W_Q = pr.step("W_Q (d_model × d_k), learned", rng.normal(size=(d, d)) / math.sqrt(d))
    W_K = rng.normal(size=(d, d)) / math.sqrt(d)
    W_V = rng.normal(size=(d, d)) / math.sqrt(d)
    pr.line("    (W_K and W_V are drawn the same way; not printed)")
    Q = pr.step(f"Q = X·W_Q   ({T}×{d})·({d}×{d})", X @ W_Q)
    K = pr.step(f"K = X·W_K   ({T}×{d})·({d}×{d})", X @ W_K)
    V = pr.step(f"V = X·W_V   ({T}×{d})·({d}×{d})", X @ W_V)
    S = pr.step(f"scores = Q·Kᵀ / √d_k   ({T}×{d})·({d}×{T}), √{d} = {math.sqrt(d):.3f}",
                Q @ K.T / math.sqrt(d), note="row i: how well token i's query matches each key")
    A = pr.step("A = softmax(scores) along each row", np_softmax(S, axis=-1),
                note="row i is a probability distribution over the tokens that token i reads")
    pr.step("Σ_j A_ij", A.sum(axis=-1))
    out = pr.step(f"output = A·V   ({T}×{T})·({T}×{d})", A @ V,
                  note="row i is a weighted average of the rows of V, weights from row i of A")

    pr.section("causal (decoder) variant: token i may only look at tokens j ≤ i")
    causal_scores = np.where(np.tril(np.ones((T, T), dtype=bool)), S, -np.inf)
    pr.step("scores with j > i set to -inf", causal_scores)
    A_c = pr.step("A = softmax(masked scores): zeros above the diagonal",
                  np_softmax(causal_scores, axis=-1))
    out_c = A_c @ V

    q, k, v = (a[None, None] for a in (Q, K, V))                   # (1, 1, T, d_k)
    ours, weights = scaled_dot_product_attention(q, k, v, return_weights=True)
    ours_c = scaled_dot_product_attention(q, k, v, causal=True)
    ref = _n(F.scaled_dot_product_attention(_t(q), _t(k), _t(v)))
    ref_c = _n(F.scaled_dot_product_attention(_t(q), _t(k), _t(v), is_causal=True))
    pr.section("check")
    pr.check("steps vs tfimpl.numpy.attention.scaled_dot_product_attention (output)",
             out, ours[0, 0], what=STEPS)
    pr.check("steps vs ours (weights A)", A, weights[0, 0], what=STEPS)
    pr.check("ours vs torch.nn.functional.scaled_dot_product_attention(q, k, v)", ours, ref)
    pr.check("ours vs F.scaled_dot_product_attention(..., is_causal=True)", ours_c, ref_c)
    pr.check("steps (causal) vs the same library call", out_c, ref_c[0, 0],
             what="steps - library")
    keras_calls.attention(pr, q, k, v, ours, ours_c)


# -------------------------------------------------------------------------------------- mha
def _torch_mha(p: dict, d_model: int, n_heads: int) -> torch.nn.MultiheadAttention:
    """nn.MultiheadAttention with our weights: it packs W_Q, W_K, W_V into one in_proj_weight."""
    mha = torch.nn.MultiheadAttention(d_model, n_heads, batch_first=True, dtype=torch.float64)
    mha.load_state_dict(to_torch_mha_state_dict(p))
    return mha.eval()


def mha(pr: Printer, seed: int) -> None:
    T, D, H = 4, 8, 4
    d_k = D // H
    cfg = ModelConfig(d_model=D, n_heads=H, d_ff=4 * D, n_layers=1)
    p = example_params("mha", cfg, seed=seed)
    X = np.random.default_rng(seed + 1).normal(size=(T, D))
    pr.header(f"multi-head attention: {H} heads on {T} tokens, d_model = {D}, d_k = D/H = {d_k}",
              "MHA(X) = Concat(head_1, ..., head_H)·W_Oᵀ + b_O,  head_h = Attention(Q_h, K_h, V_h)",
              "one D×D projection each for Q, K, V, then the D columns are cut into H slices of d_k")
    pr.step(f"X: {T} tokens × D={D}", X)
    Q = pr.step("Q = X·W_Qᵀ + b_Q   (torch Linear convention: weight is (out, in))",
                X @ p["q.weight"].T + p["q.bias"])
    K = X @ p["k.weight"].T + p["k.bias"]
    V = X @ p["v.weight"].T + p["v.bias"]
    pr.line("    (K and V likewise)")
    split = lambda a: a.reshape(T, H, d_k).transpose(1, 0, 2)        # (T, D) -> (H, T, d_k)
    Qh = pr.step(f"split heads: Q (T, D) -> (T, H, d_k) -> (H, T, d_k); head h = columns "
                 f"[{d_k}h, {d_k}h+{d_k})", split(Q), slice_name="head")
    Kh, Vh = split(K), split(V)
    S = pr.step(f"scores_h = Q_h·K_hᵀ / √d_k   per head ({T}×{d_k})·({d_k}×{T}), √{d_k} = "
                f"{math.sqrt(d_k):.3f}",
                Qh @ Kh.transpose(0, 2, 1) / math.sqrt(d_k), slice_name="head")
    A = pr.step("A_h = softmax(scores_h) row-wise: each head has its own pattern",
                np_softmax(S, axis=-1), slice_name="head")
    O = pr.step(f"head_h = A_h·V_h   per head ({T}×{T})·({T}×{d_k})", A @ Vh, slice_name="head")
    C = pr.step("concat heads: (H, T, d_k) -> (T, H, d_k) -> (T, D)",
                O.transpose(1, 0, 2).reshape(T, D))
    out = pr.step(f"output = concat·W_Oᵀ + b_O   ({T}×{D})·({D}×{D})",
                  C @ p["o.weight"].T + p["o.bias"])

    ours, weights = multi_head_attention(p, X[None], X[None], H, return_weights=True)
    ref, ref_w = _torch_mha(p, D, H)(_t(X[None]), _t(X[None]), _t(X[None]), need_weights=True,
                                      average_attn_weights=False)
    pr.section("check")
    pr.check("steps vs tfimpl.numpy.attention.multi_head_attention", out, ours[0], what=STEPS)
    pr.check("steps vs ours (per-head weights)", A, weights[0], what=STEPS)
    pr.line("    library: torch.nn.MultiheadAttention(8, 4, batch_first=True) with in_proj_weight = "
            "[W_Q; W_K; W_V]")
    pr.check("ours vs nn.MultiheadAttention (output)", ours, _n(ref))
    pr.check("ours vs nn.MultiheadAttention (weights, average_attn_weights=False)",
             weights, _n(ref_w))
    keras_calls.mha(pr, p, X[None], H, ours, weights)


# -------------------------------------------------------------------------------------- ffn
def ffn(pr: Printer, seed: int) -> None:
    T, D, D_ff = 3, 4, 16
    cfg = ModelConfig(d_model=D, n_heads=1, d_ff=D_ff, n_layers=1)
    p = example_params("ffn", cfg, seed=seed)
    X = np.random.default_rng(seed + 1).normal(size=(T, D))
    pr.header(f"position-wise feed-forward: {T} tokens, d_model = {D}, d_ff = 4·d_model = {D_ff}",
              "FFN(x) = GELU(x·W_1ᵀ + b_1)·W_2ᵀ + b_2   (the paper uses ReLU; BERT uses GELU)",
              "GELU(h) = h·Φ(h) = ½·h·(1 + erf(h/√2)); the same weights act on every token alone")
    pr.step(f"X: {T} tokens × D={D}", X)
    h = pr.step(f"h = X·W_1ᵀ + b_1   (expand D={D} -> d_ff={D_ff})",
                X @ p["ff1.weight"].T + p["ff1.bias"])
    phi = np.array([0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in h.ravel()]).reshape(h.shape)
    pr.step("Φ(h) = ½(1 + erf(h/√2)): how much of h passes (≈0 for h ≪ 0, ≈1 for h ≫ 0)", phi)
    a = pr.step("a = GELU(h) = h·Φ(h)", h * phi)
    y = pr.step(f"y = a·W_2ᵀ + b_2   (project back d_ff={D_ff} -> D={D})",
                a @ p["ff2.weight"].T + p["ff2.bias"])
    ours = feed_forward(p, X[None], activation="gelu")[0]
    lib = torch.nn.Sequential(torch.nn.Linear(D, D_ff, dtype=torch.float64), torch.nn.GELU(),
                              torch.nn.Linear(D_ff, D, dtype=torch.float64))
    with torch.no_grad():
        for layer, name in ((lib[0], "ff1"), (lib[2], "ff2")):
            layer.weight.copy_(_t(p[f"{name}.weight"]))
            layer.bias.copy_(_t(p[f"{name}.bias"]))
        ref = _n(lib(_t(X)))
    alone = feed_forward(p, X[None, 1:2], activation="gelu")[0, 0]
    pr.section("check")
    pr.check("steps vs tfimpl.numpy.feed_forward.feed_forward", y, ours, what=STEPS)
    pr.check("ours vs nn.Sequential(nn.Linear(4, 16), nn.GELU(), nn.Linear(16, 4))", ours, ref)
    pr.check("position-wise: token 1 fed alone gives row 1 again", alone, ours[1],
             what="alone - in batch")
    keras_calls.ffn(pr, p, X[None], ours[None])


# ---------------------------------------------------------------------------- encoder_layer
def _torch_encoder_layer(p: dict, cfg: ModelConfig) -> torch.nn.TransformerEncoderLayer:
    layer = torch.nn.TransformerEncoderLayer(
        cfg.d_model, cfg.n_heads, dim_feedforward=cfg.d_ff, dropout=0.0, activation=cfg.activation,
        layer_norm_eps=cfg.layer_norm_eps, batch_first=True, norm_first=cfg.norm_first,
        dtype=torch.float64)
    layer.load_state_dict(to_torch_encoder_layer_state_dict(p))
    return layer.eval()


def encoder_layer(pr: Printer, seed: int) -> None:
    T, D, H, D_ff = 4, 8, 2, 16
    cfg = ModelConfig(d_model=D, n_heads=H, d_ff=D_ff, n_layers=1, layer_norm_eps=1e-5)
    p = example_params("encoder_layer", cfg, seed=seed)
    X = np.random.default_rng(seed + 1).normal(size=(T, D))
    pr.header(f"encoder layer (post-norm, as in the paper and BERT): {T} tokens, D = {D}, "
              f"H = {H}, d_ff = {D_ff}",
              "h = LayerNorm_1(X + MHA(X)),   out = LayerNorm_2(h + FFN(h))",
              "each sub-layer adds to the residual stream, then the sum is normalised")
    pr.step(f"X: {T} tokens × D={D}", X)
    attn = pr.step(f"a = MHA(X)   ({H} heads of d_k = {D // H}; see `explain mha`)",
                   multi_head_attention(subtree(p, "self_attn."), X[None], X[None],
                                                     H)[0])
    r1 = pr.step("r1 = X + a   (residual connection)", X + attn)
    h = pr.step("h = LayerNorm_1(r1)   (see `explain layernorm`)",
                layer_norm(r1, p["norm1.weight"], p["norm1.bias"],
                                         eps=cfg.layer_norm_eps))
    f = pr.step(f"f = FFN(h) = GELU(h·W_1ᵀ + b_1)·W_2ᵀ + b_2   ({D} -> {D_ff} -> {D})",
                feed_forward(subtree(p, "ffn."), h[None], activation=cfg.activation)[0])
    r2 = pr.step("r2 = h + f   (residual connection)", h + f)
    out = pr.step("out = LayerNorm_2(r2)",
                  layer_norm(r2, p["norm2.weight"], p["norm2.bias"],
                                           eps=cfg.layer_norm_eps))
    ours = np_encoder_layer(p, X[None], cfg)[0]
    with torch.no_grad():
        ref = _n(_torch_encoder_layer(p, cfg)(_t(X[None])))[0]
    pr.section("check")
    pr.check("steps vs tfimpl.numpy.layers.encoder_layer", out, ours, what=STEPS)
    pr.line(f"    library: torch.nn.TransformerEncoderLayer({D}, {H}, dim_feedforward={D_ff}, "
            "dropout=0.0, activation='gelu', batch_first=True)")
    pr.check("ours vs nn.TransformerEncoderLayer", ours, ref)
    keras_calls.encoder_layer(pr, p, X[None], cfg, ours[None])


TOPICS: dict[str, tuple[str, Callable[[Printer, int], None]]] = {
    "softmax": ("softmax of a row of scores, with the max-subtraction trick", softmax),
    "layernorm": ("layer norm: mean, variance, normalise, scale and shift", layernorm),
    "attention": ("one attention head on 4 tokens, d=8, plus the causal mask", attention),
    "mha": ("4-head attention: split d_model into heads and merge back", mha),
    "ffn": ("position-wise feed-forward with GELU", ffn),
    "encoder_layer": ("a whole post-norm encoder layer: attention, residuals, norms, FFN",
                      encoder_layer),
    "gradients": ("gradient norms per layer: residual vs none, post- vs pre-norm, at init",
                  explain_gradients),
    "lstm": ("one LSTM cell over 3 tokens: gates, cell update, output, beside nn.LSTM",
             explain_lstm),
}


def explain(topic: str, pr: Printer, seed: int = 0) -> float:
    """Print one topic; return its largest |ours - library| difference."""
    if topic not in TOPICS:
        raise ValueError(f"unknown topic {topic!r}; choose from: {', '.join(TOPICS)}")
    before = len(pr.checks)
    TOPICS[topic][1](pr, seed)
    return max((d for _, d in pr.checks[before:]), default=0.0)
