"""Windowed-sinc FIR filters: low-pass and high-pass, fixed or time-varying cutoff."""

import math

import numpy as np
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.convolution import fft_convolve
from ddsp_core.core.units import float32


def sinc(x, threshold=1e-20):
    """Normalized sinc, sin(pi x) / (pi x), with the value 1 at x = 0. Any shape.

    |x| below `threshold` is replaced by `threshold`, so there is no 0 / 0 (and the
    gradient stays finite).
    """
    x = float32(x)
    x = ops.where(ops.abs(x) < threshold, threshold, x)
    return ops.sin(math.pi * x) / (math.pi * x)


def _symmetric_hamming(size):
    """Hamming window of `size` samples, symmetric about its middle: [size]."""
    if size == 1:
        return np.ones(1)
    return 0.54 - 0.46 * np.cos(2.0 * np.pi * np.arange(size) / (size - 1))


def _cutoff_as_3d(cutoff_frequency):
    """The cutoff as [batch, n_frames, 1] from a scalar, [batch, n_frames] or [batch, n_frames, 1]."""
    cutoff = float32(cutoff_frequency)
    checks.check_rank("cutoff_frequency", cutoff, (0, 2, 3), "a scalar, [batch, n_frames] or [batch, n_frames, 1]")
    if len(cutoff.shape) == 0:
        return ops.reshape(cutoff, (1, 1, 1))
    if len(cutoff.shape) == 2:
        return cutoff[:, :, None]
    checks.check_dim("cutoff_frequency", cutoff, -1, 1, "[batch, n_frames, 1]")
    return cutoff


def sinc_impulse_response(cutoff_frequency, window_size=512, sample_rate=None, high_pass=False):
    """Linear-phase low-pass (or high-pass) FIR filters: a Hamming-windowed sinc.

    The ideal low-pass response sinc(cutoff n), n = -half..half, is multiplied by a
    symmetric Hamming window and scaled to a gain of exactly 1 at 0 Hz. The high-pass
    filter is a unit impulse minus the low-pass one (gain 0 at 0 Hz, 1 at Nyquist).

    Args:
        cutoff_frequency: Cutoff in Hz if `sample_rate` is given, else as a fraction of
            Nyquist in [0, 1]. A scalar (one filter), or [batch, n_frames, 1] (or
            [batch, n_frames]) for a filter per frame.
        window_size: Filter length before it is made odd: ir_size = 2 * (window_size // 2) + 1.
        sample_rate: Sample rate in Hz, or None for a cutoff relative to Nyquist.
        high_pass: If True, remove the frequencies below the cutoff instead of above it.

    Returns:
        Impulse responses, [batch, n_frames, ir_size] ([1, 1, ir_size] for a scalar cutoff),
        with their centre (group delay) at index window_size // 2.
    """
    checks.check_positive_int("window_size", window_size)
    cutoff = _cutoff_as_3d(cutoff_frequency)
    nyquist = 1.0
    if sample_rate is not None:
        checks.check_positive("sample_rate", sample_rate)
        nyquist = sample_rate / 2.0
        cutoff = cutoff / nyquist  # fraction of Nyquist
    value = checks.concrete_value(cutoff)
    if value is not None and value.size and (np.min(value) < 0 or np.max(value) > 1):
        unit = " Hz" if sample_rate is not None else " (fraction of Nyquist)"
        raise ValueError(
            f"cutoff_frequency must be in [0, {nyquist:g}]{unit}, got values from "
            f"{float(np.min(value)) * nyquist:g} to {float(np.max(value)) * nyquist:g}."
        )
    half = window_size // 2
    taps = ops.convert_to_tensor(np.arange(-half, half + 1, dtype="float32"))  # [ir_size]
    window = ops.convert_to_tensor(_symmetric_hamming(2 * half + 1).astype("float32"))
    impulse_response = sinc(cutoff * taps) * window  # [batch, n_frames, ir_size]
    impulse_response = impulse_response / ops.abs(ops.sum(impulse_response, axis=-1, keepdims=True))
    if high_pass:
        impulse = np.zeros(2 * half + 1, dtype="float32")
        impulse[half] = 1.0
        impulse_response = ops.convert_to_tensor(impulse) - impulse_response
    return impulse_response


def sinc_filter(audio, cutoff_frequency, window_size=512, sample_rate=None, padding="same", high_pass=False):
    """Filters audio with windowed-sinc low-pass (or high-pass) filters.

    Args:
        audio: [batch, n_samples].
        cutoff_frequency: Cutoff, see `sinc_impulse_response`; with [batch, n_frames, 1],
            n_samples should be divisible by n_frames (frame i filters samples
            i * n_samples / n_frames onwards).
        window_size: Filter length before it is made odd, see `sinc_impulse_response`.
        sample_rate: Sample rate in Hz, or None for a cutoff relative to Nyquist.
        padding: 'same' (output n_samples long) or 'valid' (n_samples + ir_size - 1).
        high_pass: If True, a high-pass filter.

    Returns:
        Filtered audio, [batch, n_samples] ('same') or [batch, n_samples + ir_size - 1]
        ('valid'); the filters' delay is compensated.
    """
    impulse_response = sinc_impulse_response(cutoff_frequency, window_size=window_size, sample_rate=sample_rate,
                                             high_pass=high_pass)
    return fft_convolve(audio, impulse_response, padding=padding)
