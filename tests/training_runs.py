"""Fixtures of the training tests: small TFRecords written once per session by the real
prepare job, gin params of a tiny model, and clean global state (gin, logging) per test."""

import contextlib
import glob
import json
import logging
import math
import os
import re

import gin
import pytest

from ddsp_core import ddsp_run
from ddsp_core.prepare import ddsp_prepare_tfrecord

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# Four ~3 s clarinet notes (pp, mf, ff, pp): 4 examples of 4 s, or 16 of 1 s.
NOTES_PATTERN = os.path.join(REPO, "data", "clarinet", "notes", "clarinet_m05[0-3]_*.flac")
SAMPLE_RATE = 16000
FRAME_RATE = 250

# A model of ~19k parameters with the solo instrument's structure (GRU decoder, harmonic +
# noise synths, trainable reverb): a training step on 2 x 1 s takes ~0.1 s on 2 CPU cores.
TINY_MODEL_PARAMS = (
    "RnnFcDecoder.rnn_channels=32",
    "RnnFcDecoder.ch=32",
    "RnnFcDecoder.layers_per_stack=1",
    "Reverb.reverb_length=1600",
)
TINY_RUN_STEPS = 4


def prepare_tfrecords(folder, example_secs):
    """Runs the prepare command on the bundled notes; returns the TFRecords' file pattern."""
    prefix = os.path.join(str(folder), "train.tfrecord")
    status = ddsp_prepare_tfrecord.main([
        f"--input_audio_filepatterns={NOTES_PATTERN}",
        f"--output_tfrecord_path={prefix}",
        "--num_shards=1",
        f"--example_secs={example_secs}",
        f"--sample_rate={SAMPLE_RATE}",
        f"--frame_rate={FRAME_RATE}",
        "--crepe_capacity=tiny",
        "--overwrite",
    ])
    assert status == ddsp_prepare_tfrecord.EXIT_OK
    assert glob.glob(prefix + "-*"), f"the prepare job wrote no shard at {prefix}"
    return prefix + "*"


@pytest.fixture(scope="session")
def tfrecords_4s(tmp_path_factory):
    """File pattern of 4 examples of 4 s (64000 samples, 1000 frames): the models' default length."""
    return prepare_tfrecords(tmp_path_factory.mktemp("tfrecords_4s"), example_secs=4)


@pytest.fixture(scope="session")
def tfrecords_1s(tmp_path_factory):
    """File pattern of 16 examples of 1 s (16000 samples, 250 frames), for fast training."""
    return prepare_tfrecords(tmp_path_factory.mktemp("tfrecords_1s"), example_secs=1)


def tiny_params(file_pattern, *extra, example_secs=1, batch_size=2, seed=0):
    """--gin_param values of the tiny solo model on `file_pattern`, then `extra` (later ones win)."""
    return [
        f"TFRecordProvider.file_pattern='{file_pattern}'",
        f"TFRecordProvider.example_secs={example_secs}",
        f"TFRecordProvider.seed={seed}",
        f"n_samples={example_secs * SAMPLE_RATE}",
        *TINY_MODEL_PARAMS,
        f"batch_size={batch_size}",
        *extra,
    ]


def train_argv(save_dir, params, *flags):
    """ddsp_run's command line training models/solo_instrument.gin with gin params `params`."""
    return [
        "--mode=train",
        f"--save_dir={save_dir}",
        "--gin_file=models/solo_instrument.gin",
        "--gin_file=datasets/tfrecord.gin",
        *[f"--gin_param={param}" for param in params],
        *flags,
    ]


def clear_gin():
    with gin.unlock_config():
        gin.clear_config()


@contextlib.contextmanager
def clean_global_state():
    """Clears gin's config before and after, and restores the root logger's handlers and level
    afterwards (`ddsp_run.main` replaces them with its own)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    clear_gin()
    try:
        yield
    finally:
        clear_gin()
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.fixture
def clean_state():
    """See `clean_global_state`."""
    with clean_global_state():
        yield


@gin.register(module="tests")
def step_loss_file(path):
    """A Keras callback for `train(callbacks=...)` that appends each training step's losses, as
    fit hands them to the training loop, to `path` as one JSON line {'step', name: value}.

    Steps count from the optimizer's step at the start of fit, as the loop counts them.
    Given to ddsp_run through gin (`step_loss_params`), also in a child process.
    """
    import keras
    import numpy as np

    class StepLossFile(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.start_step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

        def on_train_batch_end(self, batch, logs=None):
            losses = {name: float(np.asarray(value)) for name, value in (logs or {}).items()
                      if name.endswith("_loss")}
            with open(str(path), "a") as handle:
                handle.write(json.dumps({"step": self.start_step + batch + 1, **losses}) + "\n")

    return StepLossFile()


def step_loss_params(path):
    """--gin_param values giving train a `step_loss_file` callback writing to `path` (gin imports
    this module first, so a child process finds it too)."""
    return ["import tests.training_runs", "train_util.train.callbacks=[@tests.step_loss_file()]",
            f"tests.step_loss_file.path='{path}'"]


def step_losses(path):
    """[(step, total_loss)] of the steps a `step_loss_file` recorded at `path`, in order ([] when none)."""
    if not os.path.exists(str(path)):
        return []
    with open(str(path)) as handle:
        return [(record["step"], record["total_loss"]) for record in map(json.loads, handle)]


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def checkpoint_steps(save_dir):
    """Steps of the ckpt-N.weights.h5 files in save_dir, ascending."""
    names = glob.glob(os.path.join(str(save_dir), "ckpt-*.weights.h5"))
    return sorted(int(re.search(r"ckpt-(\d+)\.weights\.h5$", name).group(1)) for name in names)


def all_finite(values):
    return all(value is not None and math.isfinite(value) for value in values)


@pytest.fixture(scope="session")
def tiny_run(tfrecords_1s, tmp_path_factory):
    """A finished training run of the tiny model on 1 s examples: checkpoints at steps 2 and 4,
    scalars every step. Returns (save_dir, gin params of its data and model). Copy it before
    writing into it."""
    save_dir = str(tmp_path_factory.mktemp("tiny_run"))
    params = tiny_params(tfrecords_1s)
    with clean_global_state():
        status = ddsp_run.main(train_argv(save_dir, [*params, f"train_util.train.num_steps={TINY_RUN_STEPS}",
                                                     "train.steps_per_save=2", "train.steps_per_summary=1"]))
    assert status == 0
    assert checkpoint_steps(save_dir) == [2, TINY_RUN_STEPS]
    return save_dir, params


def read_records(file_pattern, n):
    """The first n records of the TFRecords, in file order, as a list of {feature: float32 array}."""
    import numpy as np
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(file_pattern))
    found = []
    for record in tf.data.TFRecordDataset(files).take(n).as_numpy_iterator():
        feature = tf.train.Example.FromString(record).features.feature
        found.append({name: np.array(feature[name].float_list.value, np.float32) for name in feature})
    return found
