"""Import Keras 3 on the TensorFlow backend, the one place tfimpl.keras touches the environment.

Keras 3 picks its backend when it is first imported, from the KERAS_BACKEND environment
variable (default "tensorflow", but a user's ~/.keras/keras.json may say otherwise). tfimpl.keras
sets it to "tensorflow" explicitly before that import, and refuses to run on a Keras that was
already imported with another backend (the weights, masks and tests here assume TensorFlow).

TensorFlow is imported only from this module, and this module only from tfimpl.keras: nothing
else in the project pays TensorFlow's import time (seconds) unless it asks for a Keras block.
"""

from __future__ import annotations

import os
import sys

BACKEND = "tensorflow"
INSTALL_HINT = "pip install 'tfbench[tf]' (tensorflow-cpu 2.21, keras 3.15)"


def _import():
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = BACKEND
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")      # keep TF's C++ start-up chatter off stderr
    try:
        import keras
        import tensorflow as tf
    except ImportError as err:
        raise ImportError(f"tfimpl.keras needs TensorFlow and Keras 3: {INSTALL_HINT} ({err})") from err
    if keras.backend.backend() != BACKEND:
        raise ImportError(f"tfimpl.keras needs Keras on the {BACKEND} backend, but keras was already "
                          f"imported with {keras.backend.backend()!r}; set KERAS_BACKEND={BACKEND} "
                          f"before anything imports keras")
    return keras, tf


keras, tf = _import()
ops = keras.ops
