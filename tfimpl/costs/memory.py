"""Activation memory and predicted peak memory, in bytes, with `e` bytes per element.

Two different questions:

`activation_memory`: the bytes of every intermediate tensor ONE forward writes, by component.
This is what a forward+backward must keep alive until the backward uses it (autograd saves the
inputs of every matmul, the softmax output, the inputs of the norms and activations), the same
bookkeeping as Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models", §4.1 (their 34·s·b·h + 5·a·s²·b bytes per layer at 16 bits includes dropout masks,
which our blocks do not have). Per layer, with N = B·T:
    q, k, v                 3·N·D·e         saved by Q·Kᵀ and P·V
    attn_matrix             B·H·T·T·e       the softmax output P (explicit path only; the fused
                                            sdpa path keeps a (B, H, T) fp32 log-sum-exp instead)
    attn_out, attn_proj     2·N·D·e         merged heads (input of W_O) and W_O's output
    ffn_hidden, ffn_act     2·N·d_ff·e      before and after the activation
    ffn_out                 N·D·e
    residual, norm          4·N·D·e         two residual sums, two norm outputs

`predicted_peak_bytes`: the bytes ABOVE the baseline (weights and inputs already allocated) a
call holds at its worst moment, as our implementations are written. In forward mode tensors die
as soon as their last user is done, so the peak is the largest of a few "phases" (listed per
block below), not the sum of all activations. Modelled on tfimpl/numpy (attention.py, linear.py,
layer_norm.py, feed_forward.py, layers.py); where a phase is uncertain we take the larger
reading, because the harness also uses the prediction to skip cases that would not fit.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.costs._common import (ATTN_IMPLS, MEMORY_BLOCKS, MODES, add, check_cfg, check_choice,
                                  check_positive, scale)
from tfimpl.costs.params import param_counts

LSE_BYTES = 4                     # the fused kernels keep their log-sum-exp in float32
# torch's CPU flash-attention kernel (aten/src/ATen/native/cpu/FlashAttentionKernel.cpp) tiles
# queries in blocks of at most 256 and keys in blocks of 512 and gives every thread a float32
# buffer of q_block·kv_block scores plus q_block·(d_k + 2) accumulators.
SDPA_Q_BLOCK, SDPA_KV_BLOCK = 256, 512


# ---- activation memory -------------------------------------------------------------------

def _mha_acts(cfg, b, t, e, attn_impl) -> dict:
    n, d = b * t, cfg.d_model
    explicit = attn_impl == "explicit"
    return {"q": n * d * e, "k": n * d * e, "v": n * d * e,
            "attn_matrix": b * cfg.n_heads * t * t * e if explicit else 0,
            "attn_stats": 0 if explicit else b * cfg.n_heads * t * LSE_BYTES,
            "attn_out": n * d * e, "attn_proj": n * d * e}


def _ffn_acts(cfg, b, t, e) -> dict:
    n = b * t
    return {"ffn_hidden": n * cfg.d_ff * e, "ffn_act": n * cfg.d_ff * e,
            "ffn_out": n * cfg.d_model * e}


def _acts(block, cfg, b, t, e, attn_impl) -> dict:
    if block == "attention":
        core = _mha_acts(cfg, b, t, e, attn_impl)
        return {"attn_matrix": core["attn_matrix"], "attn_stats": core["attn_stats"],
                "attn_out": core["attn_out"]}
    if block == "mha":
        return _mha_acts(cfg, b, t, e, attn_impl)
    if block == "ffn":
        return _ffn_acts(cfg, b, t, e)
    if block == "encoder_layer":
        glue = {"residual": 2 * b * t * cfg.d_model * e, "norm": 2 * b * t * cfg.d_model * e}
        return add(_mha_acts(cfg, b, t, e, attn_impl), _ffn_acts(cfg, b, t, e), glue)
    if block == "encoder":
        return scale(_acts("encoder_layer", cfg, b, t, e, attn_impl), cfg.n_layers)
    # model: word + token-type lookups, their sum with the positions, the norm; the pooler
    embeddings = (4 * b * t + t) * cfg.d_model * e
    return {**_acts("encoder", cfg, b, t, e, attn_impl), "embeddings": embeddings,
            "pooler": 2 * b * cfg.d_model * e}


def _check(block, cfg, batch, seq_len, bytes_per_element, attn_impl):
    check_cfg(cfg)
    check_choice("block", block, MEMORY_BLOCKS)
    check_positive("batch", batch)
    check_positive("seq_len", seq_len)
    check_positive("bytes_per_element", bytes_per_element)
    check_choice("attn_impl", attn_impl, ATTN_IMPLS)


def activation_memory(block: str, cfg: ModelConfig, batch: int, seq_len: int,
                      bytes_per_element: int, attn_impl: str = "explicit") -> dict[str, int]:
    """Bytes of the intermediate tensors one forward writes, by component; key "total".

    "attn_matrix" is the B·H·T·T softmax output (0 for attn_impl="sdpa", which never
    materialises it). For block "attention" the inputs q, k, v are not counted (they are given).
    """
    _check(block, cfg, batch, seq_len, bytes_per_element, attn_impl)
    parts = _acts(block, cfg, batch, seq_len, bytes_per_element, attn_impl)
    return {**parts, "total": sum(parts.values())}


# ---- predicted peak ----------------------------------------------------------------------

def _attention_peak(cfg, b, t, e, attn_impl, causal, threads) -> int:
    """Core attention on given q, k, v (B, H, T, d_k).

    explicit (tfimpl/numpy/attention.py): Q scaled into a new (B,H,T,d_k) array, ONE (B,H,T,T)
    score matrix soft-maxed in place (row-blocked, so its reductions are tiny; we still add
    two (B,H,T,1) reductions, the unblocked fallback), the output (B,H,T,d_k); causal adds
    two (T,T) boolean masks (np.tri and its negation).
    sdpa (torch fused, flash-style on CPU): the output, a float32 (B,H,T) log-sum-exp and each
    thread's block buffers; no T×T matrix.
    """
    h, dk = cfg.n_heads, cfg.d_head
    if attn_impl == "sdpa":
        qb, kvb = min(SDPA_Q_BLOCK, t), min(SDPA_KV_BLOCK, t)
        per_thread = (qb * kvb + qb * (dk + 2)) * 4
        return b * h * t * dk * e + b * h * t * LSE_BYTES + threads * per_thread
    small = 2 * b * h * t * e
    mask = 2 * t * t if causal else 0
    return 2 * b * h * t * dk * e + b * h * t * t * e + small + mask


def _mha_peak(cfg, b, t, e, attn_impl, causal, threads) -> int:
    """Self-attention as tfimpl/numpy/attention.py does it, x baseline, three phases:
    A projecting: concatenated (3D, D) weight and (3D,) bias, the fused (B,T,3D) Q|K|V;
    B attending: Q|K|V (alive until the call returns) + the core attention's own peak;
    C output: Q|K|V + context (B,H,T,d_k) + merged heads (B,T,D) + W_O output (B,T,D).
    """
    n, d = b * t, cfg.d_model
    qkv = 3 * n * d * e
    projecting = (3 * d * d + 3 * d) * e + qkv
    attending = qkv + _attention_peak(cfg, b, t, e, attn_impl, causal, threads)
    output = qkv + 3 * n * d * e
    return max(projecting, attending, output)


def _ffn_peak(cfg, b, t, e) -> int:
    """Hidden (B,T,d_ff) + activation output + one element-wise temporary, then the (B,T,D) output."""
    n = b * t
    return 3 * n * cfg.d_ff * e + n * cfg.d_model * e


def _layer_peak(cfg, b, t, e, attn_impl, causal, threads) -> int:
    """Post- or pre-norm encoder layer: the attention phase, or the feed-forward phase with the
    attention output, its residual sum and the norm output alive beside it."""
    n, d = b * t, cfg.d_model
    attending = _mha_peak(cfg, b, t, e, attn_impl, causal, threads)
    feeding = 3 * n * d * e + _ffn_peak(cfg, b, t, e)
    return max(attending, feeding)


def _forward_peak(block, cfg, b, t, e, attn_impl, causal, threads) -> int:
    n, d = b * t, cfg.d_model
    if block == "attention":
        return _attention_peak(cfg, b, t, e, attn_impl, causal, threads)
    if block == "mha":
        return _mha_peak(cfg, b, t, e, attn_impl, causal, threads)
    if block == "ffn":
        return _ffn_peak(cfg, b, t, e)
    layer = _layer_peak(cfg, b, t, e, attn_impl, causal, threads)
    if block == "encoder_layer":
        return layer
    if block == "encoder":                 # the running activation (B,T,D) beside one layer
        return n * d * e + layer
    embeddings = (4 * n + t) * d * e       # model: lookups, sums, norm; then the stack
    return max(embeddings, 2 * n * d * e + layer) + 2 * b * d * e


def _backward_extra(block, cfg, b, t, e, attn_impl) -> int:
    """Working set of the backward beyond the saved activations: a (B,T,D) input gradient and
    the largest transient gradient: dP and dS (two B·H·T·T) in the explicit softmax backward, or
    two (B,T,d_ff) in the feed-forward's."""
    n = b * t
    softmax_grads = 2 * b * cfg.n_heads * t * t * e if attn_impl == "explicit" else 0
    ffn_grads = 2 * n * cfg.d_ff * e if block != "attention" and block != "mha" else 0
    return 2 * n * cfg.d_model * e + max(softmax_grads, ffn_grads, 3 * n * cfg.d_model * e)


def predicted_peak_bytes(block: str, cfg: ModelConfig, batch: int, seq_len: int,
                         bytes_per_element: int, attn_impl: str = "explicit",
                         mode: str = "forward", causal: bool = False, threads: int = 1) -> int:
    """Bytes above baseline one call holds at its peak.

    forward: the largest phase of the block as implemented (see the _*_peak docstrings).
    forward+backward: all saved activations (`activation_memory`) + parameter gradients
    (one per weight, `bytes_per_element` each) + the backward's working set. An upper-side
    estimate: autograd frees some saved tensors before the peak.
    """
    _check(block, cfg, batch, seq_len, bytes_per_element, attn_impl)
    check_choice("mode", mode, MODES)
    check_positive("threads", threads)
    e = bytes_per_element
    forward = _forward_peak(block, cfg, batch, seq_len, e, attn_impl, causal, threads)
    if mode == "forward":
        return forward
    kind = {"model": "bert", "attention": "attention"}.get(block, block)
    saved = activation_memory(block, cfg, batch, seq_len, e, attn_impl)["total"]
    grads = param_counts(kind, cfg)["total"] * e
    return max(forward, saved + grads + _backward_extra(block, cfg, batch, seq_len, e, attn_impl))
