"""Autoregressive inference on a GPT-2-style decoder: prefill, decode steps, the KV cache.

A decoder-only model (tfimpl.*.gpt) with L blocks of width D, H heads, feed-forward d_ff,
vocabulary V. A call runs T_q new tokens whose queries attend over T_k keys (the cached n plus
the new ones, T_k = n + T_q), the last T_q of them aligned with the queries (causal_offset n).
Per block, with flops.matmul_flops' 2·m·n·k convention:

    q/k/v/o projections   4 · 2·B·T_q·D²
    attn_scores (Q·Kᵀ)    2·B·P·D        P = query-key pairs computed (H·d_k = D)
    attn_weighted_sum     2·B·P·D
    ffn1, ffn2            2 · 2·B·T_q·D·d_ff
and once: lm_head (tied, hidden · wordᵀ) 2·B·R·D·V for R rows of logits (1 per sequence for
the next token; T_q when every position's logits are wanted); embeddings are lookups (0 matmul).

Two counts of P, labelled wherever they appear:
    "dense"   P = T_q·T_k: what tfimpl computes (the whole score matrix, then masked) and what
              FlopCounterMode counts for the fused kernels.
    "causal"  P = Σ_i (n + i + 1) = T_q·n + T_q·(T_q + 1)/2: only the pairs a query may see,
              the "useful" work Kaplan et al. 2020 and FlashAttention count (≈ half of dense
              for a prefill, n = 0).

The three cases the harness measures:
    prefill(T)            T_q = T, n = 0, logits of the last token only; dense:
                          L·(8·B·T·D² + 4·B·T·D·d_ff + 4·B·T²·D) + 2·B·D·V   -- quadratic in T
    decode step at n      T_q = 1, T_k = n + 1 (cached n, itself): dense = causal,
                          L·(8·B·D² + 4·B·D·d_ff + 4·B·(n + 1)·D) + 2·B·D·V   -- linear in n
    decode-recompute at n the same token with no cache: prefill(n + 1), quadratic in n.

Element-wise work (flops.py's op counts, kept apart as there): 1 scale + SOFTMAX_OPS per score,
biases of the six Linears, 2 residual adds, 2 + 1 layer norms (the final LN_f), the activation
per hidden element, and 1 add per element for word + position embeddings.

KV cache (both keys and values, every layer, every cached token):
    kv_cache_bytes(n) = 2 · L · B · n · D · s              s = bytes per element
gpt2 (L=12, D=768) in fp32 at n = 1,024: 75,497,472 bytes (72 MiB) per sequence.

Bytes one decode step must move at least (each once; caches help only if everything fits):
    weights   every block's weights, LN_f and the whole token table (the tied LM head reads all
              V·D of it; the lookup's one row is among them) + B position rows: w bytes each
    kv_read   the n cached keys and values: 2·L·B·n·D·s
    kv_write  the new token's key and value: 2·L·B·D·s
    logits    the B·V logits written: B·V·s
At batch 1 the weights dominate until 2·L·D·n ≈ N + V·D (n ≈ 6,700 for gpt2): a decode step is
memory-bound, its floor time = bytes / bandwidth (decode_time_floor_s), while prefill's
T-fold reuse of every weight makes it compute-bound.

Per-token rules of thumb, N = non-embedding parameters (Kaplan's; LM head and embeddings out):
    Kaplan et al. 2020, Table 1   forward 2N + 2·L·n_ctx·D     (the Q·Kᵀ "mask" term once; the
                                  weighted sum not counted; the de-embedding 2·D·V left out)
                                  training 6N
    PaLM (Chowdhery et al. 2022, App. B)  training 6N + 12·L·H·Q·T  (Q = d_head, T = sequence
                                  length: both T² products dense, x3 for backward); forward
                                  2N + 4·L·H·Q·T.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.costs._common import check_cfg, check_choice, check_positive
from tfimpl.costs.flops import (ACTIVATION_OPS, LAYER_NORM_OPS, SOFTMAX_OPS, matmul_flops)
from tfimpl.costs.params import non_embedding_params, param_counts

COUNTS = ("dense", "causal")
GPT_KEYS = ("q_proj", "k_proj", "v_proj", "attn_scores", "attn_weighted_sum", "o_proj",
            "ffn1", "ffn2", "lm_head")


def attention_pairs(new_tokens: int, context: int, count: str = "dense") -> int:
    """Query-key pairs one sequence's T_q new queries score against n cached + T_q keys."""
    check_choice("count", count, COUNTS)
    keys = context + new_tokens
    if count == "dense":
        return new_tokens * keys
    return new_tokens * context + new_tokens * (new_tokens + 1) // 2


