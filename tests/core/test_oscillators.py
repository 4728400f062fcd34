"""Tests for ddsp_core.core.oscillators against closed-form sinusoids and a float64 phase reference."""

import numpy as np
import pytest
from keras import ops

from ddsp_core.core import oscillators
from tests.gradients import gradient

pytestmark = pytest.mark.dsp

SAMPLE_RATE = 16000


def _phase_error_rad(phase_rad, reference_rad):
    """Largest absolute phase difference, wrapped to [-pi, pi], per channel."""
    difference = np.angle(np.exp(1j * (np.asarray(phase_rad, np.float64) - reference_rad)))
    return np.abs(difference).max(axis=0)


@pytest.fixture(scope="module")
def vibrato_harmonics():
    """60 harmonics of a 440 Hz tone with 1 % vibrato, 4 s: cycles per sample, float32 [64000, 60]."""
    t = np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE
    f0_hz = 440.0 * (1.0 + 0.01 * np.sin(2 * np.pi * 5.0 * t))
    return (f0_hz[:, None] * np.arange(1, 61)[None, :] / SAMPLE_RATE).astype(np.float32)


def test_accumulated_phase_matches_float64_reference(vibrato_harmonics):
    # Reference: the same float32 increments summed in float64.
    reference = 2 * np.pi * np.mod(np.cumsum(vibrato_harmonics.astype(np.float64), axis=0), 1.0)
    cycles = ops.convert_to_numpy(oscillators.accumulate_cycles(vibrato_harmonics[None]))[0]
    error = _phase_error_rad(2 * np.pi * cycles.astype(np.float64), reference)
    assert error.max() < 1e-4, f"max phase error {error.max():.2e} rad"  # measured: 1.1e-5
    # The problem this solves: a plain float32 cumsum drifts by radians on high harmonics.
    plain = np.cumsum(vibrato_harmonics * np.float32(2 * np.pi), axis=0)
    assert _phase_error_rad(plain, reference).max() > 0.5


def test_harmonic_bank_high_harmonic_matches_float64_reference():
    # Harmonic 60 of a 110 Hz tone with vibrato, its phase taken as 60 x the f0 phase.
    t = np.arange(4 * SAMPLE_RATE) / SAMPLE_RATE
    f0_hz = (110.0 * (1.0 + 0.01 * np.sin(2 * np.pi * 5.0 * t))).astype(np.float32)
    only_harmonic_60 = np.zeros((1, len(t), 60), np.float32)
    only_harmonic_60[..., 59] = 1.0
    audio, _ = oscillators.harmonic_oscillator_bank(f0_hz[None, :, None], only_harmonic_60, sample_rate=SAMPLE_RATE)
    audio = ops.convert_to_numpy(audio)
    # The same float32 increments (f0 * float32(1 / sample_rate)), summed in float64.
    increments = (f0_hz * np.float32(1.0 / SAMPLE_RATE)).astype(np.float64)
    reference = np.sin(2 * np.pi * 60.0 * np.cumsum(increments))
    assert np.abs(audio[0] - reference).max() < 1e-3  # measured: 1.3e-4


def test_accumulated_phase_is_wrapped(vibrato_harmonics):
    cycles = ops.convert_to_numpy(oscillators.accumulate_cycles(vibrato_harmonics[None, :, :4]))
    assert cycles.min() >= 0.0 and cycles.max() < 1.0


@pytest.mark.parametrize("n_samples", [1, 15, 16, 17, 1000], ids=lambda n: f"n{n}")
def test_angular_cumsum_equals_wrapped_cumsum(n_samples):
    rng = np.random.default_rng(n_samples)
    omega = rng.uniform(0, np.pi, size=(2, n_samples, 3)).astype(np.float32)
    expected = np.mod(np.cumsum(omega.astype(np.float64), axis=1), 2 * np.pi)
    phase = ops.convert_to_numpy(oscillators.angular_cumsum(omega))
    difference = np.angle(np.exp(1j * (phase - expected)))
    np.testing.assert_allclose(difference, 0.0, atol=1e-4)


