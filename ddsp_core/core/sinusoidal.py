"""Converting controls between a harmonic synthesizer (amplitude, distribution, f0) and a
bank of free sinusoids (one amplitude and one frequency per sinusoid)."""

from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.oscillators import get_harmonic_frequencies, normalize_harmonics, remove_above_nyquist
from ddsp_core.core.units import float32, safe_divide


def harmonic_to_sinusoidal(harm_amp, harm_dist, f0_hz, sample_rate=16000):
    """Amplitudes and frequencies of the sinusoids a harmonic synthesizer would play.

    Harmonics at or above Nyquist are dropped and the rest renormalized (as
    `normalize_harmonics` does), so the amplitudes of a frame sum to its `harm_amp`.

    Args:
        harm_amp: Overall amplitude, [batch, n_frames, 1] (or anything broadcastable, e.g. a scalar).
        harm_dist: Relative harmonic amplitudes, [batch, n_frames, n_harmonics].
        f0_hz: Fundamental frequency in Hz, [batch, n_frames, 1].
        sample_rate: Sample rate in Hz.

    Returns:
        (amplitudes [batch, n_frames, n_harmonics], frequencies in Hz [batch, n_frames, n_harmonics]).
    """
    checks.check_positive("sample_rate", sample_rate)
    harm_dist, f0_hz = float32(harm_dist), float32(f0_hz)
    checks.check_rank("harm_dist", harm_dist, 3, "[batch, n_frames, n_harmonics]")
    checks.check_rank("f0_hz", f0_hz, 3, "[batch, n_frames, 1]")
    frequencies = get_harmonic_frequencies(f0_hz, harm_dist.shape[-1])
    amplitudes = float32(harm_amp) * normalize_harmonics(harm_dist, f0_hz, sample_rate)
    return amplitudes, frequencies


def sinusoidal_to_harmonic(sin_amps, sin_freqs, f0_hz, harmonic_width=0.1, n_harmonics=100, sample_rate=16000,
                           normalize=False):
    """Harmonic controls that approximate a bank of sinusoids, given the fundamental.

    Each sinusoid gives its amplitude to every harmonic k, weighted by
    exp(-(|f - k f0| / (f0 harmonic_width)) ** 2): a Gaussian in the frequency distance
    measured in units of f0. Harmonics at or above Nyquist get nothing.

    Args:
        sin_amps: Linear amplitudes, [batch, n_frames, n_sinusoids].
        sin_freqs: Frequencies in Hz, [batch, n_frames, n_sinusoids].
        f0_hz: Fundamental frequency in Hz, [batch, n_frames, 1].
        harmonic_width: Standard deviation-like width of the weighting, relative to f0.
        n_harmonics: Number of harmonics to output.
        sample_rate: Sample rate in Hz.
        normalize: If True, a harmonic whose weights over the sinusoids sum to more than
            one has them divided by their sum, so no harmonic collects more than the
            loudest sinusoid's amplitude.

    Returns:
        (harm_amp [batch, n_frames, 1], the sum of the harmonic amplitudes;
         harm_dist [batch, n_frames, n_harmonics], the amplitudes divided by that sum).
    """
    checks.check_positive("sample_rate", sample_rate)
    checks.check_positive_int("n_harmonics", n_harmonics)
    checks.check_positive("harmonic_width", harmonic_width)
    sin_amps, sin_freqs, f0_hz = float32(sin_amps), float32(sin_freqs), float32(f0_hz)
    for name, value in (("sin_amps", sin_amps), ("sin_freqs", sin_freqs)):
        checks.check_rank(name, value, 3, "[batch, n_frames, n_sinusoids]")
    checks.check_rank("f0_hz", f0_hz, 3, "[batch, n_frames, 1]")
    harm_freqs = get_harmonic_frequencies(f0_hz, n_harmonics)  # [batch, n_frames, n_harmonics]
    distance = sin_freqs[:, :, None, :] - harm_freqs[..., None]  # [batch, n_frames, n_harmonics, n_sinusoids]
    relative = ops.abs(safe_divide(distance, f0_hz[..., None]))
    weights = ops.exp(-ops.square(relative / harmonic_width))
    if normalize:
        weight_sums = ops.sum(weights, axis=-1, keepdims=True)
        weights = ops.where(weight_sums > 1.0, safe_divide(weights, weight_sums), weights)
    harm_amps = ops.sum(weights * sin_amps[:, :, None, :], axis=-1)  # [batch, n_frames, n_harmonics]
    harm_amps = remove_above_nyquist(harm_freqs, harm_amps, sample_rate)
    harm_amp = ops.sum(harm_amps, axis=-1, keepdims=True)
    return harm_amp, safe_divide(harm_amps, harm_amp)
