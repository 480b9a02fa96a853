"""`keras`, `keras-function`, `keras-xla`: Keras 3 layers on TensorFlow (tfimpl.keras), three ways.

    keras           eager: each call runs the layers op by op from Python, as torch does
    keras-function  tf.function: the call traced once into a graph, then the graph runs
    keras-xla       tf.function(jit_compile=True): the graph compiled by XLA into fused kernels

One timed call is the same computation in all three (forward, or forward and
tf.GradientTape's gradients of the outputs' sum for every variable and float input). The first
call of a traced function traces it (and XLA compiles it): that call is made in build(), its
wall time goes to the record's `compile_s` (trace + compile + one run) and never into the
samples. Blocks: attention (keras.ops.dot_product_attention), mha (layers.MultiHeadAttention),
ffn (Dense + activation), encoder_layer / encoder (tfimpl.keras.layers, the Keras examples'
TransformerBlock), model (tfimpl.keras.bert, a BERT from Keras layers).

Attention: TensorFlow's dot_product_attention materialises the logits, a scaled copy and the
probabilities ("library"); the weights are read back through return_attention_scores=True
(the layer's own explicit path, the same numbers when no row is fully masked).
Precisions: fp64, fp32, bf16 (every variable and op bfloat16) and amp-bf16 (Keras' mixed
precision policy "mixed_bfloat16": float32 variables, bfloat16 compute).
Peak memory: TensorFlow's allocator statistics (bench.trackers.tf_runtime.peak_tf); the prediction is
tfimpl.costs' model of a library attention that holds scores and probabilities at once (the
torch MATH-sdpa / HF eager model: TensorFlow's kernels allocate alike, within its scaled copy).
FLOPs: TensorFlow's own per-op statistics (bench.trackers.tf_runtime.count_flops) vs tfimpl.costs.

Tests: tests/impls/test_keras_harness.py.
"""

from __future__ import annotations

import time

import numpy as np

from bench import blocks, modes, precision
from bench.trackers import tf_runtime
from bench.case import Case
from bench.impls.base import Impl, Prepared, Unsupported
from bench.impls.common import make_inputs, make_params, model_config
from tfimpl import costs

BLOCKS = ("attention", "mha", "ffn", "encoder_layer", "encoder", "model")
PRECISIONS = ("fp64", "fp32", "bf16", "amp-bf16")
STYLES = ("eager", "function", "xla")
INSTALL = 'pip install -e ".[tf]"'


def _layer(case: Case, cfg, params: dict, policy: str):
    """The block's Keras layer holding the case's seeded weights, or None for bare attention."""
    loaders = tf_runtime.keras_modules().loaders
    build = {"attention": None,
             "mha": lambda: loaders.build_mha(params, case.n_heads, dtype=policy),
             "ffn": lambda: loaders.build_ffn(params, case.activation, dtype=policy),
             "encoder_layer": lambda: loaders.build_encoder_layer(params, cfg, dtype=policy),
             "encoder": lambda: loaders.build_encoder(params, cfg, dtype=policy),
             "model": lambda: loaders.build_bert(params, cfg, dtype=policy)}[case.block]
    return None if build is None else build()


def _forward(case: Case, layer, inputs: dict, weights: bool = False):
    """call(): the block's forward (a tuple of outputs for the model: hidden, pooled)."""
    scaled_dot_product_attention = tf_runtime.keras_modules().attention.scaled_dot_product_attention
    if case.block == "attention":
        q, k, v = inputs["q"], inputs["k"], inputs["v"]
        return lambda: scaled_dot_product_attention(q, k, v, causal=case.causal,
                                                    return_weights=weights)
    if case.block == "mha":
        x = inputs["x"]
        return lambda: layer(x, x, use_causal_mask=case.causal, return_attention_scores=weights)
    if case.block == "model":
        ids = inputs["input_ids"]
        return lambda: layer(ids)
    x = inputs["x"]
    return lambda: layer(x)


