"""bench.trackers.tf_runtime: TensorFlow's FLOP count reconciled with tfimpl.costs, its allocator peak."""

import importlib.util

import numpy as np
import pytest

if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("keras") is None:
    pytest.skip("needs the [tf] extra: pip install 'tfbench[tf]'", allow_module_level=True)

from bench.trackers import tf_runtime  # noqa: E402
from tfimpl import costs  # noqa: E402
from tfimpl import params as P  # noqa: E402
from tfimpl.config import ModelConfig  # noqa: E402
from tfimpl.keras import loaders  # noqa: E402

CFG = ModelConfig(d_model=32, n_heads=4, d_ff=64, n_layers=1)
B, T = 2, 12


def test_registered_matmul_statistics_plus_einsum_equal_the_analytic_count():
    tf = tf_runtime.tf()
    x = tf.constant(np.random.default_rng(0).standard_normal((B, T, CFG.d_model)), "float32")
    layer = loaders.build_encoder_layer(P.init_params("encoder_layer", CFG, 0), CFG)
    graph = tf.function(lambda: layer(x)).get_concrete_function().graph
    parts = tf_runtime.graph_flops(graph)
    analytic = costs.forward_flops("encoder_layer", CFG, B, T)
    # EinsumDense projections and the FFN lower to (Batch)MatMul, which TF has statistics for;
    # the two attention einsums stay Einsum ops, which it has none for: counted from shapes
    assert parts["einsum"] == analytic["attn_scores"] + analytic["attn_weighted_sum"]
    assert parts["matmul"] + parts["einsum"] == analytic["total"]
    assert tf_runtime.count_flops(lambda: layer(x)) == analytic["total"]


def test_allocator_peak_sees_allocations_from_256_kib():
    if not tf_runtime.has_allocator_stats("cpu"):
        pytest.skip("TensorFlow keeps no CPU allocator statistics here (oneDNN off: no AVX-512)")
    tf = tf_runtime.tf()
    small = tf.zeros((65536 - 1,), "float32")                          # 262140 bytes
    large = tf.zeros((65536,), "float32")                              # 262144 bytes
    assert tf_runtime.peak_tf(lambda: small * 2.0) == 0
    assert tf_runtime.peak_tf(lambda: large * 2.0) == 262144


def test_peak_falls_back_to_rss_without_allocator_stats(monkeypatch):
    from bench.trackers import memory

    tf = tf_runtime.tf()
    monkeypatch.setattr(tf_runtime, "has_allocator_stats", lambda device="cpu": False)
    peak, method = memory.peak_bytes_of(lambda: tf.zeros((4 << 20,), "float32") * 2.0,
                                        "tensorflow")
    assert method == tf_runtime.RSS_METHOD and peak >= 0


def test_policy_of_each_precision():
    assert [tf_runtime.policy(p) for p in ("fp64", "fp32", "bf16", "amp-bf16")] == \
        ["float64", "float32", "bfloat16", "mixed_bfloat16"]
