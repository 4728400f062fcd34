"""Tests for ddsp_core.synths: the synth demo's spectrum, Nyquist handling, bad input, filtered noise."""

import numpy as np
import pytest
from keras import ops

import ddsp_core as ddsp
from tests.gradients import gradient

pytestmark = pytest.mark.dsp

SAMPLE_RATE = 16000
N_FRAMES = 1000
N_SAMPLES = 64000


def _demo_controls(n_harmonics=20, f0=440.0):
    """The synth demo's inputs: decaying amplitude, decaying harmonic distribution, constant f0."""
    amps = np.linspace(1.0, -3.0, N_FRAMES)[np.newaxis, :, np.newaxis]
    harmonic_distribution = (np.ones([N_FRAMES, 1]) * np.linspace(1.0, -1.0, n_harmonics)[np.newaxis, :])[np.newaxis]
    f0_hz = f0 * np.ones([1, N_FRAMES, 1])
    return amps, harmonic_distribution, f0_hz


def _spectrum(audio, start, seconds=1.0):
    """Sinusoid amplitudes from one second of audio (Hann window, 1 Hz per bin)."""
    segment = audio[int(start * SAMPLE_RATE):int((start + seconds) * SAMPLE_RATE)]
    return 4.0 * np.abs(np.fft.rfft(segment * np.hanning(len(segment)))) / len(segment)


@pytest.fixture(scope="module")
def demo_audio():
    synth = ddsp.synths.Additive(n_samples=N_SAMPLES, scale_fn=ddsp.core.exp_sigmoid, sample_rate=SAMPLE_RATE)
    return ops.convert_to_numpy(synth(*_demo_controls()))[0]


def test_demo_has_peaks_at_the_harmonics_below_nyquist(demo_audio):
    # Of the 20 harmonics of 440 Hz, 18 are below Nyquist (8 kHz); the 19th (8360 Hz) and
    # 20th (8800 Hz) are removed, so nothing aliases to 7640 or 7200 Hz.
    assert demo_audio.shape == (N_SAMPLES,)
    spectrum = _spectrum(demo_audio, start=0.5)  # bins are 1 Hz apart
    harmonics_hz = 440 * np.arange(1, 19)
    # Around each harmonic (+-200 Hz), the strongest bin is the harmonic itself.
    for frequency in harmonics_hz:
        assert np.argmax(spectrum[frequency - 200:frequency + 201]) == 200, frequency
    # Between harmonics (> 10 Hz away) the spectrum is > 40 dB below the weakest harmonic.
    distance_to_harmonic = np.abs(np.arange(len(spectrum))[:, None] - harmonics_hz[None, :]).min(axis=1)
    assert spectrum[distance_to_harmonic > 10].max() < 1e-2 * spectrum[harmonics_hz].min()
    # Harmonic amplitudes decrease with the harmonic number, as the distribution does.
    assert np.all(np.diff(spectrum[harmonics_hz]) < 0)
    assert spectrum[[7200, 7640]].max() < 1e-2 * spectrum[harmonics_hz].min()


def test_demo_amplitude_decays(demo_audio):
    rms = [np.sqrt(np.mean(demo_audio[i * SAMPLE_RATE:(i + 1) * SAMPLE_RATE] ** 2)) for i in range(4)]
    assert np.all(np.diff(rms) < 0)
    assert rms[0] > 10 * rms[3]


def test_demo_level_matches_controls(demo_audio):
    # exp_sigmoid(amps) is the summed amplitude of the harmonics, whose distribution sums to 1.
    # At frame 0 all harmonics start at phase 0, so compare RMS: sum of amplitude^2 / 2.
    amps, distribution, _ = _demo_controls()
    amplitude = ops.convert_to_numpy(ddsp.core.exp_sigmoid(amps))[0, 250, 0]  # t = 1 s
    weights = ops.convert_to_numpy(ddsp.core.exp_sigmoid(distribution))[0, 250]
    weights = weights / weights.sum()
    expected_rms = np.sqrt(np.sum((amplitude * weights) ** 2) / 2)
    measured_rms = np.sqrt(np.mean(demo_audio[16000 - 320:16000 + 320] ** 2))
    assert measured_rms == pytest.approx(expected_rms, rel=0.02)


