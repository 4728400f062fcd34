"""Sinusoidal oscillators: phase accumulation, oscillator banks and harmonic synthesis."""

import math

import numpy as np
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.resampling import _interpolate_between_frames, resample
from ddsp_core.core.units import float32, safe_divide

TWO_PI = 2.0 * math.pi
# Steps summed directly in one level of `accumulate_cycles`. Measured max phase error over 4 s, 60
# harmonics: 5e-6 rad (8), 1.1e-5 (16), 9e-6 (32); 16 keeps the recursion shallow at that accuracy.
PHASE_CHUNK_SIZE = 16
# Resolution of the exactly-summed coarse part of phase increments (see `accumulate_cycles`).
COARSE_STEPS = 2.0**12


def _wrap_cycles(cycles):
    """Fractional part of a phase counted in cycles: [0, 1). Exact in floating point."""
    return cycles - ops.stop_gradient(ops.floor(cycles))


def _chunked_wrapped_cumsum(increments, chunk_size):
    """Running sum along axis 1, wrapped to [0, 1), summing at most chunk_size terms at a time.

    The signal is split into chunks: each chunk is summed on its own, the chunk totals
    are wrapped and accumulated the same way, recursively, and the two are added and
    wrapped again. Every partial sum stays below chunk_size.

    Args:
        increments: [batch, n_steps, n_channels], each in [0, 1).
        chunk_size: Terms summed directly per level.

    Returns:
        [batch, n_steps, n_channels] in [0, 1).
    """
    n_steps, n_channels = increments.shape[1], increments.shape[2]
    if n_steps <= chunk_size:
        return _wrap_cycles(ops.cumsum(increments, axis=1))
    n_chunks = -(-n_steps // chunk_size)
    padding = n_chunks * chunk_size - n_steps
    if padding:
        increments = ops.pad(increments, [[0, 0], [0, padding], [0, 0]])
    chunks = ops.reshape(increments, (-1, n_chunks, chunk_size, n_channels))  # [batch, n_chunks, chunk, channels]
    within_chunk = ops.cumsum(chunks, axis=2)
    chunk_totals = _wrap_cycles(ops.sum(chunks, axis=2))  # [batch, n_chunks, channels]
    chunk_ends = _chunked_wrapped_cumsum(chunk_totals, chunk_size)
    chunk_starts = ops.concatenate([ops.zeros_like(chunk_ends[:, :1]), chunk_ends[:, :-1]], axis=1)
    phase = _wrap_cycles(within_chunk + chunk_starts[:, :, None, :])
    phase = ops.reshape(phase, (-1, n_chunks * chunk_size, n_channels))
    return phase[:, :n_steps, :]


def accumulate_cycles(cycles_per_step, chunk_size=PHASE_CHUNK_SIZE):
    """Running sum of a frequency in cycles per step, wrapped to [0, 1), accurate over long signals.

    A plain float32 cumsum over 64000 samples drifts by radians for high harmonics:
    the running sum grows to ~1e4 cycles, where float32 resolves only ~1e-3. Three
    measures keep the error near float32 resolution:
    - phase is counted in cycles, not radians, so wrapping (removing whole cycles) is
      exact, where removing multiples of a rounded 2pi drifts by ~1e-2 rad over 4 s;
    - sums run in chunks (`_chunked_wrapped_cumsum`), so partial sums stay small;
    - each increment is split into a coarse part, a multiple of 2**-12, and a small
      remainder: every partial sum of coarse parts has few enough bits to be exact in
      float32, and the remainders are too small to lose much.
    tests/core/test_oscillators.py measures the error against a float64 cumsum.

    Args:
        cycles_per_step: Frequency divided by sample rate, [batch, n_samples, n_channels].
        chunk_size: Steps summed directly per level.

    Returns:
        Phase after each step in cycles, in [0, 1), [batch, n_samples, n_channels].
    """
    increments = _wrap_cycles(float32(cycles_per_step))
    coarse = ops.stop_gradient(ops.floor(increments * COARSE_STEPS) / COARSE_STEPS)
    fine = increments - coarse  # carries the gradient
    coarse_phase = _chunked_wrapped_cumsum(coarse, chunk_size)
    fine_phase = _chunked_wrapped_cumsum(fine, chunk_size)
    return _wrap_cycles(coarse_phase + fine_phase)


def angular_cumsum(angular_frequency, chunk_size=PHASE_CHUNK_SIZE):
    """Running sum of angular frequency (radians per step), wrapped to [0, 2pi).

    The accurate replacement for cumsum that magenta's ddsp calls `angular_cumsum`;
    see `accumulate_cycles`.

    Args:
        angular_frequency: Radians per step, [batch, n_samples, n_channels].
        chunk_size: Steps summed directly per level.

    Returns:
        Phase in radians, [batch, n_samples, n_channels].
    """
    cycles = accumulate_cycles(float32(angular_frequency) / TWO_PI, chunk_size)
    return TWO_PI * cycles


def get_harmonic_frequencies(frequencies, n_harmonics):
    """Frequencies of the first `n_harmonics` harmonics: f0 * [1, 2, ..., n_harmonics].

    Args:
        frequencies: Fundamental frequency in Hz, [batch, n_frames, 1].
        n_harmonics: Number of harmonics, including the fundamental.

    Returns:
        Harmonic frequencies in Hz, [batch, n_frames, n_harmonics].
    """
    harmonic_numbers = ops.convert_to_tensor(np.arange(1, n_harmonics + 1, dtype="float32"))
    return float32(frequencies) * harmonic_numbers


def remove_above_nyquist(frequency_envelopes, amplitude_envelopes, sample_rate=16000):
    """Silences sinusoids at or above the Nyquist frequency (sample_rate / 2).

    Args:
        frequency_envelopes: Frequencies in Hz, [batch, time, n_sinusoids].
        amplitude_envelopes: Amplitudes, same shape.
        sample_rate: Sample rate in Hz.

    Returns:
        amplitude_envelopes with zeros where the frequency is >= sample_rate / 2.
    """
    checks.check_positive("sample_rate", sample_rate)
    frequency_envelopes = float32(frequency_envelopes)
    amplitude_envelopes = float32(amplitude_envelopes)
    return ops.where(frequency_envelopes >= sample_rate / 2.0, 0.0, amplitude_envelopes)


def normalize_harmonics(harmonic_distribution, f0_hz=None, sample_rate=None):
    """Makes the harmonic amplitudes of each frame sum to one.

    If f0_hz and sample_rate are given, harmonics at or above Nyquist are removed first,
    so the remaining audible ones share all the energy.

    Args:
        harmonic_distribution: Relative harmonic amplitudes (>= 0),
            [batch, n_frames, n_harmonics].
        f0_hz: Fundamental frequency in Hz, [batch, n_frames, 1], or None.
        sample_rate: Sample rate in Hz, or None.

    Returns:
        [batch, n_frames, n_harmonics], summing to 1 over the last axis (0 where all
        harmonics are above Nyquist).
    """
    harmonic_distribution = float32(harmonic_distribution)
    if f0_hz is not None and sample_rate is not None:
        n_harmonics = harmonic_distribution.shape[-1]
        harmonic_frequencies = get_harmonic_frequencies(f0_hz, n_harmonics)
        harmonic_distribution = remove_above_nyquist(harmonic_frequencies, harmonic_distribution, sample_rate)
    total = ops.sum(harmonic_distribution, axis=-1, keepdims=True)
    return safe_divide(harmonic_distribution, total)


def oscillator_bank(frequency_envelopes, amplitude_envelopes, sample_rate=16000, sum_sinusoids=True,
                    use_angular_cumsum=False):
    """Sums sinusoids with time-varying frequencies and amplitudes, at audio rate.

    Args:
        frequency_envelopes: Frequencies in Hz at audio rate, [batch, n_samples, n_sinusoids].
        amplitude_envelopes: Linear amplitudes at audio rate, [batch, n_samples, n_sinusoids].
        sample_rate: Sample rate in Hz.
        sum_sinusoids: If True, return the sum [batch, n_samples]; else each sinusoid,
            [batch, n_samples, n_sinusoids].
        use_angular_cumsum: Kept for compatibility with magenta's ddsp; the phase is
            always accumulated with the accurate chunked method (`accumulate_cycles`).

    Returns:
        Audio, [batch, n_samples] (or [batch, n_samples, n_sinusoids]). Sinusoids at or
        above Nyquist are silent.
    """
    del use_angular_cumsum
    checks.check_positive("sample_rate", sample_rate)
    frequency_envelopes = float32(frequency_envelopes)
    amplitude_envelopes = float32(amplitude_envelopes)
    checks.check_rank("frequency_envelopes", frequency_envelopes, 3, "[batch, n_samples, n_sinusoids]")
    checks.check_rank("amplitude_envelopes", amplitude_envelopes, 3, "[batch, n_samples, n_sinusoids]")
    amplitude_envelopes = remove_above_nyquist(frequency_envelopes, amplitude_envelopes, sample_rate)
    phases = TWO_PI * accumulate_cycles(frequency_envelopes * (1.0 / sample_rate))
    audio = amplitude_envelopes * ops.sin(phases)
    return ops.sum(audio, axis=-1) if sum_sinusoids else audio


def harmonic_synthesis(frequencies, amplitudes, harmonic_shifts=None, harmonic_distribution=None,
                       n_samples=64000, sample_rate=16000, amp_resample_method="window",
                       use_angular_cumsum=False):
    """Synthesizes a harmonic sound from frame-rate controls.

    Args:
        frequencies: Fundamental frequency in Hz, [batch, n_frames, 1].
        amplitudes: Overall amplitude, [batch, n_frames, 1].
        harmonic_shifts: Optional relative detuning of each harmonic,
            [batch, n_frames, n_harmonics]; harmonic k sounds at k * f0 * (1 + shift).
        harmonic_distribution: Optional relative amplitude of each harmonic,
            [batch, n_frames, n_harmonics] (normalize it first to keep `amplitudes` the
            overall level).
        n_samples: Number of output samples.
        sample_rate: Sample rate in Hz.
        amp_resample_method: Interpolation of amplitudes to audio rate (see `resample`);
            frequencies are always interpolated linearly.
        use_angular_cumsum: Kept for compatibility; see `oscillator_bank`.

    Returns:
        Audio, [batch, n_samples].
    """
    del use_angular_cumsum
    checks.check_positive_int("n_samples", n_samples)
    checks.check_positive("sample_rate", sample_rate)
    frequencies = float32(frequencies)
    amplitudes = float32(amplitudes)
    checks.check_rank("frequencies", frequencies, 3, "[batch, n_frames, 1]")
    checks.check_rank("amplitudes", amplitudes, 3, "[batch, n_frames, 1]")
    if harmonic_distribution is not None:
        harmonic_distribution = float32(harmonic_distribution)
        checks.check_rank("harmonic_distribution", harmonic_distribution, 3, "[batch, n_frames, n_harmonics]")
        n_harmonics = harmonic_distribution.shape[-1]
    elif harmonic_shifts is not None:
        n_harmonics = harmonic_shifts.shape[-1]
    else:
        n_harmonics = 1

    harmonic_amplitudes = amplitudes * harmonic_distribution if harmonic_distribution is not None else amplitudes
    if harmonic_shifts is None:
        audio, _ = _render_harmonics(frequencies, harmonic_amplitudes, n_samples, sample_rate, amp_resample_method)
        return audio
    amplitude_envelopes = resample(harmonic_amplitudes, n_samples, method=amp_resample_method)
    harmonic_frequencies = get_harmonic_frequencies(frequencies, n_harmonics) * (1.0 + float32(harmonic_shifts))
    frequency_envelopes = resample(harmonic_frequencies, n_samples)  # [batch, n_samples, n_harmonics]
    return oscillator_bank(frequency_envelopes, amplitude_envelopes, sample_rate=sample_rate)


def _render_harmonics(frequencies, harmonic_amplitudes, n_samples, sample_rate, amp_resample_method,
                      initial_phase=None):
    """Harmonics of f0 from frame-rate controls: (audio [batch, n_samples], final f0 phase in cycles [batch, 1]).

    frequencies [batch, n_frames, 1] are interpolated linearly, harmonic_amplitudes
    [batch, n_frames, n_harmonics] with `amp_resample_method`; initial_phase in cycles [batch, 1].
    With a whole number of samples per frame, `harmonic_hops` renders without building
    the audio-rate amplitude envelopes.
    """
    n_frames = harmonic_amplitudes.shape[1]
    if (amp_resample_method in INTERPOLATION_CURVES and n_frames is not None and n_frames <= n_samples
            and n_samples % n_frames == 0):
        held = lambda x: ops.concatenate([x, x[:, -1:]], axis=1)  # the last frame held to the end
        return harmonic_hops(held(frequencies), held(harmonic_amplitudes), n_samples // n_frames,
                             amp_resample_method, sample_rate, initial_phase)
    amplitude_envelopes = resample(harmonic_amplitudes, n_samples, method=amp_resample_method)
    f0_envelope = resample(frequencies, n_samples)  # [batch, n_samples, 1]
    sines, f0_phase = _harmonic_sines(f0_envelope, amplitude_envelopes.shape[-1], sample_rate, initial_phase)
    return ops.sum(amplitude_envelopes * sines, axis=-1), f0_phase[:, -1, :]


def streaming_harmonic_synthesis(frequencies, amplitudes, harmonic_distribution=None, initial_phase=None,
                                 n_samples=64000, sample_rate=16000, amp_resample_method="linear"):
    """Harmonic synthesis of one block of a stream: starts from a given phase and returns the final one.

    Passing each block's final phase as the next block's initial phase makes consecutive
    blocks continue one another's waveforms without a click (see also `harmonic_hops`,
    which also carries the last control point over).

    Args:
        frequencies: Fundamental frequency in Hz, [batch, n_frames, 1].
        amplitudes: Overall amplitude, [batch, n_frames, 1].
        harmonic_distribution: Optional relative harmonic amplitudes,
            [batch, n_frames, n_harmonics]; normalized here, harmonics at or above Nyquist
            removed first.
        initial_phase: Phase of the fundamental before the first sample in radians,
            [batch, 1, 1]; None for 0.
        n_samples: Number of output samples.
        sample_rate: Sample rate in Hz.
        amp_resample_method: Interpolation of amplitudes to audio rate (see `resample`).

    Returns:
        (audio [batch, n_samples], final_phase [batch, 1, 1]: the fundamental's phase after
        the last sample in radians, in [0, 2pi)).
    """
    checks.check_positive_int("n_samples", n_samples)
    checks.check_positive("sample_rate", sample_rate)
    frequencies, amplitudes = float32(frequencies), float32(amplitudes)
    checks.check_rank("frequencies", frequencies, 3, "[batch, n_frames, 1]")
    checks.check_rank("amplitudes", amplitudes, 3, "[batch, n_frames, 1]")
    harmonic_amplitudes = amplitudes
    if harmonic_distribution is not None:
        harmonic_distribution = float32(harmonic_distribution)
        checks.check_rank("harmonic_distribution", harmonic_distribution, 3, "[batch, n_frames, n_harmonics]")
        harmonic_amplitudes = amplitudes * normalize_harmonics(harmonic_distribution, frequencies, sample_rate)
    audio, final_cycles = _render_harmonics(frequencies, harmonic_amplitudes, n_samples, sample_rate,
                                            amp_resample_method, _phase_in_cycles(initial_phase))
    return audio, TWO_PI * final_cycles[:, :, None]


def _phase_in_cycles(phase_radians):
    """A phase [batch, 1, 1] (or [batch, 1]) in radians as cycles [batch, 1]; None stays None."""
    if phase_radians is None:
        return None
    phase = float32(phase_radians)
    checks.check_rank("initial_phase", phase, (2, 3), "[batch, 1, 1]")
    return ops.reshape(phase, (-1, 1)) * (1.0 / TWO_PI)


# Rising interpolation curves over one hop (0 at a frame, towards 1 at the next), as
# resample(..., add_endpoint=True) uses them for an integer number of samples per frame.
INTERPOLATION_CURVES = {
    "linear": lambda hop_size: np.arange(hop_size) / hop_size,
    "window": lambda hop_size: 0.5 - 0.5 * np.cos(math.pi * np.arange(hop_size) / hop_size),
}


def _harmonic_sines(f0_envelope, n_harmonics, sample_rate, initial_phase=None):
    """sin(2 pi k phase_f0) for k = 1..n_harmonics, 0 where k f0 >= Nyquist.

    Returns (sines [batch, n_samples, n_harmonics], f0 phase after each sample in cycles
    [batch, n_samples, 1]); `initial_phase` [batch, 1] (cycles) is the phase before the first.
    """
    harmonic_numbers = ops.convert_to_tensor(np.arange(1, n_harmonics + 1, dtype="float32"))
    silent = f0_envelope * harmonic_numbers >= sample_rate / 2.0
    # Multiplying by float32(1 / sample_rate) is what XLA makes of a division anyway; doing it
    # explicitly gives the same increments on every backend.
    f0_phase = accumulate_cycles(f0_envelope * (1.0 / sample_rate))  # [batch, n_samples, 1], cycles
    if initial_phase is not None:
        f0_phase = _wrap_cycles(f0_phase + float32(initial_phase)[:, None, :])
    phases = _wrap_cycles(f0_phase * harmonic_numbers)  # [batch, n_samples, n_harmonics]
    return ops.where(silent, 0.0, ops.sin(TWO_PI * phases)), f0_phase


def harmonic_hops(f0_points, amplitude_points, hop_size, method="window", sample_rate=16000, initial_phase=None):
    """Harmonic audio between consecutive control points, one hop per interval, with a phase carried in.

    Interval i runs from point i to point i + 1 over `hop_size` samples: f0 moves linearly
    (`resample`'s 'linear'), the harmonic amplitudes along `method`'s curve, so the audio of
    interval i is sum_k sines_ijk ((1 - c_j) a_ik + c_j a_(i+1)k) (c: the curve over the
    hop): two small matrix products per hop, and no [batch, n_samples, n_harmonics]
    amplitude envelope is built. The whole-signal synthesis (`harmonic_synthesis`) is the
    case of n_frames + 1 points (the last frame held) and no initial phase; a stream passes
    its last point and phase on to the next block, so block-wise audio equals the whole.

    Args:
        f0_points: Fundamental frequency in Hz, [batch, n_hops + 1, 1].
        amplitude_points: Linear amplitude of each harmonic, [batch, n_hops + 1, n_harmonics].
        hop_size: Samples per interval.
        method: 'linear' or 'window' (see `resample`).
        sample_rate: Sample rate in Hz.
        initial_phase: Phase of the fundamental before the first sample, in cycles,
            [batch, 1]; None for 0.

    Returns:
        (audio [batch, n_hops * hop_size], final_phase [batch, 1] in cycles, [0, 1)).
        Harmonics at or above Nyquist are silent.
    """
    f0_points, amplitude_points = float32(f0_points), float32(amplitude_points)
    n_hops, n_harmonics = amplitude_points.shape[1] - 1, amplitude_points.shape[2]
    n_samples = n_hops * hop_size
    f0_envelope = _interpolate_between_frames(f0_points, hop_size, np.arange(hop_size) / hop_size)  # [b, n, 1]
    sines, f0_phase = _harmonic_sines(f0_envelope, n_harmonics, sample_rate, initial_phase)
    sines = ops.reshape(sines, (-1, n_hops, hop_size, n_harmonics))
    ends = ops.stack([amplitude_points[:, :-1], amplitude_points[:, 1:]], axis=-1)  # [batch, n_hops, n_harmonics, 2]
    per_end = ops.einsum("bfjk,bfkm->bfjm", sines, ends)  # [batch, n_hops, hop, 2]
    curve = INTERPOLATION_CURVES[method](hop_size).astype("float32")
    weights = ops.convert_to_tensor(np.stack([1.0 - curve, curve], axis=-1).astype("float32"))  # [hop, 2]
    audio = ops.sum(per_end * weights, axis=-1)  # [batch, n_hops, hop]
    return ops.reshape(audio, (-1, n_samples)), f0_phase[:, -1, :]


def harmonic_oscillator_bank(frequency, amplitude_envelopes, initial_phase=None, sample_rate=16000,
                             use_angular_cumsum=True):
    """Sums exact harmonics of one fundamental, at audio rate, from a given starting phase.

    Equivalent to `oscillator_bank` with frequencies k * f0, k = 1..n_harmonics, but
    the phase is accumulated once, for f0, and multiplied by k: n_harmonics times less
    accumulation work, and the harmonics stay phase-locked to the fundamental.

    Args:
        frequency: Fundamental frequency in Hz at audio rate, [batch, n_samples, 1].
        amplitude_envelopes: Linear amplitude of each harmonic at audio rate,
            [batch, n_samples, n_harmonics].
        initial_phase: Phase of the fundamental before the first sample in radians,
            [batch, 1, 1]; None for 0.
        sample_rate: Sample rate in Hz.
        use_angular_cumsum: Kept for compatibility; see `oscillator_bank`.

    Returns:
        (audio [batch, n_samples], final_phase [batch, 1, 1]: the fundamental's phase after
        the last sample in radians, in [0, 2pi)). Harmonics at or above Nyquist are silent.
    """
    del use_angular_cumsum
    checks.check_positive("sample_rate", sample_rate)
    frequency = float32(frequency)
    amplitude_envelopes = float32(amplitude_envelopes)
    checks.check_rank("frequency", frequency, 3, "[batch, n_samples, 1]")
    checks.check_rank("amplitude_envelopes", amplitude_envelopes, 3, "[batch, n_samples, n_harmonics]")
    sines, f0_phase = _harmonic_sines(frequency, amplitude_envelopes.shape[-1], sample_rate,
                                      _phase_in_cycles(initial_phase))
    return ops.sum(amplitude_envelopes * sines, axis=-1), TWO_PI * f0_phase[:, -1:, :]
