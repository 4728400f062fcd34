"""saved_model.py: the serving SavedModel, loaded back as TensorFlow Serving would load it."""

import numpy as np
import pytest
import tensorflow as tf

from ddsp_core.export import saved_model
from ddsp_core.playing import streaming
from tests.export.conftest import FRAME_RATE, HOP_SIZE, SAMPLE_RATE

SERVING_SECONDS = 1.0
N_FRAMES = int(SERVING_SECONDS * FRAME_RATE)


@pytest.fixture(scope="module", params=["vst_instrument", "loudness_instrument"])
def exported(request, tmp_path_factory):
    """(instrument, serving signature) of each test model, exported with 1 s requests."""
    instrument = request.getfixturevalue(request.param)
    path = tmp_path_factory.mktemp("saved_model") / "saved_model"
    assert saved_model.export_saved_model(instrument, str(path), serving_seconds=SERVING_SECONDS) == N_FRAMES
    return instrument, tf.saved_model.load(str(path)).signatures[saved_model.SIGNATURE_KEY]


def _spectrum_peak_hz(audio):
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return np.fft.rfftfreq(audio.size, 1.0 / SAMPLE_RATE)[np.argmax(spectrum)]


def _rms_db(audio):
    return 10.0 * np.log10(np.mean(np.square(audio)))


def test_signature_names_and_shapes(exported):
    instrument, serve = exported
    _, inputs = serve.structured_input_signature
    assert set(inputs) == {"f0_hz", instrument.level_key}
    for spec in inputs.values():
        assert spec.shape.as_list() == [1, N_FRAMES] and spec.dtype == tf.float32
    outputs = serve.structured_outputs
    assert list(outputs) == ["audio"]
    assert outputs["audio"].shape.as_list() == [1, N_FRAMES * HOP_SIZE] and outputs["audio"].dtype == tf.float32


def test_a_440_hz_input_renders_440_hz(exported):
    instrument, serve = exported
    audio = serve(f0_hz=tf.fill([1, N_FRAMES], 440.0), **{instrument.level_key: tf.fill([1, N_FRAMES], -25.0)})
    audio = audio["audio"].numpy()[0]
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) > 0.05
    assert _spectrum_peak_hz(audio) == pytest.approx(440.0, abs=5.0)


def test_audio_matches_streaming_synth_in_level(exported):
    instrument, serve = exported
    t = np.arange(N_FRAMES) / FRAME_RATE
    features = {"f0_hz": np.geomspace(300.0, 600.0, N_FRAMES)[None].astype("float32"),
                instrument.level_key: (-30.0 + 10.0 * np.sin(2 * np.pi * t))[None].astype("float32")}
    served = serve(**{key: tf.constant(value) for key, value in features.items()})["audio"].numpy()
    served_again = serve(**{key: tf.constant(value) for key, value in features.items()})["audio"].numpy()
    streamed = streaming.render(streaming.StreamingSynth(instrument.model, instrument.hop_size), features)
    assert served.shape == streamed.shape == (1, N_FRAMES * HOP_SIZE)
    assert abs(_rms_db(served) - _rms_db(streamed)) < 1.0
    assert not np.array_equal(served, served_again)  # Fresh noise on every request.
    assert abs(_rms_db(served) - _rms_db(served_again)) < 0.1


def test_serving_frames():
    assert saved_model.serving_frames(250, 4.0) == 1000
    assert saved_model.serving_frames(50, 0.001) == 1

