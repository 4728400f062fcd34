"""Tests for ddsp_core.core.convolution against np.convolve and measured frequency responses."""

import numpy as np
import pytest
from keras import ops

from ddsp_core.core.convolution import (apply_window_to_impulse_response, fft_convolve, frequency_filter,
                                        frequency_impulse_response)
from tests.gradients import gradient

pytestmark = pytest.mark.dsp

SAMPLE_RATE = 16000


def _random(shape, seed):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _crop(full, n_samples, ir_size, padding, delay_compensation):
    """Crops a full convolution [n_samples + ir_size - 1] like fft_convolve's documentation says."""
    start = (ir_size - 1) // 2 if delay_compensation < 0 else delay_compensation
    size = n_samples if padding == "same" else n_samples + ir_size - 1
    padded = np.concatenate([full, np.zeros(start)])  # the convolution is zero past its end
    return padded[start:start + size]


def _time_varying_reference(audio, impulse_responses):
    """Cuts audio into n_frames equal frames, convolves frame i with IR i, overlap-adds: full length."""
    n_frames, ir_size = impulse_responses.shape
    frame_size = len(audio) // n_frames
    full = np.zeros(len(audio) + ir_size - 1)
    for i in range(n_frames):
        piece = np.convolve(audio[i * frame_size:(i + 1) * frame_size].astype(np.float64), impulse_responses[i])
        full[i * frame_size:i * frame_size + len(piece)] += piece
    return full


def _lowpass_magnitudes(n_frequencies, cutoff_hz, order=4):
    """Butterworth-shaped magnitude response 1 / sqrt(1 + (f / fc) ** (2 order)), 0 Hz to Nyquist."""
    frequencies = np.linspace(0.0, SAMPLE_RATE / 2, n_frequencies)
    return frequencies, 1.0 / np.sqrt(1.0 + (frequencies / cutoff_hz) ** (2 * order))


def _response_db(impulse_response, n_fft=8192):
    frequencies = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    magnitude = np.abs(np.fft.rfft(np.asarray(impulse_response, np.float64), n_fft))
    return frequencies, 20.0 * np.log10(np.maximum(magnitude, 1e-12))


# ------------------------------------------------------------------------------------------
# fft_convolve, fixed impulse response.

FIXED_CASES = [
    # (n_samples, ir_size, padding, delay_compensation)
    (100, 9, "valid", 0),
    (100, 9, "same", 0),
    (100, 9, "same", -1),
    (100, 10, "same", -1),
    (50, 64, "same", -1),
    (100, 17, "same", 5),
    (100, 9, "valid", -1),
    (37, 1, "same", -1),
]
FIXED_IDS = [f"n{n}_ir{ir}_{padding}_delay{delay}" for n, ir, padding, delay in FIXED_CASES]


@pytest.mark.parametrize("n_samples, ir_size, padding, delay_compensation", FIXED_CASES, ids=FIXED_IDS)
def test_fft_convolve_fixed_ir_matches_np_convolve(n_samples, ir_size, padding, delay_compensation):
    audio = _random((2, n_samples), seed=n_samples)
    impulse_response = _random((2, ir_size), seed=ir_size + 1000)
    got = ops.convert_to_numpy(fft_convolve(audio, impulse_response, padding=padding,
                                            delay_compensation=delay_compensation))
    expected = np.stack([_crop(np.convolve(audio[b].astype(np.float64), impulse_response[b]), n_samples, ir_size,
                               padding, delay_compensation) for b in range(2)])
    assert got.shape == expected.shape == (2, n_samples if padding == "same" else n_samples + ir_size - 1)
    np.testing.assert_allclose(got, expected, atol=2e-5 * np.sqrt(ir_size))


