"""The Keras 3 (TensorFlow) call beside ours and PyTorch's in `bench explain`'s topics.

Each function prints the Keras call that computes the topic's block, how our weights map onto
its variables (tfimpl.keras.loaders), and `max |ours - Keras|` on the topic's own float64
example. TensorFlow is imported here only, inside the functions, and only when the [tf] extra is
installed; without it the call is printed with a line saying how to install it.

Tests: tests/tfimpl/test_keras_parity.py.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from bench.trackers import tf_runtime

WHAT = "ours - Keras"
INSTALL = "Keras/TensorFlow not installed here: pip install -e \".[tf]\" to run this check"
GELU_NOTE = ("    (TensorFlow's float64 exact GELU multiplies by 1/√2 rounded to float32, "
             "0.70710677: differences ~1e-9 are that constant, not rounding)")


def available() -> bool:
    return all(importlib.util.find_spec(m) is not None for m in ("tensorflow", "keras"))


def _call(pr, text: str) -> bool:
    pr.line(f"    Keras: {text}")
    if not available():
        pr.line(f"    ({INSTALL})")
        return False
    return True


def attention(pr, q, k, v, ours, ours_causal) -> None:
    """q, k, v: (1, 1, T, d_k) float64; ours / ours_causal: tfimpl.numpy's outputs."""
    if not _call(pr, "keras.ops.dot_product_attention(q, k, v) takes (B, T, H, d_k), "
                     "not (B, H, T, d_k): tfimpl.keras transposes"):
        return
    sdpa = tf_runtime.keras_modules().attention.scaled_dot_product_attention
    pr.check("ours vs keras.ops.dot_product_attention(q, k, v)", ours,
             sdpa(q, k, v).numpy(), what=WHAT)
    pr.check("ours vs keras.ops.dot_product_attention(..., is_causal=True)", ours_causal,
             sdpa(q, k, v, causal=True).numpy(), what=WHAT)


def mha(pr, p: dict, X: np.ndarray, n_heads: int, ours, weights) -> None:
    """X: (1, T, D); ours, weights: tfimpl.numpy's (1, T, D) output and (1, H, T, T) weights."""
    d_model = X.shape[-1]
    d_k = d_model // n_heads
    if not _call(pr, f"keras.layers.MultiHeadAttention(num_heads={n_heads}, key_dim={d_k}); "
                     f"query kernel ({d_model}, {n_heads}, {d_k}) = W_Qᵀ reshaped, output kernel "
                     f"({n_heads}, {d_k}, {d_model}) = W_Oᵀ reshaped"):
        return
    loaders = tf_runtime.keras_modules().loaders
    layer = loaders.build_mha(p, n_heads, dtype="float64")
    out, w = layer(X, X, return_attention_scores=True)
    pr.check("ours vs layers.MultiHeadAttention (output)", ours, out.numpy(), what=WHAT)
    pr.check("ours vs layers.MultiHeadAttention (weights, return_attention_scores=True)",
             weights, w.numpy(), what=WHAT)


def ffn(pr, p: dict, X: np.ndarray, ours) -> None:
    """X: (1, T, D); ours: tfimpl.numpy's GELU feed-forward of X."""
    d_ff, d_model = p["ff1.weight"].shape
    if not _call(pr, f"keras.Sequential([layers.Dense({d_ff}, activation=\"gelu\"), "
                     f"layers.Dense({d_model})]); Dense kernel = weightᵀ (in, out)"):
        return
    loaders = tf_runtime.keras_modules().loaders
    pr.check("ours vs Sequential(Dense + GELU, Dense)", ours,
             loaders.build_ffn(p, "gelu", dtype="float64")(X).numpy(), what=WHAT)
    pr.line(GELU_NOTE)


def encoder_layer(pr, p: dict, X: np.ndarray, cfg, ours) -> None:
    """X: (1, T, D); ours: tfimpl.numpy's encoder layer of X (cfg: post-norm, GELU)."""
    if not _call(pr, "tfimpl.keras.layers.EncoderLayer, the TransformerBlock of Keras' examples: "
                     "norm1(x + MultiHeadAttention(x, x)), norm2(x + Sequential(Dense, Dense)(x))"):
        return
    loaders = tf_runtime.keras_modules().loaders
    layer = loaders.build_encoder_layer(p, cfg, dtype="float64")
    pr.check("ours vs the Keras encoder layer", ours, layer(X).numpy(), what=WHAT)
    if cfg.activation == "gelu":
        pr.line(GELU_NOTE)