def _check(cfg, batch, new_tokens, context):
    check_cfg(cfg)
    check_positive("batch", batch)
    check_positive("new_tokens", new_tokens)
    if not isinstance(context, int) or isinstance(context, bool) or context < 0:
        raise ValueError(f"context must be a non-negative int, got {context!r}")


def _matmul(cfg: ModelConfig, b: int, tq: int, pairs: int, logit_rows: int) -> dict:
    d, layers = cfg.d_model, cfg.n_layers
    proj = layers * matmul_flops(b * tq, d, d)
    parts = {"q_proj": proj, "k_proj": proj, "v_proj": proj,
             "attn_scores": layers * 2 * b * pairs * d,                # Σ over pairs of 2·d_k, x H
             "attn_weighted_sum": layers * 2 * b * pairs * d,
             "o_proj": proj,
             "ffn1": layers * matmul_flops(b * tq, d, cfg.d_ff),
             "ffn2": layers * matmul_flops(b * tq, cfg.d_ff, d),
             "lm_head": matmul_flops(b * logit_rows, d, cfg.vocab_size)}
    return parts


def _elementwise(cfg: ModelConfig, b: int, tq: int, pairs: int) -> int:
    d, f, layers = cfg.d_model, cfg.d_ff, cfg.n_layers
    n = b * tq * d
    scores = b * cfg.n_heads * pairs
    per_layer = ((1 + SOFTMAX_OPS) * scores                           # scale, softmax
                 + 4 * n + b * tq * (f + d)                            # biases: q,k,v,o; ffn1, ffn2
                 + ACTIVATION_OPS[cfg.activation] * b * tq * f
                 + 2 * n + 2 * LAYER_NORM_OPS * n)                     # residuals, LN_1, LN_2
    return layers * per_layer + LAYER_NORM_OPS * n + n                 # LN_f; word + position


def step_flops(cfg: ModelConfig, batch: int, new_tokens: int, context: int = 0,
               count: str = "dense", logits: str = "last") -> dict[str, int]:
    """FLOPs of one call: `new_tokens` tokens after `context` cached ones (see the docstring).

    Keys: GPT_KEYS (summed over layers), "matmul" (their sum), "elementwise" (apart, not in
    "matmul"), "total" (= "matmul"). count "dense" | "causal"; logits "last" (one row per
    sequence) | "all" (every new token's).
    """
    _check(cfg, batch, new_tokens, context)
    check_choice("logits", logits, ("last", "all"))
    pairs = attention_pairs(new_tokens, context, count)
    parts = _matmul(cfg, batch, new_tokens, pairs, 1 if logits == "last" else new_tokens)
    matmul = sum(parts.values())
    return {**parts, "matmul": matmul, "elementwise": _elementwise(cfg, batch, new_tokens, pairs),
            "total": matmul}


def prefill_flops(cfg: ModelConfig, batch: int, prompt_len: int, count: str = "dense",
                  logits: str = "last") -> dict[str, int]:
    """The prompt through the model once (empty cache): quadratic in prompt_len."""
    return step_flops(cfg, batch, prompt_len, 0, count, logits)


def decode_flops(cfg: ModelConfig, batch: int, context: int, count: str = "dense") -> dict[str, int]:
    """One new token against a cache of `context` tokens: linear in context (dense = causal)."""
    return step_flops(cfg, batch, 1, context, count, "last")


def decode_recompute_flops(cfg: ModelConfig, batch: int, context: int,
                           count: str = "dense") -> dict[str, int]:
    """The same token without a cache: the whole prefix of context + 1 tokens again."""
    return step_flops(cfg, batch, context + 1, 0, count, "last")


def kv_cache_bytes(cfg: ModelConfig, batch: int, context: int, bytes_per_element: int) -> int:
    """Keys and values of `context` tokens in every layer: 2·L·B·n·D·s."""
    check_cfg(cfg)
    check_positive("bytes_per_element", bytes_per_element)
    return 2 * cfg.n_layers * batch * context * cfg.d_model * bytes_per_element


