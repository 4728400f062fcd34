"""Data augmentation for training: changes applied to batches that keep audio and features consistent.

`GainAugmentation` plays each example at a random level: the audio is scaled by g dB and
its loudness shifted by the same g dB (floored at -DB_RANGE, as `compute_loudness`
floors it), so the model sees each note at many dynamics, down to near silence, while
loudness stays the loudness of the audio it must reproduce. f0 is unchanged. In gin:

    train.augmentation = @augmentation.GainAugmentation()
    GainAugmentation.min_db = -40.0
    GainAugmentation.max_db = 3.0

Batches are tf.data tensors (the data pipeline is TensorFlow whatever the Keras backend),
so this uses TensorFlow ops.
"""

import gin
import tensorflow as tf

from ddsp_core.core.units import DB_RANGE

# Audio features scaled with the gain: the waveform at the model's rate and the f0 tracker's copy.
AUDIO_KEYS = ("audio", "audio_16k")


def apply_gain(batch, gain_db, floor_db=-DB_RANGE):
    """Plays every example of `batch` gain_db louder: audio x 10^(gain/20), loudness + gain.

    Args:
        batch: Dict of float32 tensors: 'audio' [batch, n_samples] (and 'audio_16k'),
            'loudness_db' [batch, n_frames] in dB; other keys are passed through.
        gain_db: Gain of each example in dB, [batch].
        floor_db: Loudness floor in dB (compute_loudness's -range_db).

    Returns:
        A new dict with the scaled audio and shifted loudness.
    """
    gain_db = tf.cast(gain_db, tf.float32)[:, tf.newaxis]  # [batch, 1]
    out = dict(batch)
    for key in AUDIO_KEYS:
        if key in out:
            out[key] = out[key] * tf.pow(10.0, gain_db / 20.0)
    out["loudness_db"] = tf.maximum(out["loudness_db"] + gain_db, floor_db)
    return out


@gin.register
class GainAugmentation:
    """A gain drawn uniformly in [min_db, max_db] per example, applied by `apply_gain`.

    Args:
        min_db: Lowest gain in dB (e.g. -40: the note plays 40 dB quieter).
        max_db: Highest gain in dB (e.g. +3; the audio may then exceed 1.0, which the
            synthesizer can reproduce).
        seed: Integer seed of the gains, or None.
    """

    def __init__(self, min_db=-40.0, max_db=3.0, seed=None):
        if not min_db <= max_db:
            raise ValueError(f"GainAugmentation needs min_db <= max_db, got {min_db!r} and {max_db!r}.")
        self.min_db = float(min_db)
        self.max_db = float(max_db)
        self.seed = seed

    def __call__(self, batch):
        """Augments one batch (a dict of tensors, see `apply_gain`)."""
        batch_size = tf.shape(batch["audio"])[0]
        gain_db = tf.random.uniform([batch_size], self.min_db, self.max_db, seed=self.seed)
        return apply_gain(batch, gain_db)
