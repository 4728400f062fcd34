"""Small tensor helpers: padding or differencing one axis, cropping centre padding, NaN
replacement, and gradient reversal."""

from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.units import float32


def _axis_index(name, x, axis):
    """`axis` as a non-negative index into x's axes; ValueError if it is out of range."""
    rank = len(x.shape)
    if not -rank <= axis < rank:
        raise ValueError(f"{name}: axis {axis} is out of range for a tensor of rank {rank} (shape {tuple(x.shape)}).")
    return axis % rank


def pad_axis(x, padding=(0, 0), axis=0, **pad_kwargs):
    """Pads one axis of a tensor, leaving the others alone.

    Args:
        x: Tensor of any rank.
        padding: (before, after): number of entries added at each end of `axis`.
        axis: The axis to pad (negative counts from the end).
        **pad_kwargs: Passed to keras.ops.pad: `mode` ('constant', 'reflect', 'symmetric';
            TensorFlow's upper-case names are accepted) and `constant_values`.

    Returns:
        `x` with shape[axis] grown by before + after.
    """
    x = ops.convert_to_tensor(x)
    axis = _axis_index("pad_axis", x, axis)
    if len(padding) != 2 or min(padding) < 0:
        raise ValueError(f"padding must be (before, after) with both >= 0, got {padding!r}.")
    if "mode" in pad_kwargs:
        pad_kwargs["mode"] = str(pad_kwargs["mode"]).lower()
    widths = [[0, 0]] * len(x.shape)
    widths[axis] = [int(padding[0]), int(padding[1])]
    return ops.pad(x, widths, **pad_kwargs)


def diff(x, axis=-1):
    """Finite difference along one axis: x[i + 1] - x[i].

    Args:
        x: Tensor of any rank, with at least one entry along `axis`.
        axis: Axis to difference (negative counts from the end).

    Returns:
        Tensor with shape[axis] one less than `x`'s.

    Raises:
        ValueError: if `axis` is out of range.
    """
    x = ops.convert_to_tensor(x)
    axis = _axis_index("diff", x, axis)
    front = [slice(None)] * len(x.shape)
    back = [slice(None)] * len(x.shape)
    front[axis], back[axis] = slice(1, None), slice(None, -1)
    return x[tuple(front)] - x[tuple(back)]


def center_crop(audio, frame_size):
    """Removes the padding that centring frames adds: frame_size // 2 samples at each end.

    The inverse of padding a signal by frame_size // 2 on both sides before framing it.

    Args:
        audio: [batch, n_samples, ...].
        frame_size: Frame length in samples the padding was made for.

    Returns:
        [batch, n_samples - 2 * (frame_size // 2), ...] (unchanged for frame_size < 2).
    """
    checks.check_positive_int("frame_size", frame_size)
    pad = int(frame_size) // 2
    if pad == 0:
        return audio
    return audio[:, pad:-pad]


def nan_to_num(x, value=0.0):
    """Replaces NaN entries with `value` (infinities are kept). Same shape as `x`."""
    x = float32(x)
    return ops.where(ops.isnan(x), ops.cast(value, x.dtype), x)


def gradient_reversal(x):
    """Identity in the forward pass whose gradient is the negated incoming gradient.

    Used for adversarial training (e.g. making an encoding carry no pitch information).
    """
    x = float32(x)
    return ops.stop_gradient(2.0 * x) - x
