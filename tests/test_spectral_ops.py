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


# ------------------------------------------------------------------------------------------
# magenta's other spectral_ops names: stft_np, mel spectrograms and MFCCs, pad, RMS energy,
# compute_power, 'valid' f0 frames, pad_or_trim_to_expected_length.


@pytest.mark.parametrize("shape, pad_end", [((1000,), True), ((2, 1000), True), ((2, 1000), False)],
                         ids=["1d_pad_end", "2d_pad_end", "2d_no_pad"])
def test_stft_np_is_stft_as_complex(shape, pad_end):
    audio = np.random.default_rng(4).normal(size=shape).astype(np.float32)
    s_np = spectral_ops.stft_np(audio, frame_size=256, overlap=0.75, pad_end=pad_end)
    real, imag = spectral_ops.stft(audio, frame_size=256, overlap=0.75, pad_end=pad_end)
    assert s_np.dtype == np.complex64 and s_np.shape == tuple(real.shape)
    np.testing.assert_allclose(s_np.real, ops.convert_to_numpy(real), atol=1e-3)
    np.testing.assert_allclose(s_np.imag, ops.convert_to_numpy(imag), atol=1e-3)


def test_stft_np_of_bin_centred_sine():
    s = spectral_ops.stft_np(_sine(SAMPLE_RATE * 16 / 512, 1.0, seconds=0.5), frame_size=512, overlap=0.5,
                             pad_end=False)
    np.testing.assert_allclose(np.abs(s[:, 16]), 512 / 4, rtol=1e-4)  # periodic Hann: A N / 4 at the bin


def _triangle_reference(n_mels, n_bins, sample_rate, lo_hz, hi_hz):
    """Mel filters written out entry by entry: band k peaks at edge k + 1 (HTK mel), 0 Hz gets nothing."""
    def mel(f):
        return 2595.0 * np.log10(1.0 + f / 700.0)

    edges = np.linspace(mel(lo_hz), mel(hi_hz), n_mels + 2)
    matrix = np.zeros((n_bins, n_mels))
    for j in range(1, n_bins):
        m = mel(j * sample_rate / 2.0 / (n_bins - 1))
        for k in range(n_mels):
            left, centre, right = edges[k], edges[k + 1], edges[k + 2]
            if left < m <= centre:
                matrix[j, k] = (m - left) / (centre - left)
            elif centre < m < right:
                matrix[j, k] = (right - m) / (right - centre)
    return matrix


@pytest.mark.parametrize("n_mels, n_bins, lo_hz, hi_hz", [(8, 129, 0.0, 8000.0), (64, 1025, 80.0, 7600.0)],
                         ids=["8_bands", "64_bands"])
def test_mel_weight_matrix_is_the_triangle_bank(n_mels, n_bins, lo_hz, hi_hz):
    matrix = spectral_ops.mel_weight_matrix(n_mels, n_bins, SAMPLE_RATE, lo_hz, hi_hz)
    assert matrix.shape == (n_bins, n_mels) and matrix.dtype == np.float32
    np.testing.assert_allclose(matrix, _triangle_reference(n_mels, n_bins, SAMPLE_RATE, lo_hz, hi_hz), atol=1e-5)


def test_compute_mel_and_logmel_of_a_sine_peak_in_its_band():
    audio = _sine(1000.0, 0.5, seconds=0.5)
    mel = ops.convert_to_numpy(spectral_ops.compute_mel(audio[None], bins=16, fft_size=512))
    mag = ops.convert_to_numpy(spectral_ops.compute_mag(audio[None], size=512))
    np.testing.assert_allclose(mel, mag @ spectral_ops.mel_weight_matrix(16, 257, SAMPLE_RATE, 0.0, 8000.0),
                               rtol=1e-5, atol=1e-4)
    centres_mel = np.linspace(0, 2595 * np.log10(1 + 8000 / 700), 18)[1:-1]
    nearest_band = np.argmin(np.abs(centres_mel - 2595 * np.log10(1 + 1000 / 700)))
    np.testing.assert_array_equal(mel[0, 2:-2].argmax(axis=-1), nearest_band)
    logmel = ops.convert_to_numpy(spectral_ops.compute_logmel(audio[None], bins=16, fft_size=512))
    mel_default = ops.convert_to_numpy(spectral_ops.compute_mel(audio[None], lo_hz=80.0, hi_hz=7600.0, bins=16,
                                                                fft_size=512))
    np.testing.assert_allclose(logmel, np.log(np.maximum(mel_default, 1e-5)), atol=1e-4)


