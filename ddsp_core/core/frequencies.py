"""Scale functions that turn network outputs into sinusoid frequencies in Hz.

Each sinusoid's frequency comes from `depth` network outputs, given either as
[batch, n_frames, n_sinusoids * depth] (unpacked here, sinusoid-major) or as
[batch, n_frames, n_sinusoids, depth]. The results are [batch, n_frames, n_sinusoids] in
Hz, bounded, so they suit `synths.Sinusoidal`'s `freq_scale_fn`.
"""

import numpy as np
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.units import (bark_to_hz, float32, hz_to_bark, hz_to_erb, hz_to_mel, mel_to_hz, soft_limit,
                                  unit_to_hz)

CRITICAL_BAND_SCALES = ("bark", "mel")


def _add_depth_axis(freqs, depth=1):
    """[batch, n_frames, n_sinusoids * depth] -> [batch, n_frames, n_sinusoids, depth]."""
    checks.check_positive_int("depth", depth)
    n_combined = freqs.shape[-1]
    if n_combined is None or n_combined % depth:
        raise ValueError(
            f"freqs' last axis ({n_combined}) must be n_sinusoids * depth, a multiple of depth={depth}; "
            f"got shape {tuple(freqs.shape)}."
        )
    return ops.reshape(freqs, (-1, ops.shape(freqs)[1], n_combined // depth, depth))


def _with_depth_axis(freqs, depth):
    """(freqs as [batch, n_frames, n_sinusoids, depth], depth) from a rank-3 or rank-4 input."""
    freqs = float32(freqs)
    checks.check_rank("freqs", freqs, (3, 4),
                      "[batch, n_frames, n_sinusoids * depth] or [batch, n_frames, n_sinusoids, depth]")
    if len(freqs.shape) == 3:
        return _add_depth_axis(freqs, depth), depth
    return freqs, int(freqs.shape[-1])


def frequencies_softmax(freqs, depth=1, hz_min=20.0, hz_max=8000.0):
    """Frequencies as a softmax-weighted position on a log-frequency axis.

    The `depth` outputs of a sinusoid are softmax probabilities over `depth` points spaced
    evenly from 0 to 1; their expected position u maps to Hz with `unit_to_hz` (linear in
    MIDI between hz_min and hz_max). With depth=1 the single point is 0, so every
    frequency is hz_min.

    Args:
        freqs: Network outputs, [batch, n_frames, n_sinusoids * depth] or
            [batch, n_frames, n_sinusoids, depth].
        depth: Outputs per sinusoid, for a rank-3 `freqs` (rank 4 gives it by its last axis).
        hz_min, hz_max: Frequency range in Hz.

    Returns:
        Frequencies in Hz, [batch, n_frames, n_sinusoids], in [hz_min, hz_max].
    """
    freqs, depth = _with_depth_axis(freqs, depth)
    probabilities = ops.softmax(freqs, axis=-1)  # [batch, n_frames, n_sinusoids, depth]
    points = ops.convert_to_tensor(np.linspace(0.0, 1.0, depth).astype("float32"))
    unit = ops.sum(probabilities * points, axis=-1)  # [batch, n_frames, n_sinusoids]
    return unit_to_hz(unit, hz_min=hz_min, hz_max=hz_max)


def frequencies_sigmoid(freqs, depth=1, hz_min=0.0, hz_max=8000.0):
    """Frequencies as a sum of `depth` sigmoid-scaled parts, coarse to fine.

    The range hz_max - hz_min is split into `depth` shrinking parts by a constant factor
    s = (hz_max - hz_min) ** (1 / depth): part 0 spans (1 - 1/s) of the range, part 1 the
    same fraction of what is left, and so on; the last part spans the remainder, from
    hz_min. Output d sets its part with `unit_to_hz(sigmoid(x_d), low, high)` (linear in
    MIDI; a low of 0 Hz acts as MIDI note 0, 8.18 Hz) and the parts are summed.

    Args:
        freqs: Network outputs, [batch, n_frames, n_sinusoids * depth] or
            [batch, n_frames, n_sinusoids, depth].
        depth: Outputs per sinusoid, for a rank-3 `freqs`.
        hz_min, hz_max: Frequency range in Hz.

    Returns:
        Frequencies in Hz, [batch, n_frames, n_sinusoids], at most hz_max.
    """
    freqs, depth = _with_depth_axis(freqs, depth)
    if hz_max <= hz_min:
        raise ValueError(f"hz_max ({hz_max}) must be above hz_min ({hz_min}).")
    probabilities = ops.sigmoid(freqs)  # [batch, n_frames, n_sinusoids, depth]
    remainder = hz_max - hz_min
    factor = remainder ** (1.0 / depth)
    total = 0.0
    for d in range(depth):
        if d == depth - 1:
            low, high = hz_min, remainder
        else:
            low, high = 0.0, remainder * (1.0 - 1.0 / factor)
            remainder -= high
        total = total + unit_to_hz(probabilities[..., d], hz_min=low, hz_max=high)
    # The parts add up to at most hz_max; the minimum only removes float32 rounding above it.
    return ops.minimum(total, float(hz_max))


def frequencies_critical_bands(freqs, depth=1, depth_scale=10.0, bandwidth_scale=1.0, hz_min=20.0,
                               hz_max=8000.0, scale="bark"):
    """Frequencies that move within one critical band around fixed centre frequencies.

    Sinusoid k has a centre frequency, the centres spaced evenly on the Bark or mel scale
    from hz_min to hz_max, and moves around it by up to bandwidth_scale equivalent
    rectangular bandwidths (`hz_to_erb`) in each direction: the offset is
    sum_d tanh(x_d) * depth_scale ** -d (later outputs make finer moves). The result is
    softly limited to (hz_min, hz_max) with `soft_limit`.

    Args:
        freqs: Network outputs, [batch, n_frames, n_sinusoids * depth] or
            [batch, n_frames, n_sinusoids, depth].
        depth: Outputs per sinusoid, for a rank-3 `freqs`.
        depth_scale: Factor by which each further output's influence shrinks.
        bandwidth_scale: Reach around the centre, in ERBs.
        hz_min, hz_max: Frequency range in Hz.
        scale: 'bark' or 'mel', the scale the centres are spaced evenly on.

    Returns:
        Frequencies in Hz, [batch, n_frames, n_sinusoids].
    """
    if scale not in CRITICAL_BAND_SCALES:
        raise ValueError(f"scale must be one of {CRITICAL_BAND_SCALES}, got {scale!r}.")
    freqs, depth = _with_depth_axis(freqs, depth)
    n_sinusoids = freqs.shape[-2]
    to_scale, from_scale = (hz_to_bark, bark_to_hz) if scale == "bark" else (hz_to_mel, mel_to_hz)
    centres = from_scale(ops.linspace(to_scale(hz_min), to_scale(hz_max), n_sinusoids))  # [n_sinusoids], Hz
    bandwidths = hz_to_erb(centres)
    depth_weights = ops.convert_to_tensor((depth_scale ** -np.arange(depth, dtype=np.float64)).astype("float32"))
    offsets = ops.sum(ops.tanh(freqs) * depth_weights, axis=-1)  # [batch, n_frames, n_sinusoids]
    return soft_limit(centres + bandwidth_scale * bandwidths * offsets, hz_min, hz_max)
