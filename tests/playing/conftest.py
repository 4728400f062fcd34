"""A small instrument on disk, as training leaves it: checkpoint, operative config, statistics.

The decoder is tiny and its output layer is set by hand, so the instrument's sound is known:
a loud fundamental at f0 (harmonic 1 only), almost no noise, whatever the level input.
"""

import gin
import numpy as np
import pytest

from ddsp_core.models import checkpoints, model_statistics
from ddsp_core.training.gin_configs import parse_gin

FRAME_RATE = 250
SAMPLE_RATE = 16000


def synthetic_examples(n_examples=8, n_frames=250, seed=0):
    """Examples with pitches of MIDI 50-86 (one per example) and notes between -40 and -5 dB."""
    rng = np.random.default_rng(seed)
    for _ in range(n_examples):
        midi = 50.0 + 36.0 * _ / (n_examples - 1)
        level = np.linspace(rng.uniform(-40, -30), rng.uniform(-10, -5), n_frames)
        yield {"f0_hz": np.full(n_frames, 440.0 * 2 ** ((midi - 69) / 12), "float32"),
               "f0_confidence": np.full(n_frames, 0.9, "float32"), "loudness_db": level.astype("float32")}


def build_known_instrument(folder, extra_gin=(), harmonic_bias=None, extra_params=()):
    """Writes a run folder whose model plays a pure fundamental (see the module docstring)."""
    from ddsp_core.models import get_model

    parse_gin(["models/solo_instrument_dry.gin", *extra_gin],
              ["RnnFcDecoder.ch = 16", "RnnFcDecoder.rnn_channels = 16", "RnnFcDecoder.layers_per_stack = 1",
               "RnnFcDecoder.precision = 'float32'", "n_samples = 16000", *extra_params])
    model = get_model()
    features = {"f0_hz": np.full((1, FRAME_RATE), 440.0, "float32"),
                "loudness_db": np.full((1, FRAME_RATE), -30.0, "float32"), "audio": np.zeros((1, 16000), "float32")}
    model(features)
    dense = model.decoder.dense_out
    kernel, bias = dense.get_weights()
    splits = dict(model.decoder.output_splits)
    bias[:] = -10.0  # quiet harmonics above the first, quiet noise
    bias[0] = 0.0  # amplitude exp_sigmoid(0) = 2 * 0.5 ** 2.3 ~ 0.41
    bias[1] = 5.0 if harmonic_bias is None else harmonic_bias  # the fundamental
    dense.set_weights([np.zeros_like(kernel), bias])
    assert splits["amps"] == 1
    checkpoints.save(model, str(folder), 100)
    (folder / "operative_config-0.gin").write_text(gin.operative_config_str())
    statistics = model_statistics.compute(synthetic_examples(), SAMPLE_RATE, FRAME_RATE,
                                          gin_config=gin.operative_config_str())
    model_statistics.write(str(folder), statistics)
    gin.clear_config()
    return folder


@pytest.fixture(scope="session")
def known_instrument_dir(tmp_path_factory):
    return build_known_instrument(tmp_path_factory.mktemp("known_instrument"))
