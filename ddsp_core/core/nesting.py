"""Nested dicts of tensors: keys written as 'a/b/c', lookups, and list <-> dict conversions.

DAGs (`ddsp_core.dags`) and processor groups pass results around as nested dicts, e.g.
{'harmonic': {'signal': ..., 'controls': {'amplitudes': ...}}}, and name a value by its
path, 'harmonic/controls/amplitudes'. These helpers are plain Python; they never touch
tensor values, so they work the same on every backend, eagerly or while traced.
"""

import copy

import numpy as np
from keras import ops, tree


def make_iterable(x):
    """A list to loop over: [] for None, [x] for a single tensor or non-iterable, else x itself.

    A tensor or array is wrapped rather than iterated, so its batch axis is never split.
    """
    if x is None:
        return []
    if isinstance(x, np.ndarray) or ops.is_tensor(x):
        return [x]
    try:
        iter(x)
    except TypeError:
        return [x]
    return x


def to_dict(x, keys):
    """Names the values of `x` by `keys`: dict(zip(keys, x)); a dict is returned unchanged.

    Args:
        x: A dict (returned as is), a single value or a sequence of values.
        keys: One key per value.

    Raises:
        ValueError: if the number of keys differs from the number of values.
    """
    if isinstance(x, dict):
        return x
    values = list(make_iterable(x))
    keys = list(make_iterable(keys))
    if len(keys) != len(values):
        raise ValueError(f"to_dict needs one key per value: got {len(keys)} keys {keys} for {len(values)} value(s).")
    return dict(zip(keys, values))


def copy_if_tf_function(x):
    """A shallow copy of `x`, so that changing the copy leaves the caller's container alone.

    magenta copies only inside tf.function; a shallow copy is cheap, so it is made always
    (eager or traced, on every backend).
    """
    return copy.copy(x)


def nested_keys(nested_dict, delimiter="/", prefix=""):
    """The paths of all leaves of a nested dict, e.g. ['harmonic/signal', 'harmonic/controls/f0_hz'].

    Args:
        nested_dict: Dict whose values may themselves be dicts.
        delimiter: Separator between the levels of a path.
        prefix: Path of `nested_dict` itself inside a larger dict ('' at the top).

    Returns:
        List of strings, in the dicts' insertion order; dicts are not listed, only leaves.
    """
    keys = []
    for key, value in nested_dict.items():
        path = f"{prefix}{delimiter}{key}" if prefix else key
        if isinstance(value, dict):
            keys.extend(nested_keys(value, delimiter=delimiter, prefix=path))
        else:
            keys.append(path)
    return keys


def nested_lookup(nested_key, nested_dict, delimiter="/"):
    """The value at path `nested_key` ('a/b/c' -> nested_dict['a']['b']['c']).

    Raises:
        KeyError: naming the missing part and listing every leaf path there is.
    """
    value = nested_dict
    for key in nested_key.split(delimiter):
        if not isinstance(value, dict) or key not in value:
            raise KeyError(
                f"'{key}' (part of '{nested_key}') is not in the nested dict. "
                f"Available keys: {sorted(nested_keys(nested_dict, delimiter=delimiter))}."
            )
        value = value[key]
    return value


def leaf_key(nested_key, delimiter="/"):
    """The last part of a path: 'harmonic/controls/f0_hz' -> 'f0_hz'."""
    return nested_key.split(delimiter)[-1]


def map_shape(x):
    """The same nested structure with every tensor replaced by its static shape, a list of
    ints (None for a size unknown while traced)."""

    def shape(t):
        return [None if size is None else int(size) for size in getattr(t, "shape", np.shape(t))]

    return tree.map_structure(shape, x)
