"""Tests for ddsp_core.models: the solo-instrument model from gin, losses and trackers.

`tiny_autoencoder` and `tiny_features` (a 0.1 s, 16-frame solo-instrument model with the
full synth chain) are shared with the checkpoint and distribution tests.
"""

import gin
import keras
import numpy as np
import pytest
from keras import ops

import ddsp_core as ddsp
from ddsp_core import ddsp_run
from ddsp_core.models import decoders, preprocessing
from ddsp_core import models
from tests.models.test_decoders import expected_decoder_parameters

N_SAMPLES, N_FRAMES, SAMPLE_RATE = 1600, 16, 16000
TINY_SPLITS = (("amps", 1), ("harmonic_distribution", 8), ("noise_magnitudes", 9))
TINY_REVERB_LENGTH = 160


def tiny_autoencoder(rnn_channels=16, layers_per_stack=1, seed=0, losses=None, noise=True):
    """The solo-instrument model at toy size (0.1 s of audio, 16 frames, a 160-sample reverb).

    noise=False leaves out the filtered noise (its random draws differ between runs), so
    that the audio is a deterministic function of the weights and features.
    """
    keras.utils.set_random_seed(seed)
    decoder = decoders.RnnFcDecoder(rnn_channels=rnn_channels, ch=16, layers_per_stack=layers_per_stack,
                                    output_splits=TINY_SPLITS)
    harmonic = (ddsp.synths.Harmonic(n_samples=N_SAMPLES, sample_rate=SAMPLE_RATE),
                ["amps", "harmonic_distribution", "f0_hz"])
    reverb = ddsp.effects.Reverb(trainable=True, reverb_length=TINY_REVERB_LENGTH)
    if noise:
        dag = [harmonic,
               (ddsp.synths.FilteredNoise(n_samples=N_SAMPLES, window_size=33, seed=seed), ["noise_magnitudes"]),
               (ddsp.processors.Add(), ["filtered_noise/signal", "harmonic/signal"]),
               (reverb, ["add/signal"])]
    else:
        dag = [harmonic, (reverb, ["harmonic/signal"])]
    processor_group = ddsp.processors.ProcessorGroup(dag=dag)
    if losses is None:
        losses = [ddsp.losses.SpectralLoss(fft_sizes=(256, 64), mag_weight=1.0, logmag_weight=1.0)]
    return models.Autoencoder(preprocessor=preprocessing.F0LoudnessPreprocessor(), decoder=decoder,
                              processor_group=processor_group, losses=losses)


def tiny_features(batch=4, seed=0):
    """A batch of random features: audio [batch, 1600], f0_hz and loudness_db [batch, 16]."""
    rng = np.random.default_rng(seed)
    return {"audio": (0.1 * rng.normal(size=[batch, N_SAMPLES])).astype(np.float32),
            "f0_hz": rng.uniform(200.0, 500.0, [batch, N_FRAMES]).astype(np.float32),
            "loudness_db": rng.uniform(-60.0, -10.0, [batch, N_FRAMES]).astype(np.float32)}


# Every test starts and ends with an empty gin config (tests/training_runs.py).
pytestmark = pytest.mark.usefixtures("clean_state")


@pytest.fixture(scope="module")
def solo_model_and_outputs():
    """The shipped models/solo_instrument.gin model, called once on 2 examples of 4 s."""
    try:
        ddsp_run.parse_gin(["models/solo_instrument.gin"], [])
        model = gin.get_configurable("get_model")()
    finally:
        with gin.unlock_config():
            gin.clear_config()
    rng = np.random.default_rng(0)
    features = {"audio": (0.1 * rng.normal(size=[2, 64000])).astype(np.float32),
                "f0_hz": np.full([2, 1000], 440.0, np.float32),
                "loudness_db": np.full([2, 1000], -30.0, np.float32)}
    return model, features, model(features)


def test_solo_instrument_has_the_published_parameter_count(solo_model_and_outputs):
    model, _, _ = solo_model_and_outputs
    assert models.count_trainable_parameters(model) == 4_849_150
    reverb_irs = [w for w in model.trainable_weights if tuple(w.shape) == (48000,)]
    assert len(reverb_irs) == 1  # The learned 3 s impulse response.


