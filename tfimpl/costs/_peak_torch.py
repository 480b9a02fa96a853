"""Forward peak of the torch paths, in bytes above the caller's tensors (torch.no_grad or
inference mode), as the code allocates. Measured exact on CPU with the profiler's memory events
(tests/tfimpl/test_costs_counted.py) for float32, torch 2.13, transformers 5.

attn_impl:
  explicit  tfimpl/torch: ONE (B,H,T,T) score matrix, masked and soft-maxed in place.
  sdpa      tfimpl/torch with torch's fused CPU flash kernel: no T x T matrix.
  library   the libraries' own materialised attention, whose out-of-place softmax holds the
            scores and the probabilities at once (two matrices):
            block "attention": torch's MATH sdpa (F.scaled_dot_product_attention under
              SDPBackend.MATH, aten `_scaled_dot_product_attention_math`), what torch-nn runs;
            blocks "mha" and up: HuggingFace BERT's eager attention (`eager_attention_forward`
              in BertSelfAttention, inside BertAttention / BertLayer / BertEncoder / BertModel).
"""

from __future__ import annotations

from tfimpl.tiling import MASK_BLOCK_ELEMENTS

LSE_BYTES = 4                     # the fused kernels keep their log-sum-exp in float32
SDPA_KV_BLOCK = 512               # torch's CPU flash kernel (FlashAttentionKernel.cpp)
OPMATH_BYTES = 4                  # MATH sdpa on CPU computes bf16/fp16 in float32
LN_STATS_BYTES = 4                # nn.LayerNorm's mean and rstd rows are float32


def sdpa_block_sizes(seq_len: int) -> tuple[int, int]:
    """(query block, key block) of torch's CPU flash kernel: queries in blocks of 256 from
    T >= 768, 64 from T >= 192, else 32; keys in blocks of 512; neither larger than T."""
    q_block = 256 if seq_len >= 768 else 64 if seq_len >= 192 else 32
    return min(q_block, seq_len), min(SDPA_KV_BLOCK, seq_len)