def test_oscillator_bank_constant_sinusoids_closed_form():
    n_samples = 8000
    frequencies = np.array([1000.0, 2500.0], np.float32)
    amplitudes = np.array([0.5, 0.25], np.float32)
    frequency_envelopes = np.broadcast_to(frequencies, (1, n_samples, 2))
    amplitude_envelopes = np.broadcast_to(amplitudes, (1, n_samples, 2))
    audio = ops.convert_to_numpy(oscillators.oscillator_bank(frequency_envelopes, amplitude_envelopes, SAMPLE_RATE))
    n = np.arange(1, n_samples + 1)  # the phase after sample n includes that sample's increment
    expected = sum(float(a) * np.sin(2 * np.pi * float(f) * n / SAMPLE_RATE) for f, a in zip(frequencies, amplitudes))
    np.testing.assert_allclose(audio[0], expected, atol=1e-4)


def test_oscillator_bank_silences_above_nyquist():
    frequency_envelopes = np.full((1, 100, 2), [1000.0, 8000.0], np.float32)
    amplitude_envelopes = np.ones((1, 100, 2), np.float32)
    audio = ops.convert_to_numpy(
        oscillators.oscillator_bank(frequency_envelopes, amplitude_envelopes, SAMPLE_RATE, sum_sinusoids=False))
    assert audio.shape == (1, 100, 2)
    assert np.abs(audio[..., 0]).max() > 0.9
    np.testing.assert_array_equal(audio[..., 1], 0.0)


def test_harmonic_synthesis_constant_controls_closed_form():
    n_frames, n_samples = 100, 6400
    distribution = np.array([0.5, 0.3, 0.2], np.float32)
    audio = oscillators.harmonic_synthesis(
        frequencies=np.full((1, n_frames, 1), 440.0), amplitudes=np.full((1, n_frames, 1), 0.8),
        harmonic_distribution=np.broadcast_to(distribution, (1, n_frames, 3)),
        n_samples=n_samples, sample_rate=SAMPLE_RATE)
    n = np.arange(1, n_samples + 1)
    expected = sum(0.8 * d * np.sin(2 * np.pi * 440.0 * k * n / SAMPLE_RATE) for k, d in enumerate(distribution, 1))
    np.testing.assert_allclose(ops.convert_to_numpy(audio)[0], expected, atol=1e-4)


@pytest.mark.parametrize("method", ["window", "linear"])
def test_harmonic_synthesis_from_frames_equals_audio_rate_envelopes(method):
    # harmonic_synthesis keeps the amplitudes at frame rate (two matrix products per hop);
    # it must equal the sum of resampled envelopes times sines, also across Nyquist and in gradients.
    rng = np.random.default_rng(5)
    n_frames, n_samples, n_harmonics = 20, 1280, 12
    f0 = rng.uniform(300.0, 1500.0, size=(2, n_frames, 1)).astype(np.float32)  # high harmonics cross Nyquist
    amps = rng.uniform(0.0, 1.0, size=(2, n_frames, 1)).astype(np.float32)
    dist = rng.uniform(0.0, 1.0, size=(2, n_frames, n_harmonics)).astype(np.float32)

    def reference(a, d):
        envelopes = oscillators.resample(a * d, n_samples, method=method)
        audio, _ = oscillators.harmonic_oscillator_bank(oscillators.resample(f0, n_samples), envelopes,
                                                        sample_rate=SAMPLE_RATE)
        return audio

    def lean(a, d):
        return oscillators.harmonic_synthesis(f0, a, harmonic_distribution=d, n_samples=n_samples,
                                              sample_rate=SAMPLE_RATE, amp_resample_method=method)

    expected = ops.convert_to_numpy(reference(amps, dist))
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(ops.convert_to_numpy(lean(amps, dist)), expected, atol=2e-6)
    weights = np.sin(np.arange(n_samples) / 7.0).astype(np.float32)
    for got, want in zip(gradient(lambda a, d: lean(a, d) * weights, amps, dist),
                         gradient(lambda a, d: reference(a, d) * weights, amps, dist)):
        assert np.abs(want).max() > 0.1
        np.testing.assert_allclose(got, want, atol=2e-4)


