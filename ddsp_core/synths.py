"""Synthesizers as processors: harmonic (additive) oscillators, filtered noise, free sinusoids,
wavetables, and samples passed straight through."""

import gin
import keras
import numpy as np
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.convolution import frequency_filter
from ddsp_core.core.frequencies import frequencies_sigmoid
from ddsp_core.core.oscillators import harmonic_synthesis, normalize_harmonics, oscillator_bank, remove_above_nyquist
from ddsp_core.core.resampling import resample
from ddsp_core.core.units import exp_sigmoid, float32
from ddsp_core.core.wavetables import wavetable_synthesis
from ddsp_core.processors import Processor


def _check_controls(expected_shapes, **controls):
    """Checks ranks, matching batch/frame sizes and finite values of frame-rate controls."""
    for name, value in controls.items():
        checks.check_rank(name, value, 3, expected_shapes[name])
        checks.check_finite(name, value)
    checks.check_same_dims(
        list(controls.items()), axes=(0, 1),
        expected_shape=", ".join(f"{name} {shape}" for name, shape in expected_shapes.items()),
    )


def _length_and_rate(n_samples, sample_rate):
    """(n_samples, sample_rate) of a synthesizer's output, checked: a positive int and a positive rate (Hz)."""
    checks.check_positive_int("n_samples", n_samples)
    checks.check_positive("sample_rate", sample_rate)
    return int(n_samples), sample_rate


def _source_controls(scale_fn, amplitudes, f0_hz, table_name, table, table_shape):
    """Checks and scales the controls of an oscillator: amplitudes [batch, n_frames, 1], f0_hz
    [batch, n_frames, 1] (Hz, >= 0) and a table per frame (`table_name`, of `table_shape`).
    Returns (amplitudes, table, f0_hz), amplitudes and table through `scale_fn` (if not None)."""
    amplitudes, table, f0_hz = map(float32, (amplitudes, table, f0_hz))
    _check_controls({"amplitudes": "[batch, n_frames, 1]", table_name: table_shape, "f0_hz": "[batch, n_frames, 1]"},
                    **{"amplitudes": amplitudes, table_name: table, "f0_hz": f0_hz})
    checks.check_dim("amplitudes", amplitudes, -1, 1, "[batch, n_frames, 1]")
    checks.check_dim("f0_hz", f0_hz, -1, 1, "[batch, n_frames, 1]")
    checks.check_non_negative("f0_hz", f0_hz, " Hz")
    if scale_fn is not None:
        amplitudes, table = scale_fn(amplitudes), scale_fn(table)
    return amplitudes, table, f0_hz


