"""Resampling frame-rate controls to audio rate: linear, nearest, cubic and Hann-window interpolation.

Controls come from the network at a frame rate (e.g. 250 frames/s) and are
interpolated to the audio rate (e.g. 16000 samples/s). Frame `i` of `n_frames`
lands on output step `i * n_timesteps / n_frames` ("add_endpoint": the last frame is
held until the end), or, with add_endpoint=False, the first and last frames land on
the first and last output steps.
"""

import math

import numpy as np
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.units import float32

RESAMPLE_METHODS = ("nearest", "linear", "cubic", "window")


def _as_3d(inputs):
    """Returns (inputs as [batch, n_frames, n_channels], original shape).

    Rank-4 inputs [batch, n_frames, n_freq, n_channels] are flattened to
    [batch, n_frames, n_freq * n_channels]; `_restore_rank` undoes it.
    """
    inputs = float32(inputs)
    shape = tuple(inputs.shape)
    checks.check_rank("inputs", inputs, (1, 2, 3, 4), "[n_frames], [batch, n_frames], [batch, n_frames, n_channels] "
                      "or [batch, n_frames, n_freq, n_channels]")
    if len(shape) == 1:
        inputs = inputs[None, :, None]
    elif len(shape) == 2:
        inputs = inputs[:, :, None]
    elif len(shape) == 4:
        if shape[2] is None or shape[3] is None:
            raise ValueError(f"resample needs static n_freq and n_channels for rank-4 inputs, got shape {shape}.")
        inputs = ops.reshape(inputs, (-1, shape[1], shape[2] * shape[3]))  # [batch, n_frames, n_freq * n_channels]
    return inputs, shape


def _restore_rank(outputs, shape):
    """[batch, n_timesteps, n_channels] back to the rank (and trailing axes) of the input `shape`."""
    if len(shape) == 1:
        return outputs[0, :, 0]
    if len(shape) == 2:
        return outputs[:, :, 0]
    if len(shape) == 4:
        # [batch, n_timesteps, n_freq, n_channels]
        return ops.reshape(outputs, (-1, outputs.shape[1], shape[2], shape[3]))
    return outputs


def _interpolate_between_frames(frames, hop_size, curve):
    """Interpolates consecutive frames with a curve over each interval.

    Args:
        frames: [batch, n_points, n_channels]. Output interval i goes from frames[:, i]
            to frames[:, i + 1], so there are n_points - 1 intervals.
        hop_size: Output steps per interval.
        curve: NumPy [hop_size] weights, 0 at the interval's start, rising towards 1.

    Returns:
        [batch, (n_points - 1) * hop_size, n_channels].
    """
    start = frames[:, :-1, None, :]  # [batch, n_intervals, 1, n_channels]
    step = frames[:, 1:, None, :] - start
    weights = ops.convert_to_tensor(curve.reshape(1, 1, hop_size, 1), "float32")
    outputs = start + step * weights  # [batch, n_intervals, hop_size, n_channels]
    batch, n_intervals, n_channels = -1, frames.shape[1] - 1, frames.shape[2]
    return ops.reshape(outputs, (batch, n_intervals * hop_size, n_channels))


def _hold_last_frame(frames):
    """Appends a copy of the last frame: [batch, n_frames, c] -> [batch, n_frames + 1, c]."""
    return ops.concatenate([frames, frames[:, -1:, :]], axis=1)


def _source_positions(n_frames, n_timesteps, add_endpoint):
    """Fractional input-frame position of every output step, as NumPy float64 [n_timesteps]."""
    steps = np.arange(n_timesteps, dtype=np.float64)
    if add_endpoint or n_timesteps == 1:
        return steps * n_frames / n_timesteps
    return steps * (n_frames - 1) / (n_timesteps - 1)


def _gather_frames(frames, indices):
    """frames[:, indices, :] for a NumPy int array of indices (clipped to the valid range)."""
    indices = np.clip(indices, 0, frames.shape[1] - 1).astype("int32")
    return ops.take(frames, ops.convert_to_tensor(indices), axis=1)


def _cubic_weights(t):
    """Keys cubic convolution weights (a = -0.5) for the 4 neighbours, t in [0, 1): [4, len(t)]."""
    a = -0.5
    distances = np.stack([1 + t, t, 1 - t, 2 - t])
    near = (a + 2) * distances**3 - (a + 3) * distances**2 + 1
    far = a * distances**3 - 5 * a * distances**2 + 8 * a * distances - 4 * a
    return np.where(distances <= 1, near, far)


