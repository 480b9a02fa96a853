"""`keras-function`: the Keras layers of `keras` traced once by tf.function, then run as a graph
(the trace's time is the record's compile_s, apart from the samples).

Tests: tests/impls/test_keras_harness.py.
"""

from bench.impls.keras import declare

IMPL = declare("keras-function", "function",
               "Keras 3 layers on TensorFlow, traced by tf.function (graph mode)")