def decode_weight_elements(cfg: ModelConfig, batch: int) -> int:
    """Weights one decode step reads: blocks + LN_f + the whole (tied) token table + B
    position rows (the position table's other rows are not touched)."""
    counts = param_counts("gpt", cfg)
    return counts["blocks"] + counts["final_norm"] + counts["embeddings.word"] + batch * cfg.d_model


def decode_bytes(cfg: ModelConfig, batch: int, context: int, bytes_per_element: int,
                 weight_bytes: int | None = None) -> dict[str, int]:
    """The least traffic of one decode step: weights, kv_read, kv_write, logits, total."""
    _check(cfg, batch, 1, context)
    w = bytes_per_element if weight_bytes is None else weight_bytes
    out = {"weights": decode_weight_elements(cfg, batch) * w,
           "kv_read": kv_cache_bytes(cfg, batch, context, bytes_per_element),
           "kv_write": kv_cache_bytes(cfg, batch, 1, bytes_per_element),
           "logits": batch * cfg.vocab_size * bytes_per_element}
    out["total"] = sum(out.values())
    return out


def decode_time_floor_s(cfg: ModelConfig, batch: int, context: int, bytes_per_element: int,
                        bandwidth_bytes_per_s: float, weight_bytes: int | None = None) -> float:
    """decode_bytes(...)["total"] / bandwidth: no decode step can be faster on that machine."""
    if not bandwidth_bytes_per_s > 0:
        raise ValueError(f"bandwidth_bytes_per_s must be > 0, got {bandwidth_bytes_per_s!r}")
    return decode_bytes(cfg, batch, context, bytes_per_element, weight_bytes)["total"] / bandwidth_bytes_per_s


def rules_of_thumb(cfg: ModelConfig, seq_len: int) -> dict[str, int]:
    """Per-token FLOPs by the published formulas (module docstring): kaplan_forward =
    2N + 2·L·n_ctx·D, kaplan_train = 6N, palm_forward = 2N + 4·L·H·Q·T, palm_train =
    6N + 12·L·H·Q·T, with N = non-embedding parameters and n_ctx = T = seq_len."""
    check_cfg(cfg)
    check_positive("seq_len", seq_len)
    n = non_embedding_params("gpt", cfg)
    lhqt = cfg.n_layers * cfg.n_heads * cfg.d_head * seq_len
    return {"N": n, "kaplan_forward": 2 * n + 2 * cfg.n_layers * seq_len * cfg.d_model,
            "kaplan_train": 6 * n, "palm_forward": 2 * n + 4 * lhqt, "palm_train": 6 * n + 12 * lhqt}


def step_peak_bytes(cfg: ModelConfig, batch: int, new_tokens: int, context: int,
                    bytes_per_element: int, materialised: bool = True,
                    logits: str = "last") -> int:
    """An estimate (upper side) of the extra bytes one call holds at its peak, the KV cache
    excluded (it exists before the call): within one block the residual stream, its norm,
    q, k, v and the attention output (6·B·T_q·D), the (B, T_q, d_ff) hidden twice (before and
    after the activation), the (B, H, T_q, T_k) scores when materialised, and the logits.
    Not checked to the byte as the encoder blocks' predicted_peak_bytes are."""
    _check(cfg, batch, new_tokens, context)
    tq, tk = new_tokens, context + new_tokens
    rows = 1 if logits == "last" else new_tokens
    elements = (6 * batch * tq * cfg.d_model + 2 * batch * tq * cfg.d_ff
                + (batch * cfg.n_heads * tq * tk if materialised else 0)
                + batch * rows * cfg.vocab_size)
    return elements * bytes_per_element


def step_working_set_bytes(cfg: ModelConfig, batch: int, new_tokens: int, context: int,
                           bytes_per_element: int, weight_bytes: int | None = None,
                           materialised: bool = True) -> int:
    """Bytes one call touches: every weight it reads (as decode_weight_elements, the position
    rows of all T_q tokens), the cache it reads and writes, and its peak activations."""
    w = bytes_per_element if weight_bytes is None else weight_bytes
    weights = (decode_weight_elements(cfg, batch) + (new_tokens - 1) * batch * cfg.d_model) * w
    cache = kv_cache_bytes(cfg, batch, context + new_tokens, bytes_per_element)
    return weights + cache + step_peak_bytes(cfg, batch, new_tokens, context, bytes_per_element,
                                             materialised)
