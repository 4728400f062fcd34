"""Backend-dispatching gradients for tests: d sum(fn(*args)) / d args, as NumPy arrays.

Tests stay free of tf.* and jax.*; this is the one place that knows how each Keras
backend differentiates. Usage:

    from tests.gradients import gradient
    d_audio, d_ir = gradient(lambda a, ir: core.fft_convolve(a, ir), audio, ir)
"""

import keras
import numpy as np


def gradient(fn, *args):
    """Gradients of sum(fn(*args)) with respect to every argument.

    Args:
        fn: Function of len(args) float32 tensors, returning a scalar or a tensor
            (its sum is differentiated). Non-differentiable arguments (sizes, flags)
            belong in a closure, e.g. `lambda x: resample(x, 64)`.
        *args: Array-likes, converted to float32.

    Returns:
        Tuple of NumPy float32 arrays, one per argument, each the shape of that
        argument. The gradient of an argument that `fn` does not use is zeros.
    """
    if not args:
        raise ValueError("gradient needs at least one argument to differentiate with respect to.")
    arrays = [np.asarray(arg, dtype=np.float32) for arg in args]
    backend = keras.config.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.constant(array) for array in arrays]
        with tf.GradientTape() as tape:
            for tensor in tensors:
                tape.watch(tensor)
            total = tf.reduce_sum(tf.cast(fn(*tensors), tf.float32))
        grads = tape.gradient(total, tensors, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        # Gathers give IndexedSlices; densify them.
        return tuple(np.asarray(tf.convert_to_tensor(g), dtype=np.float32) for g in grads)
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def total(*tensors):
            return jnp.sum(jnp.asarray(fn(*tensors), dtype=jnp.float32))

        # jit: one compilation instead of dispatching (and compiling) every op of the trace.
        grad_fn = jax.jit(jax.grad(total, argnums=tuple(range(len(arrays)))))
        grads = grad_fn(*[jnp.asarray(a) for a in arrays])
        return tuple(np.asarray(g, dtype=np.float32) for g in grads)
    raise NotImplementedError(f"gradient() supports the tensorflow and jax Keras backends, not {backend!r}.")