def test_additive_is_harmonic():
    assert issubclass(ddsp.synths.Additive, ddsp.synths.Harmonic)


def test_harmonics_above_nyquist_are_removed_silently():
    # f0 = 3000 Hz, 5 harmonics: 9000, 12000 and 15000 Hz are above Nyquist (8 kHz) and
    # would alias to 7000, 4000 and 1000 Hz if they were synthesized.
    synth = ddsp.synths.Harmonic(n_samples=N_SAMPLES, sample_rate=SAMPLE_RATE, scale_fn=None)
    audio = ops.convert_to_numpy(synth(np.ones((1, N_FRAMES, 1)), np.ones((1, N_FRAMES, 5)),
                                       np.full((1, N_FRAMES, 1), 3000.0)))[0]
    spectrum = _spectrum(audio, start=1.0)
    # The two harmonics below Nyquist share the whole amplitude: 0.5 each.
    np.testing.assert_allclose(spectrum[[3000, 6000]], 0.5, rtol=0.01)
    for alias_hz in (1000, 4000, 7000):
        assert spectrum[alias_hz - 5:alias_hz + 6].max() < 1e-4


def test_harmonic_initial_tilt_lowers_harmonic_k_by_the_tilt_per_octave():
    # Zero logits: every harmonic would get exp_sigmoid(0); the tilt subtracts t / 20 * log2(k) first.
    tilt = 12.0
    controls = ddsp.synths.Harmonic(n_samples=N_SAMPLES, sample_rate=SAMPLE_RATE, initial_tilt_db_per_octave=tilt) \
        .get_controls(np.zeros((1, 4, 1)), np.zeros((1, 4, 8)), np.full((1, 4, 1), 100.0))
    weights = ops.convert_to_numpy(controls["harmonic_distribution"])[0, 0]
    logits = -tilt / 20.0 * np.log2(np.arange(1, 9))
    expected = ops.convert_to_numpy(ddsp.core.exp_sigmoid(logits))
    np.testing.assert_allclose(weights, expected / expected.sum(), rtol=1e-5)
    # In exp_sigmoid's lower part (above its 1e-7 floor) the tilt is ~t dB per octave: harmonic 8 vs 4 at logit -3.
    deep = ddsp.synths.Harmonic(n_samples=N_SAMPLES, sample_rate=SAMPLE_RATE, initial_tilt_db_per_octave=tilt) \
        .get_controls(np.zeros((1, 4, 1)), np.full((1, 4, 8), -3.0), np.full((1, 4, 1), 100.0))
    deep_weights = ops.convert_to_numpy(deep["harmonic_distribution"])[0, 0]
    assert 20 * np.log10(deep_weights[7] / deep_weights[3]) == pytest.approx(-tilt, abs=0.3)
    # The overall amplitude is untouched.
    np.testing.assert_allclose(ops.convert_to_numpy(controls["amplitudes"]),
                               ops.convert_to_numpy(ddsp.core.exp_sigmoid(np.zeros((1, 4, 1)))), rtol=1e-6)



