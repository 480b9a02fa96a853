"""`keras-xla`: the Keras layers of `keras` in tf.function(jit_compile=True): XLA compiles the
traced graph into fused CPU kernels (trace + compile time is the record's compile_s).

Tests: tests/impls/test_keras_harness.py.
"""

from bench.impls.keras import declare

IMPL = declare("keras-xla", "xla",
               "Keras 3 layers on TensorFlow, tf.function(jit_compile=True): XLA-compiled")
