"""Tests for ddsp_core.core.frequencies against NumPy references of the documented formulas."""

import numpy as np
import pytest
from keras import ops

from ddsp_core.core import frequencies
from tests.gradients import gradient

pytestmark = pytest.mark.dsp


def _np(x):
    return ops.convert_to_numpy(x)


def _midi(hz):
    """core.hz_to_midi: frequencies below MIDI note 0 (8.18 Hz) map to 0."""
    return 0.0 if hz <= 0 else max(12 * np.log2(hz / 440.0) + 69, 0.0)


def _unit_to_hz(unit, hz_min, hz_max):
    midi_min, midi_max = _midi(hz_min), _midi(hz_max)
    return 440.0 * 2 ** ((midi_min + (midi_max - midi_min) * unit - 69) / 12)


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def _outputs(shape, seed=0):
    return np.random.default_rng(seed).normal(scale=2.0, size=shape).astype(np.float32)


def test_softmax_is_expected_position_on_log_axis():
    x = _outputs((2, 3, 5, 4))  # [batch, n_frames, n_sinusoids, depth]
    probabilities = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    unit = (probabilities * np.linspace(0, 1, 4)).sum(-1)
    expected = _unit_to_hz(unit, 20.0, 8000.0)
    np.testing.assert_allclose(_np(frequencies.frequencies_softmax(x)), expected, rtol=1e-5)
    # Rank 3 input: sinusoid-major, depth outputs per sinusoid.
    np.testing.assert_allclose(_np(frequencies.frequencies_softmax(x.reshape(2, 3, 20), depth=4)), expected, rtol=1e-5)


@pytest.mark.parametrize("depth, hz_min, hz_max", [(1, 0.0, 8000.0), (3, 0.0, 8000.0), (4, 50.0, 4000.0)],
                         ids=["depth1", "depth3", "depth4_from50"])
def test_sigmoid_sums_shrinking_parts(depth, hz_min, hz_max):
    x = _outputs((2, 3, 5, depth), seed=depth)
    remainder, factor = hz_max - hz_min, (hz_max - hz_min) ** (1 / depth)
    expected = 0.0
    for d in range(depth):
        if d < depth - 1:
            span = remainder * (1 - 1 / factor)
            expected = expected + _unit_to_hz(_sigmoid(x[..., d]), 0.0, span)
            remainder -= span
        else:
            expected = expected + _unit_to_hz(_sigmoid(x[..., d]), hz_min, remainder)
    got = _np(frequencies.frequencies_sigmoid(x, hz_min=hz_min, hz_max=hz_max))
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_sigmoid_stays_within_range_when_saturated():
    x = np.tile(np.linspace(-100.0, 100.0, 50, dtype=np.float32)[None, None, :, None], [2, 3, 1, 10])
    got = _np(frequencies.frequencies_sigmoid(x, depth=10, hz_min=0.0, hz_max=8000.0))
    assert got.max() <= 8000.0 and got.min() >= 0.0
    assert got.max() == pytest.approx(8000.0, rel=1e-5)


@pytest.mark.parametrize("scale", ["bark", "mel"])
def test_critical_bands_move_around_centres(scale):
    n_sinusoids, depth = 6, 2
    x = _outputs((1, 4, n_sinusoids, depth), seed=5)
    hz_min, hz_max = 20.0, 8000.0
    if scale == "bark":
        to_scale = lambda hz: 26.81 / (1 + 1960 / hz) - 0.53
        centres = 1960 / (26.81 / (np.linspace(to_scale(hz_min), to_scale(hz_max), n_sinusoids) + 0.53) - 1)
    else:
        to_scale = lambda hz: 2595 * np.log10(1 + hz / 700)
        centres = 700 * (10 ** (np.linspace(to_scale(hz_min), to_scale(hz_max), n_sinusoids) / 2595) - 1)
    bandwidths = 0.108 * centres + 24.7
    offsets = np.tanh(x[..., 0]) + np.tanh(x[..., 1]) / 10.0
    unlimited = centres + 2.0 * bandwidths * offsets
    softplus = lambda v: np.logaddexp(0, v)
    expected = softplus(unlimited) + hz_min - softplus(unlimited - (hz_max - hz_min))
    got = _np(frequencies.frequencies_critical_bands(x, bandwidth_scale=2.0, scale=scale))
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    assert got.min() >= hz_min and got.max() <= hz_max


@pytest.mark.parametrize(
    "fn, shape, kwargs, message",
    [(frequencies.frequencies_softmax, (2, 3, 10), {"depth": 3}, r"must be n_sinusoids \* depth"),
     (frequencies.frequencies_sigmoid, (2, 3), {}, r"freqs must have shape"),
     (frequencies.frequencies_sigmoid, (2, 3, 4), {"hz_min": 100.0, "hz_max": 100.0}, "hz_max"),
     (frequencies.frequencies_critical_bands, (2, 3, 4), {"scale": "erb"}, "scale must be one of"),
     (frequencies.frequencies_softmax, (2, 3, 4), {"depth": 0}, "depth must be a positive integer")],
    ids=["not_divisible", "rank2", "empty_range", "scale", "depth0"])
def test_bad_input_is_named(fn, shape, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fn(np.zeros(shape, np.float32), **kwargs)


@pytest.mark.parametrize("fn", [lambda x: frequencies.frequencies_softmax(x, depth=3),
                                lambda x: frequencies.frequencies_sigmoid(x, depth=3),
                                lambda x: frequencies.frequencies_critical_bands(x, depth=3)],
                         ids=["softmax", "sigmoid", "critical_bands"])
def test_gradients_are_finite_and_nonzero(fn):
    (grad,) = gradient(fn, _outputs((1, 2, 12), seed=9) * 0.3)
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