def test_harmonic_tilt_from_a_frequency_falls_on_frequency_not_harmonic_number():
    # Tilt from 400 Hz: a 100 Hz note keeps harmonics 1-4 (<= 400 Hz) flat and tilts harmonic 8 (800 Hz) by one
    # octave's worth; a 400 Hz note tilts its harmonic 2 (800 Hz) by the same amount.
    tilt = 12.0
    synth = ddsp.synths.Harmonic(n_samples=N_SAMPLES, sample_rate=SAMPLE_RATE, initial_tilt_db_per_octave=tilt,
                                 initial_tilt_from_hz=400.0)
    logits = np.zeros((1, 2, 8), np.float32)
    f0_hz = np.array([[[100.0], [400.0]]], np.float32)
    weights = ops.convert_to_numpy(synth.get_controls(np.zeros((1, 2, 1), np.float32), logits, f0_hz)
                                   ["harmonic_distribution"])[0]
    low, middle = weights
    np.testing.assert_allclose(low[:4], low[0], rtol=1e-6)  # 100-400 Hz: flat
    assert low[7] < low[3]
    # Harmonic 8 of 100 Hz and harmonic 2 of 400 Hz both sit at 800 Hz: one octave above 400 Hz, the same logit.
    expected_ratio = np.asarray(ops.convert_to_numpy(ddsp.core.exp_sigmoid(np.float32(-tilt / 20.0)))) / \
        np.asarray(ops.convert_to_numpy(ddsp.core.exp_sigmoid(np.float32(0.0))))
    assert low[7] / low[0] == pytest.approx(float(expected_ratio), rel=1e-4)
    assert middle[1] / middle[0] == pytest.approx(float(expected_ratio), rel=1e-4)


def test_harmonic_tilt_from_a_bad_frequency_is_named():
    with pytest.raises(ValueError, match="initial_tilt_from_hz"):
        ddsp.synths.Harmonic(initial_tilt_db_per_octave=12.0, initial_tilt_from_hz=0.0)

def test_harmonic_gradients_are_finite_and_nonzero():
    synth = ddsp.synths.Harmonic(n_samples=6400, sample_rate=SAMPLE_RATE)
    rng = np.random.default_rng(0)
    amps, distribution = rng.normal(size=(2, 100, 1)), rng.normal(size=(2, 100, 8))
    f0 = np.full((2, 100, 1), 220.0)
    grads = gradient(lambda a, d, f: synth(a, d, f) ** 2, amps, distribution, f0)
    for name, grad in zip(["amplitudes", "harmonic_distribution", "f0_hz"], grads):
        assert np.all(np.isfinite(grad)), name
        assert np.abs(grad).max() > 0, name


@pytest.mark.parametrize(
    "amps_shape, distribution_shape, f0_shape, message",
    [((1, 100), (1, 100, 4), (1, 100, 1), r"amplitudes must have shape \[batch, n_frames, 1\]"),
     ((1, 100, 1), (1, 100, 4), (1, 100, 2), r"f0_hz must have shape \[batch, n_frames, 1\]"),
     ((1, 100, 1), (1, 90, 4), (1, 100, 1), r"Shapes do not match along axis 1"),
     ((2, 100, 1), (1, 100, 4), (1, 100, 1), r"Shapes do not match along axis 0")],
    ids=["amps_rank2", "f0_two_channels", "frames_mismatch", "batch_mismatch"])
def test_harmonic_bad_shapes_name_the_argument(amps_shape, distribution_shape, f0_shape, message):
    synth = ddsp.synths.Harmonic(n_samples=6400)
    with pytest.raises(ValueError, match=message):
        synth(np.zeros(amps_shape), np.zeros(distribution_shape), np.full(f0_shape, 440.0))


@pytest.mark.parametrize("argument", ["amplitudes", "harmonic_distribution", "f0_hz"])
def test_harmonic_nan_controls_name_the_argument(argument):
    controls = {"amplitudes": np.zeros((1, 100, 1)), "harmonic_distribution": np.zeros((1, 100, 4)),
                "f0_hz": np.full((1, 100, 1), 440.0)}
    controls[argument][0, 50, 0] = np.nan
    with pytest.raises(ValueError, match=f"{argument} contains 1 NaN"):
        ddsp.synths.Harmonic(n_samples=6400)(**controls)


def test_harmonic_negative_f0_is_an_error():
    with pytest.raises(ValueError, match="f0_hz must be >= 0 Hz"):
        ddsp.synths.Harmonic(n_samples=6400)(np.zeros((1, 100, 1)), np.zeros((1, 100, 4)), np.full((1, 100, 1), -5.0))


