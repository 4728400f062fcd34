"""One seed for a whole run (seeding.py through train_util.train): same seed, same loss curve;
another seed, another curve; a drawn seed is recorded so the run can be repeated."""

import logging
import os

import keras
import numpy as np
import pytest

from ddsp_core.training import gin_configs, seeding, train_util
from tests.training_runs import clear_gin, read_json, tiny_params

pytestmark = pytest.mark.usefixtures("clean_state")


class LossRecorder(keras.callbacks.Callback):
    """Collects the total loss of every training step."""

    def __init__(self):
        super().__init__()
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        self.losses.append(float(np.asarray(logs["total_loss"])))


def tiny_train(file_pattern, save_dir, *extra, steps=6, callbacks=()):
    """train_util.train of the tiny solo model with gain augmentation and noise; returns (result, losses)."""
    gin_configs.parse_gin(["models/solo_instrument.gin", "datasets/tfrecord.gin", "augmentation/gain.gin"],
                          [*tiny_params(file_pattern, seed=0), f"train_util.train.num_steps={steps}",
                           "train.steps_per_save=100", "train.steps_per_summary=100", "learning_rate=3e-3", *extra])
    recorder = LossRecorder()
    result = train_util.train(save_dir=str(save_dir), callbacks=[recorder, *callbacks])
    return result, recorder.losses


def test_derived_seeds_are_stable_distinct_and_checked():
    assert seeding.derive(7, "data") == seeding.derive(7, "data")
    derived = {seeding.derive(7, purpose) for purpose in seeding.PURPOSES}
    assert len(derived) == len(seeding.PURPOSES)
    assert seeding.derive(7, "data") != seeding.derive(8, "data") != seeding.derive(7, "data", attempt=1)
    assert all(0 <= seed < seeding.SEED_LIMIT for seed in derived)
    for bad in (-1, 2 ** 31, 1.5, True, "7"):
        with pytest.raises(ValueError, match="must be an integer in"):
            seeding.check_seed(bad)
    with pytest.raises(ValueError, match="Unknown seed purpose"):
        seeding.derive(7, "dropout")


def test_same_seed_same_loss_curve_other_seed_other_curve(tfrecords_1s, tmp_path):
    curves = {}
    for name, seed in (("a", 7), ("b", 7), ("c", 8)):
        result, curves[name] = tiny_train(tfrecords_1s, tmp_path / name, f"train.seed={seed}")
        assert result["seed"] == seed
        assert read_json(tmp_path / name / "train_state.json")["seed"] == seed
        assert read_json(tmp_path / name / "model_statistics.json")["seed"] == seed
        clear_gin()
    assert len(curves["a"]) == 6
    # Same machine, backend and seed: the same curve within float round-off.
    np.testing.assert_allclose(curves["a"], curves["b"], rtol=1e-5)
    # Another seed: other weights, data order, gains and noise.
    assert not np.allclose(curves["a"], curves["c"], rtol=1e-3)


def test_without_a_seed_one_is_drawn_logged_and_recorded(tfrecords_1s, tmp_path, caplog):
    with caplog.at_level(logging.INFO):
        result, _ = tiny_train(tfrecords_1s, tmp_path / "run", steps=2)
    drawn = result["seed"]
    assert isinstance(drawn, int) and 0 <= drawn < seeding.SEED_LIMIT
    assert f"Seed: {drawn} (drawn; repeat this run with --seed {drawn})" in caplog.text
    assert read_json(tmp_path / "run" / "train_state.json")["seed"] == drawn


def test_a_resumed_run_keeps_its_recorded_seed(tfrecords_1s, tmp_path):
    first, _ = tiny_train(tfrecords_1s, tmp_path / "run", "train.seed=11", steps=2)
    clear_gin()
    resumed, losses = tiny_train(tfrecords_1s, tmp_path / "run", steps=4)
    assert (first["seed"], resumed["seed"], resumed["start_step"], len(losses)) == (11, 11, 2, 2)


def test_a_second_run_in_the_same_folder_is_refused_while_the_first_trains(tfrecords_1s, tmp_path):
    from ddsp_core.training import train_lock

    with train_lock.held(str(tmp_path / "run")):  # The first run, still training.
        with pytest.raises(train_lock.LockHeld, match=rf"pid {os.getpid()}"):
            tiny_train(tfrecords_1s, tmp_path / "run", "train.seed=1", steps=2)
    assert not (tmp_path / "run" / "ckpt-2.weights.h5").exists()
    clear_gin()
    result, _ = tiny_train(tfrecords_1s, tmp_path / "run", "train.seed=1", steps=2)  # Free again.
    assert result["step"] == 2 and not (tmp_path / "run" / "train.lock").exists()