def test_compute_mfcc_is_the_scaled_dct_of_logmel():
    from scipy.fft import dct

    audio = np.random.default_rng(6).normal(size=(2, 4000)).astype(np.float32) * 0.1
    mfcc = ops.convert_to_numpy(spectral_ops.compute_mfcc(audio, mel_bins=40, mfcc_bins=13))
    logmel = ops.convert_to_numpy(spectral_ops.compute_logmel(audio, lo_hz=20.0, hi_hz=8000.0, bins=40,
                                                              fft_size=1024))
    expected = dct(logmel.astype(np.float64), type=2, axis=-1)[..., :13] / np.sqrt(2 * 40)
    assert mfcc.shape == (2, 16, 13)
    np.testing.assert_allclose(mfcc, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kwargs, message", [
    ({"hi_hz": 9000.0}, "sample_rate / 2"), ({"lo_hz": 5000.0, "hi_hz": 4000.0}, "lo_hz < hi_hz"),
    ({"mfcc_bins": 41, "mel_bins": 40}, "mfcc_bins")], ids=["above_nyquist", "reversed_edges", "too_many_mfccs"])
def test_mel_and_mfcc_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        spectral_ops.compute_mfcc(np.zeros(4000, np.float32), **kwargs)


@pytest.mark.parametrize("padding, hop_size", [(p, h) for p in ("valid", "same", "center") for h in (180, 200)],
                         ids=[f"{p}_{h}" for p in ("valid", "same", "center") for h in (180, 200)])
def test_pad_lengths_match_get_framed_lengths(padding, hop_size):
    audio = np.random.default_rng(0).normal(size=(1, 1000)).astype(np.float32)
    padded = ops.convert_to_numpy(spectral_ops.pad(audio, 200, hop_size, padding))
    n_frames, padded_length = spectral_ops.get_framed_lengths(1000, 200, hop_size, padding)
    assert padded.shape == (1, padded_length)
    assert 1 + (padded_length - 200) // hop_size == n_frames


@pytest.mark.parametrize("mode", ["CONSTANT", "REFLECT", "symmetric"])
def test_pad_axis_and_mode_match_numpy(mode):
    x = np.random.default_rng(1).normal(size=(2, 3, 50)).astype(np.float32)
    got = ops.convert_to_numpy(spectral_ops.pad(x, 16, 4, "center", axis=2, mode=mode,
                                                **({"constant_values": 0.5} if mode == "CONSTANT" else {})))
    extra = {"constant_values": 0.5} if mode == "CONSTANT" else {}
    np.testing.assert_array_equal(got, np.pad(x, [(0, 0), (0, 0), (8, 8)], mode=mode.lower(), **extra))
    one_d = ops.convert_to_numpy(spectral_ops.pad(x[0, 0], 16, 5, "same"))  # 1-D: axis 0 whatever axis says
    np.testing.assert_array_equal(one_d, np.pad(x[0, 0], (0, 9 * 5 + 16 - 50)))


@pytest.mark.parametrize("kwargs, message", [({"hop_size": 300}, "hop_size"), ({"mode": "wrap"}, "mode"),
                                             ({"padding": "full"}, "padding")],
                         ids=["hop_over_frame", "unknown_mode", "unknown_padding"])
def test_pad_bad_arguments(kwargs, message):
    arguments = {"frame_size": 200, "hop_size": 100, "padding": "same", **kwargs}
    with pytest.raises(ValueError, match=message):
        spectral_ops.pad(np.zeros((1, 1000)), **arguments)