@pytest.mark.parametrize("kwargs, message", [({"sample_rate": 0}, "sample_rate"), ({"sample_rate": -8000}, "sample_rate"),
                                             ({"n_samples": 0}, "n_samples"), ({"n_samples": 10.5}, "n_samples")],
                         ids=["zero_rate", "negative_rate", "zero_samples", "fractional_samples"])
def test_harmonic_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ddsp.synths.Harmonic(**kwargs)


def test_filtered_noise_follows_the_magnitude_response():
    # Low-pass: full magnitude below 2 kHz, zero above (65 bands from 0 to 8 kHz).
    n_bands = 65
    band_hz = np.linspace(0, SAMPLE_RATE / 2, n_bands)
    magnitudes = np.broadcast_to((band_hz < 2000).astype(np.float32), (1, N_FRAMES, n_bands))
    noise = ddsp.synths.FilteredNoise(n_samples=N_SAMPLES, scale_fn=None, seed=0)
    audio = ops.convert_to_numpy(noise(magnitudes))[0]
    power = np.abs(np.fft.rfft(audio)) ** 2
    frequencies = np.fft.rfftfreq(N_SAMPLES, 1 / SAMPLE_RATE)
    pass_band = power[(frequencies > 200) & (frequencies < 1500)].mean()
    stop_band = power[frequencies > 3000].mean()
    assert 10 * np.log10(pass_band / stop_band) > 30


def test_filtered_noise_default_scaling_and_silence():
    noise = ddsp.synths.FilteredNoise(n_samples=6400, seed=0)
    controls = noise.get_controls(np.zeros((2, 100, 65)))
    # exp_sigmoid(0 + initial_bias -5): quiet by default.
    np.testing.assert_allclose(ops.convert_to_numpy(controls["magnitudes"]),
                               ops.convert_to_numpy(ddsp.core.exp_sigmoid(np.full((2, 100, 65), -5.0))), rtol=1e-6)
    silent = ddsp.synths.FilteredNoise(n_samples=6400, scale_fn=None, seed=0)(np.zeros((2, 100, 65)))
    assert ops.convert_to_numpy(silent).shape == (2, 6400)
    np.testing.assert_array_equal(ops.convert_to_numpy(silent), 0.0)


def test_filtered_noise_gradient_wrt_magnitudes():
    noise = ddsp.synths.FilteredNoise(n_samples=6400, seed=0)
    (grad,) = gradient(lambda m: noise(m) ** 2, np.zeros((1, 100, 17)))
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


def test_filtered_noise_nan_is_named():
    magnitudes = np.zeros((1, 100, 17))
    magnitudes[0, 3, 4] = np.nan
    with pytest.raises(ValueError, match="magnitudes contains 1 NaN"):
        ddsp.synths.FilteredNoise(n_samples=6400)(magnitudes)


def test_sinusoidal_constant_controls_closed_form():
    synth = ddsp.synths.Sinusoidal(n_samples=1600, sample_rate=SAMPLE_RATE, amp_scale_fn=None, freq_scale_fn=None)
    amps = np.tile(np.array([0.5, 0.2, 0.9], np.float32), (2, 10, 1))
    freqs = np.tile(np.array([440.0, 1234.0, 8000.0], np.float32), (2, 10, 1))  # the third is at Nyquist: silent
    outputs = synth(amps, freqs, return_outputs_dict=True)
    np.testing.assert_allclose(ops.convert_to_numpy(outputs["controls"]["amplitudes"])[..., 2], 0.0)
    t = np.arange(1, 1601) / SAMPLE_RATE  # the phase after each sample
    expected = 0.5 * np.sin(2 * np.pi * 440.0 * t) + 0.2 * np.sin(2 * np.pi * 1234.0 * t)
    np.testing.assert_allclose(ops.convert_to_numpy(outputs["signal"]), np.stack([expected] * 2), atol=2e-5)


