"""Tests for ddsp_core.core.delay.variable_length_delay against a NumPy delay line."""

import numpy as np
import pytest
from keras import ops

from ddsp_core.core import variable_length_delay
from tests.gradients import gradient

pytestmark = pytest.mark.dsp


def _delay_reference(phase, audio, max_length):
    """out[b, t] = audio[b, t - d] (linear interpolation, zeros before t = 0), d = clip(phase) * max_length."""
    batch, n_samples = audio.shape
    out = np.zeros((batch, n_samples))
    for b in range(batch):
        padded = np.concatenate([np.zeros(max_length + 1), audio[b].astype(np.float64)])
        times = np.arange(n_samples) - np.clip(phase[b].astype(np.float64), 0, 1) * max_length
        out[b] = np.interp(times + max_length + 1, np.arange(len(padded)), padded)
    return out


def _audio(batch=2, n_samples=300, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, n_samples)).astype(np.float32)


@pytest.mark.parametrize("delay", [0, 1, 7, 32], ids=["none", "one", "seven", "max"])
def test_integer_delay_shifts(delay):
    audio = _audio()
    phase = np.full((2, 300, 1), delay / 32, np.float32)
    got = ops.convert_to_numpy(variable_length_delay(phase, audio, max_length=32))
    expected = np.concatenate([np.zeros((2, delay)), audio[:, :300 - delay]], axis=1)
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("max_length", [1, 10, 64])
def test_time_varying_fractional_delay_matches_interpolation(max_length):
    audio = _audio(seed=max_length)
    phase = np.random.default_rng(max_length + 1).uniform(0, 1, size=(2, 300)).astype(np.float32)
    got = ops.convert_to_numpy(variable_length_delay(phase[..., None], audio, max_length=max_length))
    np.testing.assert_allclose(got, _delay_reference(phase, audio, max_length), atol=1e-5)


def test_fractional_delay_stays_exact_on_long_audio():
    # Positions are integers plus a fraction of one sample: no float32 rounding of t ~ 64000.
    audio = _audio(batch=1, n_samples=64000, seed=5)
    phase = np.full((1, 64000), 0.3137, np.float32)
    got = ops.convert_to_numpy(variable_length_delay(phase, audio, max_length=50))
    np.testing.assert_allclose(got[:, -1000:], _delay_reference(phase, audio, 50)[:, -1000:], atol=1e-5)


def test_phase_outside_unit_interval_is_clipped():
    audio = _audio(batch=1)
    phase = np.array([-0.5, 1.5], np.float32).repeat(150)[None, :]  # [1, 300], rank 2 is accepted too
    got = ops.convert_to_numpy(variable_length_delay(phase, audio, max_length=20))
    np.testing.assert_allclose(got, _delay_reference(phase, audio, 20), atol=1e-5)
    np.testing.assert_allclose(got[0, :150], audio[0, :150], atol=1e-6)  # phase < 0: no delay


def test_half_period_delay_of_a_sine_negates_it():
    # A sine whose period is max_length: half of max_length delays by half a period.
    t = np.arange(4000)
    audio = np.sin(2 * np.pi * t / 100.0)[None, :].astype(np.float32)
    delayed = ops.convert_to_numpy(variable_length_delay(np.full((1, 4000, 1), 0.5), audio, max_length=100))
    np.testing.assert_allclose(delayed[0, 100:], -audio[0, 100:], atol=1e-4)


def test_phase_with_batch_of_one_is_broadcast():
    audio = _audio(batch=3)
    phase = np.full((1, 300, 1), 0.25, np.float32)
    got = ops.convert_to_numpy(variable_length_delay(phase, audio, max_length=8))
    np.testing.assert_allclose(got[:, 2:], audio[:, :-2], atol=1e-6)


@pytest.mark.parametrize(
    "phase_shape, audio_shape, max_length, match",
    [((2, 300, 2), (2, 300), 8, "phase"), ((2, 299, 1), (2, 300), 8, "axis 1"),
     ((2, 300, 1), (2, 300, 1), 8, "audio"), ((2, 300, 1), (2, 300), 0, "max_length")],
    ids=["phase_channels", "length_mismatch", "audio_rank", "max_length_zero"])
def test_bad_inputs_raise(phase_shape, audio_shape, max_length, match):
    with pytest.raises(ValueError, match=match):
        variable_length_delay(np.zeros(phase_shape), np.zeros(audio_shape), max_length=max_length)


def test_nan_phase_raises():
    phase = np.zeros((1, 300, 1))
    phase[0, 5] = np.nan
    with pytest.raises(ValueError, match="phase contains 1 NaN"):
        variable_length_delay(phase, _audio(batch=1), max_length=8)


def test_gradients_match_the_interpolation():
    max_length = 16
    audio = _audio(batch=1, n_samples=200, seed=3)
    phase = np.random.default_rng(4).uniform(0.05, 0.95, size=(1, 200, 1)).astype(np.float32)
    d_phase, d_audio = gradient(lambda p, a: variable_length_delay(p, a, max_length=max_length), phase, audio)
    # d out[t] / d phase[t] = max_length * (audio[t - floor(d) - 1] - audio[t - floor(d)]): the slope read.
    delay = phase[0, :, 0].astype(np.float64) * max_length
    padded = np.concatenate([np.zeros(max_length + 1), audio[0].astype(np.float64)])
    position = np.arange(200) - delay + max_length + 1
    left = np.floor(position).astype(int)
    expected_d_phase = -max_length * (padded[left + 1] - padded[left])
    np.testing.assert_allclose(d_phase[0, :, 0], expected_d_phase, rtol=1e-3, atol=1e-3)
    # d sum(out) / d audio[s] = total interpolation weight that reads sample s.
    weights = np.zeros(len(padded) + 1)
    np.add.at(weights, left, 1 - (position - left))
    np.add.at(weights, left + 1, position - left)
    np.testing.assert_allclose(d_audio[0], weights[max_length + 1:max_length + 201], atol=1e-5)
