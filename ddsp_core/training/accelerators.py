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


def has_gpu():
    """Whether the active Keras backend sees a GPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    return False


def cpu_has_bfloat16_units(cpuinfo_path="/proc/cpuinfo"):
    """Whether the CPU computes bfloat16 natively (x86 AMX-BF16 or AVX512-BF16 flags)."""
    try:
        with open(cpuinfo_path) as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"amx_bf16", "avx512_bf16"} & set(flags))


def fast_precision():
    """'bfloat16' where it is fast (a GPU, or a CPU with bfloat16 units), else 'float32'."""
    return "bfloat16" if has_gpu() or cpu_has_bfloat16_units() else "float32"
