"""tfimpl's parameter layout <-> Keras layers' variables, and built, loaded Keras blocks.

Our layout follows torch.nn.Linear: `weight` is (out, in) and y = x @ Wᵀ + b. Keras keeps
kernels as (in, ...out) and computes y = x @ kernel + bias. The mapping, per variable:

    ours                          Keras variable                      Keras shape
    q|k|v.weight (H·d_head, D)    MultiHeadAttention.{query,key,value}_dense.kernel  (D, H, d_head)
                                  = weight.T.reshape(D, H, d_head)  (head h is rows h·d_head .. of
                                  weight, the same split as our split_heads)
    q|k|v.bias   (H·d_head,)      .{query,key,value}_dense.bias       (H, d_head) = bias.reshape
    o.weight     (D, H·d_head)    .output_dense.kernel                (H, d_head, D)
                                  = weight.T.reshape(H, d_head, D)  (our merge_heads order)
    o.bias       (D,)             .output_dense.bias                  (D,)
    ff1|ff2.weight (out, in)      Dense.kernel                        (in, out) = weight.T
    norm*.weight / .bias          LayerNormalization.gamma / .beta    (D,)
    embeddings.*.weight (V, D)    Embedding.embeddings                (V, D)  (same)
    pooler.weight (D, D)          Dense.kernel                        (D, D) = weight.T

So every kernel is `weight.T` reshaped to the variable's shape, and back `kernel.reshape(in, -1).T`;
every other array is reshaped only. `bindings(layer, kind)` lists (our name, variable, is_kernel);
load, read back and gradient mapping all go through it.
"""

from __future__ import annotations

import numpy as np

from tfimpl.config import ModelConfig
from tfimpl.keras._backend import keras
from tfimpl.keras.blocks import (Bert, BertEmbeddings, Encoder, EncoderLayer, feed_forward_layer,
                                 multi_head_attention_layer)
from tfimpl.params import subtree

KERNEL, ARRAY = True, False


def _mha(layer) -> list:
    out = []
    for ours, dense in (("q", layer.query_dense), ("k", layer.key_dense),
                        ("v", layer.value_dense), ("o", layer.output_dense)):
        out += [(f"{ours}.weight", dense.kernel, KERNEL), (f"{ours}.bias", dense.bias, ARRAY)]
    return out


def _dense(name: str, dense) -> list:
    return [(f"{name}.weight", dense.kernel, KERNEL), (f"{name}.bias", dense.bias, ARRAY)]


def _norm(name: str, norm) -> list:
    return [(f"{name}.weight", norm.gamma, ARRAY), (f"{name}.bias", norm.beta, ARRAY)]


def _prefixed(prefix: str, rows: list) -> list:
    return [(f"{prefix}.{name}", var, is_kernel) for name, var, is_kernel in rows]


def _ffn(seq) -> list:
    ff1, ff2 = seq.layers
    return _dense("ff1", ff1) + _dense("ff2", ff2)


def _encoder_layer(layer) -> list:
    return (_prefixed("self_attn", _mha(layer.self_attn)) + _prefixed("ffn", _ffn(layer.ffn))
            + _norm("norm1", layer.norm1) + _norm("norm2", layer.norm2))


def _encoder(layer) -> list:
    rows = []
    for i, block in enumerate(layer.blocks):
        rows += _prefixed(f"layers.{i}", _encoder_layer(block))
    return rows + ([] if layer.norm is None else _norm("norm", layer.norm))


def _embeddings(layer) -> list:
    return [(f"{name}.weight", getattr(layer, name).embeddings, ARRAY)
            for name in ("word", "position", "token_type")] + _norm("norm", layer.norm)


def _bert(layer) -> list:
    return (_prefixed("embeddings", _embeddings(layer.embeddings))
            + _prefixed("encoder", _encoder(layer.encoder)) + _dense("pooler", layer.pooler))


BINDINGS = {"mha": _mha, "ffn": _ffn, "encoder_layer": _encoder_layer, "encoder": _encoder,
            "bert_embeddings": _embeddings, "bert": _bert}


def bindings(layer, kind: str) -> list[tuple[str, object, bool]]:
    """(our name, Keras variable, is_kernel) for every weight of a built layer of `kind`."""
    if kind not in BINDINGS:
        raise ValueError(f"kind must be one of {tuple(BINDINGS)}, got {kind!r}")
    return BINDINGS[kind](layer)