def attention_peak(cfg, b, t, e, attn_impl, causal, threads, contiguous=True) -> int:
    """Core attention on q, k, v (B, H, T, d_k), above the inputs.

    explicit: the scores beside first the scaled Q (a temporary) and then the output, both
    (B,H,T,d_k). torch.matmul also copies a Q or K whose (B, H) dims cannot fold into one batch
    dim (the views of the fused Q|K|V inside mha, when B > 1) before its bmm: Q scaled + its
    copy + K's copy beside the scores, then V's copy + the output. causal: a (rows, T) boolean
    tile of tfimpl.tiling.MASK_BLOCK_ELEMENTS elements at a time, no (T, T) mask.
    sdpa: the output, a float32 (B,H,T) log-sum-exp and, per thread, a float32 q_block x
    kv_block score tile plus q_block x (d_k + 2) accumulators (`sdpa_block_sizes`).
    library: `math_attention_peak`.
    """
    h, dk = cfg.n_heads, cfg.d_head
    head_tensor = b * h * t * dk * e
    if attn_impl == "library":
        return math_attention_peak(b, h, t, dk, e, causal)
    if attn_impl == "sdpa":
        qb, kvb = sdpa_block_sizes(t)
        per_thread = (qb * kvb + qb * (dk + 2)) * 4 + (qb * kvb * e if e < 4 else 0)
        return head_tensor + b * h * t * LSE_BYTES + threads * per_thread
    scores = b * h * t * t * e
    multiplying = (1 if contiguous else 3) * head_tensor          # Q·Kᵀ: scaled Q (+ 2 copies)
    masking = max(1, MASK_BLOCK_ELEMENTS // t) * t if causal else 0         # one (rows, T) bool tile
    weighting = (1 if contiguous else 2) * head_tensor            # P·V: output (+ V's copy)
    return scores + max(multiplying, masking, weighting)


def math_attention_peak(b, h, t, dk, e, causal) -> int:
    """torch's MATH sdpa (CPU). bf16/fp16 inputs are first copied to float32 (three
    (B,H,T,d_k) copies; everything after is float32, `a` bytes). is_causal becomes an additive
    (T,T) float mask. Then: Q·s and K·s (s = d_k^-1/4 each, two scaled copies), the scores
    S = (Q·s)(K·s)ᵀ; K·s freed; `_safe_softmax` writes P beside S plus the boolean S == -inf
    (B,H,T,T bytes) and its all-masked rows (B,H,T); then P·V. Peak at the softmax:
        upcast + mask + Q·s + 2·B·H·T·T·a + B·H·T·T + B·H·T.
    """
    a = max(e, OPMATH_BYTES)
    head = b * h * t * dk * a
    upcast = 3 * head if e < OPMATH_BYTES else 0
    mask = t * t * a if causal else 0
    scores = b * h * t * t * a
    scaling = 2 * head + scores
    softmax = head + 2 * scores + b * h * t * t + b * h * t
    weighting = 2 * head + scores + (b * h * t * dk * e if e < OPMATH_BYTES else 0)
    return upcast + mask + max(scaling, softmax, weighting)


def _eager_attention_phases(cfg, b, t, e) -> tuple[int, int]:
    """HF BertSelfAttention (eager), x given: (peak while attending, what stays: P).
    Q, K, V are three (B,T,D) linear outputs seen as (B,H,T,d_k); torch.matmul copies Q and K
    (and V for P·V) when B > 1 (their heads do not fold into one batch dim). Phases:
        scores      Q, K, V + the copies of Q and K + S = QKᵀ
        scaling     Q, K, V + S + S·scaling, then S·scaling + P = softmax (out of place)
        weighting   Q, K, V + P + V's copy + P·V, then P·V + its (B,T,H,d_k) contiguous copy.
    P (the returned attention weights) stays alive until BertAttention's caller drops it."""
    nd = b * t * cfg.d_model * e
    matrix = b * cfg.n_heads * t * t * e
    copies = 2 * nd if b > 1 else 0
    scores = 3 * nd + copies + matrix
    scaling = 3 * nd + 2 * matrix
    weighting = 3 * nd + matrix + 2 * nd
    return max(scores, scaling, weighting), matrix


def _eager_mha_peak(cfg, b, t, e) -> int:
    """BertSelfAttention then W_O (BertSelfOutput's dense) with P still held: P + the context
    + W_O's output."""
    nd = b * t * cfg.d_model * e
    attending, p = _eager_attention_phases(cfg, b, t, e)
    return max(attending, p + 2 * nd)


def _eager_layer_peak(cfg, b, t, e) -> int:
    """HF BertLayer, x given: the attention; BertSelfOutput (context, dense, dense + x, its
    LayerNorm and float32 mean/rstd rows) beside P; BertIntermediate (dense, activation out of
    place) beside P and the attention output; BertOutput (dense, sum, norm) beside P, the
    attention output and the activation. P is released only when the layer returns."""
    n = b * t
    nd, nf = n * cfg.d_model * e, n * cfg.d_ff * e
    stats = 2 * n * LN_STATS_BYTES
    attending, p = _eager_attention_phases(cfg, b, t, e)
    self_output = p + 4 * nd + stats
    intermediate = p + nd + 2 * nf
    output = p + nd + nf + 3 * nd + stats
    return max(attending, self_output, intermediate, output)


def mha_peak(cfg, b, t, e, attn_impl, causal, threads) -> int:
    """Self-attention, x given. tfimpl/torch multi_head_attention, three phases:
    A projecting: the concatenated (3D, D) weight and (3D,) bias, the fused (B,T,3D) Q|K|V;
    B attending: Q|K|V (alive until the call returns) + the core attention's own peak;
    C output: Q|K|V + context + merged heads (a copy on the explicit path; a view after sdpa,
      whose output is laid out (B,T,H,d_k) already) + W_O's output.
    library: `_eager_mha_peak`.
    """
    if attn_impl == "library":
        return _eager_mha_peak(cfg, b, t, e)
    nd = b * t * cfg.d_model * e
    d = cfg.d_model
    projecting = (3 * d * d + 3 * d) * e + 3 * nd
    # the per-head views of Q|K|V fold into bmm's batch without a copy only when B = 1
    attending = 3 * nd + attention_peak(cfg, b, t, e, attn_impl, causal, threads,
                                        contiguous=b == 1)
    output = 3 * nd + (2 if attn_impl == "sdpa" else 3) * nd
    return max(projecting, attending, output)


def ffn_peak(cfg, b, t, e) -> int:
    """tfimpl/torch feed_forward: the (B,T,d_ff) hidden, the activation (relu in place when no
    grad is needed, F.gelu's output otherwise: one more (B,T,d_ff)), then beside the (B,T,D)
    output."""
    n = b * t
    hidden, nd = n * cfg.d_ff * e, n * cfg.d_model * e
    activation = 0 if cfg.activation == "relu" else hidden
    return hidden + max(activation, nd)


def layer_peak(cfg, b, t, e, attn_impl, causal, threads) -> int:
    """tfimpl/torch encoder_layer, x given. Post-norm: the attention phase; the ffn phase
    beside norm1's output; the end (ffn output, norm1 output, norm2 output). Pre-norm adds the
    normed copy of the sub-layer's input to each phase. library: `_eager_layer_peak`."""
    if attn_impl == "library":
        return _eager_layer_peak(cfg, b, t, e)
    nd = b * t * cfg.d_model * e
    pre = nd if cfg.norm_first else 0
    attending = pre + mha_peak(cfg, b, t, e, attn_impl, causal, threads)
    feeding = nd + pre + ffn_peak(cfg, b, t, e)
    return max(attending, feeding, 3 * nd)


def encoder_peak(cfg, b, t, e, attn_impl, causal, threads) -> int:
    """Layers run one after another; from the second on, the previous layer's output is alive
    beside the running layer (the first one's input is the caller's). The final norm (tfimpl
    only; BertEncoder has none) beside the last output."""
    nd = b * t * cfg.d_model * e
    layer = layer_peak(cfg, b, t, e, attn_impl, causal, threads)
    running = nd if cfg.n_layers > 1 else 0
    final = 2 * nd if cfg.final_norm and attn_impl != "library" else 0
    return max(running + layer, final)


def model_peak(cfg, b, t, e, attn_impl, causal, threads) -> int:
    """BERT: the embeddings, then the stack beside the embeddings' output (kept by the caller),
    then the (B, D) pooler.
    tfimpl/torch bert: the embedding sum and its norm (2 (B,T,D) + the (T,D) positions); int64
    token-type ids; the pooler output and its pre-tanh value.
    library (HF BertModel): word, token-type and position embeddings and two running sums
    (4 (B,T,D) + (T,D)) beside the int64 position and token-type ids; the pooler likewise."""
    n, d = b * t, cfg.d_model
    nd = n * d * e
    stack = nd + encoder_peak(cfg, b, t, e, attn_impl, causal, threads)
    if attn_impl == "library":
        embeddings = 4 * nd + t * d * e + 8 * (t + n)
        return max(embeddings, stack) + 2 * b * d * e
    embeddings = 2 * nd + t * d * e
    return max(embeddings, stack) + 8 * n + 2 * b * d * e


def forward_peak(block, cfg, b, t, e, attn_impl, causal, threads) -> int:
    if block == "attention":
        return attention_peak(cfg, b, t, e, attn_impl, causal, threads)
    if block == "mha":
        return mha_peak(cfg, b, t, e, attn_impl, causal, threads)
    if block == "ffn":
        return ffn_peak(cfg, b, t, e)
    if block == "encoder_layer":
        return layer_peak(cfg, b, t, e, attn_impl, causal, threads)
    if block == "encoder":
        return encoder_peak(cfg, b, t, e, attn_impl, causal, threads)
    return model_peak(cfg, b, t, e, attn_impl, causal, threads)
