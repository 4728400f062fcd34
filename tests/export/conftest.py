"""Fixtures of the export tests: small "trained" run folders written once per session.

A run folder is what `ddsp_run --mode=train` leaves: ckpt-N.weights.h5, operative_config-N.gin
and model_statistics.json. The models are not trained; their output layer's bias is set so
that the controls are those of a plausible instrument (a strong fundamental, harmonics
falling off, quiet noise), which makes the rendered audio's pitch easy to check.
"""

import gin
import keras
import numpy as np
import pytest

SAMPLE_RATE = 16000
FRAME_RATE = 50
HOP_SIZE = SAMPLE_RATE // FRAME_RATE
CHECKPOINT_STEP = 12

# models/vst.gin as the pipeline's vst preset trains it, on 1 s examples.
VST_PARAMS = ("n_samples=16000", "RnnFcDecoder.precision='float32'")
# A small solo-instrument model (loudness, trainable reverb): not playable by DDSP-VST.
LOUDNESS_PARAMS = ("n_samples=16000", "RnnFcDecoder.precision='float32'", "RnnFcDecoder.rnn_channels=32",
                   "RnnFcDecoder.ch=32", "RnnFcDecoder.layers_per_stack=1", "Reverb.reverb_length=1600")


def synthetic_examples(n_examples=4, n_frames=100, seed=0):
    """Feature dicts as the prepare job writes them: notes between A3 and A4, levels in dB."""
    rng = np.random.default_rng(seed)
    for i in range(n_examples):
        f0_hz = 220.0 * 2.0 ** (i / 4.0 + rng.uniform(0.0, 0.1, n_frames))
        confidence = np.where(np.arange(n_frames) < n_frames - 10, 0.9, 0.1)  # A rest at the end.
        level = np.linspace(-40.0, -15.0, n_frames) + rng.normal(0.0, 1.0, n_frames)
        yield {"f0_hz": f0_hz, "f0_confidence": confidence, "loudness_db": level - 5.0, "power_db": level}


def _set_plausible_controls(decoder):
    """Output bias: amplitude ~0.4, harmonic k (from 0) at 4 - 2k and the noise bands at 3 before exp_sigmoid
    (magnitudes ~0.015 after FilteredNoise's initial bias); the kernel scaled down, so that the inputs still
    move the controls, but less than the bias does."""
    kernel, bias = decoder.dense_out.kernel, decoder.dense_out.bias
    values, start = np.zeros(bias.shape, "float32"), 0
    for name, size in decoder.output_splits:
        if name == "harmonic_distribution":
            values[start:start + size] = 4.0 - 2.0 * np.arange(size)
        elif name == "noise_magnitudes":
            values[start:start + size] = 3.0
        start += size
    bias.assign(values)
    kernel.assign(0.3 * np.asarray(kernel.numpy()))


def write_run(folder, gin_files, gin_params):
    """Builds the model of `gin_files` + `gin_params`, and writes a run folder with its checkpoint,
    operative config and statistics. Returns the folder (a str)."""
    from ddsp_core.models import checkpoints, model_statistics
    from ddsp_core.training.gin_configs import parse_gin
    from ddsp_core.models import get_model

    keras.utils.set_random_seed(0)  # The same weights on every run.
    parse_gin(gin_files, list(gin_params))
    try:
        model = get_model()
        n_frames = FRAME_RATE
        features = {"audio": np.zeros((1, SAMPLE_RATE), "float32"),
                    "f0_hz": np.full((1, n_frames), 440.0, "float32"),
                    "loudness_db": np.full((1, n_frames), -30.0, "float32"),
                    "power_db": np.full((1, n_frames), -30.0, "float32")}
        model(features)  # Builds every layer (and the reverb's impulse response).
        _set_plausible_controls(model.decoder)
        checkpoints.save(model, str(folder), CHECKPOINT_STEP)
        config = gin.operative_config_str()
        (folder / f"operative_config-{CHECKPOINT_STEP}.gin").write_text(config)
        statistics = model_statistics.compute(synthetic_examples(), SAMPLE_RATE, FRAME_RATE, gin_config=config)
        model_statistics.write(str(folder), statistics)
    finally:
        gin.clear_config()
    return str(folder)


@pytest.fixture(scope="session")
def vst_run(tmp_path_factory):
    """A run folder of a models/vst.gin model (power and pitch in, GRU of 512)."""
    return write_run(tmp_path_factory.mktemp("vst_run"), ["models/vst.gin"], VST_PARAMS)


@pytest.fixture(scope="session")
def loudness_run(tmp_path_factory):
    """A run folder of a small solo-instrument model (loudness in, trainable reverb)."""
    return write_run(tmp_path_factory.mktemp("loudness_run"), ["models/solo_instrument.gin"], LOUDNESS_PARAMS)


@pytest.fixture(scope="session")
def vst_instrument(vst_run):
    from ddsp_core.playing.instrument import load_instrument

    return load_instrument(vst_run)


@pytest.fixture(scope="session")
def loudness_instrument(loudness_run):
    from ddsp_core.playing.instrument import load_instrument

    return load_instrument(loudness_run)


@pytest.fixture(scope="session")
def vst_tflite(vst_instrument, tmp_path_factory):
    """(path, metadata) of the vst model's TFLite file with metadata zipped in, as ddsp_export writes it."""
    from ddsp_core.export import metadata as metadata_lib
    from ddsp_core.export import vst

    metadata = metadata_lib.metadata_dict(vst_instrument)
    path = tmp_path_factory.mktemp("vst_tflite") / "model.tflite"
    vst.export_tflite(vst_instrument.model, str(path), frame_rate=vst_instrument.frame_rate, metadata=metadata)
    return path, metadata