def test_harmonic_synthesis_shifts_detune_harmonics():
    n_frames, n_samples = 50, 16000
    shifts = np.broadcast_to(np.array([0.0, 0.1], np.float32), (1, n_frames, 2))
    audio = ops.convert_to_numpy(oscillators.harmonic_synthesis(
        frequencies=np.full((1, n_frames, 1), 200.0), amplitudes=np.ones((1, n_frames, 1)),
        harmonic_shifts=shifts, harmonic_distribution=np.full((1, n_frames, 2), 0.5),
        n_samples=n_samples, sample_rate=SAMPLE_RATE))[0]
    spectrum = np.abs(np.fft.rfft(audio))  # 1 s of audio: bins are 1 Hz apart
    peaks = sorted(np.argsort(spectrum)[-2:])
    assert peaks == [200, 440]  # 1 * 200 Hz and 2 * 200 * 1.1 Hz


def test_get_harmonic_frequencies():
    frequencies = ops.convert_to_numpy(oscillators.get_harmonic_frequencies(np.full((2, 3, 1), 100.0), 4))
    np.testing.assert_allclose(frequencies, np.broadcast_to([100.0, 200.0, 300.0, 400.0], (2, 3, 4)))


def test_remove_above_nyquist():
    amplitudes = ops.convert_to_numpy(oscillators.remove_above_nyquist(
        np.array([[[1000.0, 7999.0, 8000.0, 12000.0]]]), np.ones((1, 1, 4)), sample_rate=16000))
    np.testing.assert_array_equal(amplitudes, [[[1.0, 1.0, 0.0, 0.0]]])


@pytest.mark.parametrize(
    "f0_hz, expected",
    [(None, [0.1, 0.2, 0.3, 0.4]), (2500.0, [1 / 6, 2 / 6, 3 / 6, 0.0]), (9000.0, [0.0, 0.0, 0.0, 0.0])],
    ids=["no_nyquist", "fourth_harmonic_above", "all_above"])
def test_normalize_harmonics(f0_hz, expected):
    distribution = np.array([[[1.0, 2.0, 3.0, 4.0]]], np.float32)
    f0 = None if f0_hz is None else np.full((1, 1, 1), f0_hz)
    normalized = oscillators.normalize_harmonics(distribution, f0, 16000 if f0 is not None else None)
    np.testing.assert_allclose(ops.convert_to_numpy(normalized)[0, 0], expected, atol=1e-6)


@pytest.mark.parametrize("sample_rate", [0, -16000, float("nan")], ids=["zero", "negative", "nan"])
def test_bad_sample_rate_is_named(sample_rate):
    with pytest.raises(ValueError, match="sample_rate"):
        oscillators.harmonic_synthesis(np.full((1, 10, 1), 440.0), np.ones((1, 10, 1)), n_samples=640,
                                       sample_rate=sample_rate)


def test_bad_rank_is_named():
    with pytest.raises(ValueError, match=r"frequencies must have shape \[batch, n_frames, 1\]"):
        oscillators.harmonic_synthesis(np.full((10,), 440.0), np.ones((1, 10, 1)), n_samples=640)


def _frequencies(*shape):
    return np.random.default_rng(0).uniform(100.0, 1000.0, size=shape)


def _amplitudes(*shape):
    return np.random.default_rng(1).uniform(0.1, 1.0, size=shape)


@pytest.mark.parametrize(
    "fn, args",
    [(lambda f, a: oscillators.oscillator_bank(f, a, SAMPLE_RATE) ** 2, [_frequencies(1, 500, 3), _amplitudes(1, 500, 3)]),
     (lambda f, a: oscillators.harmonic_synthesis(f, a, n_samples=640) ** 2, [_frequencies(1, 10, 1), _amplitudes(1, 10, 1)]),
     (lambda w: ops.sin(oscillators.angular_cumsum(w)), [_amplitudes(1, 100, 2)]),
     (lambda d: oscillators.normalize_harmonics(d) ** 2, [_amplitudes(1, 10, 4)])],
    ids=["oscillator_bank", "harmonic_synthesis", "angular_cumsum", "normalize_harmonics"])
def test_gradients_are_finite_and_nonzero(fn, args):
    for grad in gradient(fn, *args):
        assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