def test_sinusoidal_default_scaling_is_bounded():
    synth = ddsp.synths.Sinusoidal(n_samples=3200, sample_rate=SAMPLE_RATE)
    freqs = np.tile(np.linspace(-100.0, 100.0, 20, dtype=np.float32)[None, None, :, None], [2, 10, 1, 4])
    controls = synth.get_controls(np.zeros((2, 10, 20)), freqs)  # depth 4 of frequencies_sigmoid
    frequencies = ops.convert_to_numpy(controls["frequencies"])
    assert frequencies.shape == (2, 10, 20) and frequencies.min() >= 0.0 and frequencies.max() <= 8000.0
    amplitudes = ops.convert_to_numpy(controls["amplitudes"])
    np.testing.assert_allclose(amplitudes[frequencies < 8000.0], 2.0 * 0.5 ** np.log(10.0) + 1e-7, rtol=1e-5)
    assert np.all(amplitudes[frequencies >= 8000.0] == 0.0)
    assert ops.convert_to_numpy(synth(np.zeros((2, 10, 20)), freqs)).shape == (2, 3200)


def test_sinusoidal_bad_shapes_name_the_argument():
    synth = ddsp.synths.Sinusoidal(n_samples=640, freq_scale_fn=None)
    with pytest.raises(ValueError, match=r"Shapes do not match along axis 2"):
        synth(np.zeros((1, 10, 3)), np.full((1, 10, 4), 440.0))
    with pytest.raises(ValueError, match=r"frequencies must have shape \[batch, n_frames, n_sinusoids\]"):
        synth(np.zeros((1, 10, 3)), np.full((1, 10), 440.0))


def test_wavetable_sine_table_closed_form():
    synth = ddsp.synths.Wavetable(n_samples=1600, sample_rate=SAMPLE_RATE, scale_fn=None)
    table = np.sin(2 * np.pi * np.arange(512) / 512).astype(np.float32)
    audio = synth(np.full((1, 10, 1), 0.4), np.tile(table, (1, 10, 1)), np.full((1, 10, 1), 330.0))
    expected = 0.4 * np.sin(2 * np.pi * 330.0 * np.arange(1600) / SAMPLE_RATE)  # phase 0 on the first sample
    np.testing.assert_allclose(ops.convert_to_numpy(audio)[0], expected, atol=5e-5)


def test_wavetable_bad_controls_name_the_argument():
    synth = ddsp.synths.Wavetable(n_samples=640)
    with pytest.raises(ValueError, match=r"wavetables must have shape \[batch, n_frames, n_wavetable\]"):
        synth(np.zeros((1, 10, 1)), np.zeros((1, 64)), np.full((1, 10, 1), 440.0))
    with pytest.raises(ValueError, match="f0_hz must be >= 0 Hz"):
        synth(np.zeros((1, 10, 1)), np.zeros((1, 10, 64)), np.full((1, 10, 1), -1.0))


def test_tensor_to_audio_drops_the_channel_axis():
    samples = np.random.default_rng(0).normal(size=(2, 100, 1)).astype(np.float32)
    np.testing.assert_array_equal(ops.convert_to_numpy(ddsp.synths.TensorToAudio()(samples)), samples[:, :, 0])
    with pytest.raises(ValueError, match=r"samples must have shape \[batch, n_samples, 1\]"):
        ddsp.synths.TensorToAudio()(np.zeros((2, 100, 2)))


def test_sinusoidal_wavetable_tensor_to_audio_gradients():
    rng = np.random.default_rng(1)
    sinusoidal = ddsp.synths.Sinusoidal(n_samples=640, sample_rate=SAMPLE_RATE)
    grads = gradient(lambda a, f: sinusoidal(a, f) ** 2, rng.normal(size=(1, 10, 4)), rng.normal(size=(1, 10, 4)))
    wavetable = ddsp.synths.Wavetable(n_samples=640, sample_rate=SAMPLE_RATE)
    grads += gradient(lambda a, w, f: wavetable(a, w, f) ** 2, rng.normal(size=(1, 10, 1)),
                      rng.normal(size=(1, 10, 32)), np.full((1, 10, 1), 300.0))
    grads += gradient(lambda s: ddsp.synths.TensorToAudio()(s) ** 2, rng.normal(size=(1, 50, 1)))
    for grad in grads:
        assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
