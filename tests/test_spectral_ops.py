"""Tests for ddsp_core.spectral_ops: STFT magnitudes, A-weighted loudness and frame power against closed forms."""

import numpy as np
import pytest
from keras import ops

from ddsp_core import spectral_ops
from tests.gradients import gradient

pytestmark = pytest.mark.dsp

SAMPLE_RATE = 16000


def _sine(frequency_hz, amplitude, seconds=4.0, sample_rate=SAMPLE_RATE):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def _a_weighting_db(f):
    """IEC 61672-1 A-weighting, written out independently of the library."""
    f2 = f * f
    r_a = 12194.0**2 * f2**2 / ((f2 + 20.6**2) * np.sqrt((f2 + 107.7**2) * (f2 + 737.9**2)) * (f2 + 12194.0**2))
    return 20 * np.log10(r_a) + 2.0


@pytest.mark.parametrize("frequency_hz, expected_db", [(1000.0, 0.0), (100.0, -19.1), (10000.0, -2.5)],
                         ids=["1kHz", "100Hz", "10kHz"])
def test_a_weighting_table_values(frequency_hz, expected_db):
    # Values from the IEC 61672-1 table (rounded to 0.1 dB).
    assert spectral_ops.a_weighting_db(np.array([frequency_hz]))[0] == pytest.approx(expected_db, abs=0.06)


def test_loudness_reference_point():
    # The convention's reference: 0.5-amplitude 440 Hz sine, 16 kHz, 250 frames/s, n_fft 512 -> ~9.7 dB.
    loudness = ops.convert_to_numpy(spectral_ops.compute_loudness(_sine(440.0, 0.5)))
    assert loudness.shape == (1001,)
    assert loudness[100:-100].mean() == pytest.approx(9.7, abs=0.05)
    assert loudness[100:-100].std() < 0.01


