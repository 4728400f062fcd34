"""Cutting signals into overlapping frames, and overlap-adding frames back into a signal."""

import numpy as np
from keras import ops

from ddsp_core.core import checks


def n_frames_for(n_samples, frame_length, frame_step, pad_end):
    """Number of frames `frame` returns for a signal of n_samples."""
    if pad_end:
        return max(1, -(-n_samples // frame_step))
    return max(0, 1 + (n_samples - frame_length) // frame_step)


def frame(signal, frame_length, frame_step, pad_end=False):
    """Cuts the last axis of a signal into frames, like tf.signal.frame.

    Args:
        signal: [batch, n_samples]; n_samples must be static.
        frame_length: Samples per frame.
        frame_step: Samples between the starts of consecutive frames (the hop).
        pad_end: If True, zero-pad the end so that every sample is in a frame:
            ceil(n_samples / frame_step) frames. If False, only whole frames:
            1 + (n_samples - frame_length) // frame_step frames.

    Returns:
        Frames, [batch, n_frames, frame_length].
    """
    checks.check_positive_int("frame_length", frame_length)
    checks.check_positive_int("frame_step", frame_step)
    checks.check_rank("signal", signal, 2, "[batch, n_samples]")
    n_samples = signal.shape[-1]
    n_frames = n_frames_for(n_samples, frame_length, frame_step, pad_end)
    if n_frames == 0:
        raise ValueError(f"signal has {n_samples} samples, fewer than one frame of {frame_length}.")
    needed = (n_frames - 1) * frame_step + frame_length
    if frame_length % frame_step == 0:
        # Fast path: cut into hops, then each frame is `ratio` consecutive hops.
        ratio = frame_length // frame_step
        needed = (n_frames + ratio - 1) * frame_step
    if needed > n_samples:
        signal = ops.pad(signal, [[0, 0], [0, needed - n_samples]])
    else:
        signal = signal[:, :needed]
    if frame_length % frame_step == 0:
        hops = ops.reshape(signal, (-1, n_frames + ratio - 1, frame_step))  # [batch, n_hops, frame_step]
        if ratio == 1:
            return hops
        return ops.concatenate([hops[:, j:j + n_frames] for j in range(ratio)], axis=-1)
    indices = np.arange(n_frames)[:, None] * frame_step + np.arange(frame_length)[None, :]
    flat = ops.take(signal, ops.convert_to_tensor(indices.reshape(-1).astype("int32")), axis=1)
    return ops.reshape(flat, (-1, n_frames, frame_length))


def overlap_and_add(frames, frame_step):
    """Sums overlapping frames into one signal, like tf.signal.overlap_and_add.

    Args:
        frames: [batch, n_frames, frame_length].
        frame_step: Samples between the starts of consecutive frames.

    Returns:
        Signal, [batch, (n_frames - 1) * frame_step + frame_length].
    """
    checks.check_positive_int("frame_step", frame_step)
    checks.check_rank("frames", frames, 3, "[batch, n_frames, frame_length]")
    n_frames, frame_length = frames.shape[1], frames.shape[2]
    n_hops_per_frame = -(-frame_length // frame_step)
    padded_length = n_hops_per_frame * frame_step
    if padded_length > frame_length:
        frames = ops.pad(frames, [[0, 0], [0, 0], [0, padded_length - frame_length]])
    pieces = ops.reshape(frames, (-1, n_frames, n_hops_per_frame, frame_step))
    # Piece j of frame i lands on output hop i + j: shift each piece index by j and sum.
    total = 0.0
    for j in range(n_hops_per_frame):
        total = total + ops.pad(pieces[:, :, j], [[0, 0], [j, n_hops_per_frame - 1 - j], [0, 0]])
    signal = ops.reshape(total, (-1, (n_frames + n_hops_per_frame - 1) * frame_step))
    return signal[:, :(n_frames - 1) * frame_step + frame_length]
