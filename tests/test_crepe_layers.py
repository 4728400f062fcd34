"""Tests for ddsp_core.crepe_layers against the NumPy CREPE pipeline of ddsp_core.crepe (tiny weights)."""

import keras
import numpy as np
import pytest
from keras import ops

from ddsp_core import crepe, crepe_layers
from tests.gradients import gradient

pytestmark = pytest.mark.dsp

SAMPLE_RATE = crepe.SAMPLE_RATE


def _tone(f0_hz, seconds=0.5, amplitude=0.5):
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (amplitude * (np.sin(2 * np.pi * f0_hz * t) + 0.5 * np.sin(4 * np.pi * f0_hz * t))).astype(np.float32)


@pytest.fixture(scope="module")
def pitch_model():
    return crepe_layers.PretrainedCREPE("tiny", hop_size=160)


@pytest.fixture(scope="module")
def tracker():
    return crepe.PitchTracker("tiny", batch_size=64)


def test_activations_to_f0_matches_crepe_decode():
    salience = np.random.default_rng(0).uniform(0, 1, size=(50, crepe.N_BINS)).astype(np.float32) ** 8
    salience[3] = 0.0  # no salience at all: f0 0 Hz, as crepe.decode
    salience[4, 358] = 2.0  # peak at the top edge: bins past 359 are left out
    f0_hz, confidence = crepe_layers.PretrainedCREPE.activations_to_f0_and_confidence(salience)
    expected_f0, expected_confidence = crepe.decode(salience, viterbi=False)
    np.testing.assert_allclose(ops.convert_to_numpy(f0_hz), expected_f0, rtol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(confidence)[:, 0], expected_confidence)
    centres = np.full(50, 100)
    f0_at_100, _ = crepe_layers.PretrainedCREPE.activations_to_f0_and_confidence(salience, centres)
    expected = crepe.cents_to_hz(crepe.local_average_cents(salience, centres))
    np.testing.assert_allclose(ops.convert_to_numpy(f0_at_100), np.nan_to_num(expected), rtol=1e-5)


@pytest.mark.parametrize("viterbi", [False, True], ids=["argmax", "viterbi"])
def test_predict_f0_matches_the_pitch_tracker(pitch_model, tracker, viterbi):
    audio = np.stack([_tone(220.0), _tone(523.25)])
    f0_hz, confidence = pitch_model.predict_f0_and_confidence(audio, viterbi=viterbi)
    f0_hz, confidence = ops.convert_to_numpy(f0_hz), ops.convert_to_numpy(confidence)
    assert f0_hz.shape == confidence.shape == (2, 1 + 8000 // 160)
    for example, expected_hz in zip(range(2), (220.0, 523.25)):
        reference_f0, reference_confidence = tracker(audio[example], 100, viterbi=viterbi)
        np.testing.assert_allclose(f0_hz[example], reference_f0, rtol=1e-3)
        np.testing.assert_allclose(confidence[example], reference_confidence, atol=1e-4)
        assert abs(1200 * np.log2(np.median(f0_hz[example][5:-5]) / expected_hz)) < 20  # cents


def test_pitch_model_call_and_single_frame(pitch_model):
    f0_hz, _ = pitch_model(_tone(330.0)[None, :])
    assert tuple(f0_hz.shape) == (1, 51)
    frame = pitch_model.batch_frames(ops.convert_to_tensor(_tone(330.0)[None, :1024]))
    assert tuple(frame.shape) == (1, 1024)  # exactly one frame: used as is
    assert not pitch_model.core_model.trainable


def test_normalize_frames_and_its_gradient_on_silence():
    frames = np.random.default_rng(1).normal(3.0, 2.0, size=(4, 1024)).astype(np.float32)
    frames[0] = 0.25  # constant: zero after normalisation
    normalized = ops.convert_to_numpy(crepe_layers.normalize_frames(frames))
    np.testing.assert_allclose(normalized[0], 0.0)
    np.testing.assert_allclose(normalized[1:].mean(axis=-1), 0.0, atol=1e-5)
    np.testing.assert_allclose(normalized[1:].std(axis=-1), 1.0, rtol=1e-4)
    [d_frames] = gradient(lambda x: crepe_layers.normalize_frames(x) ** 3, frames)
    assert np.all(np.isfinite(d_frames))


@pytest.fixture(scope="module")
def classifier_activations():
    return crepe_layers.CREPEActivations(model_capacity="tiny", activation_layer="classifier")


def test_classifier_activations_are_the_salience(classifier_activations):
    audio = np.stack([_tone(220.0, seconds=0.25), _tone(440.0, seconds=0.25)])  # 4000 samples: 4 frames
    activations = ops.convert_to_numpy(classifier_activations(audio))
    assert activations.shape == (2, 1 + 4000 // 1024, crepe.N_BINS)
    model = crepe.load_model("tiny")
    for example in range(2):
        frames = crepe.frame_audio(audio[example], SAMPLE_RATE / 1024)  # centred windows every 1024 samples
        np.testing.assert_allclose(activations[example], ops.convert_to_numpy(model(frames)), atol=1e-5)


@pytest.mark.parametrize("layer, depth", [("conv1", 256 * 128), ("conv5-maxpool", 8 * 32), ("flatten", 4 * 64)])
def test_inner_layer_activations_have_the_layer_shape(layer, depth):
    activations = crepe_layers.CREPEActivations(model_capacity="tiny", activation_layer=layer)
    out = activations(np.zeros((3, 2048), np.float32))
    assert tuple(out.shape) == (3, 3, depth)
    assert activations.trainable_weights == []


def test_inner_layer_matches_a_keras_submodel():
    model = crepe.load_model("tiny")
    submodel = keras.Model(model.input, model.get_layer("conv3-BN").output)
    audio = _tone(300.0, seconds=0.2)[None, :]
    frames = crepe.frame_audio(audio[0], SAMPLE_RATE / 1024)
    expected = ops.convert_to_numpy(submodel(frames)).reshape(1, frames.shape[0], -1)
    got = crepe_layers.CREPEActivations(model_capacity="tiny", activation_layer="conv3-BN")(audio)
    np.testing.assert_allclose(ops.convert_to_numpy(got), expected, atol=1e-4)


def test_activations_gradient_is_finite_with_silent_frames(classifier_activations):
    audio = np.zeros((1, 3072), np.float32)
    audio[0, 2048:] = _tone(440.0, seconds=0.064)
    [d_audio] = gradient(classifier_activations, audio)
    assert np.all(np.isfinite(d_audio)) and np.abs(d_audio[0, 2048:]).max() > 0


def test_unknown_activation_layer_lists_the_layers():
    with pytest.raises(ValueError, match=r"activation_layer 'conv7' is not a CREPE layer; choose one of \["):
        crepe_layers.CREPEActivations(activation_layer="conv7")


def test_activations_bad_audio_rank(classifier_activations):
    with pytest.raises(ValueError, match=r"audio must have shape \[batch, n_samples\]"):
        classifier_activations(np.zeros(2048, np.float32))
