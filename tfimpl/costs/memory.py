"""Activation memory and predicted peak memory, in bytes, with `e` bytes per element.

Two different questions:

`activation_memory`: the bytes of every intermediate tensor ONE forward writes, by component.
This is what a forward+backward must keep alive until the backward uses it (autograd saves the
inputs of every matmul, the softmax output, the inputs of the norms and activations), the same
bookkeeping as Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
Models", §4.1 (their 34·s·b·h + 5·a·s²·b bytes per layer at 16 bits includes dropout masks,
which our blocks do not have). Per layer, with N = B·T:
    q, k, v                 3·N·D·e         saved by Q·Kᵀ and P·V
    attn_matrix             B·H·T·T·e       the softmax output P (materialised paths, explicit
                                            and library; the fused sdpa path keeps a (B, H, T)
                                            fp32 log-sum-exp instead)
    attn_out, attn_proj     2·N·D·e         merged heads (input of W_O) and W_O's output
    ffn_hidden, ffn_act     2·N·d_ff·e      before and after the activation
    ffn_out                 N·D·e
    residual, norm          4·N·D·e         two residual sums, two norm outputs

`predicted_peak_bytes`: the bytes ABOVE the baseline (weights and inputs already allocated) a
call holds at its worst moment, as the implementations are written. In forward mode tensors
die as soon as their last user is done, so the peak is the largest of a few "phases", not the
sum of all activations. The phases, term by term, are in the docstrings of
    _peak_numpy.py   tfimpl/numpy (tile-wise attention, row-blocked element-wise passes, NumPy's
                     ufunc buffers; per-thread workspaces times `threads`)
    _peak_torch.py   tfimpl/torch (attn_impl "explicit" | "sdpa") and the libraries'
                     materialised attention (attn_impl "library": torch's MATH sdpa for the
                     attention block, HuggingFace BERT's eager attention for mha and up)
and are checked against measurement (tests/tfimpl/test_costs_counted.py): forward peaks to within
Python's own bookkeeping (a few KiB); forward+backward from above. If those implementations
change how they allocate, these phases must follow. Where a phase is uncertain (which phases
NumPy's threads overlap in) we take the larger reading, because the harness also uses the
prediction to skip cases that would not fit.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.costs._common import (ATTN_IMPLS, MEMORY_BLOCKS, MODES, add, check_cfg, check_choice,
                                  check_positive, scale)
from tfimpl.costs import _peak_numpy, _peak_torch
from tfimpl.costs._peak_torch import LSE_BYTES, sdpa_block_sizes
from tfimpl.costs.params import param_counts

BACKENDS = ("numpy", "torch")


# ---- activation memory -------------------------------------------------------------------

def _mha_acts(cfg, b, t, e, attn_impl) -> dict:
    n, d = b * t, cfg.d_model
    materialised = attn_impl != "sdpa"
    return {"q": n * d * e, "k": n * d * e, "v": n * d * e,
            "attn_matrix": b * cfg.n_heads * t * t * e if materialised else 0,
            "attn_stats": 0 if materialised else b * cfg.n_heads * t * LSE_BYTES,
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

def _forward_peak(block, cfg, b, t, e, attn_impl, causal, threads, backend) -> int:
    if backend == "numpy":
        return _peak_numpy.forward_peak(block, cfg, b, t, e, causal, threads)
    return _peak_torch.forward_peak(block, cfg, b, t, e, attn_impl, causal, threads)


def _backward_extra(block, cfg, b, t, e, attn_impl, threads) -> int:
    """Working set of the backward beyond the saved activations, on the upper side: two
    (B,T,D) gradients plus the largest transient: a materialised softmax backward holds dP and
    dS (two B·H·T·T) beside the saved P; the feed-forward's gradient w.r.t. the activation and
    w.r.t. its input overlap by one (B,T,d_ff) (the saved activation output is released between
    them); the fused sdpa backward keeps per-thread tiles (three score tiles per thread).
    torch's MATH sdpa (library, attention block) also saves its scaled K beside the scaled Q."""
    n = b * t
    attention = block != "ffn"
    softmax_grads = 2 * b * cfg.n_heads * t * t * e if attention and attn_impl != "sdpa" else 0
    ffn_grads = n * cfg.d_ff * e if block not in ("attention", "mha") else 0
    tiles = 0
    if attention and attn_impl == "sdpa":
        qb, kvb = sdpa_block_sizes(t)
        tiles = 3 * threads * qb * kvb * 4
    scaled_k = n * cfg.d_model * e if block == "attention" and attn_impl == "library" else 0
    return (2 * n * cfg.d_model * e + tiles + scaled_k
            + max(softmax_grads, ffn_grads, 3 * n * cfg.d_model * e))


def predicted_peak_bytes(block: str, cfg: ModelConfig, batch: int, seq_len: int,
                         bytes_per_element: int, attn_impl: str = "explicit",
                         mode: str = "forward", causal: bool = False, threads: int = 1,
                         backend: str = "torch") -> int:
    """Bytes above baseline (weights and inputs allocated) one call holds at its peak.

    forward: the largest phase of the block as implemented (_peak_numpy.py, _peak_torch.py);
    what tracemalloc (NumPy) or the torch profiler's memory events (torch, CPU) measure.
    `backend` "numpy" (tfimpl/numpy; it has one attention path, attn_impl is ignored) or
    "torch" (tfimpl/torch for attn_impl "explicit" | "sdpa"; torch.nn's MATH sdpa and HF BERT's
    eager attention for "library"). `threads`: the case's thread count: torch's intra-op
    threads (sdpa's per-thread tiles), NumPy's BLAS threads (its tiles and row blocks).
    forward+backward (torch): all saved activations (`activation_memory`) + one gradient per
    weight + the backward's working set (`_backward_extra`), against a step that allocates
    every gradient afresh (as bench.registry's does). An upper-side estimate: autograd frees
    saved tensors as the backward consumes them, so the true peak is lower (measured 1.0-1.6x
    lower on small sizes); it is also what a memory guard should use.
    """
    _check(block, cfg, batch, seq_len, bytes_per_element, attn_impl)
    check_choice("mode", mode, MODES)
    check_choice("backend", backend, BACKENDS)
    check_positive("threads", threads)
    e = bytes_per_element
    forward = _forward_peak(block, cfg, batch, seq_len, e, attn_impl, causal, threads, backend)
    if mode == "forward":
        return forward
    kind = "bert" if block == "model" else block
    saved = activation_memory(block, cfg, batch, seq_len, e, attn_impl)["total"]
    grads = param_counts(kind, cfg)["total"] * e
    extra = _backward_extra(block, cfg, batch, seq_len, e, attn_impl, threads)
    return max(forward, saved + grads + extra)
