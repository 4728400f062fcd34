"""GPU set-up shared by the steps: memory growth instead of taking all GPU memory at start."""

import logging
import os


def allow_memory_growth():
    """Let the active Keras backend take GPU memory as it needs it.

    TensorFlow: `set_memory_growth` on every visible GPU (must run before the GPU is
    first used). JAX: no preallocation (XLA_PYTHON_CLIENT_PREALLOCATE=false), which
    only takes effect if set before JAX starts its GPU backend. Safe to call on a
    machine without a GPU.
    """
    import keras

    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as error:  # The GPU was already initialised.
            logging.warning("Could not enable memory growth on %s: %s", gpu.name, error)