@pytest.mark.parametrize("ir_size", [9, 10], ids=["odd_ir", "even_ir"])
def test_fft_convolve_same_default_starts_at_group_delay(ir_size):
    # A delta delayed by (ir_size - 1) // 2 is undone by the default delay compensation.
    audio = _random((2, 100), seed=1)  # shapes shared with FIXED_CASES: nothing new to compile on JAX
    impulse_response = np.zeros((2, ir_size), np.float32)
    impulse_response[:, (ir_size - 1) // 2] = 1.0
    np.testing.assert_allclose(ops.convert_to_numpy(fft_convolve(audio, impulse_response)), audio, atol=1e-6)
    causal = ops.convert_to_numpy(fft_convolve(audio, impulse_response, delay_compensation=0))
    delay = (ir_size - 1) // 2
    np.testing.assert_allclose(causal[:, delay:], audio[:, :100 - delay], atol=1e-6)
    np.testing.assert_allclose(causal[:, :delay], 0.0, atol=1e-6)


def test_fft_convolve_broadcasts_batch1_ir():
    audio = _random((3, 80), seed=2)
    impulse_response = _random((1, 12), seed=3)
    got = ops.convert_to_numpy(fft_convolve(audio, impulse_response, padding="valid", delay_compensation=0))
    expected = np.stack([np.convolve(audio[b].astype(np.float64), impulse_response[0]) for b in range(3)])
    assert got.shape == (3, 91)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("audio_batch, ir_shape", [(3, (2, 9)), (2, (3, 9)), (3, (2, 4, 9))],
                         ids=["fixed_3_vs_2", "fixed_2_vs_3", "time_varying_3_vs_2"])
def test_fft_convolve_mismatched_batch_raises(audio_batch, ir_shape):
    with pytest.raises(ValueError, match="batch"):
        fft_convolve(np.zeros((audio_batch, 64), np.float32), np.zeros(ir_shape, np.float32))


def test_fft_convolve_bad_ranks_raise():
    with pytest.raises(ValueError, match="audio"):
        fft_convolve(np.zeros((64,), np.float32), np.zeros((1, 9), np.float32))
    with pytest.raises(ValueError, match="impulse_response"):
        fft_convolve(np.zeros((1, 64), np.float32), np.zeros((9,), np.float32))


def test_fft_convolve_unknown_padding_raises():
    with pytest.raises(ValueError, match="padding"):
        fft_convolve(np.zeros((2, 100), np.float32), np.zeros((2, 9), np.float32), padding="full")


# ------------------------------------------------------------------------------------------
# fft_convolve, time-varying impulse response.

TIME_VARYING_CASES = [
    # (n_samples, n_frames, ir_size, padding, delay_compensation)
    (120, 4, 9, "valid", 0),
    (120, 4, 9, "same", 0),
    (120, 4, 9, "same", -1),
    (128, 8, 31, "same", -1),  # IR longer than a frame: tails overlap several frames
    (96, 3, 40, "valid", 0),
]
TIME_VARYING_IDS = [f"n{n}_frames{f}_ir{ir}_{padding}_delay{delay}" for n, f, ir, padding, delay in TIME_VARYING_CASES]


@pytest.mark.parametrize("n_samples, n_frames, ir_size, padding, delay_compensation", TIME_VARYING_CASES,
                         ids=TIME_VARYING_IDS)
def test_fft_convolve_time_varying_matches_framewise_reference(n_samples, n_frames, ir_size, padding,
                                                               delay_compensation):
    audio = _random((2, n_samples), seed=n_samples + n_frames)
    impulse_responses = _random((2, n_frames, ir_size), seed=ir_size)
    got = ops.convert_to_numpy(fft_convolve(audio, impulse_responses, padding=padding,
                                            delay_compensation=delay_compensation))
    expected = np.stack([_crop(_time_varying_reference(audio[b], impulse_responses[b]), n_samples, ir_size, padding,
                               delay_compensation) for b in range(2)])
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=2e-5 * np.sqrt(ir_size))


def test_fft_convolve_time_varying_differs_from_fixed():
    # Guard against the frames being ignored: two different IRs must give a different result
    # from either IR alone.
    audio = _random((2, 120), seed=5)  # shapes shared with TIME_VARYING_CASES
    impulse_responses = np.zeros((2, 4, 9), np.float32)
    impulse_responses[:, :, 0] = [1.0, -2.0, 0.0, 0.5]  # a gain per quarter
    got = ops.convert_to_numpy(fft_convolve(audio, impulse_responses, delay_compensation=0))
    gains = np.repeat([1.0, -2.0, 0.0, 0.5], 30)
    np.testing.assert_allclose(got, audio * gains, atol=1e-6)


def test_fft_convolve_samples_not_divisible_by_frames_raise():
    with pytest.raises(ValueError, match="frames"):
        fft_convolve(np.zeros((1, 9), np.float32), np.zeros((1, 4, 5), np.float32))


# ------------------------------------------------------------------------------------------
# frequency_impulse_response.


@pytest.mark.parametrize("n_frequencies, window_size, ir_size", [(65, 0, 127), (65, 33, 33), (129, 0, 255),
                                                                 (64, 0, 125)],
                         ids=["65bins_full", "65bins_window33", "129bins_full", "64bins_full"])
