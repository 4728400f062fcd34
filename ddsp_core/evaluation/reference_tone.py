"""A plain tone that follows the input controls: the yardstick's own reading of the input f0.

The f0 metrics compare CREPE's reading of the generated audio with the input f0, itself
CREPE's reading of the original recording. Where the input changes note, the input f0 is
a tracker's reading of a transition (a few frames of glide at 250 frames/s), and CREPE on any
audio that plays that glide exactly need not read it back within 50 cents: on the bundled
validation clarinet, this tone (and the original recording itself, under full CREPE at
50 frames/s) read 2.4 % of the confident frames more than 50 cents off, all at note changes,
as often as a trained model did (benchmarks/RESULTS.md, "f0 outliers: the yardstick's
floor"). `metrics.F0LoudnessMetrics` synthesizes this tone from each example's f0 and
loudness, runs the same CREPE on it, and leaves out of its f0 figures the frames where the
tone is read more than the outlier threshold off: there the metric cannot tell a model
that follows the input from one that does not.

The tone is the harmonic synth's own rendering (`core.oscillators.harmonic_synthesis`:
f0 interpolated linearly to audio rate, as the model's synth does; amplitudes linearly too,
so any number of frames fits any number of samples) with a fixed spectrum, harmonic k at
amplitude 1/k (a sawtooth's), none at or above Nyquist.
"""

import keras
import numpy as np

from ddsp_core.core import checks
from ddsp_core.core.oscillators import harmonic_synthesis

# Harmonics of the tone (fewer where they would reach Nyquist).
N_HARMONICS = 20
# Peak amplitude of each example's loudest frame.
PEAK_AMPLITUDE = 0.5


def reference_tone(f0_hz, loudness_db, n_samples, sample_rate):
    """A harmonic tone with the given f0 and loudness contour.

    Args:
        f0_hz: Fundamental frequency in Hz, [batch, n_frames] (0 where unpitched: silence).
        loudness_db: Loudness in dB, [batch, n_frames]: the tone's amplitude follows
            10 ** (loudness_db / 20), scaled so that the fundamental of each example's
            loudest frame has PEAK_AMPLITUDE (CREPE normalizes each frame: the level only
            has to rise and fall with the input's).
        n_samples: Samples per example. Frame i sounds at sample i * n_samples / n_frames;
            with centred features (n_frames = n_samples / hop + 1, the last frame centred
            on the example's end), at i * hop.
        sample_rate: Sample rate in Hz.

    Returns:
        float32 NumPy array [batch, n_samples].
    """
    f0_hz = np.asarray(f0_hz, dtype=np.float64)
    loudness_db = np.asarray(loudness_db, dtype=np.float64)
    if f0_hz.ndim != 2 or loudness_db.shape != f0_hz.shape:
        raise ValueError(f"f0_hz and loudness_db must both have shape [batch, n_frames], got {f0_hz.shape} "
                         f"and {loudness_db.shape}.")
    checks.check_positive_int("n_samples", n_samples)
    checks.check_positive("sample_rate", sample_rate)
    n_frames = f0_hz.shape[1]
    if n_frames > 1 and n_samples % n_frames and n_samples % (n_frames - 1) == 0:
        # Centred: frame n_frames - 1 lies on the example's end, past its last sample.
        f0_hz, loudness_db = f0_hz[:, :-1], loudness_db[:, :-1]
    f0_hz = np.maximum(f0_hz, 0.0)
    amplitude = 10.0 ** ((loudness_db - np.max(loudness_db, axis=1, keepdims=True)) / 20.0) * PEAK_AMPLITUDE
    amplitude = np.where(f0_hz > 0.0, amplitude, 0.0)  # Unpitched: silence, not a frozen phase's DC.
    harmonics = np.arange(1, N_HARMONICS + 1)
    below_nyquist = harmonics[None, None, :] * f0_hz[..., None] < sample_rate / 2.0
    distribution = np.where(below_nyquist, 1.0 / harmonics, 0.0)  # [batch, n_frames, N_HARMONICS]
    audio = harmonic_synthesis(f0_hz[..., None].astype(np.float32), amplitude[..., None].astype(np.float32),
                               harmonic_distribution=distribution.astype(np.float32), n_samples=int(n_samples),
                               sample_rate=sample_rate, amp_resample_method="linear")
    return np.asarray(keras.ops.convert_to_numpy(audio), dtype=np.float32)
