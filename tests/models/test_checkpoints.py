"""Tests for ddsp_core.models.checkpoints: exact round trips, retention, newest-step lookup,
mismatch errors, and checkpoints moving between the TensorFlow and JAX backends."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import ops

from ddsp_core.models import checkpoints
from ddsp_core.training import trainers
from tests.models.test_models import tiny_autoencoder, tiny_features

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def compiled_tiny_model(seed=0, **kwargs):
    """A built tiny model with its Adam optimizer built (as train() prepares it)."""
    model = tiny_autoencoder(seed=seed, **kwargs)
    model(tiny_features())
    return trainers.Trainer(learning_rate=1e-3).compile(model)


def state(model):
    """{name: value} of the model's and its optimizer's variables.

    Names drop the top-level object's name, which Keras makes unique per process
    ('adam', 'adam_1', ...).
    """
    values = {}
    for kind, variables in (("model", model.weights), ("optimizer", model.optimizer.variables)):
        for variable in variables:
            values[f"{kind}:{variable.path.split('/', 1)[-1]}"] = ops.convert_to_numpy(variable)
    assert len(values) == len(model.weights) + len(model.optimizer.variables), "variable names are not unique"
    return values


def iterations(model):
    return int(ops.convert_to_numpy(model.optimizer.iterations))


def bump_optimizer(model, value=0.01):
    """One Adam step with constant gradients: moves the weights, moments and iteration count."""
    grads = [np.full(variable.shape, value, np.float32) for variable in model.trainable_variables]
    model.optimizer.apply(grads, model.trainable_variables)


def assert_same_state(actual, expected):
    assert sorted(actual) == sorted(expected)
    for path, value in expected.items():
        np.testing.assert_array_equal(actual[path], value, err_msg=path)


@pytest.fixture(scope="module")
def trained():
    """A tiny model after 2 steps of fit (so the optimizer has moments and 2 iterations)."""
    model = compiled_tiny_model()
    model.fit(tiny_features(), batch_size=2, epochs=1, shuffle=False, verbose=0)
    assert iterations(model) == 2
    return model


def ema_model(seed=0):
    model = tiny_autoencoder(seed=seed)
    model(tiny_features())
    return trainers.Trainer(learning_rate=1e-2, ema_momentum=0.5).compile(model)


@pytest.mark.dsp
def test_with_an_ema_the_file_holds_the_average_and_training_gets_its_raw_weights_back(tmp_path):
    model = ema_model()
    for value in (0.01, -0.02, 0.03):  # Weights and their average part ways.
        bump_optimizer(model, value)
    raw = [ops.convert_to_numpy(v).copy() for v in model.trainable_variables]
    pairs = checkpoints._average_pairs(model)
    average = [ops.convert_to_numpy(a).copy() for _, a in pairs]
    assert len(pairs) == len(raw) and not np.allclose(raw[0], average[0])

    path = checkpoints.save(model, str(tmp_path), step=3)
    for variable, value in zip(model.trainable_variables, raw):  # Saving leaves the model as it was.
        np.testing.assert_array_equal(ops.convert_to_numpy(variable), value)

    # Inference (eval, sample: an optimizer from the run's gin; ddsp_play, export: none): the average.
    for reader in (ema_model(seed=1), tiny_autoencoder(seed=1)):
        if getattr(reader, "optimizer", None) is None:
            reader(tiny_features())
        checkpoints.restore(reader, path)
        for variable, value in zip(reader.trainable_variables, average):
            np.testing.assert_array_equal(ops.convert_to_numpy(variable), value)
    # Training resumes from the raw weights, with the average back in the optimizer.
    resumed = ema_model(seed=1)
    checkpoints.restore(resumed, path, training=True)
    for variable, value in zip(resumed.trainable_variables, raw):
        np.testing.assert_array_equal(ops.convert_to_numpy(variable), value)
    for (_, stored), value in zip(checkpoints._average_pairs(resumed), average):
        np.testing.assert_array_equal(ops.convert_to_numpy(stored), value)


@pytest.mark.dsp
def test_round_trip_restores_weights_and_optimizer_state_exactly(trained, tmp_path):
    path = checkpoints.save(trained, str(tmp_path), step=2)
    assert os.path.basename(path) == "ckpt-2.weights.h5"
    fresh = compiled_tiny_model(seed=1)
    assert iterations(fresh) == 0
    assert not np.array_equal(ops.convert_to_numpy(fresh.trainable_weights[0]),
                              ops.convert_to_numpy(trained.trainable_weights[0]))

    assert checkpoints.restore(fresh, path) == 2
    assert iterations(fresh) == 2
    assert_same_state(state(fresh), state(trained))
    features = tiny_features(seed=3)
    np.testing.assert_array_equal(ops.convert_to_numpy(fresh(features)["amps"]),
                                  ops.convert_to_numpy(trained(features)["amps"]))


@pytest.mark.dsp
def test_keep_deletes_the_oldest_checkpoints(trained, tmp_path):
    for step in (1, 2, 3, 4):
        checkpoints.save(trained, str(tmp_path), step=step, keep=2)
    assert sorted(os.listdir(tmp_path)) == ["ckpt-3.weights.h5", "ckpt-4.weights.h5"]
    assert [step for step, _ in checkpoints.list_checkpoints(str(tmp_path))] == [3, 4]


@pytest.mark.dsp
def test_saving_an_older_step_keeps_the_new_checkpoint(trained, tmp_path):
    for step in (10, 20):
        checkpoints.save(trained, str(tmp_path), step=step, keep=2)
    path = checkpoints.save(trained, str(tmp_path), step=5, keep=2)
    assert os.path.exists(path)


@pytest.mark.dsp
def test_keep_zero_keeps_every_checkpoint(trained, tmp_path):
    for step in (1, 2, 3):
        checkpoints.save(trained, str(tmp_path), step=step, keep=0)
    assert len(os.listdir(tmp_path)) == 3


def test_latest_is_the_highest_step_not_the_last_name(tmp_path):
    for name in ("ckpt-9.weights.h5", "ckpt-10.weights.h5", "ckpt-2.weights.h5",
                 "ckpt-11.weights.h5.tmp", "ckpt-x.weights.h5", "operative_config-12.gin"):
        (tmp_path / name).write_bytes(b"")
    step, path = checkpoints.latest(str(tmp_path))
    assert (step, os.path.basename(path)) == (10, "ckpt-10.weights.h5")
    assert [step for step, _ in checkpoints.list_checkpoints(str(tmp_path))] == [2, 9, 10]


def test_latest_of_a_checkpoint_file_is_that_file(tmp_path):
    path = tmp_path / "ckpt-7.weights.h5"
    path.write_bytes(b"")
    assert checkpoints.latest(str(path)) == (7, str(path))
    with pytest.raises(FileNotFoundError, match="ckpt-8"):
        checkpoints.latest(str(tmp_path / "ckpt-8.weights.h5"))


@pytest.mark.parametrize("folder", ["empty", "missing"])
def test_latest_without_checkpoints_is_none(tmp_path, folder):
    directory = tmp_path / folder
    if folder == "empty":
        directory.mkdir()
    assert checkpoints.latest(str(directory)) is None
    assert checkpoints.list_checkpoints(str(directory)) == []


@pytest.mark.parametrize("path, step", [("runs/ckpt-12.weights.h5", 12), ("gs://b/r/ckpt-0.weights.h5", 0),
                                        ("ckpt-12.weights.h5.tmp", None), ("ckpt-12.keras", None)])
def test_step_of(path, step):
    assert checkpoints.step_of(path) == step


@pytest.mark.dsp
def test_checkpoint_of_another_model_raises_checkpoint_error(trained, tmp_path):
    path = checkpoints.save(trained, str(tmp_path), step=2)
    other = compiled_tiny_model(rnn_channels=8)
    with pytest.raises(checkpoints.CheckpointError, match=r"does not fit this model.*another configuration"):
        checkpoints.restore(other, path)


@pytest.mark.dsp
def test_checkpoint_of_a_larger_model_raises_checkpoint_error(tmp_path):
    """Keras loads the layers the smaller model has and only warns about the optimizer's extra variables."""
    larger = compiled_tiny_model(layers_per_stack=2)
    bump_optimizer(larger)
    path = checkpoints.save(larger, str(tmp_path), step=1)
    smaller = compiled_tiny_model()
    with pytest.raises(checkpoints.CheckpointError, match=r"does not fit this model.*optimizer"):
        checkpoints.restore(smaller, path)


