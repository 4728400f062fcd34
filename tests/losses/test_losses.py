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


# ------------------------------------------------------------------------------------------
# Embedding losses: a pretrained CREPE's activations (tiny, the original weights).


def _tone(f0_hz, n_samples=4096, amplitude=0.5):
    t = np.arange(n_samples) / 16000.0
    return (amplitude * np.sin(2 * np.pi * f0_hz * t)).astype(np.float32)


def test_embedding_loss_is_weighted_mean_difference_of_embeddings():
    loss = ddsp.losses.EmbeddingLoss(weight=3.0, loss_type="L2", pretrained_model=lambda x: x * x)
    target, audio = _audio(batch=1, n_samples=100), _audio(batch=1, n_samples=100, seed=1)
    np.testing.assert_allclose(float(loss(target, audio)), 3.0 * np.mean((target**2 - audio**2) ** 2), rtol=1e-5)
    assert ddsp.losses.EmbeddingLoss(weight=0.0, pretrained_model=None)(target, audio) == 0.0


@pytest.fixture(scope="module")
def crepe_loss():
    return ddsp.losses.PretrainedCREPEEmbeddingLoss(model_capacity="tiny", activation_layer="conv5-maxpool")


def test_crepe_embedding_loss_is_the_scaled_activation_difference(crepe_loss):
    target = np.stack([_tone(220.0), _tone(440.0)])
    audio = np.stack([_tone(233.0), _tone(440.0, amplitude=0.2)])
    activations = ddsp.crepe_layers.CREPEActivations(model_capacity="tiny", activation_layer="conv5-maxpool")
    difference = np.mean(np.abs(np.asarray(activations(target)) - np.asarray(activations(audio))))
    np.testing.assert_allclose(float(crepe_loss(target, audio)), 20.0 * 1.7 * difference, rtol=1e-4)
    assert float(crepe_loss(target, target)) == 0.0
    assert crepe_loss.trainable_weights == [] and isinstance(crepe_loss.pretrained_model, ddsp.losses.PretrainedCREPE)


def test_crepe_embedding_loss_hears_pitch_more_than_level(crepe_loss):
    target = _tone(440.0)[None]
    assert float(crepe_loss(target, 0.5 * target)) < 0.5 * float(crepe_loss(target, _tone(466.2)[None]))


def test_crepe_embedding_loss_gradient(crepe_loss):
    target = _tone(440.0)[None]
    [d_audio] = gradient(lambda a: crepe_loss(target, a), _tone(415.3)[None])
    assert np.all(np.isfinite(d_audio)) and np.abs(d_audio).max() > 0


def test_crepe_embedding_loss_unknown_layer():
    with pytest.raises(ValueError, match="activation_layer must be one of"):
        ddsp.losses.PretrainedCREPEEmbeddingLoss(activation_layer="conv1")


# ------------------------------------------------------------------------------------------
# LossGroup: losses run as a DAG over a dict of outputs.


def test_loss_group_returns_each_loss_by_name():
    outputs = {"audio": _audio(batch=2, n_samples=4096), "audio_synth": _audio(batch=2, n_samples=4096, seed=3),
               "controls": {"amps": np.ones((2, 10, 1), np.float32)}}
    spectral = ddsp.losses.SpectralLoss(fft_sizes=(512, 256))
    param = ddsp.losses.ParamLoss(weight=2.0, name="param_loss")
    group = ddsp.losses.LossGroup(dag=[(spectral, ["audio", "audio_synth"]),
                                       ("param_loss", ["controls/amps", "inputs/controls/amps"])],
                                  param_loss=param)
    losses = group(outputs)
    assert set(losses) == {"spectral_loss", "param_loss"} and group.loss_names == ["param_loss", "spectral_loss"]
    np.testing.assert_allclose(float(losses["spectral_loss"]), float(spectral(outputs["audio"],
                                                                              outputs["audio_synth"])), rtol=1e-6)
    assert float(losses["param_loss"]) == 0.0
    assert group.losses == [param, spectral]
    assert group.get_losses_dict(outputs).keys() == losses.keys()


# ------------------------------------------------------------------------------------------
# Losses on synthesizer controls.


def test_param_amp_and_freq_losses_closed_forms():
    pred, target = np.array([[1.0, 2.0]], np.float32), np.array([[2.0, 4.0]], np.float32)
    np.testing.assert_allclose(float(ddsp.losses.ParamLoss(weight=0.5, loss_type="L2")(pred, target)), 0.5 * 2.5)
    np.testing.assert_allclose(float(ddsp.losses.amp_loss(pred, target)), 1.5)
    np.testing.assert_allclose(float(ddsp.losses.amp_loss(pred, target, log=True)), np.log10(2.0), rtol=1e-5)
    np.testing.assert_allclose(float(ddsp.losses.amp_loss([0.0], [1e-3], log=True, amin=1e-5)), 2.0, rtol=1e-5)
    np.testing.assert_allclose(float(ddsp.losses.freq_loss([220.0, 440.0], [440.0, 440.0])), 6.0, rtol=1e-5)


def test_consistency_losses():
    noise = ddsp.losses.FilteredNoiseConsistencyLoss(weight=2.0)
    np.testing.assert_allclose(float(noise(np.ones((1, 4, 3)), np.zeros((1, 4, 3)))), 2.0)
    harmonic = ddsp.losses.HarmonicConsistencyLoss(amp_weight=1.0, dist_weight=10.0, f0_weight=100.0)
    amp_target = np.array([[[1.0], [0.0]]], np.float32)  # the second frame is silent: not counted
    dist, dist_target = np.array([[[0.5, 0.5], [0.9, 0.1]]]), np.array([[[0.7, 0.3], [0.1, 0.9]]])
    f0, f0_target = np.array([[[220.0], [100.0]]]), np.array([[[440.0], [200.0]]])
    losses = harmonic(np.zeros((1, 2, 1)), amp_target, dist, dist_target, f0, f0_target)
    np.testing.assert_allclose(float(losses["harm_amp_loss"]), 0.5)
    np.testing.assert_allclose(float(losses["harm_dist_loss"]), 10.0 * (0.2 + 0.2) / 4, rtol=1e-5)
    np.testing.assert_allclose(float(losses["f0_hz_loss"]), 100.0 * 12.0 / 2, rtol=1e-5)


def test_control_loss_gradients():
    d_pred, d_target = gradient(lambda p, t: ddsp.losses.amp_loss(p, t, log=True, loss_type="L2"),
                                np.array([0.5, 2.0]), np.array([1.0, 1.0]))
    assert np.all(np.isfinite(d_pred)) and np.all(d_pred != 0) and np.all(np.isfinite(d_target))
    [d_f0] = gradient(lambda f: ddsp.losses.freq_loss(f, np.array([440.0, 440.0])), np.array([220.0, 880.0]))
    np.testing.assert_allclose(d_f0, [-12 / np.log(2) / 220.0 / 2, 12 / np.log(2) / 880.0 / 2], rtol=1e-4)


def test_magenta_names_are_all_here():
    for name in ["Loss", "LossGroup", "mean_difference", "SpectralLoss", "HmmTranscriber", "EmbeddingLoss",
                 "PretrainedCREPEEmbeddingLoss", "PretrainedCREPE", "amp_loss", "freq_loss",
                 "FilteredNoiseConsistencyLoss", "HarmonicConsistencyLoss", "WassersteinConsistencyLoss",
                 "wasserstein_distance", "KDEConsistencyLoss", "TWMLoss", "ParamLoss", "TensorDict"]:
        assert hasattr(ddsp.losses, name), name
