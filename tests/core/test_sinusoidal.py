"""Tests for ddsp_core.core.sinusoidal: harmonic <-> sinusoidal controls, closed form and NumPy references."""

import numpy as np
import pytest
from keras import ops

from ddsp_core.core import sinusoidal
from tests.gradients import gradient

pytestmark = pytest.mark.dsp


def _np(x):
    return ops.convert_to_numpy(x)


def test_harmonic_to_sinusoidal_gives_harmonic_frequencies_and_shared_amplitude():
    f0 = np.array([[[220.0], [3000.0], [9000.0]]], np.float32)  # 3000 Hz: harmonic 3 is above Nyquist
    distribution = np.array([[[1.0, 1.0, 2.0]] * 3], np.float32)
    amplitudes, freqs = sinusoidal.harmonic_to_sinusoidal(np.full((1, 3, 1), 0.8), distribution, f0)
    np.testing.assert_allclose(_np(freqs), f0 * [1, 2, 3], rtol=1e-6)
    expected = np.array([[[0.2, 0.2, 0.4], [0.4, 0.4, 0.0], [0.0, 0.0, 0.0]]])
    np.testing.assert_allclose(_np(amplitudes), expected, atol=1e-6)


def test_sinusoids_on_harmonics_convert_back_exactly():
    # Sinusoids exactly on harmonics 1 and 3 (harmonic 2 absent), far apart relative to the width.
    f0 = np.full((2, 4, 1), 200.0, np.float32)
    sin_freqs = np.tile(np.array([200.0, 600.0], np.float32), (2, 4, 1))
    sin_amps = np.tile(np.array([0.3, 0.1], np.float32), (2, 4, 1))
    harm_amp, harm_dist = sinusoidal.sinusoidal_to_harmonic(sin_amps, sin_freqs, f0, n_harmonics=4)
    np.testing.assert_allclose(_np(harm_amp), 0.4, rtol=1e-5)
    np.testing.assert_allclose(_np(harm_dist), np.tile([0.75, 0.0, 0.25, 0.0], (2, 4, 1)), atol=1e-6)
    amplitudes, freqs = sinusoidal.harmonic_to_sinusoidal(harm_amp, harm_dist, f0)
    np.testing.assert_allclose(_np(amplitudes)[..., [0, 2]], sin_amps, atol=1e-6)


@pytest.mark.parametrize("normalize", [False, True], ids=["plain", "normalized"])
def test_sinusoidal_to_harmonic_matches_gaussian_weighting(normalize):
    rng = np.random.default_rng(2)
    f0 = rng.uniform(300.0, 900.0, size=(2, 3, 1)).astype(np.float32)
    sin_freqs = rng.uniform(50.0, 9000.0, size=(2, 3, 8)).astype(np.float32)
    sin_amps = rng.uniform(0.0, 1.0, size=(2, 3, 8)).astype(np.float32)
    n_harmonics, width = 30, 0.4
    harmonic_freqs = f0 * np.arange(1, n_harmonics + 1)  # [2, 3, 30]
    weights = np.exp(-((sin_freqs[:, :, None, :] - harmonic_freqs[..., None]) / (f0[..., None] * width)) ** 2)
    if normalize:
        sums = weights.sum(-1, keepdims=True)
        weights = np.where(sums > 1.0, weights / np.maximum(sums, 1.0), weights)
    harm_amps = (weights * sin_amps[:, :, None, :]).sum(-1)
    harm_amps[harmonic_freqs >= 8000.0] = 0.0
    harm_amp, harm_dist = sinusoidal.sinusoidal_to_harmonic(sin_amps, sin_freqs, f0, harmonic_width=width,
                                                            n_harmonics=n_harmonics, normalize=normalize)
    np.testing.assert_allclose(_np(harm_amp)[..., 0], harm_amps.sum(-1), rtol=1e-4)
    np.testing.assert_allclose(_np(harm_dist), harm_amps / harm_amps.sum(-1, keepdims=True), atol=1e-5)


@pytest.mark.parametrize(
    "call, message",
    [(lambda: sinusoidal.harmonic_to_sinusoidal(1.0, np.ones((3, 4)), np.ones((1, 3, 1))),
      r"harm_dist must have shape \[batch, n_frames, n_harmonics\]"),
     (lambda: sinusoidal.harmonic_to_sinusoidal(1.0, np.ones((1, 3, 4)), np.ones((1, 3, 1)), sample_rate=0),
      "sample_rate must be a positive number"),
     (lambda: sinusoidal.sinusoidal_to_harmonic(np.ones((1, 3, 2)), np.ones((1, 3)), np.ones((1, 3, 1))),
      r"sin_freqs must have shape \[batch, n_frames, n_sinusoids\]"),
     (lambda: sinusoidal.sinusoidal_to_harmonic(np.ones((1, 3, 2)), np.ones((1, 3, 2)), np.ones((1, 3, 1)),
                                                n_harmonics=0), "n_harmonics must be a positive integer")],
    ids=["harm_dist_rank", "sample_rate", "sin_freqs_rank", "n_harmonics"])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_gradients_are_finite_and_nonzero():
    rng = np.random.default_rng(4)
    f0 = rng.uniform(200.0, 400.0, size=(1, 2, 1)).astype(np.float32)
    amp = rng.uniform(0.1, 1.0, size=(1, 2, 1)).astype(np.float32)
    dist = rng.uniform(0.1, 1.0, size=(1, 2, 5)).astype(np.float32)
    for grad in gradient(lambda a, d: sinusoidal.harmonic_to_sinusoidal(a, d, f0)[0] ** 2, amp, dist):
        assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    sin_amps = rng.uniform(0.1, 1.0, size=(1, 2, 4)).astype(np.float32)
    sin_freqs = f0 * np.array([1.05, 2.0, 2.9, 4.1], np.float32)
    weights = rng.normal(size=(1, 2, 6)).astype(np.float32)
    grads = gradient(lambda a, f, f0_: sinusoidal.sinusoidal_to_harmonic(a, f, f0_, n_harmonics=6)[1] * weights,
                     sin_amps, sin_freqs, f0)
    for grad in grads:
        assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