def resample(inputs, n_timesteps, method="linear", add_endpoint=True):
    """Interpolates frame-rate controls to `n_timesteps` steps (usually audio samples).

    Args:
        inputs: Controls at frame rate, shape [n_frames], [batch, n_frames],
            [batch, n_frames, n_channels] or [batch, n_frames, n_freq, n_channels] (each
            (freq, channel) pair is interpolated on its own). n_frames must be known
            statically.
        n_timesteps: Number of output steps, e.g. n_samples.
        method: 'nearest', 'linear', 'cubic' or 'window' (overlapping Hann windows,
            see `upsample_with_windows`; smooth, no corners at frame boundaries).
        add_endpoint: If True, frame i lands on step i * n_timesteps / n_frames and the
            last frame is held to the end. If False, the first and last frames land on
            the first and last steps.

    Returns:
        Interpolated controls, shape [n_timesteps], [batch, n_timesteps],
        [batch, n_timesteps, n_channels] or [batch, n_timesteps, n_freq, n_channels] (the
        rank of `inputs`).
    """
    checks.check_positive_int("n_timesteps", n_timesteps)
    if method not in RESAMPLE_METHODS:
        raise ValueError(f"method must be one of {RESAMPLE_METHODS}, got {method!r}.")
    frames, shape = _as_3d(inputs)
    if method == "window":
        return _restore_rank(upsample_with_windows(frames, n_timesteps, add_endpoint), shape)

    n_frames = frames.shape[1]
    if n_frames is None:
        raise ValueError("resample needs a static number of frames (inputs.shape[1]).")
    if method == "linear" and add_endpoint and n_timesteps % n_frames == 0:
        # Fast path (no gather): integer upsampling factor, straight-line interpolation.
        hop_size = n_timesteps // n_frames
        curve = np.arange(hop_size) / hop_size
        outputs = _interpolate_between_frames(_hold_last_frame(frames), hop_size, curve)
        return _restore_rank(outputs, shape)

    positions = _source_positions(n_frames, n_timesteps, add_endpoint)
    if method == "nearest":
        indices = np.floor(positions) if add_endpoint else np.floor(positions + 0.5)  # ties round up
        return _restore_rank(_gather_frames(frames, indices), shape)

    left = np.floor(positions)
    fraction = positions - left
    if method == "linear":
        weights = np.stack([1 - fraction, fraction])
        offsets = (0, 1)
    else:  # cubic
        weights = _cubic_weights(fraction)
        offsets = (-1, 0, 1, 2)
    outputs = 0.0
    for offset, weight in zip(offsets, weights):
        neighbour = _gather_frames(frames, left + offset)
        outputs = outputs + neighbour * ops.convert_to_tensor(weight.reshape(1, -1, 1), "float32")
    return _restore_rank(outputs, shape)


def upsample_with_windows(inputs, n_timesteps, add_endpoint=True):
    """Upsamples frames by overlap-adding Hann windows centred on each frame.

    Each frame is multiplied by a Hann window two hops long, centred on its output
    position; windows overlap by half and sum to one, so between two frames the output
    moves from one value to the next along a raised cosine. This gives smooth amplitude
    envelopes without the corners of linear interpolation.

    Args:
        inputs: Controls at frame rate, [batch, n_frames, n_channels].
        n_timesteps: Number of output steps. Must be a multiple of n_frames
            (add_endpoint=True) or of n_frames - 1 (add_endpoint=False).
        add_endpoint: If True, hold the last frame for the final interval.

    Returns:
        [batch, n_timesteps, n_channels].
    """
    checks.check_positive_int("n_timesteps", n_timesteps)
    frames = float32(inputs)
    checks.check_rank("inputs", frames, 3, "[batch, n_frames, n_channels]")
    if add_endpoint:
        frames = _hold_last_frame(frames)
    n_intervals = frames.shape[1] - 1
    if n_intervals < 1 or n_intervals > n_timesteps:
        raise ValueError(
            f"upsample_with_windows only upsamples: got {inputs.shape[1]} frames for {n_timesteps} timesteps."
        )
    if n_timesteps % n_intervals != 0:
        raise ValueError(
            f"upsample_with_windows needs n_timesteps ({n_timesteps}) to be a multiple of the number of "
            f"frame intervals ({n_intervals}); use method='linear' or choose n_samples = n_frames * hop_size."
        )
    hop_size = n_timesteps // n_intervals
    # Rising half of a periodic Hann window of length 2 * hop_size.
    curve = 0.5 - 0.5 * np.cos(math.pi * np.arange(hop_size) / hop_size)
    return _interpolate_between_frames(frames, hop_size, curve)
