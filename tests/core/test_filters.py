"""Tests for ddsp_core.core.filters (windowed sinc) against NumPy designs and measured responses."""

import numpy as np
import pytest
from keras import ops

from ddsp_core.core import filters
from tests.gradients import gradient

pytestmark = pytest.mark.dsp

SAMPLE_RATE = 16000


def _np(x):
    return ops.convert_to_numpy(x)


def _np_sinc_lowpass(cutoff, window_size):
    """Reference design: np.sinc(cutoff n) * np.hamming, scaled to unit gain at 0 Hz."""
    half = window_size // 2
    taps = np.sinc(cutoff * np.arange(-half, half + 1)) * np.hamming(2 * half + 1)
    return taps / np.sum(taps)


def _gain_db(impulse_response, frequency_hz):
    n = np.arange(len(impulse_response))
    response = np.sum(impulse_response * np.exp(-2j * np.pi * frequency_hz / SAMPLE_RATE * n))
    return 20 * np.log10(max(abs(response), 1e-12))


def test_sinc_closed_form():
    values = _np(filters.sinc(np.array([0.0, 1.0, -2.0, 0.5, 1e-30], np.float32)))
    np.testing.assert_allclose(values, [1.0, 0.0, 0.0, 2 / np.pi, 1.0], atol=1e-6)


@pytest.mark.parametrize("cutoff, window_size", [(0.25, 64), (0.5, 65), (0.1, 256), (1.0, 8), (0.0, 16)],
                         ids=["quarter_even", "half_odd", "tenth", "nyquist", "zero"])
def test_sinc_impulse_response_matches_numpy_design(cutoff, window_size):
    impulse_response = _np(filters.sinc_impulse_response(cutoff, window_size=window_size))
    assert impulse_response.shape == (1, 1, 2 * (window_size // 2) + 1)
    np.testing.assert_allclose(impulse_response[0, 0], _np_sinc_lowpass(cutoff, window_size), atol=1e-6)
    np.testing.assert_allclose(impulse_response[0, 0], impulse_response[0, 0, ::-1], atol=1e-7)  # linear phase


def test_sinc_impulse_response_in_hz_per_frame():
    cutoff_hz = np.array([[[1000.0], [4000.0]], [[2000.0], [6000.0]]], np.float32)  # [batch, n_frames, 1]
    impulse_response = _np(filters.sinc_impulse_response(cutoff_hz, window_size=128, sample_rate=SAMPLE_RATE))
    assert impulse_response.shape == (2, 2, 129)
    for b in range(2):
        for f in range(2):
            expected = _np_sinc_lowpass(cutoff_hz[b, f, 0] / (SAMPLE_RATE / 2), 128)
            np.testing.assert_allclose(impulse_response[b, f], expected, atol=1e-6)


def test_lowpass_and_highpass_responses():
    low = _np(filters.sinc_impulse_response(2000.0, window_size=256, sample_rate=SAMPLE_RATE))[0, 0]
    high = _np(filters.sinc_impulse_response(2000.0, window_size=256, sample_rate=SAMPLE_RATE, high_pass=True))[0, 0]
    assert abs(_gain_db(low, 0.0)) < 1e-4 and abs(_gain_db(low, 1000.0)) < 0.1
    assert _gain_db(low, 3000.0) < -50  # Hamming: ~53 dB stop band
    assert _gain_db(high, 0.0) < -100 and abs(_gain_db(high, 8000.0)) < 1e-3 and abs(_gain_db(high, 4000.0)) < 0.1
    assert _gain_db(high, 1000.0) < -50
    np.testing.assert_allclose(low + high, np.eye(257)[128], atol=1e-7)  # complementary


@pytest.mark.parametrize("high_pass", [False, True], ids=["lowpass", "highpass"])
def test_sinc_filter_keeps_one_sine_and_removes_the_other(high_pass):
    t = np.arange(8000) / SAMPLE_RATE
    low_sine, high_sine = np.sin(2 * np.pi * 500 * t), np.sin(2 * np.pi * 5000 * t)
    audio = (low_sine + high_sine)[None].astype(np.float32)
    filtered = _np(filters.sinc_filter(audio, 2000.0, window_size=256, sample_rate=SAMPLE_RATE,
                                       high_pass=high_pass))[0]
    kept = high_sine if high_pass else low_sine
    assert filtered.shape == (8000,)
    # 'same' padding compensates the 128-sample delay; compare away from the edges.
    np.testing.assert_allclose(filtered[300:-300], kept[300:-300], atol=5e-3)


def test_sinc_filter_time_varying_cutoff_and_valid_padding():
    rng = np.random.default_rng(0)
    audio = rng.normal(size=(1, 800)).astype(np.float32)
    cutoff = np.array([[[0.2], [0.8]]], np.float32)  # two frames of 400 samples
    filtered = _np(filters.sinc_filter(audio, cutoff, window_size=32, padding="valid"))[0]
    impulse_responses = [_np_sinc_lowpass(c, 32) for c in (0.2, 0.8)]
    full = np.zeros(800 + 32)
    for i, ir in enumerate(impulse_responses):
        full[i * 400:i * 400 + 400 + 32] += np.convolve(audio[0, i * 400:(i + 1) * 400], ir)
    # 'valid' keeps n_samples + ir_size - 1 samples from the filters' delay (16) on.
    expected = np.concatenate([full[16:], np.zeros(16)])
    np.testing.assert_allclose(filtered, expected, atol=1e-5)


@pytest.mark.parametrize(
    "cutoff, kwargs, message",
    [(1.5, {}, r"cutoff_frequency must be in \[0, 1\] \(fraction of Nyquist\)"),
     (9000.0, {"sample_rate": SAMPLE_RATE}, r"cutoff_frequency must be in \[0, 8000\] Hz"),
     (-0.1, {}, "cutoff_frequency must be in"),
     (np.ones((2, 3, 2)), {}, r"cutoff_frequency must have shape \[batch, n_frames, 1\]"),
     (np.ones(3), {}, "cutoff_frequency must have shape a scalar"),
     (0.5, {"window_size": 0}, "window_size must be a positive integer"),
     (0.5, {"sample_rate": 0}, "sample_rate must be a positive number")],
    ids=["above_nyquist", "above_nyquist_hz", "negative", "channels", "rank1", "window", "sample_rate"])
def test_bad_input_is_named(cutoff, kwargs, message):
    with pytest.raises(ValueError, match=message):
        filters.sinc_impulse_response(cutoff, **kwargs)


def test_gradients_are_finite_and_nonzero():
    rng = np.random.default_rng(1)
    audio = rng.normal(size=(1, 256)).astype(np.float32)
    cutoff = np.array([[[0.3], [0.6]]], np.float32)
    d_audio, d_cutoff = gradient(lambda a, c: filters.sinc_filter(a, c, window_size=32) ** 2, audio, cutoff)
    for grad in (d_audio, d_cutoff):
        assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    (d_x,) = gradient(lambda x: filters.sinc(x), np.array([0.0, 0.3, 1.0], np.float32))
    # d/dx sinc(x) = (cos(pi x) - sinc(x)) / x, 0 at x = 0.
    np.testing.assert_allclose(d_x, [0.0, (np.cos(0.3 * np.pi) - np.sinc(0.3)) / 0.3, -1.0], atol=1e-4)