def test_solo_instrument_synthesizes_4_seconds_from_1000_frames(solo_model_and_outputs):
    _, _, outputs = solo_model_and_outputs
    shapes = {key: tuple(outputs[key].shape) for key in
              ("audio_synth", "amps", "harmonic_distribution", "noise_magnitudes", "f0_scaled", "ld_scaled")}
    assert shapes == {"audio_synth": (2, 64000), "amps": (2, 1000, 1), "harmonic_distribution": (2, 1000, 60),
                      "noise_magnitudes": (2, 1000, 65), "f0_scaled": (2, 1000, 1), "ld_scaled": (2, 1000, 1)}
    audio = ops.convert_to_numpy(outputs["audio_synth"])
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) > 0.0


def test_solo_instrument_losses_are_the_spectral_loss(solo_model_and_outputs):
    model, features, outputs = solo_model_and_outputs
    losses = model.losses_dict(features, outputs)
    assert sorted(losses) == ["spectral_loss", "total_loss"]
    assert losses["total_loss"] == losses["spectral_loss"] > 0.0


@pytest.mark.dsp
def test_tiny_model_parameter_count_is_decoder_plus_reverb():
    model = tiny_autoencoder()
    model(tiny_features())
    decoder = expected_decoder_parameters(16, "gru", 16, 1, n_inputs=2, n_outputs=18)
    assert models.count_trainable_parameters(model) == decoder + TINY_REVERB_LENGTH == 3810


@pytest.mark.dsp
def test_compute_loss_returns_the_total_and_updates_the_trackers():
    losses = [ddsp.losses.SpectralLoss(fft_sizes=(256, 64), name="spectral_loss"),
              ddsp.losses.SpectralLoss(fft_sizes=(128,), mag_weight=0.0, logmag_weight=1.0, name="logmag_loss")]
    model = tiny_autoencoder(losses=losses)
    features = tiny_features()
    outputs = model(features)
    assert sorted(model.loss_trackers) == ["logmag_loss", "spectral_loss", "total_loss"]

    total = float(ops.convert_to_numpy(model.compute_loss(x=features, y_pred=outputs)))
    expected = model.losses_dict(features, outputs)
    tracked = {name: float(ops.convert_to_numpy(tracker.result())) for name, tracker in model.loss_trackers.items()}
    assert tracked == pytest.approx(expected, rel=1e-6)
    assert total == pytest.approx(expected["spectral_loss"] + expected["logmag_loss"], rel=1e-6)
    assert expected["spectral_loss"] != pytest.approx(expected["logmag_loss"])  # Two different terms.


@pytest.mark.dsp
def test_trackers_are_reported_as_metrics():
    model = tiny_autoencoder()
    names = [metric.name for metric in model.metrics]
    assert "spectral_loss" in names and "total_loss" in names
    assert len(names) == len(set(names))


@pytest.mark.dsp
def test_last_value_reports_the_last_update_not_the_mean():
    tracker = models.LastValue("spectral_loss")
    tracker.update_state(3.0)
    tracker.update_state(5.0)
    assert float(ops.convert_to_numpy(tracker.result())) == 5.0
    tracker.reset_state()
    assert float(ops.convert_to_numpy(tracker.result())) == 0.0


@pytest.mark.dsp
def test_generate_returns_the_synthesized_audio():
    model = tiny_autoencoder()
    audio = ops.convert_to_numpy(model.generate(tiny_features()))
    assert audio.shape == (4, N_SAMPLES)
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) > 0.0


@pytest.mark.dsp
def test_spectral_loss_is_zero_for_identical_audio():
    loss = ddsp.losses.SpectralLoss(loss_type="L1", mag_weight=1.0, logmag_weight=1.0)  # As in models/ae.gin.
    audio = tiny_features()["audio"]
    assert float(ops.convert_to_numpy(loss(audio, audio))) == 0.0
    assert float(ops.convert_to_numpy(loss(audio, 0.5 * audio))) > 0.0


@pytest.mark.dsp
@pytest.mark.parametrize("missing", ["decoder", "processor_group"])
def test_autoencoder_without_decoder_or_processor_group_raises(missing):
    parts = {"decoder": decoders.RnnFcDecoder(rnn_channels=4, ch=4, layers_per_stack=1),
             "processor_group": ddsp.processors.ProcessorGroup(dag=[(ddsp.processors.Add(), ["a", "b"])])}
    del parts[missing]
    with pytest.raises(ValueError, match=f"Autoencoder.{missing}"):
        models.Autoencoder(**parts)
