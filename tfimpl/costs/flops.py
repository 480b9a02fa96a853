"""Forward and backward FLOPs per component, matmul work and element-wise work kept apart.

Convention: a matmul of an (m, k) by a (k, n) matrix costs 2·m·n·k FLOPs (one multiply and one
add per term), the convention of `torch.utils.flop_counter` (its `mm_flop`), of Kaplan et al.
2020 and of most papers. Bias additions are NOT part of a matmul (FlopCounterMode counts
`addmm` as its `mm` alone), so they are element-wise work here too.

Forward matmul work, with x of shape (B, T, D), H heads, d_k = D/H, memory length Tk
(= T for self-attention):

    q_proj, o_proj           x @ Wᵀ, (B·T, D)·(D, D)              2·B·T·D²       each
    k_proj, v_proj           on the keys' input (B·Tk, D)         2·B·Tk·D²      each
    attn_scores              Q·Kᵀ per head, (T, d_k)·(d_k, Tk)    2·B·H·T·Tk·d_k = 2·B·T·Tk·D
    attn_weighted_sum        P·V  per head, (T, Tk)·(Tk, d_k)     2·B·H·T·Tk·d_k = 2·B·T·Tk·D
    ffn1, ffn2               (B·T, D)·(D, d_ff) and back          2·B·T·D·d_ff   each
    pooler (BERT)            first token only, (B, D)·(D, D)      2·B·D²

So one encoder layer costs 8·B·T·D² + 4·B·T·D·d_ff (linear in T) + 4·B·T²·D (quadratic in T).
The quadratic term overtakes the linear ones at 4·T²·D = 8·T·D² + 4·T·D·d_ff, i.e.
T* = 2·D + d_ff (= 6·D for d_ff = 4·D): `crossover_seq_len`.

Embedding lookups (BERT's word/position/token-type tables) gather rows: 0 matmul FLOPs.

`causal` does not change the count: the materialised path computes the full (T, T) score matrix
and then masks it, and FlopCounterMode counts the fused kernels as dense too. (An
implementation that skipped the masked half would do ~half of attn_scores/attn_weighted_sum;
none of ours does.)

Backward: every matmul Y = A·B needs dA = dY·Bᵀ and dB = Aᵀ·dY, each as costly as the forward
product, so backward matmul work is exactly 2x forward (forward+backward = 3x). This assumes
every operand needs a gradient: weights, and the block's input (measured so, x.requires_grad).
It holds for the attention core too (dQ, dK from dS; dP, dV from dO: four products).

Element-wise work (`elementwise_flops`), counted separately and never added to "matmul"; one
FLOP per arithmetic operation per element, a transcendental (exp, erf, tanh) counting as one:
    attn_scale   1 per score (the 1/√d_k multiply)          B·H·T·Tk
    softmax      5 per score: max, subtract, exp, sum, divide
    bias         1 per output element of every Linear
    residual     1 per element of each residual add         B·T·D
    layer_norm   7 per element: mean, centre, square, sum, scale by 1/σ, gain, shift
    activation   relu 1; gelu (exact) 5: x/√2, erf, +1, ·x, ·½; gelu_tanh 9: x³ (2), ·c, +x,
                 ·√(2/π), tanh, +1, ·x, ·½ — per element of the d_ff hidden
    embeddings   2 adds per element (word + position + token type), then a layer norm
    pooler       bias + tanh on (B, D)
Backward element-wise work is reported as 2x forward: a rough estimate, not a derivation.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.costs._common import (FLOP_BLOCKS, add, check_cfg, check_choice, check_positive,
                                  prefixed, scale)

MATMUL_KEYS = ("q_proj", "k_proj", "v_proj", "attn_scores", "attn_weighted_sum", "o_proj",
               "ffn1", "ffn2")
ATTENTION_KEYS = ("attn_scores", "attn_weighted_sum", "cross_attn_scores",
                  "cross_attn_weighted_sum")   # the T²-terms; everything else is linear in T

SOFTMAX_OPS = 5
LAYER_NORM_OPS = 7
ACTIVATION_OPS = {"relu": 1, "gelu": 5, "gelu_tanh": 9}


def matmul_flops(m: int, k: int, n: int) -> int:
    """(m, k) @ (k, n): m·n dot products of length k, a multiply and an add per term."""
    return 2 * m * n * k


# ---- matmul work per block ---------------------------------------------------------------

def _attention(cfg: ModelConfig, b: int, tq: int, tk: int) -> dict:
    h, dk = cfg.n_heads, cfg.d_head
    return {"attn_scores": b * h * matmul_flops(tq, dk, tk),          # (Tq,d_k)·(d_k,Tk)
            "attn_weighted_sum": b * h * matmul_flops(tq, tk, dk)}    # (Tq,Tk)·(Tk,d_k)


def _mha(cfg: ModelConfig, b: int, tq: int, tk: int) -> dict:
    d = cfg.d_model
    return {"q_proj": matmul_flops(b * tq, d, d), "k_proj": matmul_flops(b * tk, d, d),
            "v_proj": matmul_flops(b * tk, d, d), **_attention(cfg, b, tq, tk),
            "o_proj": matmul_flops(b * tq, d, d)}


def _ffn(cfg: ModelConfig, b: int, t: int) -> dict:
    return {"ffn1": matmul_flops(b * t, cfg.d_model, cfg.d_ff),
            "ffn2": matmul_flops(b * t, cfg.d_ff, cfg.d_model)}


def _matmul_parts(block: str, cfg: ModelConfig, b: int, t: int) -> dict:
    if block == "attention":
        return _attention(cfg, b, t, t)
    if block == "mha":
        return _mha(cfg, b, t, t)
    if block == "ffn":
        return _ffn(cfg, b, t)
    if block == "encoder_layer":
        return add(_mha(cfg, b, t, t), _ffn(cfg, b, t))
    if block == "encoder":
        return scale(_matmul_parts("encoder_layer", cfg, b, t), cfg.n_layers)
    if block == "model":
        return {**_matmul_parts("encoder", cfg, b, t), "pooler": matmul_flops(b, cfg.d_model,
                                                                             cfg.d_model)}
    # decoder layer: self-attention on the target, cross-attention onto a memory of length T
    layer = add(_mha(cfg, b, t, t), prefixed(_mha(cfg, b, t, t), "cross_"), _ffn(cfg, b, t))
    if block == "decoder_layer":
        return layer
    decoder = scale(layer, cfg.n_decoder_layers)
    if block == "decoder":
        return decoder
    return add(_matmul_parts("encoder", cfg, b, t), decoder)          # transformer


# ---- element-wise work per block ----------------------------------------------------------

def _ew_attention(cfg: ModelConfig, b: int, tq: int, tk: int) -> dict:
    scores = b * cfg.n_heads * tq * tk
    return {"attn_scale": scores, "softmax": SOFTMAX_OPS * scores}


def _ew_mha(cfg: ModelConfig, b: int, tq: int, tk: int) -> dict:
    d = cfg.d_model
    return {**_ew_attention(cfg, b, tq, tk), "bias": 2 * b * tq * d + 2 * b * tk * d}


def _ew_ffn(cfg: ModelConfig, b: int, t: int) -> dict:
    return {"bias": b * t * (cfg.d_ff + cfg.d_model),
            "activation": ACTIVATION_OPS[cfg.activation] * b * t * cfg.d_ff}


def _ew_sublayer_glue(cfg: ModelConfig, b: int, t: int, n_sublayers: int) -> dict:
    """Each sub-layer ends in a residual add and a layer norm."""
    n = b * t * cfg.d_model
    return {"residual": n_sublayers * n, "layer_norm": n_sublayers * LAYER_NORM_OPS * n}


def _ew_parts(block: str, cfg: ModelConfig, b: int, t: int) -> dict:
    if block == "attention":
        return _ew_attention(cfg, b, t, t)
    if block == "mha":
        return _ew_mha(cfg, b, t, t)
    if block == "ffn":
        return _ew_ffn(cfg, b, t)
    if block == "encoder_layer":
        return add(_ew_mha(cfg, b, t, t), _ew_ffn(cfg, b, t), _ew_sublayer_glue(cfg, b, t, 2))
    if block == "encoder":
        parts = scale(_ew_parts("encoder_layer", cfg, b, t), cfg.n_layers)
        final = LAYER_NORM_OPS * b * t * cfg.d_model if cfg.final_norm else 0
        return add(parts, {"layer_norm": final})
    if block == "model":
        n, d = b * t * cfg.d_model, cfg.d_model
        embeddings = {"embeddings": 2 * n + LAYER_NORM_OPS * n}
        pooler = {"pooler": 2 * b * d}                                 # bias, tanh
        return add(_ew_parts("encoder", cfg, b, t), embeddings, pooler)
    layer = add(_ew_mha(cfg, b, t, t), _ew_mha(cfg, b, t, t), _ew_ffn(cfg, b, t),
                _ew_sublayer_glue(cfg, b, t, 3))
    if block == "decoder_layer":
        return layer
    final = LAYER_NORM_OPS * b * t * cfg.d_model if cfg.final_norm else 0
    decoder = add(scale(layer, cfg.n_decoder_layers), {"layer_norm": final})
    if block == "decoder":
        return decoder
    return add(_ew_parts("encoder", cfg, b, t), decoder)               # transformer


# ---- public API ---------------------------------------------------------------------------

def _check(block, cfg, batch, seq_len):
    check_cfg(cfg)
    check_choice("block", block, FLOP_BLOCKS)
    check_positive("batch", batch)
    check_positive("seq_len", seq_len)


def elementwise_flops(block: str, cfg: ModelConfig, batch: int, seq_len: int) -> dict[str, int]:
    """Forward element-wise FLOPs by kind (see the module docstring); key "total"."""
    _check(block, cfg, batch, seq_len)
    parts = _ew_parts(block, cfg, batch, seq_len)
    return {**parts, "total": sum(parts.values())}


def forward_flops(block: str, cfg: ModelConfig, batch: int, seq_len: int,
                  causal: bool = False) -> dict[str, int]:
    """Forward FLOPs of `block` on (batch, seq_len) inputs, per component.

    Keys: the matmul components that apply (q_proj, k_proj, v_proj, attn_scores,
    attn_weighted_sum, o_proj, ffn1, ffn2; "pooler" for model; cross_* for decoders), their
    sum "matmul", "elementwise" (NOT in "matmul") and "total" (= "matmul", what
    FlopCounterMode counts). `causal` is accepted and does not change the dense count.
    """
    _check(block, cfg, batch, seq_len)
    if not isinstance(causal, bool):
        raise ValueError(f"causal must be a bool, got {causal!r}")
    parts = _matmul_parts(block, cfg, batch, seq_len)
    matmul = sum(parts.values())
    elementwise = sum(_ew_parts(block, cfg, batch, seq_len).values())
    return {**parts, "matmul": matmul, "elementwise": elementwise, "total": matmul}


def backward_flops(block: str, cfg: ModelConfig, batch: int, seq_len: int,
                   causal: bool = False) -> dict[str, int]:
    """Backward FLOPs: 2x every forward matmul component (grads of both operands), same keys."""
    forward = forward_flops(block, cfg, batch, seq_len, causal)
    return {key: 2 * value for key, value in forward.items()}


def attention_share(flops: dict) -> float:
    """Fraction of matmul work in the T²-terms (scores and weighted sum) of a forward_flops dict."""
    quadratic = sum(flops.get(key, 0) for key in ATTENTION_KEYS)
    return quadratic / flops["matmul"]


def crossover_seq_len(cfg: ModelConfig, layer: str = "encoder") -> int:
    """T where ALL of a layer's quadratic matmuls equal ALL its linear ones (projections and FFN).

    Encoder layer: 4·T²·D = 8·T·D² + 4·T·D·d_ff; divide by 4·T·D: T* = 2·D + d_ff. Batch and
    layer count cancel. Decoder layer (self + cross attention, memory length T):
    8·T²·D = 16·T·D² + 4·T·D·d_ff, T* = 2·D + d_ff/2. This answers "when is the layer mostly
    T² work?"; attention_ffn_crossover answers "when does attention cost more than the FFN?".
    """
    check_cfg(cfg)
    check_choice("layer", layer, ("encoder", "decoder"))
    return 2 * cfg.d_model + (cfg.d_ff if layer == "encoder" else cfg.d_ff // 2)


def attention_ffn_crossover(cfg: ModelConfig) -> int:
    """n where the attention core (QKᵀ and weights·V, 4·n²·D) equals the feed-forward
    (4·n·D·d_ff): n* = d_ff. The definition the report's crossover verdict uses (the bare
    attention block against the FFN block, at the same width)."""
    check_cfg(cfg)
    return cfg.d_ff
