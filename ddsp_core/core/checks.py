"""Argument checks that turn bad input into errors naming the argument.

Shape checks use static shapes, so they also run while a function is traced (tf.function,
jax.jit). Value checks (NaN, negative values) need concrete values: they run in eager
mode and are skipped, at no cost, while tracing.
"""

import numpy as np


def check_positive(name, value):
    """Raises ValueError unless `value` is a finite number > 0 (e.g. a sample rate)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {value!r}.") from None
    if not np.isfinite(number) or number <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}.")


def check_positive_int(name, value):
    """Raises ValueError unless `value` is an integer > 0 (e.g. a number of samples)."""
    if isinstance(value, bool) or int(value) != value or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


def check_rank(name, x, ranks, expected_shape):
    """Raises ValueError if the rank of `x` is not in `ranks`.

    Args:
        name: Argument name, used in the message.
        x: Tensor or array.
        ranks: Allowed ranks, an int or a tuple of ints.
        expected_shape: Human-readable expected shape, e.g. '[batch, n_frames, 1]'.
    """
    ranks = (ranks,) if isinstance(ranks, int) else tuple(ranks)
    rank = len(x.shape)
    if rank not in ranks:
        raise ValueError(
            f"{name} must have shape {expected_shape} (rank {' or '.join(map(str, ranks))}), "
            f"got shape {tuple(x.shape)}."
        )


def check_dim(name, x, axis, size, expected_shape):
    """Raises ValueError if the static size of `x` along `axis` is known and != `size`."""
    actual = x.shape[axis]
    if actual is not None and size is not None and int(actual) != int(size):
        raise ValueError(f"{name} must have shape {expected_shape}, got shape {tuple(x.shape)}.")


def check_same_dims(names_and_tensors, axes, expected_shape):
    """Raises ValueError if the tensors' static sizes along `axes` differ.

    Args:
        names_and_tensors: Sequence of (name, tensor).
        axes: Axes to compare, e.g. (0, 1) for batch and frames.
        expected_shape: Human-readable description used in the message.
    """
    for axis in axes:
        sizes = {name: x.shape[axis] for name, x in names_and_tensors if x.shape[axis] is not None}
        if len(set(int(s) for s in sizes.values())) > 1:
            listing = ", ".join(f"{name} {tuple(x.shape)}" for name, x in names_and_tensors)
            raise ValueError(f"Shapes do not match along axis {axis} ({expected_shape}): {listing}.")


def concrete_value(x):
    """Returns `x` as a NumPy array, or None when `x` is symbolic (being traced)."""
    try:
        return np.asarray(x)
    except Exception:  # Symbolic tf.Tensor or JAX tracer: no value to check.
        return None


def check_finite(name, x):
    """Raises ValueError if `x` has a concrete value that contains NaN or infinity."""
    value = concrete_value(x)
    if value is not None and value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        n_bad = int(np.sum(~np.isfinite(value)))
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s) (shape {tuple(value.shape)}).")


def check_non_negative(name, x, unit=""):
    """Raises ValueError if `x` has a concrete value with an entry < 0."""
    value = concrete_value(x)
    if value is not None and value.size and float(np.min(value)) < 0:
        raise ValueError(f"{name} must be >= 0{unit}, got a minimum of {float(np.min(value))}.")
