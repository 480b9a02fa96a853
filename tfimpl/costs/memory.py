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
block below), not the sum of all activations. Modelled on the code of tfimpl/numpy and
tfimpl/torch (attention.py, linear.py, layer_norm.py, feed_forward.py, layers.py, bert.py) and
checked against measurement (tests/test_costs_counted.py): forward peaks to within NumPy's small
ufunc buffers; forward+backward from above. If those files change how they allocate, these
phases must follow. Where a phase is uncertain we take the larger reading, because the harness
also uses the prediction to skip cases that would not fit.
"""

from __future__ import annotations

from tfimpl.config import ModelConfig
from tfimpl.costs._common import (ATTN_IMPLS, MEMORY_BLOCKS, MODES, add, check_cfg, check_choice,
                                  check_positive, scale)
from tfimpl.costs.params import param_counts

LSE_BYTES = 4                     # the fused kernels keep their log-sum-exp in float32
# torch's CPU flash-attention kernel (aten/src/ATen/native/cpu/FlashAttentionKernel.cpp)
SDPA_KV_BLOCK = 512
BACKENDS = ("numpy", "torch")
ROW_BLOCK = 1 << 16               # elements per row block: NumPy softmax/GELU/causal, torch causal


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

def sdpa_block_sizes(seq_len: int) -> tuple[int, int]:
    """(query block, key block) of torch's CPU flash kernel: queries in blocks of 256 from
    T >= 768, 64 from T >= 192, else 32; keys in blocks of 512; neither larger than T."""
    q_block = 256 if seq_len >= 768 else 64 if seq_len >= 192 else 32
    return min(q_block, seq_len), min(SDPA_KV_BLOCK, seq_len)


def _attention_peak(cfg, b, t, e, attn_impl, causal, threads, contiguous=True, backend="numpy"):
    """Core attention on q, k, v (B, H, T, d_k), forward, above the inputs.

    explicit (tfimpl/{numpy,torch}/attention.py): ONE (B,H,T,T) score matrix, soft-maxed in
    place (NumPy in cache-sized row blocks, so its reductions are tiny), beside first the
    scaled Q (a temporary) and then the output, both (B,H,T,d_k). torch.matmul also copies
    a Q or K whose (B, H) dims cannot fold into one batch dim (the views of the fused Q|K|V
    inside mha, when B > 1) before its bmm: Q scaled + its copy + K's copy beside the scores, then V's copy + the output.
    causal: both mask a block of query rows at a time (small boolean tiles, no (T,T) mask).
    sdpa (torch's fused CPU flash kernel): the output, a float32 (B,H,T) log-sum-exp and,
    per thread, a float32 q_block x kv_block score tile plus q_block x (d_k + 2) accumulators
    (`sdpa_block_sizes`); no T x T matrix. Measured exact for float32 on torch 2.13.
    """
    h, dk = cfg.n_heads, cfg.d_head
    head_tensor = b * h * t * dk * e
    if attn_impl == "sdpa":
        qb, kvb = sdpa_block_sizes(t)
        per_thread = (qb * kvb + qb * (dk + 2)) * 4 + (qb * kvb * e if e < 4 else 0)
        return head_tensor + b * h * t * LSE_BYTES + threads * per_thread
    scores = b * h * t * t * e
    if backend == "numpy":
        rows = max(1, ROW_BLOCK // (b * h * t))
        return scores + head_tensor + (2 * rows * t if causal else 0)
    multiplying = (1 if contiguous else 3) * head_tensor          # Q·Kᵀ: scaled Q (+ 2 copies)
    masking = max(1, ROW_BLOCK // t) * t if causal else 0         # one (rows, T) bool tile
    weighting = (1 if contiguous else 2) * head_tensor            # P·V: output (+ V's copy)
    return scores + max(multiplying, masking, weighting)


def _mha_peak(cfg, b, t, e, attn_impl, causal, threads, backend) -> int:
    """Self-attention (tfimpl/*/attention.py multi_head_attention), x given, three phases:
    A projecting: the concatenated (3D, D) weight and (3D,) bias, the fused (B,T,3D) Q|K|V;
    B attending: Q|K|V (alive until the call returns) + the core attention's own peak; NumPy
      first allocates the (B,T,H,d_k) context buffer the core writes into (so merging the heads
      is a view), torch's core returns a new output;
    C output: Q|K|V + context + merged heads (a copy on the torch explicit path; a view after
      sdpa, whose output is laid out (B,T,H,d_k) already, and in NumPy) + W_O's output.
    Everything but the scores is (B,T,D)-sized.
    """
    nd = b * t * cfg.d_model * e
    d = cfg.d_model
    projecting = (3 * d * d + 3 * d) * e + 3 * nd
    if backend == "numpy":
        attending = 4 * nd + _attention_peak(cfg, b, t, e, attn_impl, causal, threads,
                                             backend=backend)
        return max(projecting, attending, 5 * nd)
    # the per-head views of Q|K|V fold into bmm's batch without a copy only when B = 1
    attending = 3 * nd + _attention_peak(cfg, b, t, e, attn_impl, causal, threads,
                                         contiguous=b == 1, backend=backend)
    output = 3 * nd + (2 if attn_impl == "sdpa" else 3) * nd
    return max(projecting, attending, output)


def _ffn_peak(cfg, b, t, e, threads, backend) -> int:
    """tfimpl/*/feed_forward.py: the (B,T,d_ff) hidden, the activation, then the hidden beside
    the (B,T,D) output. The activation: relu in place (NumPy always, torch when no grad is
    needed); gelu in NumPy in place by row blocks of ROW_BLOCK elements, each block's Φ(x)
    temporary alive in each of `threads` workers at once; gelu_tanh in NumPy and any gelu in
    torch (F.gelu's output) one more (B,T,d_ff)."""
    n = b * t
    hidden, nd = n * cfg.d_ff * e, n * cfg.d_model * e
    if cfg.activation == "relu":
        activation = 0
    elif cfg.activation == "gelu" and backend == "numpy":
        rows = max(1, ROW_BLOCK // cfg.d_ff)                      # rows per block
        blocks = -(-n // rows)
        activation = min(threads, blocks) * min(rows, n) * cfg.d_ff * e
    else:
        activation = hidden
    return hidden + max(activation, nd)


def _layer_peak(cfg, b, t, e, attn_impl, causal, threads, backend) -> int:
    """tfimpl/*/layers.py encoder_layer, x given. Post-norm: the attention phase; the ffn phase
    beside norm1's output; the end (ffn output, norm1 output, norm2 output). Pre-norm adds the
    normed copy of the sub-layer's input to each phase."""
    nd = b * t * cfg.d_model * e
    pre = nd if cfg.norm_first else 0
    attending = pre + _mha_peak(cfg, b, t, e, attn_impl, causal, threads, backend)
    feeding = nd + pre + _ffn_peak(cfg, b, t, e, threads, backend)
    return max(attending, feeding, 3 * nd)


def _encoder_peak(cfg, b, t, e, attn_impl, causal, threads, backend) -> int:
    """Layers run one after another; from the second on, the previous layer's output is alive
    beside the running layer (the first one's input is the caller's)."""
    nd = b * t * cfg.d_model * e
    layer = _layer_peak(cfg, b, t, e, attn_impl, causal, threads, backend)
    running = nd if cfg.n_layers > 1 else 0
    final = 2 * nd if cfg.final_norm else 0
    return max(running + layer, final)


def _forward_peak(block, cfg, b, t, e, attn_impl, causal, threads, backend) -> int:
    if block == "attention":
        return _attention_peak(cfg, b, t, e, attn_impl, causal, threads, backend=backend)
    if block == "mha":
        return _mha_peak(cfg, b, t, e, attn_impl, causal, threads, backend)
    if block == "ffn":
        return _ffn_peak(cfg, b, t, e, threads, backend)
    if block == "encoder_layer":
        return _layer_peak(cfg, b, t, e, attn_impl, causal, threads, backend)
    if block == "encoder":
        return _encoder_peak(cfg, b, t, e, attn_impl, causal, threads, backend)
    # model (tfimpl/*/bert.py): the embedding sum and its norm (2 (B,T,D) + the (T,D) positions),
    # then the stack beside the embeddings' output, which bert() keeps; int64 token-type ids;
    # the (B, D) pooler output and its pre-tanh value.
    nd = b * t * cfg.d_model * e
    embeddings = 2 * nd + t * cfg.d_model * e
    stack = nd + _encoder_peak(cfg, b, t, e, attn_impl, causal, threads, backend)
    return max(embeddings, stack) + 8 * b * t + 2 * b * cfg.d_model * e


def _backward_extra(block, cfg, b, t, e, attn_impl, threads) -> int:
    """Working set of the backward beyond the saved activations, on the upper side: two
    (B,T,D) gradients plus the largest transient: the explicit softmax backward holds dP and
    dS (two B·H·T·T) beside the saved P; the feed-forward's gradient w.r.t. the activation and
    w.r.t. its input overlap by one (B,T,d_ff) (the saved activation output is released between
    them); the fused sdpa backward keeps per-thread tiles (three score tiles per thread)."""
    n = b * t
    attention = block != "ffn"
    softmax_grads = 2 * b * cfg.n_heads * t * t * e if attention and attn_impl == "explicit" else 0
    ffn_grads = n * cfg.d_ff * e if block not in ("attention", "mha") else 0
    tiles = 0
    if attention and attn_impl == "sdpa":
        qb, kvb = sdpa_block_sizes(t)
        tiles = 3 * threads * qb * kvb * 4
    return 2 * n * cfg.d_model * e + tiles + max(softmax_grads, ffn_grads, 3 * n * cfg.d_model * e)


def predicted_peak_bytes(block: str, cfg: ModelConfig, batch: int, seq_len: int,
                         bytes_per_element: int, attn_impl: str = "explicit",
                         mode: str = "forward", causal: bool = False, threads: int = 1,
                         backend: str = "torch") -> int:
    """Bytes above baseline (weights and inputs allocated) one call holds at its peak.

    forward: the largest phase of the block as implemented (the _*_peak docstrings); what
    tracemalloc (NumPy) or the torch profiler's memory events (torch, CPU) measure. `backend`
    ("numpy" | "torch"): the two differ in the explicit multi-head path and the GELU (torch is
    the larger, hence the default). `threads`: torch's intra-op threads for "sdpa" (per-thread
    tiles), NumPy's BLAS threads for its row-blocked GELU: pass the case's thread count.
    forward+backward (torch): all saved activations (`activation_memory`) + one gradient per
    weight + the backward's working set (`_backward_extra`). An upper-side estimate: autograd
    frees saved tensors as the backward consumes them, so the true peak is lower (measured
    1.0-1.5x lower on small sizes); it is also what a memory guard should use.
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
