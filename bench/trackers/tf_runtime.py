"""TensorFlow's side of measuring: threads, peak memory, FLOP count, dtype policy.

Imported only when a case of a `tensorflow`-backend implementation runs (bench/impls/keras*.py),
so no other command pays TensorFlow's import time. TensorFlow itself comes through tfimpl.keras,
which fixes KERAS_BACKEND=tensorflow before the first `import keras`.

    set_threads(n)        TensorFlow's intra-op pool = n, inter-op pool = 1 (one op at a time,
                          like torch's and NumPy's single op stream). TensorFlow fixes both at
                          its first op: a later case asking for another count fails with a
                          one-line reason (run such sweeps with `executor: {kind: process}`).
    peak_tf(fn, device)   bytes above baseline at the peak of one call, from TensorFlow's own
                          allocator statistics (tf.config.experimental.reset_memory_stats +
                          get_memory_info("CPU:0")). On CPU these exist only with oneDNN on (TF's
                          default; TF_ENABLE_ONEDNN_OPTS=0 removes them) and come from oneDNN's
                          CPU allocator, whose BFC pool serves every allocation of >= 256 KiB
                          (rounded up to 256 B) and keeps the statistics; smaller tensors come
                          from a small-size allocator that is NOT counted (measured: a 262140-
                          byte tensor shows 0, a 262144-byte one 262144). So the peak is exact
                          for the large tensors (the B·H·T·T matrices, the (B, T, d_ff) hidden
                          layer at large T) and misses the small ones; the RSS column is the
                          cross-check. Memory a kernel takes from malloc directly is not in it.
                          Where TensorFlow keeps no statistics (has_allocator_stats: oneDNN
                          off, e.g. an AVX2-only CPU) bench.trackers.memory uses the RSS
                          sampler instead and names that method (RSS_METHOD).
    count_flops(graph_fn) the matmul FLOPs of one call: TensorFlow's registered "flops"
                          statistics (the ones tf.profiler's float_operation() view sums) for
                          MatMul / BatchMatMul ops, plus Einsum ops, which have no statistic,
                          counted as 2·∏(index sizes) from the graph's static shapes. Elementwise
                          ops are left out, as tfimpl.costs' "total" leaves them out.
    policy(precision)     the Keras dtype policy of a bench precision (amp-bf16 -> mixed_bfloat16)

Tests: tests/trackers/test_keras_tf_runtime.py.
"""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Callable

from bench import precision as bench_precision

METHOD = "tf-allocator"          # oneDNN BFC pool statistics, allocations >= 256 KiB
RSS_METHOD = "rss (TensorFlow keeps no allocator statistics on this CPU: oneDNN off)"
MATMUL_OPS = ("MatMul", "BatchMatMul", "BatchMatMulV2", "BatchMatMulV3")


def tf():
    """TensorFlow, imported through tfimpl.keras (KERAS_BACKEND=tensorflow first)."""
    return keras_modules().tf


def keras_modules() -> SimpleNamespace:
    """tf (TensorFlow), attention and loaders of tfimpl.keras.

    The one place bench imports TensorFlow, lazily: importing it takes seconds, and only a case
    of a tensorflow-backend implementation (or `explain`'s Keras lines) should pay that.
    """
    from tfimpl.keras import attention, loaders
    from tfimpl.keras._backend import tf as tensorflow

    return SimpleNamespace(tf=tensorflow, attention=attention, loaders=loaders)


def set_threads(n: int) -> None:
    """Intra-op threads n, inter-op 1, before TensorFlow's first op (RuntimeError after it)."""
    threading = tf().config.threading
    if (threading.get_intra_op_parallelism_threads() == n
            and threading.get_inter_op_parallelism_threads() == 1):
        return
    try:
        threading.set_intra_op_parallelism_threads(n)
        threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        got = threading.get_intra_op_parallelism_threads() or "its default"
        raise RuntimeError(f"TensorFlow's thread pools were fixed at its first op ({got} threads); "
                           f"threads={n} needs a fresh process (executor: {{kind: process}})") from None


def _device_name(device: str) -> str:
    return {"cpu": "CPU:0", "cuda": "GPU:0"}[device]


def has_allocator_stats(device: str = "cpu") -> bool:
    """Does TensorFlow keep allocator statistics for `device` here? On CPU only with oneDNN on,
    which TensorFlow turns on by itself only on CPUs with AVX-512 (VNNI/BF16) or AMX: on an
    AVX2-only CPU (an AMD EPYC VM was one) reset_memory_stats raises 'Cannot reset memory
    stats for device CPU:0'."""
    try:
        tf().config.experimental.reset_memory_stats(_device_name(device))
    except ValueError:
        return False
    return True


def peak_tf(fn: Callable[[], object], device: str = "cpu") -> int:
    """Peak bytes above the baseline during one fn(), from TensorFlow's allocator statistics."""
    experimental = tf().config.experimental
    name = _device_name(device)
    experimental.reset_memory_stats(name)
    baseline = experimental.get_memory_info(name)["current"]
    fn()
    return max(0, int(experimental.get_memory_info(name)["peak"]) - int(baseline))


def _einsum_flops(op) -> int:
    """2 · ∏ sizes of every index letter of `op`'s equation (one multiply-add per term)."""
    equation = op.get_attr("equation").decode()
    inputs = equation.split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for letters, tensor in zip(inputs, op.inputs):
        dims = tensor.shape.as_list()
        if "." in letters or len(letters) != len(dims) or None in dims:
            raise ValueError(f"einsum {equation!r}: shapes {dims} are not static")
        sizes.update(zip(letters, dims))
    return 2 * math.prod(sizes.values())


def graph_flops(graph) -> dict[str, int]:
    """{"matmul": registered statistics of the matmul ops, "einsum": Einsum ops from shapes}."""
    from tensorflow.python.framework import ops as tf_ops

    counts = {"matmul": 0, "einsum": 0}
    for op in graph.get_operations():
        if op.type in MATMUL_OPS:
            counts["matmul"] += int(tf_ops.get_stats_for_node_def(graph, op.node_def, "flops").value)
        elif op.type == "Einsum":
            counts["einsum"] += _einsum_flops(op)
        elif op.type in ("PartitionedCall", "StatefulPartitionedCall", "While", "If"):
            raise ValueError(f"graph holds a nested {op.type}: its FLOPs would not be counted")
    return counts


def count_flops(python_fn: Callable[[], object]) -> int:
    """Matmul FLOPs of one call of python_fn, traced once into a graph (nothing is executed)."""
    graph = tf().function(python_fn).get_concrete_function().graph
    counts = graph_flops(graph)
    return counts["matmul"] + counts["einsum"]


def policy(name: str) -> str:
    """Keras dtype policy of bench precision `name`: its storage dtype, or mixed_<autocast>."""
    p = bench_precision.get(name)
    return p.storage if p.autocast is None else f"mixed_{p.autocast}"
