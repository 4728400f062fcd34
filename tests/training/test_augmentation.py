"""Tests for ddsp_core.training.augmentation: audio, loudness and power stay consistent.

Known answer: the loudness (power) of the augmented audio, computed afresh with
compute_loudness (compute_power_db), equals the augmented loudness (power) feature: the
original shifted by the gain, floored at -80 dB.
"""

import gin
import numpy as np
import pytest
import tensorflow as tf

from ddsp_core import spectral_ops
from ddsp_core.training import augmentation, data, ddsp_run, train_util, trainers
from tests.training_runs import tiny_params

SAMPLE_RATE = 16000
FRAME_RATE = 250


def _batch():
    """Two 0.5 s examples: a loud 440 Hz note released at 0.25 s, and a quiet 220 Hz one."""
    t = np.arange(SAMPLE_RATE // 2) / SAMPLE_RATE
    audio = np.stack([0.8 * np.sin(2 * np.pi * 440 * t) * (t < 0.25), 0.05 * np.sin(2 * np.pi * 220 * t)])
    audio = audio.astype(np.float32)
    loudness = spectral_ops.compute_loudness(audio, SAMPLE_RATE, FRAME_RATE, use_tf=False)
    return {"audio": audio, "loudness_db": loudness.astype(np.float32),
            "f0_hz": np.full(loudness.shape, 440.0, np.float32)}


@pytest.mark.parametrize("gains_db", [(-40.0, -6.0), (3.0, -20.0), (0.0, 0.0)])
def test_augmented_loudness_is_the_loudness_of_the_augmented_audio(gains_db):
    batch = _batch()
    out = augmentation.apply_gain({k: tf.constant(v) for k, v in batch.items()}, tf.constant(gains_db))
    recomputed = spectral_ops.compute_loudness(out["audio"].numpy(), SAMPLE_RATE, FRAME_RATE, use_tf=False)
    # Frames whose original loudness was at the floor cannot be raised faithfully: compare the others.
    known = batch["loudness_db"] > -80.0 + max(gains_db[0], gains_db[1], 0.0)
    np.testing.assert_allclose(out["loudness_db"].numpy()[known], recomputed[known], atol=0.01)
    np.testing.assert_allclose(out["audio"].numpy(), batch["audio"] * 10 ** (np.array(gains_db)[:, None] / 20),
                               rtol=1e-5)
    np.testing.assert_array_equal(out["f0_hz"].numpy(), batch["f0_hz"])
    assert out["loudness_db"].numpy().min() >= -80.0


@pytest.mark.parametrize("gains_db", [(-40.0, -6.0), (3.0, -20.0)])
def test_augmented_power_is_the_power_of_the_augmented_audio(gains_db):
    batch = _batch()
    batch["power_db"] = np.asarray(spectral_ops.compute_power_db(batch["audio"], SAMPLE_RATE, FRAME_RATE), np.float32)
    out = augmentation.apply_gain({k: tf.constant(v) for k, v in batch.items()}, tf.constant(gains_db))
    recomputed = np.asarray(spectral_ops.compute_power_db(out["audio"].numpy(), SAMPLE_RATE, FRAME_RATE))
    known = batch["power_db"] > -80.0 + max(gains_db[0], gains_db[1], 0.0)
    assert known.sum() > 100
    np.testing.assert_allclose(out["power_db"].numpy()[known], recomputed[known], atol=0.01)
    np.testing.assert_allclose(out["power_db"].numpy(),
                               np.maximum(batch["power_db"] + np.array(gains_db)[:, None], -80.0), atol=1e-4)


def test_a_batch_without_power_db_gets_none():
    out = augmentation.apply_gain(_batch(), np.array([-6.0, 0.0], np.float32))
    assert sorted(out) == ["audio", "f0_hz", "loudness_db"]


def test_gain_augmentation_draws_gains_in_range_per_example():
    batch = {k: tf.constant(np.repeat(v[:1], 64, axis=0)) for k, v in _batch().items()}
    out = augmentation.GainAugmentation(min_db=-40.0, max_db=3.0, seed=1)(batch)
    peak_gain_db = 20 * np.log10(np.abs(out["audio"].numpy()).max(axis=1) / np.abs(batch["audio"].numpy()).max())
    assert peak_gain_db.min() >= -40.01 and peak_gain_db.max() <= 3.01
    assert np.std(peak_gain_db) > 5.0  # One gain per example, not one per batch.
    np.testing.assert_allclose(out["loudness_db"].numpy()[:, 10] - batch["loudness_db"].numpy()[:, 10],
                               peak_gain_db, atol=0.01)


def test_bad_range_is_an_error():
    with pytest.raises(ValueError, match="min_db <= max_db"):
        augmentation.GainAugmentation(min_db=3.0, max_db=-3.0)


def test_train_maps_its_batches_through_the_augmentation(tfrecords_1s, tmp_path):
    """train(augmentation=...) applies it to the batched training data (traced once by tf.data)."""
    traced_shapes = []

    def quieter(batch):
        traced_shapes.append(tuple(batch["audio"].shape))
        return augmentation.apply_gain(batch, tf.fill([tf.shape(batch["audio"])[0]], -6.0))

    ddsp_run.parse_gin(["models/solo_instrument.gin", "datasets/tfrecord.gin"], tiny_params(tfrecords_1s))
    provider = data.TFRecordProvider(tfrecords_1s, example_secs=1)
    result = train_util.train(provider, trainers.Trainer(), batch_size=2, num_steps=1,
                              save_dir=str(tmp_path), augmentation=quieter)
    assert traced_shapes == [(2, 16000)] and np.isfinite(result["losses"]["total_loss"])


def test_gin_binds_gain_augmentation_into_train():
    gin.parse_config("import ddsp_core.training.augmentation\n"
                     "train.augmentation = @augmentation.GainAugmentation()\n"
                     "GainAugmentation.min_db = -12.0")
    assert gin.query_parameter("GainAugmentation.min_db") == -12.0
    assert gin.query_parameter("train.augmentation").selector.endswith("GainAugmentation")


def test_numpy_batches_get_the_same_gain_as_tensors():
    batch = _batch()
    gains = np.array([-12.0, 2.0], np.float32)
    from_numpy = augmentation.apply_gain(batch, gains)
    from_tf = augmentation.apply_gain({k: tf.constant(v) for k, v in batch.items()}, tf.constant(gains))
    for key in ("audio", "loudness_db"):
        np.testing.assert_allclose(from_numpy[key], from_tf[key].numpy(), rtol=1e-6, atol=1e-6)
    drawn = augmentation.GainAugmentation(-40.0, 3.0, seed=0)(batch)
    assert isinstance(drawn["audio"], np.ndarray)
