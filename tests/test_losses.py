"""Tests for ddsp_core.losses: SpectralLoss and mean_difference against NumPy references."""

import numpy as np
import pytest

import ddsp_core as ddsp
from tests.gradients import gradient

pytestmark = pytest.mark.dsp

TERMS = ["mag_weight", "delta_time_weight", "delta_freq_weight", "cumsum_freq_weight", "logmag_weight",
         "loudness_weight"]


def _audio(batch=2, n_samples=8000, seed=0):
    return (0.3 * np.random.default_rng(seed).normal(size=(batch, n_samples))).astype(np.float32)


def _only(term):
    weights = {name: 0.0 for name in TERMS}
    weights[term] = 1.0
    return weights


@pytest.mark.parametrize("loss_type", ["L1", "L2", "COSINE"])
@pytest.mark.parametrize("term", TERMS)
def test_zero_for_identical_positive_otherwise(term, loss_type):
    loss = ddsp.losses.SpectralLoss(loss_type=loss_type, **_only(term))
    target = _audio()
    assert float(loss(target, target)) == 0.0
    assert float(loss(target, _audio(seed=1))) > 0.0


def test_l1_magnitude_loss_matches_numpy():
    target, audio = _audio(), _audio(seed=1)
    size, hop = 256, 64
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(size) / size)

    def mag(x):
        n_frames = -(-x.shape[-1] // hop)
        padded = np.pad(x, [[0, 0], [0, (n_frames - 1) * hop + size - x.shape[-1]]])
        return np.abs(np.stack([np.fft.rfft(padded[:, i * hop:i * hop + size] * window) for i in range(n_frames)], 1))

    expected = np.mean(np.abs(mag(target) - mag(audio))) + np.mean(np.abs(np.log(mag(target) + 0) - np.log(mag(audio))))
    loss = ddsp.losses.SpectralLoss(fft_sizes=[size], mag_weight=1.0, logmag_weight=1.0)
    assert float(loss(target, audio)) == pytest.approx(expected, rel=1e-3)


def test_losses_add_over_fft_sizes():
    target, audio = _audio(), _audio(seed=1)
    per_size = [float(ddsp.losses.SpectralLoss(fft_sizes=[size])(target, audio)) for size in (512, 128)]
    total = float(ddsp.losses.SpectralLoss(fft_sizes=[512, 128])(target, audio))
    assert total == pytest.approx(sum(per_size), rel=1e-5)


def test_cosine_ignores_gain():
    target = _audio()
    loss = ddsp.losses.SpectralLoss(loss_type="COSINE")
    assert float(loss(target, 3.0 * target)) == pytest.approx(0.0, abs=1e-6)
    assert float(ddsp.losses.SpectralLoss(loss_type="L1")(target, 3.0 * target)) > 0.1


@pytest.mark.parametrize(
    "loss_type, expected",
    [("L1", np.mean(np.abs([1.0, -2.0, 0.0, 3.0]))), ("L2", np.mean(np.square([1.0, -2.0, 0.0, 3.0])))],
    ids=["L1", "L2"])
def test_mean_difference_closed_form(loss_type, expected):
    target = np.array([[2.0, 0.0, 1.0, 5.0]], np.float32)
    value = np.array([[1.0, 2.0, 1.0, 2.0]], np.float32)
    assert float(ddsp.losses.mean_difference(target, value, loss_type)) == pytest.approx(expected)


def test_mean_difference_cosine_closed_form():
    target = np.array([[[1.0, 0.0]], [[1.0, 1.0]]], np.float32)
    value = np.array([[[0.0, 1.0]], [[2.0, 2.0]]], np.float32)
    # Frame 1: orthogonal (distance 1), frame 2: parallel (distance 0).
    assert float(ddsp.losses.mean_difference(target, value, "cosine")) == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize("scale", [1.0, 1e-6], ids=["normal", "near_silent"])
def test_spectral_loss_gradient_is_finite_and_nonzero(scale):
    loss = ddsp.losses.SpectralLoss(mag_weight=1.0, logmag_weight=1.0, loudness_weight=0.1)
    target = _audio(batch=1, n_samples=4000)
    (grad,) = gradient(lambda a: loss(target, a), scale * _audio(batch=1, n_samples=4000, seed=1))
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


def test_spectral_loss_gradient_is_finite_for_silence():
    # |STFT| has a kink at zero audio (like |x|): the gradient there must be finite, not NaN.
    loss = ddsp.losses.SpectralLoss(mag_weight=1.0, logmag_weight=1.0, loudness_weight=0.1)
    target = _audio(batch=1, n_samples=4000)
    (grad,) = gradient(lambda a: loss(target, a), np.zeros_like(target))
    assert np.all(np.isfinite(grad))


@pytest.mark.parametrize(
    "kwargs, message",
    [({"loss_type": "L3"}, "loss_type"), ({"fft_sizes": []}, "fft_sizes"), ({"fft_sizes": [256, 0]}, "fft_sizes")],
    ids=["bad_loss_type", "no_sizes", "zero_size"])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ddsp.losses.SpectralLoss(**kwargs)


def test_mismatched_shapes_are_named():
    with pytest.raises(ValueError, match="target_audio"):
        ddsp.losses.SpectralLoss()(_audio(n_samples=8000), _audio(n_samples=4000))
