"""A trained model ready to play: its weights, its configuration and its training statistics.

`load_instrument(path)` accepts
- a run folder (`ddsp_run --mode=train --save_dir=...`, or the pipeline's train output):
  ckpt-N.weights.h5, operative_config-N.gin and model_statistics.json;
- an export folder (`ddsp_export`): the same three files under its `model/` folder.
The model is rebuilt from the operative gin config (decoder in float32: inference does not
need bfloat16's speed, and float32 keeps block-wise and whole rendering equal), restored
from the newest checkpoint, and paired with its statistics.
"""

import dataclasses
import logging

import numpy as np

from ddsp_core.io import storage

EXPORT_MODEL_DIR = "model"
LEVEL_KEYS = ("loudness_db", "power_db")


class InstrumentError(ValueError):
    """The folder is not a trained model (no checkpoint, no config); the message says what to give."""


@dataclasses.dataclass
class Instrument:
    """A restored model and what playing it needs.

    Attributes:
        model: The restored `Autoencoder`.
        statistics: model_statistics.json (see ddsp_core/models/model_statistics.py).
        model_dir: The folder the weights came from.
        checkpoint: Path of the restored checkpoint.
        level_key: The level feature the model reads: 'loudness_db' or 'power_db'.
    """

    model: object
    statistics: dict
    model_dir: str
    checkpoint: str
    level_key: str
    _synths: dict = dataclasses.field(default_factory=dict, repr=False)

    def synth(self, batch_size=1, seed=0, jit_compile=True):
        """A reset `StreamingSynth` of this model for `batch_size` voices, reused between calls
        (its compiled functions are traced once per block length, not once per rendering).
        `jit_compile`: the offline decoder (see `StreamingSynth`); False for one frame per call."""
        from ddsp_core.playing.streaming import StreamingSynth

        key = (int(batch_size), bool(jit_compile))
        if key not in self._synths:
            self._synths[key] = StreamingSynth(self.model, self.hop_size, batch_size=key[0], seed=seed,
                                               jit_compile=key[1])
        synth = self._synths[key]
        synth.seed = seed
        synth.reset()
        return synth

    @property
    def sample_rate(self):
        return int(self.statistics["sample_rate"])

    @property
    def frame_rate(self):
        return int(self.statistics["frame_rate"])

    @property
    def hop_size(self):
        return int(self.statistics["hop_size"])

    @property
    def level_statistics(self):
        """Statistics of the level feature the model reads."""
        return self.statistics["level_features"][self.level_key]

    def level_range_db(self):
        """(quiet, loud) note level in dB: the training notes' mean quietest and loudest frame."""
        stats = self.level_statistics
        return float(stats["mean_min_note_db"]), float(stats["mean_max_note_db"])

    def pitch_range_midi(self):
        """(low, high) MIDI notes the model was trained on (all note frames)."""
        low, high = self.statistics["pitch"]["min_max_midi"]
        return float(low), float(high)


def model_folder(path):
    """The folder holding the checkpoint: `path` itself, or an export folder's model/."""
    from ddsp_core.models import checkpoints

    if storage.exists(path) and checkpoints.latest(path) is None:
        inner = storage.join(path, EXPORT_MODEL_DIR)
        if storage.exists(inner) and checkpoints.latest(inner) is not None:
            return inner
    return path


def level_key_of(model):
    """The level feature the model's preprocessor reads ('loudness_db' unless it reads power)."""
    preprocessor = model.preprocessor
    return getattr(preprocessor, "level_key", None) or (
        "power_db" if "Power" in type(preprocessor).__name__ else "loudness_db")


def load_instrument(path):
    """Restores the newest checkpoint of a run or export folder with its config and statistics.

    Raises:
        InstrumentError: no such folder, no checkpoint, no operative config.
        StatisticsError: no model_statistics.json (a run trained before they were stored).
    """
    import gin

    from ddsp_core.models import checkpoints, model_statistics
    from ddsp_core.training.gin_configs import operative_config, parse_gin
    from ddsp_core.models import get_model

    if not storage.exists(path):
        raise InstrumentError(f"Model folder {path} does not exist. Give a training run folder (--save_dir of "
                              "ddsp_run, or the pipeline's model artifact) or a ddsp_export folder.")
    folder = model_folder(path)
    found = checkpoints.latest(folder)
    if found is None:
        raise InstrumentError(f"{path} has no checkpoint (ckpt-N.weights.h5): it is not a trained model. Give a "
                              "run folder after at least one checkpoint was saved, or a ddsp_export folder.")
    if operative_config(folder) is None:
        raise InstrumentError(f"{folder} has a checkpoint but no operative_config-N.gin, so the model's "
                              "configuration is unknown. Copy the run's operative config next to the checkpoint.")
    statistics = model_statistics.read(folder)
    parse_gin([], ["RnnFcDecoder.precision = 'float32'"], operative_config_dir=folder)
    model = get_model()
    n_frames = int(statistics["frame_rate"])  # One second to build the variables.
    features = {"f0_hz": np.full((1, n_frames), 440.0, "float32"),
                "loudness_db": np.full((1, n_frames), -40.0, "float32"),
                "power_db": np.full((1, n_frames), -40.0, "float32")}
    level_key = level_key_of(model)
    conditioning = model.preprocessor(features) if model.preprocessor is not None else features
    model.decoder(conditioning)  # Builds the decoder; the synths build on their first call.
    _build_processors(model, statistics)
    checkpoints.restore(model, found[1])
    gin.clear_config()
    logging.info("Loaded %s (step %d).", found[1], found[0])
    return Instrument(model=model, statistics=statistics, model_dir=folder, checkpoint=found[1],
                      level_key=level_key)


def _build_processors(model, statistics):
    """Builds the synthesizer's processors (a trainable reverb has weights) on a short input."""
    from keras import ops

    n_frames = 4
    n_samples = n_frames * int(statistics["hop_size"])
    for processor, _ in model.processor_group.dag:
        if not processor.built:
            if hasattr(processor, "reverb_length"):
                processor.get_controls(ops.zeros((1, n_samples)))
            processor.built = True
    model.built = True