@gin.register
class Harmonic(Processor):
    """Harmonic oscillator bank: a fundamental and its integer multiples.

    Controls, at frame rate: `amplitudes` (overall level), `harmonic_distribution`
    (relative level of each harmonic, normalized to sum to one over the harmonics below
    Nyquist) and `f0_hz`. Harmonics at or above Nyquist are silently removed.
    """

    def __init__(self, n_samples=64000, sample_rate=16000, scale_fn=exp_sigmoid, normalize_below_nyquist=True,
                 amp_resample_method="window", use_angular_cumsum=True, name="harmonic",
                 initial_tilt_db_per_octave=0.0, initial_tilt_from_hz=None):
        super().__init__(name=name)
        self.n_samples, self.sample_rate = _length_and_rate(n_samples, sample_rate)
        self.initial_tilt_db_per_octave = float(initial_tilt_db_per_octave)
        if initial_tilt_from_hz is not None and not initial_tilt_from_hz > 0:
            raise ValueError(f"Harmonic: initial_tilt_from_hz={initial_tilt_from_hz!r} must be a frequency above "
                             f"0 Hz, or None to tilt from the fundamental.")
        self.initial_tilt_from_hz = None if initial_tilt_from_hz is None else float(initial_tilt_from_hz)
        self.scale_fn = scale_fn
        self.normalize_below_nyquist = normalize_below_nyquist
        self.amp_resample_method = amp_resample_method
        self.use_angular_cumsum = use_angular_cumsum

    def get_controls(self, amplitudes, harmonic_distribution, f0_hz):
        """Scales raw inputs to controls.

        Args:
            amplitudes: Overall amplitude, before `scale_fn`, [batch, n_frames, 1].
            harmonic_distribution: Relative harmonic amplitudes, before `scale_fn`,
                [batch, n_frames, n_harmonics].
            f0_hz: Fundamental frequency in Hz (>= 0), [batch, n_frames, 1].

        Returns:
            {'amplitudes', 'harmonic_distribution', 'f0_hz'}, same shapes.
        """
        if self.initial_tilt_db_per_octave and self.scale_fn is not None:
            # exp_sigmoid's lower part is ~exp(2.3 x): x - t / 20 * octaves tilts by -t dB per octave.
            harmonic_distribution = float32(harmonic_distribution) - self.initial_tilt_db_per_octave / 20.0 * \
                self._tilt_octaves(harmonic_distribution.shape[-1], f0_hz)
        amplitudes, harmonic_distribution, f0_hz = _source_controls(
            self.scale_fn, amplitudes, f0_hz, "harmonic_distribution", harmonic_distribution,
            "[batch, n_frames, n_harmonics]")
        nyquist_f0, nyquist_rate = (f0_hz, self.sample_rate) if self.normalize_below_nyquist else (None, None)
        harmonic_distribution = normalize_harmonics(harmonic_distribution, nyquist_f0, nyquist_rate)
        return {"amplitudes": amplitudes, "harmonic_distribution": harmonic_distribution, "f0_hz": f0_hz}

    def _tilt_octaves(self, n_harmonics, f0_hz):
        """Octaves each harmonic lies above where the tilt starts: log2(k) above the fundamental
        ([n_harmonics]), or, with `initial_tilt_from_hz`, log2(k * f0 / from_hz) floored at 0, so that the
        tilt falls on frequency as an instrument's body does, the same for a low note as for a high one
        ([batch, n_frames, n_harmonics])."""
        harmonic_numbers = np.arange(1, n_harmonics + 1, dtype=np.float32)
        if self.initial_tilt_from_hz is None:
            return np.log2(harmonic_numbers)
        frequencies_hz = float32(f0_hz) * harmonic_numbers  # [batch, n_frames, n_harmonics]
        return ops.log2(ops.maximum(frequencies_hz / self.initial_tilt_from_hz, 1.0))

    def get_signal(self, amplitudes, harmonic_distribution, f0_hz):
        """Renders audio, [batch, n_samples], from controls of `get_controls`."""
        return harmonic_synthesis(
            frequencies=f0_hz, amplitudes=amplitudes, harmonic_distribution=harmonic_distribution,
            n_samples=self.n_samples, sample_rate=self.sample_rate,
            amp_resample_method=self.amp_resample_method,
        )


@gin.register
class Additive(Harmonic):
    """The name magenta's ddsp used for `Harmonic`; identical."""


@gin.register
class FilteredNoise(Processor):
    """White noise through a time-varying linear-phase FIR filter.

    Control: `magnitudes`, the filter's magnitude response per frame in n_bands bands
    spaced linearly from 0 Hz to Nyquist.
    """

    def __init__(self, n_samples=64000, window_size=257, scale_fn=exp_sigmoid, initial_bias=-5.0,
                 name="filtered_noise", seed=None):
        super().__init__(name=name)
        checks.check_positive_int("n_samples", n_samples)
        self.n_samples = int(n_samples)
        self.window_size = window_size
        self.scale_fn = scale_fn
        self.initial_bias = initial_bias
        self.seed_generator = keras.random.SeedGenerator(seed)

    def get_controls(self, magnitudes):
        """Scales raw inputs: magnitudes [batch, n_frames, n_bands] -> {'magnitudes'}.

        `initial_bias` is added before `scale_fn`, so zero inputs give a quiet filter.
        """
        magnitudes = float32(magnitudes)
        _check_controls({"magnitudes": "[batch, n_frames, n_bands]"}, magnitudes=magnitudes)
        if self.scale_fn is not None:
            magnitudes = self.scale_fn(magnitudes + self.initial_bias)
        return {"magnitudes": magnitudes}

    def get_signal(self, magnitudes):
        """Filtered noise, [batch, n_samples]; n_samples must be divisible by n_frames."""
        batch_size = magnitudes.shape[0] if magnitudes.shape[0] is not None else ops.shape(magnitudes)[0]
        noise = keras.random.uniform((batch_size, self.n_samples), minval=-1.0, maxval=1.0,
                                     seed=self.seed_generator)
        return frequency_filter(noise, magnitudes, window_size=self.window_size)


@gin.register
class TensorToAudio(Processor):
    """Passes samples through as audio: [batch, n_samples, 1] -> [batch, n_samples].

    For networks that output audio samples directly, so that they fit in a ProcessorGroup.
    """

    def __init__(self, name="tensor_to_audio"):
        super().__init__(name=name)

    def get_controls(self, samples):
        """samples [batch, n_samples, 1] -> {'samples'}."""
        samples = float32(samples)
        checks.check_rank("samples", samples, 3, "[batch, n_samples, 1]")
        checks.check_dim("samples", samples, -1, 1, "[batch, n_samples, 1]")
        return {"samples": samples}

    def get_signal(self, samples):
        """Audio, [batch, n_samples]."""
        return samples[:, :, 0]