@pytest.mark.parametrize("amplitude", [1.0, 0.1, 0.01], ids=["amp1", "amp0.1", "amp0.01"])
def test_loudness_of_1khz_tone_closed_form(amplitude):
    # 1 kHz is exactly bin 32 of a 512-point FFT at 16 kHz. With a periodic Hann window a
    # bin-centred sine of amplitude A has |X| = A N / 4 at its bin and A N / 8 at both
    # neighbours, and nothing elsewhere. Loudness = 10 log10(mean over the 257 bins of
    # the A-weighted power).
    n_fft = 512
    bins = np.array([31, 32, 33])
    power = (amplitude * n_fft * np.array([1 / 8, 1 / 4, 1 / 8])) ** 2
    weights = 10 ** (_a_weighting_db(bins * SAMPLE_RATE / n_fft) / 10)
    expected_db = 10 * np.log10(np.sum(power * weights) / (n_fft // 2 + 1))
    loudness = ops.convert_to_numpy(spectral_ops.compute_loudness(_sine(1000.0, amplitude), n_fft=n_fft))
    np.testing.assert_allclose(loudness[10:-10], expected_db, atol=0.01)


def test_loudness_is_louder_by_amplitude_ratio():
    quiet = ops.convert_to_numpy(spectral_ops.compute_loudness(_sine(1000.0, 0.1)))
    loud = ops.convert_to_numpy(spectral_ops.compute_loudness(_sine(1000.0, 0.2)))
    np.testing.assert_allclose(loud[10:-10] - quiet[10:-10], 20 * np.log10(2.0), atol=0.01)


@pytest.mark.parametrize("padding, n_frames", [("center", 1001), ("same", 1000), ("valid", 993)],
                         ids=["center", "same", "valid"])
def test_loudness_frame_counts(padding, n_frames):
    audio = np.zeros((2, 64000), np.float32)
    loudness = ops.convert_to_numpy(spectral_ops.compute_loudness(audio, padding=padding))
    assert loudness.shape == (2, n_frames)


def test_silence_reads_the_range_floor_and_ref_db_shifts():
    silent = ops.convert_to_numpy(spectral_ops.compute_loudness(np.zeros(16000, np.float32), range_db=80.0))
    np.testing.assert_allclose(silent, -80.0)
    tone = _sine(1000.0, 0.5, seconds=1.0)
    plain = ops.convert_to_numpy(spectral_ops.compute_loudness(tone))
    shifted = ops.convert_to_numpy(spectral_ops.compute_loudness(tone, ref_db=20.0))
    np.testing.assert_allclose(shifted[10:-10], plain[10:-10] - 20.0, atol=1e-4)


def test_loudness_use_tf_false_returns_numpy():
    assert isinstance(spectral_ops.compute_loudness(np.zeros(1600, np.float32), use_tf=False), np.ndarray)


def test_compute_mag_of_bin_centred_sine():
    size = 1024
    audio = _sine(SAMPLE_RATE * 64 / size, 0.5, seconds=1.0)  # bin 64
    mag = ops.convert_to_numpy(spectral_ops.compute_mag(audio[None], size=size))
    assert mag.shape == (1, 63, size // 2 + 1)  # pad_end: ceil(16000 / 256) frames
    steady = mag[0, 2:-6]
    assert np.all(steady.argmax(axis=-1) == 64)
    np.testing.assert_allclose(steady[:, 64], 0.5 * size / 4, rtol=1e-4)
    np.testing.assert_allclose(steady[:, 63], 0.5 * size / 8, rtol=1e-3)


def test_stft_matches_numpy():
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(2, 1000)).astype(np.float32)
    real, imag = spectral_ops.stft(audio, frame_size=256, overlap=0.75)
    hop, window = 64, 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(256) / 256)
    padded = np.pad(audio, [[0, 0], [0, 16 * 64 + 256 - 1000]])
    expected = np.stack([np.fft.rfft(padded[:, i * hop:i * hop + 256] * window) for i in range(16)], axis=1)
    np.testing.assert_allclose(ops.convert_to_numpy(real), expected.real, atol=1e-3)
    np.testing.assert_allclose(ops.convert_to_numpy(imag), expected.imag, atol=1e-3)


def test_logmag_is_log_of_mag():
    audio = _sine(440.0, 0.5, seconds=0.5)[None]
    mag = ops.convert_to_numpy(spectral_ops.compute_mag(audio, size=256))
    logmag = ops.convert_to_numpy(spectral_ops.compute_logmag(audio, size=256))
    np.testing.assert_allclose(logmag, np.log(np.maximum(mag, 1e-5)), atol=1e-5)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"sample_rate": 0}, "sample_rate"), ({"frame_rate": -1}, "frame_rate"), ({"padding": "full"}, "padding"),
     ({"n_fft": 511}, "even frame size")],
    ids=["zero_sample_rate", "negative_frame_rate", "unknown_padding", "odd_n_fft_center"])
def test_loudness_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        spectral_ops.compute_loudness(np.zeros(1600, np.float32), **kwargs)


def test_loudness_bad_rank():
    with pytest.raises(ValueError, match=r"audio must have shape \[n_samples\] or \[batch, n_samples\]"):
        spectral_ops.compute_loudness(np.zeros((1, 1, 1600), np.float32))


# compute_power_db: mean square of rectangular frames, in dB (DDSP-VST's level feature).