def test_harmonic_oscillator_bank_initial_and_final_phase_closed_form():
    n_samples, f0 = 400, 300.0
    amplitudes = np.tile(np.array([0.5, 0.25], np.float32), (2, n_samples, 1))
    initial = np.array([[[0.0]], [[1.3]]], np.float32)  # radians, [batch, 1, 1]
    audio, final = oscillators.harmonic_oscillator_bank(np.full((2, n_samples, 1), f0, np.float32), amplitudes,
                                                        initial_phase=initial, sample_rate=SAMPLE_RATE)
    phase = 2 * np.pi * f0 * np.arange(1, n_samples + 1) / SAMPLE_RATE + initial[:, 0]  # after each sample
    expected = 0.5 * np.sin(phase) + 0.25 * np.sin(2 * phase)
    np.testing.assert_allclose(ops.convert_to_numpy(audio), expected, atol=2e-5)
    assert tuple(final.shape) == (2, 1, 1)
    np.testing.assert_allclose(ops.convert_to_numpy(final)[:, 0, 0], np.mod(phase[:, -1], 2 * np.pi), atol=1e-4)


@pytest.mark.parametrize("method", ["linear", "window"])
def test_streaming_harmonic_synthesis_blocks_continue_each_other(method):
    # Constant controls: blocks rendered with the phase carried over equal one long rendering.
    rng = np.random.default_rng(3)
    n_frames, hop = 8, 50
    f0 = np.full((1, 2 * n_frames, 1), 220.0, np.float32)
    amps = np.full((1, 2 * n_frames, 1), 0.7, np.float32)
    distribution = np.tile(rng.uniform(0.1, 1.0, size=(1, 1, 6)).astype(np.float32), (1, 2 * n_frames, 1))
    whole, whole_phase = oscillators.streaming_harmonic_synthesis(f0, amps, distribution, n_samples=2 * n_frames * hop,
                                                                  amp_resample_method=method)
    first, phase = oscillators.streaming_harmonic_synthesis(f0[:, :n_frames], amps[:, :n_frames],
                                                            distribution[:, :n_frames], n_samples=n_frames * hop,
                                                            amp_resample_method=method)
    second, final = oscillators.streaming_harmonic_synthesis(f0[:, n_frames:], amps[:, n_frames:],
                                                             distribution[:, n_frames:], initial_phase=phase,
                                                             n_samples=n_frames * hop, amp_resample_method=method)
    blocks = np.concatenate([ops.convert_to_numpy(first), ops.convert_to_numpy(second)], axis=1)
    np.testing.assert_allclose(blocks, ops.convert_to_numpy(whole), atol=2e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(final), ops.convert_to_numpy(whole_phase), atol=1e-4)
    # The distribution is normalized: the fundamental's amplitude is 0.7 * d_1 / sum(d).
    t = np.arange(1, n_frames * hop + 1) / SAMPLE_RATE
    d = distribution[0, 0] / distribution[0, 0].sum()
    expected = 0.7 * sum(d[k] * np.sin(2 * np.pi * 220.0 * (k + 1) * t) for k in range(6))
    np.testing.assert_allclose(ops.convert_to_numpy(first)[0], expected, atol=2e-5)


def test_streaming_harmonic_synthesis_bad_input_is_named():
    with pytest.raises(ValueError, match=r"initial_phase must have shape \[batch, 1, 1\]"):
        oscillators.streaming_harmonic_synthesis(np.ones((1, 4, 1)), np.ones((1, 4, 1)), initial_phase=np.zeros(1),
                                                 n_samples=16)
    with pytest.raises(ValueError, match=r"harmonic_distribution must have shape"):
        oscillators.streaming_harmonic_synthesis(np.ones((1, 4, 1)), np.ones((1, 4, 1)), np.ones((4, 3)),
                                                 n_samples=16)


def test_streaming_gradients_are_finite_and_nonzero():
    args = [_frequencies(1, 10, 1), _amplitudes(1, 10, 1), _amplitudes(1, 10, 4), np.full((1, 1, 1), 0.3)]
    grads = gradient(lambda f, a, d, p: oscillators.streaming_harmonic_synthesis(f, a, d, p, n_samples=640)[0] ** 2,
                     *args)
    for grad in grads:
        assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
