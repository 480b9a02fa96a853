"""Forward FLOPs per *step* of a forward pass, the steps a profiler can time one by one.

`tfimpl.costs.flops` splits the work by kind (matmul apart from element-wise, all biases
together). A profile needs it split by step, as the guide walks through `model(input_ids)`:
embeddings, the q/k/v projections, the scores, the softmax, the weighted sum, the output
projection, Add & Norm, ffn1, the activation, ffn2, Add & Norm, the pooler. Each step gets its
matmul FLOPs (`flops.matmul_flops`, 2·m·n·k) plus the element-wise FLOPs the same operation
does, with flops.py's op counts (SOFTMAX_OPS, LAYER_NORM_OPS, ACTIVATION_OPS) and nothing new:

    embeddings     2 adds + a layer norm per element            (2 + LN)·B·T·D
    qkv_proj       q_proj + k_proj + v_proj + 3 biases          3·2·B·T·D² + 3·B·T·D
    scores         attn_scores + attn_scale (1 per score)       2·B·T²·D + B·H·T²
    softmax        SOFTMAX_OPS per score                        5·B·H·T²
    weighted_sum   attn_weighted_sum                            2·B·T²·D
    attention_fused  (attn_impl="sdpa": one kernel does the three above) their sum
    o_proj         o_proj + its bias                            2·B·T·D² + B·T·D
    add_norm1/2    residual add + layer norm                    (1 + LN)·B·T·D
    ffn1           ffn1 + its bias                              2·B·T·D·d_ff + B·T·d_ff
    activation     ACTIVATION_OPS[act] per hidden element       a·B·T·d_ff
    ffn2           ffn2 + its bias                              2·B·T·d_ff·D + B·T·D
    pooler         first token: 2·B·D² + bias + tanh            2·B·D² + 2·B·D

So the steps of a block add up to exactly forward_flops(...)["matmul"] +
elementwise_flops(...)["total"] (the tests check it for every block). Stacks (encoder, model)
report each layer step summed over the layers. Post-norm layers only (BERT's order); a
pre-norm layer has the same steps, the norms before the sub-layers.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.costs._common import check_cfg, check_choice, check_positive
from tfimpl.costs.flops import (ACTIVATION_OPS, LAYER_NORM_OPS, SOFTMAX_OPS, forward_flops)

PROFILE_BLOCKS = ("attention", "mha", "ffn", "encoder_layer", "encoder", "model")
PROFILE_ATTN_IMPLS = ("explicit", "sdpa")

COMPONENT_LABELS = {
    "embeddings": "embeddings (lookup + add + norm)",
    "qkv_proj": "q/k/v projections",
    "scores": "scores Q·Kᵀ/√d_k",
    "softmax": "softmax",
    "weighted_sum": "weighted sum P·V",
    "attention_fused": "attention (fused sdpa kernel)",
    "o_proj": "output projection",
    "add_norm1": "Add & Norm (attention)",
    "ffn1": "ffn1 (D -> d_ff)",
    "activation": "activation",
    "ffn2": "ffn2 (d_ff -> D)",
    "add_norm2": "Add & Norm (ffn)",
    "pooler": "pooler",
}
ATTENTION_CORE = ("scores", "softmax", "weighted_sum")


def components(block: str, attn_impl: str = "explicit") -> tuple[str, ...]:
    """The steps of `block` in execution order (each layer step once, even for stacks)."""
    check_choice("block", block, PROFILE_BLOCKS)
    check_choice("attn_impl", attn_impl, PROFILE_ATTN_IMPLS)
    core = ATTENTION_CORE if attn_impl == "explicit" else ("attention_fused",)
    if block == "attention":
        return core
    mha = ("qkv_proj", *core, "o_proj")
    if block == "mha":
        return mha
    ffn = ("ffn1", "activation", "ffn2")
    if block == "ffn":
        return ffn
    layer = (*mha, "add_norm1", *ffn, "add_norm2")
    if block in ("encoder_layer", "encoder"):
        return layer
    return ("embeddings", *layer, "pooler")


def layer_count(block: str, cfg: ModelConfig) -> int:
    """How many times each layer step runs in one forward of `block`."""
    return cfg.n_layers if block in ("encoder", "model") else 1


def _layer_steps(cfg: ModelConfig, b: int, t: int) -> dict[str, int]:
    """FLOPs of one encoder layer's steps (forward_flops of its parts + the element-wise ops)."""
    f = forward_flops("encoder_layer", cfg, b, t)
    n, hidden, scores = b * t * cfg.d_model, b * t * cfg.d_ff, b * cfg.n_heads * t * t
    glue = n + LAYER_NORM_OPS * n                                     # residual + layer norm
    return {"qkv_proj": f["q_proj"] + f["k_proj"] + f["v_proj"] + 3 * n,
            "scores": f["attn_scores"] + scores,
            "softmax": SOFTMAX_OPS * scores,
            "weighted_sum": f["attn_weighted_sum"],
            "o_proj": f["o_proj"] + n,
            "add_norm1": glue,
            "ffn1": f["ffn1"] + hidden,
            "activation": ACTIVATION_OPS[cfg.activation] * hidden,
            "ffn2": f["ffn2"] + n,
            "add_norm2": glue}


def component_flops(block: str, cfg: ModelConfig, batch: int, seq_len: int,
                    attn_impl: str = "explicit") -> dict[str, int]:
    """Forward FLOPs per step of `block`, in execution order; layer steps summed over layers.

    attn_impl="sdpa" merges scores, softmax and weighted sum into "attention_fused".
    """
    check_cfg(cfg)
    check_positive("batch", batch)
    check_positive("seq_len", seq_len)
    names = components(block, attn_impl)
    steps = {k: layer_count(block, cfg) * v for k, v in _layer_steps(cfg, batch, seq_len).items()}
    if block == "model":
        n = batch * seq_len * cfg.d_model
        steps["embeddings"] = 2 * n + LAYER_NORM_OPS * n
        steps["pooler"] = forward_flops("model", cfg, batch, seq_len)["pooler"] + 2 * batch * cfg.d_model
    steps["attention_fused"] = sum(steps[k] for k in ATTENTION_CORE)
    return {name: steps[name] for name in names}