CROSS_BACKEND_SCRIPT = """
import json, sys
import numpy as np
from ddsp_core.models import checkpoints
from tests.models.test_checkpoints import bump_optimizer, compiled_tiny_model, iterations, state

restore_path, save_dir, out_dir = sys.argv[1:4]
model = compiled_tiny_model(seed=7)  # Other initial weights than the writer's.
step = checkpoints.restore(model, restore_path)
np.savez(out_dir + "/restored.npz", **state(model))
bump_optimizer(model)
checkpoints.save(model, save_dir, step + 1)
np.savez(out_dir + "/saved.npz", **state(model))
import keras
print("RESULT " + json.dumps({"backend": keras.backend.backend(), "step": step, "iterations": iterations(model)}))
"""


def test_checkpoints_move_between_tensorflow_and_jax(trained, tmp_path):
    """Written here, restored under the other backend (exactly); written there, restored here."""
    backend = keras.backend.backend()
    other = "jax" if backend == "tensorflow" else "tensorflow"
    here, there = tmp_path / backend, tmp_path / other
    here.mkdir()
    there.mkdir()
    path = checkpoints.save(trained, str(here), step=2)
    script = tmp_path / "cross_backend.py"
    script.write_text(CROSS_BACKEND_SCRIPT)

    env = {**os.environ, "KERAS_BACKEND": other, "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))}
    result = subprocess.run([sys.executable, str(script), path, str(there), str(tmp_path)], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert json.loads(line[len("RESULT "):]) == {"backend": other, "step": 2, "iterations": 3}

    # Theirs, restored from ours.
    restored = np.load(tmp_path / "restored.npz")
    assert_same_state(dict(restored), state(trained))

    # Ours, restored from theirs.
    saved = dict(np.load(tmp_path / "saved.npz"))
    model = compiled_tiny_model(seed=8)
    assert checkpoints.restore(model, str(there / "ckpt-3.weights.h5")) == 3
    assert iterations(model) == 3
    assert_same_state(state(model), saved)
