"""The least memory traffic each step of a forward must cause, and its arithmetic intensity.

A step (tfimpl.costs.components) reads its inputs and its weights and writes its outputs; done
as one kernel with perfect reuse, each of them crosses the memory bus exactly once. That is the
minimum traffic, the roofline model's denominator (Williams, Waterman & Patterson 2009):

    bytes(step)      = s·(inputs + outputs) + w·weights    (elements; s, w bytes per element)
    intensity(step)  = FLOPs(step) / bytes(step)           (FLOP per byte)
    attainable(step) = min(peak FLOP/s, intensity · bandwidth)

s is the activation width (the case's precision: 8 fp64, 4 fp32, 2 bf16), w the weights' width
(= s for a pure cast; autocast keeps 4-byte weights and 2-byte activations). A real kernel moves
more (a step that spills its tiles re-reads them; a library that copies its weights first moves
them twice) or less through DRAM (a step whose operands still sit in the last-level cache), so
an achieved GB/s above the bandwidth ceiling means cache reuse, not a model error.

Elements per step, x (B, T, D), H heads, T² meaning B·H·T·T scores, F = d_ff:

    step          inputs                  weights               outputs
    embeddings    2·B·T ids (int64, i)    B·T·D word rows       B·T·D
                                          + T·D positions + type_vocab·D + 2·D (norm)
    qkv_proj      B·T·D                   3·D² + 3·D            3·B·T·D (q, k, v)
    scores        2·B·T·D (q, k)          -                     B·H·T²
    softmax       B·H·T²                  -                     B·H·T² (in place: still a write)
    weighted_sum  B·H·T² + B·T·D (v)      -                     B·T·D
    attention_fused 3·B·T·D (q, k, v)     -                     B·T·D   (never writes the T²)
    o_proj        B·T·D                   D² + D                B·T·D
    add_norm1/2   2·B·T·D (f(x), x)       2·D (γ, β)            B·T·D
    ffn1          B·T·D                   F·D + F               B·T·F
    activation    B·T·F                   -                     B·T·F
    ffn2          B·T·F                   D·F + D               B·T·D
    pooler        B·D (first token)       D² + D                B·D

Word rows count as weights read once per lookup (the minimum when the ids are distinct);
the token ids are int64 inputs (`index_bytes` each, token-type ids included). Layer steps
of a stack are summed over its layers, as in tfimpl.costs.components. The projections' and
FFN's intensity grows with B·T up to the weights' own (~D/s FLOP per byte at large B·T); the
scores' and softmax's stays flat in T (both their FLOPs and their bytes go as T²), and the
softmax's is a constant 5 / (2·s): memory-bound at any length.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.costs._common import check_cfg, check_positive
from tfimpl.costs.components import component_flops, components, layer_count

TRAFFIC_KEYS = ("inputs", "weights", "outputs", "total")


def _elements(cfg: ModelConfig, b: int, t: int) -> dict[str, tuple[int, int, int]]:
    """(input, weight, output) elements of each layer step (one layer; see the module table)."""
    d, f = cfg.d_model, cfg.d_ff
    n, scores = b * t * d, b * cfg.n_heads * t * t
    return {"qkv_proj": (n, 3 * d * d + 3 * d, 3 * n),
            "scores": (2 * n, 0, scores),
            "softmax": (scores, 0, scores),
            "weighted_sum": (scores + n, 0, n),
            "attention_fused": (3 * n, 0, n),
            "o_proj": (n, d * d + d, n),
            "add_norm1": (2 * n, 2 * d, n),
            "ffn1": (n, f * d + f, b * t * f),
            "activation": (b * t * f, 0, b * t * f),
            "ffn2": (b * t * f, d * f + d, n),
            "add_norm2": (2 * n, 2 * d, n)}


def _traffic(inputs: int, weights: int, outputs: int) -> dict[str, int]:
    return {"inputs": inputs, "weights": weights, "outputs": outputs,
            "total": inputs + weights + outputs}


def component_bytes(block: str, cfg: ModelConfig, batch: int, seq_len: int,
                    bytes_per_element: int, attn_impl: str = "explicit",
                    weight_bytes_per_element: int | None = None,
                    index_bytes: int = 8) -> dict[str, dict[str, int]]:
    """Minimum bytes per step: {step: {"inputs", "weights", "outputs", "total"}}, in order.

    bytes_per_element: activation width; weight_bytes_per_element: the weights' (default the
    same); index_bytes: one token id (int64). Layer steps are summed over a stack's layers.
    """
    check_cfg(cfg)
    s = check_positive("bytes_per_element", bytes_per_element)
    w = s if weight_bytes_per_element is None else check_positive("weight_bytes_per_element",
                                                                  weight_bytes_per_element)
    check_positive("index_bytes", index_bytes)
    b, t = check_positive("batch", batch), check_positive("seq_len", seq_len)
    names = components(block, attn_impl)
    layers = layer_count(block, cfg)
    out = {}
    for name, (i, wt, o) in _elements(cfg, b, t).items():
        out[name] = _traffic(layers * s * i, layers * w * wt, layers * s * o)
    d = cfg.d_model
    out["embeddings"] = _traffic(2 * b * t * index_bytes,
                                 w * (b * t * d + t * d + cfg.type_vocab_size * d + 2 * d),
                                 s * b * t * d)
    out["pooler"] = _traffic(s * b * d, w * (d * d + d), s * b * d)
    return {name: out[name] for name in names}


def arithmetic_intensity(flops: int, n_bytes: int) -> float:
    """FLOPs per byte moved; a step that moves no bytes has no intensity (ValueError)."""
    if n_bytes <= 0:
        raise ValueError(f"n_bytes must be > 0 to define an intensity, got {n_bytes!r}")
    return flops / n_bytes


def component_intensity(block: str, cfg: ModelConfig, batch: int, seq_len: int,
                        bytes_per_element: int, attn_impl: str = "explicit",
                        weight_bytes_per_element: int | None = None) -> dict[str, float]:
    """FLOP/byte per step: components.component_flops over component_bytes' totals."""
    flops = component_flops(block, cfg, batch, seq_len, attn_impl)
    moved = component_bytes(block, cfg, batch, seq_len, bytes_per_element, attn_impl,
                            weight_bytes_per_element)
    return {name: arithmetic_intensity(flops[name], moved[name]["total"]) for name in flops}