def _step(case: Case, call, leaves: list):
    """The mode's step: the forward, or the forward and the gradients of the outputs' sum."""
    if not modes.get(case.mode).grad:
        return call
    tensorflow = tf_runtime.tf()

    def step():
        with tensorflow.GradientTape() as tape:      # trainable variables are watched anyway
            for t in leaves:
                if isinstance(t, tensorflow.Tensor):
                    tape.watch(t)
            out = call()
            outs = out if isinstance(out, tuple) else (out,)
            loss = tensorflow.add_n([tensorflow.reduce_sum(tensorflow.cast(o, "float32"))
                                     for o in outs])
        grads = tape.gradient(loss, leaves)
        return outs[0], grads          # returned, so a traced graph cannot prune the backward
    return step


def _tf_inputs(case: Case, policy: str) -> dict:
    tf = tf_runtime.tf
    compute = policy.removeprefix("mixed_")
    out = {}
    for name, arr in make_inputs(case).items():
        out[name] = tf().constant(arr if arr.dtype.kind == "i" else arr.astype(np.float64),
                                  dtype=None if arr.dtype.kind == "i" else "float64")
        if arr.dtype.kind != "i":
            out[name] = tf().cast(out[name], compute)
    return out


def build_keras(case: Case, style: str) -> Prepared:
    if case.device != "cpu":
        raise Unsupported("tensorflow-cpu runs on cpu only")
    tf = tf_runtime.tf()
    cfg = model_config(case)
    policy = tf_runtime.policy(case.precision)
    layer = _layer(case, cfg, make_params(case, cfg), policy)
    inputs = _tf_inputs(case, policy)
    leaves = []                              # what the gradients are taken for
    if modes.get(case.mode).grad:
        leaves = (list(layer.trainable_variables) if layer is not None else []) + \
            [t for t in inputs.values() if t.dtype.is_floating]
    python_step = _step(case, _forward(case, layer, inputs), leaves)
    runner = {"eager": python_step, "function": tf.function(python_step),
              "xla": tf.function(python_step, jit_compile=True)}[style]
    compile_s = None
    if style != "eager":                     # the first call traces (and compiles): apart
        start = time.perf_counter()
        runner()
        compile_s = time.perf_counter() - start
    last: list = [None]

    def fn():
        out = runner()
        last[0] = out[0] if isinstance(out, tuple) else out
        return last[0]

    def output() -> np.ndarray:
        if last[0] is None:
            raise RuntimeError("output() called before fn()")
        return _float64(last[0])

    evaluate = None
    if case.block in ("attention", "mha"):
        with_weights = _forward(case, layer, inputs, weights=True)

        def evaluate():                      # eager, the layer's explicit path
            out, weights = with_weights()
            return _float64(out), _float64(weights)

    return Prepared(fn=fn, output=output, backend="tensorflow", device=case.device,
                    evaluate=evaluate, compile_s=compile_s,
                    count_flops=lambda: tf_runtime.count_flops(python_step))


def _float64(t) -> np.ndarray:
    return tf_runtime.tf().cast(t, "float64").numpy()


def library_costs(case: Case, cfg) -> dict:
    """Peak memory predicted by tfimpl.costs' library-attention model (torch's accounting)."""
    peak = costs.predicted_peak_bytes(blocks.get(case.block).cost_block, cfg, case.batch, case.seq_len,
                                      precision.get(case.precision).bytes_per_element, "library",
                                      modes.get(case.mode).peak_mode, causal=case.causal,
                                      threads=case.threads, backend="torch")
    return {"peak_bytes_predicted": peak}


def declare(name: str, style: str, description: str) -> Impl:
    return Impl(name=name, description=description, backend="tensorflow", blocks=BLOCKS,
                precisions=PRECISIONS, modes=("forward", "forward+backward"), devices=("cpu",),
                attention="library", exposes_weights=True,
                build=lambda case: build_keras(case, style), requires=("tensorflow", "keras"),
                install=INSTALL, costs=library_costs)


IMPL = declare("keras", "eager", "Keras 3 layers on TensorFlow, eager (op by op from Python)")
