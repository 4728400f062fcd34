"""Cutting signals into overlapping frames, padding them for it, and overlap-adding frames back
into a signal."""

import numpy as np
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.arrays import pad_axis
from ddsp_core.core.units import float32

PADDINGS = ("valid", "same", "center")
PAD_MODES = ("constant", "reflect", "symmetric")


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


def get_framed_lengths(input_length, frame_size, hop_size, padding="center"):
    """(number of frames, padded input length) that `pad` + framing give."""
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")
    if padding == "valid":
        n_frames = max(0, 1 + (input_length - frame_size) // hop_size)
        return n_frames, input_length
    if padding == "same":
        n_frames = -(-input_length // hop_size)
        return n_frames, (n_frames - 1) * hop_size + frame_size
    padded_length = input_length + 2 * (frame_size // 2)
    return 1 + (padded_length - frame_size) // hop_size, padded_length


def pad(x, frame_size, hop_size, padding="center", axis=1, mode="CONSTANT", constant_values=0):
    """Pads one axis of a signal for framing (see `get_framed_lengths` for the lengths).

    'valid': no padding, only whole frames. 'same': pad the end so there are
    ceil(n_samples / hop_size) frames. 'center': pad frame_size // 2 on both sides, so
    frame i is centred on sample i * hop_size (1 + n_samples // hop_size frames).

    Args:
        x: Signal, e.g. audio [batch, n_samples]; any rank (a 1-D signal is padded along
            axis 0 whatever `axis` says).
        frame_size: Samples per frame (even, for 'center').
        hop_size: Samples between frames, at most frame_size.
        padding: 'center', 'same' or 'valid'.
        axis: The time axis.
        mode: 'CONSTANT', 'REFLECT' or 'SYMMETRIC' (either case), as numpy.pad.
        constant_values: Value of the padding in 'CONSTANT' mode.

    Returns:
        float32 tensor, `x` padded along `axis`.
    """
    x = float32(x)
    if padding not in PADDINGS:
        raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")
    if str(mode).lower() not in PAD_MODES:
        raise ValueError(f"mode must be one of {[m.upper() for m in PAD_MODES]}, got {mode!r}.")
    if padding == "valid":
        return x
    checks.check_positive_int("frame_size", frame_size)
    checks.check_positive_int("hop_size", hop_size)
    if hop_size > frame_size:
        raise ValueError(f"hop_size ({hop_size}) must be at most frame_size ({frame_size}) to pad for framing.")
    axis = 0 if len(x.shape) <= 1 else axis
    if padding == "center":
        if frame_size % 2:
            raise ValueError(f"padding='center' needs an even frame size, got {frame_size}.")
        widths = (frame_size // 2, frame_size // 2)
    else:
        n_samples = x.shape[axis]
        _, padded_length = get_framed_lengths(n_samples, frame_size, hop_size, padding)
        widths = (0, padded_length - n_samples)
    mode = str(mode).lower()
    extra = {"constant_values": constant_values} if mode == "constant" else {}
    return pad_axis(x, widths, axis=axis, mode=mode, **extra)