def _power_db_reference(audio, sample_rate=SAMPLE_RATE, frame_rate=50, frame_size=1024, range_db=80.0, ref_db=0.0):
    """The formula, written out with NumPy: 'center' padding, frame i = samples [i hop, i hop + frame_size)."""
    hop = sample_rate // frame_rate
    padded = np.pad(np.asarray(audio, np.float64), (frame_size // 2, frame_size // 2))
    n_frames = 1 + (len(padded) - frame_size) // hop
    power = np.array([np.mean(padded[i * hop:i * hop + frame_size] ** 2) for i in range(n_frames)])
    return np.maximum(10 * np.log10(np.maximum(power, 10 ** (-range_db / 10))) - ref_db, -range_db)


def _power_db(audio, **kwargs):
    return ops.convert_to_numpy(spectral_ops.compute_power_db(audio, **kwargs))


@pytest.mark.parametrize("frequency_hz", [1000.0, 500.0, 250.0], ids=["1kHz", "500Hz", "250Hz"])
def test_power_of_a_full_scale_sine_is_minus_3_db(frequency_hz):
    # Whole periods in every 1024-sample frame: mean square exactly 1/2, 10 log10(1/2) = -3.0103 dB.
    power = _power_db(_sine(frequency_hz, 1.0, seconds=1.0))
    assert power.shape == (51,)
    np.testing.assert_allclose(power[2:-2], 10 * np.log10(0.5), atol=1e-4)


def test_power_of_a_constant_and_its_half_silent_edge_frames():
    # 0.1 everywhere: 10 log10(0.01) = -20 dB. The first and last frames are centred on the
    # ends, so half of each is padding: 10 log10(0.01 / 2) = -23.01 dB.
    power = _power_db(np.full(16000, 0.1, np.float32))
    np.testing.assert_allclose(power[2:-2], -20.0, atol=1e-4)
    np.testing.assert_allclose(power[[0, -1]], -20.0 + 10 * np.log10(0.5), atol=1e-4)


def test_power_of_silence_is_the_floor_and_range_db_moves_it():
    np.testing.assert_allclose(_power_db(np.zeros(16000, np.float32)), -80.0)
    quiet = np.full(16000, 1e-3, np.float32)  # -60 dB
    np.testing.assert_allclose(_power_db(quiet)[2:-2], -60.0, atol=1e-3)
    np.testing.assert_allclose(_power_db(quiet, range_db=50.0), -50.0)


def test_power_ref_db_shifts():
    tone = _sine(1000.0, 0.5, seconds=1.0)
    np.testing.assert_allclose(_power_db(tone, ref_db=10.0), _power_db(tone) - 10.0, atol=1e-4)


def test_power_matches_the_numpy_formula_on_noise():
    rng = np.random.default_rng(0)
    audio = (rng.normal(size=(2, 8000)) * np.array([[0.3], [0.003]])).astype(np.float32)
    power = _power_db(audio)
    assert power.shape == (2, 26)
    for row in range(2):
        np.testing.assert_allclose(power[row], _power_db_reference(audio[row]), atol=1e-3)
    # At 250 frames/s (the prepare job's default rate), hop 64, still 1024-sample frames.
    np.testing.assert_allclose(_power_db(audio[0], frame_rate=250), _power_db_reference(audio[0], frame_rate=250),
                               atol=1e-3)


@pytest.mark.parametrize("padding, frame_rate, n_frames", [
    ("center", 50, 51), ("center", 250, 251), ("same", 50, 50), ("valid", 50, 47)],
    ids=["center_50", "center_250", "same", "valid"])
def test_power_frame_counts(padding, frame_rate, n_frames):
    # center: 1 + n_samples // hop; same: ceil(n_samples / hop); valid: 1 + (n_samples - 1024) // hop.
    power = _power_db(np.zeros((3, 16000), np.float32), frame_rate=frame_rate, padding=padding)
    assert power.shape == (3, n_frames)


def test_power_frames_align_with_loudness_frames():
    audio = _sine(440.0, 0.5, seconds=1.0)
    for frame_rate in (50, 250):
        assert _power_db(audio, frame_rate=frame_rate).shape == \
            ops.convert_to_numpy(spectral_ops.compute_loudness(audio, frame_rate=frame_rate)).shape


def test_power_gradient_matches_the_closed_form():
    # One frame ('valid', n = frame_size): d(10 log10(mean x^2)) / dx_i = (10 / ln 10) * 2 x_i / sum(x^2).
    x = np.random.default_rng(1).normal(size=(1, 64)).astype(np.float32) * 0.5
    [d_x] = gradient(lambda a: spectral_ops.compute_power_db(a, sample_rate=64, frame_rate=1, frame_size=64,
                                                             padding="valid"), x)
    np.testing.assert_allclose(d_x, 10 / np.log(10) * 2 * x / np.sum(x.astype(np.float64) ** 2), rtol=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    ({"sample_rate": 0}, "sample_rate"), ({"frame_rate": -1}, "frame_rate"), ({"frame_size": 0}, "frame_size"),
    ({"frame_rate": 10}, r"hop of 1600 samples; it must be in \[1, frame_size=1024\]"),
    ({"padding": "full"}, "padding"), ({"frame_size": 1023}, "even frame size")],
    ids=["zero_sample_rate", "negative_frame_rate", "zero_frame_size", "hop_over_frame", "unknown_padding",
         "odd_frame_center"])
def test_power_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        spectral_ops.compute_power_db(np.zeros(16000, np.float32), **kwargs)