def test_flat_magnitudes_give_centred_delta(n_frequencies, window_size, ir_size):
    magnitudes = np.ones((2, 3, n_frequencies), np.float32)
    impulse_response = ops.convert_to_numpy(frequency_impulse_response(magnitudes, window_size=window_size))
    assert impulse_response.shape == (2, 3, ir_size)
    centre = (ir_size - 1) // 2
    np.testing.assert_allclose(impulse_response[..., centre], 1.0, atol=1e-5)
    others = np.delete(impulse_response, centre, axis=-1)
    np.testing.assert_allclose(others, 0.0, atol=1e-5)


@pytest.mark.parametrize("window_size", [0, 64, 65, 2, 3, 127, 128, 129, 1000],
                         ids=lambda w: f"window{w}")
def test_window_size_gives_documented_ir_size(window_size):
    n_frequencies = 65  # full size 2 * (65 - 1) = 128
    full_size = 128
    expected_window = full_size if window_size <= 0 or window_size > full_size else window_size
    expected_size = expected_window if expected_window % 2 else expected_window - 1
    magnitudes = np.random.default_rng(window_size).uniform(0.1, 1.0, size=(1, 2, n_frequencies)).astype(np.float32)
    impulse_response = ops.convert_to_numpy(frequency_impulse_response(magnitudes, window_size=window_size))
    assert impulse_response.shape == (1, 2, expected_size)
    assert impulse_response.shape[-1] % 2 == 1


@pytest.mark.parametrize("shape", [(3, 33), (2, 4, 33)], ids=["fixed", "time_varying"])
def test_impulse_response_is_symmetric(shape):
    magnitudes = np.random.default_rng(0).uniform(0.0, 2.0, size=shape).astype(np.float32)
    impulse_response = ops.convert_to_numpy(frequency_impulse_response(magnitudes))
    assert impulse_response.shape == shape[:-1] + (63,)
    assert np.abs(impulse_response).max() > 0.1
    np.testing.assert_allclose(impulse_response, impulse_response[..., ::-1], atol=1e-6)


@pytest.mark.parametrize("window_size", [0, 128], ids=["full_window", "window128"])
def test_impulse_response_follows_smooth_lowpass(window_size):
    frequencies, target = _lowpass_magnitudes(257, cutoff_hz=2000.0)
    impulse_response = ops.convert_to_numpy(
        frequency_impulse_response(target[None].astype(np.float32), window_size=window_size))[0]
    response_frequencies, response_db = _response_db(impulse_response)
    target_db = 20 * np.log10(np.interp(response_frequencies, frequencies, target))
    passband = response_frequencies <= 1500.0
    np.testing.assert_array_less(np.abs(response_db[passband] - target_db[passband]), 1.0)
    stopband = response_frequencies >= 4000.0  # target <= -24 dB
    np.testing.assert_array_less(response_db[stopband], target_db[stopband] + 3.0)
    assert response_db[response_frequencies >= 6000.0].max() < -35.0


def test_impulse_response_brickwall_lowpass():
    frequencies = np.linspace(0.0, SAMPLE_RATE / 2, 257)
    magnitudes = (frequencies < 2000.0).astype(np.float32)
    impulse_response = ops.convert_to_numpy(frequency_impulse_response(magnitudes[None], window_size=128))[0]
    response_frequencies, response_db = _response_db(impulse_response)
    np.testing.assert_array_less(np.abs(response_db[response_frequencies <= 1500.0]), 1.0)
    assert response_db[response_frequencies >= 3000.0].max() < -60.0


def test_frequency_impulse_response_needs_two_bins():
    with pytest.raises(ValueError, match="magnitudes"):
        frequency_impulse_response(np.ones((1, 1), np.float32))


# ------------------------------------------------------------------------------------------
# frequency_filter.


@pytest.mark.parametrize("magnitudes_shape, window_size", [((2, 10, 65), 0), ((1, 65), 32)],
                         ids=["time_varying", "fixed_batch1_short_window"])
def test_flat_filter_is_identity(magnitudes_shape, window_size):
    audio = _random((2, 2000), seed=6)
    filtered = ops.convert_to_numpy(frequency_filter(audio, np.ones(magnitudes_shape, np.float32),
                                                     window_size=window_size))
    assert filtered.shape == audio.shape
    np.testing.assert_allclose(filtered, audio, atol=1e-5)