def to_keras_array(value, shape, is_kernel: bool) -> np.ndarray:
    """Our array -> the Keras variable's layout (kernels: weight.T reshaped)."""
    value = np.asarray(value)
    return (value.T if is_kernel else value).reshape(shape)


def from_keras_array(value, our_shape, is_kernel: bool) -> np.ndarray:
    """A Keras variable's (or its gradient's) value -> our layout, as float64."""
    value = np.asarray(value, dtype=np.float64)
    if is_kernel:
        n_out, n_in = our_shape
        return value.reshape(n_in, n_out).T                                 # (in, out) -> (out, in)
    return value.reshape(our_shape)


def load(layer, kind: str, params: dict) -> None:
    """Assign params (tfimpl's layout) to a built Keras layer; every name must match exactly."""
    rows = bindings(layer, kind)
    names = {name for name, _, _ in rows}
    missing, extra = sorted(names - set(params)), sorted(set(params) - names)
    if missing or extra:
        raise ValueError(f"params for a Keras {kind}: missing {missing[:4]}, unexpected {extra[:4]}")
    for name, var, is_kernel in rows:
        value = to_keras_array(params[name], tuple(var.shape), is_kernel)
        var.assign(value.astype(keras.backend.standardize_dtype(var.dtype)))


def read(layer, kind: str, our_shapes: dict) -> dict[str, np.ndarray]:
    """A built layer's weights in our layout (float64); our_shapes: tfimpl.params.param_shapes."""
    return {name: from_keras_array(var.numpy(), our_shapes[name], is_kernel)
            for name, var, is_kernel in bindings(layer, kind)}


def grads_to_params(layer, kind: str, grads, our_shapes: dict) -> dict[str, np.ndarray]:
    """Gradients, in the order of `variables(layer, kind)`, mapped to our layout (float64)."""
    rows = bindings(layer, kind)
    return {name: from_keras_array(g, our_shapes[name], is_kernel)
            for (name, _, is_kernel), g in zip(rows, grads)}


def variables(layer, kind: str) -> list:
    """The layer's variables in bindings order (what GradientTape.gradient is asked for)."""
    return [var for _, var, _ in bindings(layer, kind)]


def _d_model(params: dict, name: str) -> int:
    return int(np.shape(params[name])[1])


def build_mha(params: dict, n_heads: int, dtype="float32"):
    """A keras.layers.MultiHeadAttention, built for (None, None, D), holding params."""
    d_model = _d_model(params, "q.weight")
    layer = multi_head_attention_layer(d_model, n_heads, dtype=dtype)
    layer.build((None, None, d_model), (None, None, d_model))
    load(layer, "mha", params)
    return layer


def build_ffn(params: dict, activation: str = "gelu", dtype="float32"):
    """keras.Sequential([Dense(d_ff, act), Dense(D)]), built, holding params."""
    d_ff, d_model = np.shape(params["ff1.weight"])
    layer = feed_forward_layer(int(d_model), int(d_ff), activation, dtype=dtype)
    layer.build((None, None, int(d_model)))
    load(layer, "ffn", params)
    return layer


def _built(layer, kind: str, params: dict, input_shape):
    layer.build(input_shape)
    load(layer, kind, params)
    return layer


def build_encoder_layer(params: dict, cfg: ModelConfig, dtype="float32"):
    """tfimpl.keras.layers.EncoderLayer (cfg.norm_first picks post/pre-norm), holding params."""
    return _built(EncoderLayer(cfg, dtype=dtype), "encoder_layer", params, (None, None, cfg.d_model))


def build_encoder(params: dict, cfg: ModelConfig, dtype="float32"):
    """tfimpl.keras.layers.Encoder (cfg.n_layers layers), holding params."""
    return _built(Encoder(cfg, dtype=dtype, name="encoder"), "encoder", params,
                  (None, None, cfg.d_model))


def build_bert_embeddings(params: dict, cfg: ModelConfig, dtype="float32"):
    """tfimpl.keras.bert.BertEmbeddings holding the embeddings.* of a `bert` params mapping."""
    return _built(BertEmbeddings(cfg, dtype=dtype, name="embeddings"), "bert_embeddings",
                  subtree(params, "embeddings"), (None, None))


def build_bert(params: dict, cfg: ModelConfig, dtype="float32"):
    """tfimpl.keras.bert.Bert, holding a `bert` params mapping."""
    return _built(Bert(cfg, dtype=dtype, name="bert"), "bert", params, (None, None))