@gin.register
class Wavetable(Processor):
    """A wavetable oscillator whose table can change from frame to frame.

    Controls, at frame rate: `amplitudes`, `wavetables` (one period of the waveform per
    frame, n_wavetable samples) and `f0_hz`. Tables are interpolated linearly between
    frames and read with linear interpolation (`core.wavetable_synthesis`).
    """

    def __init__(self, n_samples=64000, sample_rate=16000, scale_fn=exp_sigmoid, name="wavetable"):
        super().__init__(name=name)
        self.n_samples, self.sample_rate = _length_and_rate(n_samples, sample_rate)
        self.scale_fn = scale_fn

    def get_controls(self, amplitudes, wavetables, f0_hz):
        """Scales raw inputs to controls.

        Args:
            amplitudes: Amplitude, before `scale_fn`, [batch, n_frames, 1].
            wavetables: Table samples, before `scale_fn`, [batch, n_frames, n_wavetable].
            f0_hz: Fundamental frequency in Hz (>= 0), [batch, n_frames, 1].

        Returns:
            {'amplitudes', 'wavetables', 'f0_hz'}, same shapes.
        """
        amplitudes, wavetables, f0_hz = _source_controls(self.scale_fn, amplitudes, f0_hz, "wavetables", wavetables,
                                                         "[batch, n_frames, n_wavetable]")
        return {"amplitudes": amplitudes, "wavetables": wavetables, "f0_hz": f0_hz}

    def get_signal(self, amplitudes, wavetables, f0_hz):
        """Renders audio, [batch, n_samples]; n_samples must be a multiple of n_frames."""
        return wavetable_synthesis(f0_hz, amplitudes, wavetables, n_samples=self.n_samples,
                                   sample_rate=self.sample_rate)


@gin.register
class Sinusoidal(Processor):
    """A bank of free sinusoids, each with its own frame-rate amplitude and frequency.

    Controls: `amplitudes` and `frequencies` (Hz), [batch, n_frames, n_sinusoids].
    `freq_scale_fn` maps network outputs to Hz (by default `core.frequencies_sigmoid`,
    which also accepts [batch, n_frames, n_sinusoids, depth]); sinusoids at or above
    Nyquist are silent.
    """

    def __init__(self, n_samples=64000, sample_rate=16000, amp_scale_fn=exp_sigmoid, amp_resample_method="window",
                 freq_scale_fn=frequencies_sigmoid, name="sinusoidal"):
        super().__init__(name=name)
        self.n_samples, self.sample_rate = _length_and_rate(n_samples, sample_rate)
        self.amp_scale_fn = amp_scale_fn
        self.amp_resample_method = amp_resample_method
        self.freq_scale_fn = freq_scale_fn

    def get_controls(self, amplitudes, frequencies):
        """Scales raw inputs to controls.

        Args:
            amplitudes: Amplitudes, before `amp_scale_fn`, [batch, n_frames, n_sinusoids].
            frequencies: Frequencies, before `freq_scale_fn` (Hz if it is None),
                [batch, n_frames, n_sinusoids] (or what `freq_scale_fn` takes).

        Returns:
            {'amplitudes', 'frequencies' (Hz)}, each [batch, n_frames, n_sinusoids];
            amplitudes are 0 where the frequency is at or above Nyquist.
        """
        amplitudes, frequencies = float32(amplitudes), float32(frequencies)
        if self.amp_scale_fn is not None:
            amplitudes = self.amp_scale_fn(amplitudes)
        if self.freq_scale_fn is not None:
            frequencies = self.freq_scale_fn(frequencies)
        shape = "[batch, n_frames, n_sinusoids]"
        _check_controls({"amplitudes": shape, "frequencies": shape}, amplitudes=amplitudes, frequencies=frequencies)
        checks.check_same_dims([("amplitudes", amplitudes), ("frequencies", frequencies)], axes=(2,),
                               expected_shape=f"amplitudes and frequencies {shape}")
        amplitudes = remove_above_nyquist(frequencies, amplitudes, self.sample_rate)
        return {"amplitudes": amplitudes, "frequencies": frequencies}

    def get_signal(self, amplitudes, frequencies):
        """Renders audio, [batch, n_samples]: amplitudes interpolated with `amp_resample_method`,
        frequencies linearly."""
        amplitude_envelopes = resample(amplitudes, self.n_samples, method=self.amp_resample_method)
        frequency_envelopes = resample(frequencies, self.n_samples)
        return oscillator_bank(frequency_envelopes, amplitude_envelopes, sample_rate=self.sample_rate)