def test_lowpass_filter_removes_high_sine():
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE  # 1 s
    audio = (np.sin(2 * np.pi * 500.0 * t) + np.sin(2 * np.pi * 6000.0 * t)).astype(np.float32)[None]
    frequencies = np.linspace(0.0, SAMPLE_RATE / 2, 257)
    magnitudes = np.broadcast_to((frequencies < 2000.0).astype(np.float32), (1, 50, 257))  # 50 frames
    filtered = ops.convert_to_numpy(frequency_filter(audio, magnitudes))[0]

    def amplitudes(signal):
        segment = signal[2000:14000]  # away from the edges; 0.75 s: whole cycles of both sines
        spectrum = np.abs(np.fft.rfft(segment)) * 2 / len(segment)
        bins = np.fft.rfftfreq(len(segment), 1.0 / SAMPLE_RATE)
        return spectrum[bins == 500.0][0], spectrum[bins == 6000.0][0]

    low_before, high_before = amplitudes(audio[0])
    low_after, high_after = amplitudes(filtered)
    assert low_before == pytest.approx(1.0, abs=1e-3) and high_before == pytest.approx(1.0, abs=1e-3)
    assert low_after == pytest.approx(1.0, abs=0.01)
    assert high_after < 0.01
    # The delay is compensated: the 500 Hz sine comes out in phase.
    np.testing.assert_allclose(filtered[2000:14000], np.sin(2 * np.pi * 500.0 * t[2000:14000]), atol=0.02)


@pytest.mark.parametrize("n_taps, window_size, ir_size", [(16, 0, 15), (17, 0, 17), (16, 9, 9), (16, 10, 9),
                                                         (16, 99, 15)],
                         ids=["even_full", "odd_full", "odd_window", "even_window", "window_too_big"])
def test_apply_window_centres_and_windows_the_response(n_taps, window_size, ir_size):
    zero_phase = _random((2, 3, n_taps), seed=n_taps + window_size)
    windowed = ops.convert_to_numpy(apply_window_to_impulse_response(zero_phase, window_size))
    assert windowed.shape == (2, 3, ir_size)
    half = (ir_size - 1) // 2
    times = np.arange(-half, half + 1)  # time of each output tap; index -t wraps to the end
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(ir_size) + 1) / (ir_size + 1))
    np.testing.assert_allclose(windowed, zero_phase[..., times % n_taps] * hann, atol=1e-6)
    # The same response in causal form (time 0 at n_taps // 2) gives the same result.
    causal = np.roll(zero_phase, n_taps // 2, axis=-1)
    np.testing.assert_allclose(ops.convert_to_numpy(apply_window_to_impulse_response(causal, window_size, causal=True)),
                               windowed, atol=1e-6)


def test_apply_window_needs_taps():
    with pytest.raises(ValueError, match="impulse_response needs a static, non-empty last axis"):
        apply_window_to_impulse_response(np.zeros((2, 0), np.float32))


# ------------------------------------------------------------------------------------------
# Gradients.


def test_gradients_finite_nonzero():
    audio = _random((2, 64), seed=7)
    impulse_response = _random((2, 9), seed=8)
    # Full convolution: d sum(a * h) / d a[n] = sum(h), d / d h[k] = sum(a).
    d_audio, d_ir = gradient(lambda a, h: fft_convolve(a, h, padding="valid", delay_compensation=0),
                             audio, impulse_response)
    np.testing.assert_allclose(d_audio, np.broadcast_to(impulse_response.sum(axis=1, keepdims=True), (2, 64)),
                               rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(d_ir, np.broadcast_to(audio.sum(axis=1, keepdims=True), (2, 9)), rtol=1e-4, atol=1e-4)

    d_audio, d_ir = gradient(lambda a, h: fft_convolve(a, h), audio, _random((2, 4, 9), seed=9))
    assert np.all(np.isfinite(d_audio)) and np.all(d_audio != 0)
    assert np.all(np.isfinite(d_ir)) and np.all(d_ir != 0)

    magnitudes = np.random.default_rng(10).uniform(0.1, 1.0, size=(2, 4, 17)).astype(np.float32)
    weights = _random((2, 64), seed=11)
    d_audio, d_magnitudes = gradient(lambda a, m: frequency_filter(a, m) * weights, audio, magnitudes)
    assert np.all(np.isfinite(d_audio)) and np.abs(d_audio).max() > 1e-3
    assert np.all(np.isfinite(d_magnitudes)) and np.abs(d_magnitudes).max() > 1e-3
    assert np.mean(d_magnitudes != 0) > 0.9

    (d_ir,) = gradient(lambda h: apply_window_to_impulse_response(h, 7), impulse_response)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(1, 8) / 8)  # windowed taps -3..3; taps 4, 5 are cut
    np.testing.assert_allclose(d_ir[0], np.concatenate([hann[3:], [0.0, 0.0], hann[:3]]), atol=1e-6)