def _rms_reference(audio, sample_rate=SAMPLE_RATE, frame_rate=250, frame_size=512):
    hop = sample_rate // frame_rate
    padded = np.pad(np.asarray(audio, np.float64), (frame_size // 2, frame_size // 2))
    n_frames = 1 + (len(padded) - frame_size) // hop
    return np.array([np.sqrt(np.mean(padded[i * hop:i * hop + frame_size] ** 2)) for i in range(n_frames)])


@pytest.mark.parametrize("sample_rate", [16000, 24000, 44100])
def test_rms_energy_matches_numpy(sample_rate):
    audio = np.random.default_rng(sample_rate).normal(size=int(0.21 * sample_rate)).astype(np.float32) * 0.3
    rms = ops.convert_to_numpy(spectral_ops.compute_rms_energy(audio, sample_rate))
    np.testing.assert_allclose(rms, _rms_reference(audio, sample_rate), rtol=1e-4)


def test_rms_energy_of_sine_and_constant():
    rms = ops.convert_to_numpy(spectral_ops.compute_rms_energy(np.stack([_sine(1000.0, 0.8, 1.0),
                                                                         np.full(16000, 0.1, np.float32)])))
    np.testing.assert_allclose(rms[0, 5:-5], 0.8 / np.sqrt(2), rtol=1e-4)
    np.testing.assert_allclose(rms[1, 5:-5], 0.1, rtol=1e-5)
    np.testing.assert_allclose(rms[1, 0], 0.1 / np.sqrt(2), rtol=1e-5)  # half of the first frame is padding


def test_rms_energy_gradient_is_finite_on_silence_and_closed_form_elsewhere():
    x = np.zeros((1, 1024), np.float32)
    x[0, 600:] = np.random.default_rng(2).normal(size=424)
    [d_x] = gradient(lambda a: spectral_ops.compute_rms_energy(a, sample_rate=1024, frame_rate=2, frame_size=512,
                                                               padding="valid"), x)
    assert np.all(np.isfinite(d_x))
    np.testing.assert_array_equal(d_x[0, :512], 0.0)  # the silent frame: rms 0, gradient 0
    second = x[0, 512:].astype(np.float64)
    np.testing.assert_allclose(d_x[0, 512:], second / (512 * np.sqrt(np.mean(second**2))), rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("padding", ["same", "valid", "center"])
def test_compute_power_is_rms_in_db_with_magentas_defaults(padding):
    audio = _sine(440.0, 0.75, seconds=0.21)
    power = ops.convert_to_numpy(spectral_ops.compute_power(audio, padding=padding))
    n_frames, _ = spectral_ops.get_framed_lengths(len(audio), 512, 64, padding)
    assert power.shape == (n_frames,)
    rms = ops.convert_to_numpy(spectral_ops.compute_rms_energy(audio, padding=padding))
    np.testing.assert_allclose(power, np.maximum(20 * np.log10(np.maximum(rms, 1e-4)), -80.0), atol=1e-3)
    same_as_db = spectral_ops.compute_power_db(audio, frame_rate=250, frame_size=512, padding=padding)
    np.testing.assert_allclose(power, ops.convert_to_numpy(same_as_db), atol=1e-6)


def test_compute_power_gradient_is_finite():
    audio = np.concatenate([np.zeros(512), _sine(440.0, 0.5, seconds=0.05)])[None].astype(np.float32)
    [d_audio] = gradient(lambda a: spectral_ops.compute_power(a), audio)
    assert np.all(np.isfinite(d_audio)) and np.abs(d_audio).max() > 0


def test_mel_and_mfcc_gradients_are_finite():
    audio = np.random.default_rng(8).normal(size=(1, 2048)).astype(np.float32) * 0.1
    [d_mel] = gradient(lambda a: spectral_ops.compute_mel(a, bins=16, fft_size=256), audio)
    [d_mfcc] = gradient(lambda a: spectral_ops.compute_mfcc(a, mel_bins=32, fft_size=256), audio)
    assert np.all(np.isfinite(d_mel)) and np.abs(d_mel).max() > 0
    assert np.all(np.isfinite(d_mfcc)) and np.abs(d_mfcc).max() > 0


def test_compute_f0_valid_keeps_the_frames_that_fit():
    audio = _sine(440.0, 0.5, seconds=0.21)
    f0_valid, confidence_valid = spectral_ops.compute_f0(audio, 250, viterbi=False, padding="valid", capacity="tiny")
    n_frames, _ = spectral_ops.get_framed_lengths(len(audio), spectral_ops.CREPE_FRAME_SIZE, 64, "valid")
    assert f0_valid.shape == confidence_valid.shape == (n_frames,)
    f0_same, confidence_same = spectral_ops.compute_f0(audio, 250, viterbi=False, padding="same", capacity="tiny")
    np.testing.assert_array_equal(f0_valid, f0_same[:n_frames])  # 'valid' frames are the first 'same' frames
    np.testing.assert_array_equal(confidence_valid, confidence_same[:n_frames])
    np.testing.assert_allclose(np.median(f0_valid), 440.0, rtol=0.01)


def test_crepe_constants():
    assert (spectral_ops.CREPE_SAMPLE_RATE, spectral_ops.CREPE_FRAME_SIZE) == (16000, 1024)
    assert spectral_ops.F0_RANGE == 127.0 and spectral_ops.DB_RANGE == 80.0
    assert spectral_ops.reset_crepe() is None


@pytest.mark.parametrize("use_tf", [False, True], ids=["numpy", "tensor"])
@pytest.mark.parametrize("batch", [None, 3], ids=["1d", "2d"])
def test_pad_or_trim_to_expected_length(use_tf, batch):
    vector = np.arange(1, 11, dtype=np.float32)
    vector = vector if batch is None else np.tile(vector, (batch, 1))
    padded = spectral_ops.pad_or_trim_to_expected_length(vector, 15, pad_value=-1, use_tf=use_tf)
    trimmed = spectral_ops.pad_or_trim_to_expected_length(vector, 4, use_tf=use_tf)
    assert isinstance(padded, np.ndarray) != use_tf
    np.testing.assert_array_equal(ops.convert_to_numpy(padded)[..., :10], vector)
    np.testing.assert_array_equal(ops.convert_to_numpy(padded)[..., 10:], -1)
    np.testing.assert_array_equal(ops.convert_to_numpy(trimmed), vector[..., :4])


def test_pad_or_trim_refuses_a_large_difference():
    with pytest.raises(ValueError, match="differs from the expected length 40 by more than len_tolerance=20"):
        spectral_ops.pad_or_trim_to_expected_length(np.zeros(10), 40)
