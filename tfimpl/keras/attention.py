"""Scaled dot-product and multi-head attention as Keras computes them (mirrors tfimpl.numpy.attention).

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) · V
    MultiHead(x_q, x_kv) = Σ_h head_h · W_O[h] + b_O,   head_h = Attention(x_q W_Q[h] + b_Q[h], ...)

Keras' MultiHeadAttention keeps each projection as an EinsumDense with a per-head kernel:
query/key/value kernels (D, H, d_head), biases (H, d_head), output kernel (H, d_head, D), output
bias (D,) (see tfimpl.keras.loaders for the mapping from our (out, in) `weight`s).

Masks, ours vs Keras':
  ours   boolean, True = may attend, broadcastable to (B, H, Tq, Tk); key_padding_mask (B, Tk)
         True = real token; a query row with no allowed key gets all-zero weights.
  Keras  `attention_mask` (B, Tq, Tk), True/1 = may attend (same polarity as ours; torch.nn's
         attn_mask is the opposite), no head axis: one mask for all heads. Masked scores are set
         to a large negative number (-1e9 in float32/64), not -inf. A query row with no allowed
         key then depends on the path (below): the Softmax layer zeroes masked weights after the
         softmax (zero weights, as ours), keras.ops.dot_product_attention does not (uniform
         weights 1/Tk, the mean of V). MultiHeadAttention takes the second path unless asked for
         the scores, so its output on such a row changes with return_attention_scores.
So `mask` here must have a head axis of size 1, and the key padding mask becomes (B, 1, Tk).

float64: Keras and TensorFlow turn the Python float 1/√d_k into a tensor through a float32
constant (ops.cast / tf.cast of a Python scalar), in both paths and in MultiHeadAttention, so in
float64 the scale is 1/√d_k rounded to float32 (relative error up to 6e-8) unless it is exact
(d_k = 4, 16, 64: 0.5, 0.25, 0.125). Likewise tf.nn.gelu's 1/√2 (tfimpl.keras.feed_forward).

Two computations, as in Keras' own layer:
  without weights: keras.ops.dot_product_attention (on TensorFlow: einsum, masked softmax in at
      least float32, einsum; it holds the (B, H, Tq, Tk) logits like our explicit path);
  with weights: the layer's own explicit path (q scaled by 1/√d_k, einsum, Softmax(mask), einsum),
      which is what MultiHeadAttention(return_attention_scores=True) runs.
"""

from __future__ import annotations

import math

from tfimpl.keras import loaders
from tfimpl.keras._backend import keras, ops
from tfimpl.keras.blocks import (_check_bool, keras_attention_mask,  # noqa: F401
                                 multi_head_attention_layer)
from tfimpl.numpy._checks import check_heads, check_ndim, check_qkv


def causal_mask(seq_len_q: int, seq_len_k: int):
    """(Tq, Tk) boolean, True where query i may see key j, i.e. j <= i."""
    return ops.tril(ops.ones((seq_len_q, seq_len_k), dtype="bool"))


def split_heads(x, n_heads: int):
    """(B, T, D) -> (B, H, T, d_k)."""
    check_ndim("x", x, 3, "(B, T, D)")
    check_heads(x.shape[-1], n_heads)
    batch, seq, d_model = ops.shape(x)
    x = ops.reshape(x, (batch, seq, n_heads, d_model // n_heads))          # (B, T, H, d_k)
    return ops.transpose(x, (0, 2, 1, 3))                                   # (B, H, T, d_k)


def merge_heads(x):
    """(B, H, T, d_k) -> (B, T, H·d_k), the inverse of split_heads."""
    check_ndim("x", x, 4, "(B, H, T, d_k)")
    batch, heads, seq, d_k = ops.shape(x)
    return ops.reshape(ops.transpose(x, (0, 2, 1, 3)), (batch, seq, heads * d_k))  # (B, T, D)


def scaled_dot_product_attention(q, k, v, mask=None, causal=False, return_weights=False):
    """softmax(Q Kᵀ / √d_k + mask) · V for q: (B, H, Tq, d_k), k: (B, H, Tk, d_k), v: (B, H, Tk, d_v).

    Returns out (B, H, Tq, d_v), or (out, weights (B, H, Tq, Tk)) when return_weights.
    mask: boolean, True = may attend, broadcastable to (B, H, Tq, Tk). A fully masked row gets
    Keras' answer: zero weights with return_weights, the mean of V without (module docstring).
    """
    check_qkv(q, k, v)
    if mask is not None:
        _check_bool("mask", mask)
    scale = 1.0 / math.sqrt(q.shape[-1])
    if not return_weights:
        to_bthd = (0, 2, 1, 3)                                              # (B, H, T, d) <-> (B, T, H, d)
        out = ops.dot_product_attention(ops.transpose(q, to_bthd), ops.transpose(k, to_bthd),
                                        ops.transpose(v, to_bthd), mask=mask, scale=scale,
                                        is_causal=causal)                    # (B, Tq, H, d_v)
        return ops.transpose(out, to_bthd)                                  # (B, H, Tq, d_v)
    if causal:
        tri = causal_mask(q.shape[2], k.shape[2])                           # (Tq, Tk)
        mask = tri if mask is None else ops.logical_and(mask, tri)
    scores = ops.einsum("bhqd,bhkd->bhqk", ops.multiply(q, ops.cast(scale, q.dtype)), k)  # (B, H, Tq, Tk)
    weights = keras.layers.Softmax(axis=-1, dtype=keras.backend.standardize_dtype(q.dtype))(
        scores, mask=mask)                                                  # (B, H, Tq, Tk)
    out = ops.einsum("bhqk,bhkd->bhqd", weights, v)                         # (B, H, Tq, d_v)
    return out, weights


def multi_head_attention(p, x_q, x_kv, n_heads, mask=None, key_padding_mask=None, causal=False,
                         return_weights=False):
    """MultiHead(x_q, x_kv): x_q (B, Tq, D) attends over x_kv (B, Tk, D) -> (B, Tq, D).

    Builds a Keras MultiHeadAttention with weights p (tfimpl's layout) and calls it; with
    return_weights, also the (B, H, Tq, Tk) weights (return_attention_scores=True).
    """
    check_ndim("x_q", x_q, 3, "(B, T, D)")
    check_ndim("x_kv", x_kv, 3, "(B, T, D)")
    batch, seq_q, _ = x_q.shape
    layer = loaders.build_mha(p, n_heads, dtype=keras.backend.standardize_dtype(x_q.dtype))
    keras_mask = keras_attention_mask(mask, key_padding_mask, batch, seq_q, x_kv.shape[1])
    return layer(x_q, x_kv, attention_mask=keras_mask, use_causal_mask=causal,
                 return_attention_scores=return_weights)
