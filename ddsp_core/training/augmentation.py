"""Data augmentation for training: changes applied to batches that keep audio and features consistent.

`GainAugmentation` plays each example at a random level: the audio is scaled by g dB and
its loudness (and power, when the batch has it) shifted by the same g dB (floored at
-DB_RANGE, as `compute_loudness` and `compute_power_db` floor them), so the model sees
each note at many dynamics, down to near silence, while loudness and power stay those of
the audio it must reproduce. f0 is unchanged. In gin:

    train.augmentation = @augmentation.GainAugmentation()
    GainAugmentation.min_db = -40.0
    GainAugmentation.max_db = 3.0

Batches are tf.data tensors in training (the data pipeline is TensorFlow whatever the Keras
backend) or NumPy arrays (benchmarks, where only JAX is installed); both work.
"""

import gin
import numpy as np

from ddsp_core.core.units import DB_RANGE

# Audio features scaled with the gain: the waveform at the model's rate and the f0 tracker's copy.
AUDIO_KEYS = ("audio", "audio_16k")
# Level features in dB shifted by the gain: A-weighted loudness, and frame power when present.
LEVEL_KEYS = ("loudness_db", "power_db")


def apply_gain(batch, gain_db, floor_db=-DB_RANGE):
    """Plays every example of `batch` gain_db louder: audio x 10^(gain/20), loudness (and power) + gain.

    Args:
        batch: Dict of float32 tf tensors or NumPy arrays: 'audio' [batch, n_samples] (and
            'audio_16k'), 'loudness_db' (and 'power_db') [batch, n_frames] in dB; other keys
            are passed through.
        gain_db: Gain of each example in dB, [batch], of the same kind.
        floor_db: Level floor in dB (compute_loudness's and compute_power_db's -range_db).

    Returns:
        A new dict with the scaled audio and shifted levels.
    """
    if isinstance(batch["audio"], np.ndarray):
        maximum, gain_db = np.maximum, np.asarray(gain_db, np.float32)
    else:
        import tensorflow as tf

        maximum, gain_db = tf.maximum, tf.cast(gain_db, tf.float32)
    gain_db = gain_db[:, None]  # [batch, 1]
    out = dict(batch)
    for key in AUDIO_KEYS:
        if key in out:
            out[key] = out[key] * 10.0 ** (gain_db / 20.0)
    for key in LEVEL_KEYS:
        if key in out:
            out[key] = maximum(out[key] + gain_db, floor_db)
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
        self.reseed(seed)

    def reseed(self, seed):
        """Draws from a new stream (an integer seed, or None for an unseeded one) from now on."""
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def __call__(self, batch):
        """Augments one batch (a dict of tf tensors or NumPy arrays, see `apply_gain`)."""
        if isinstance(batch["audio"], np.ndarray):
            return apply_gain(batch, self._rng.uniform(self.min_db, self.max_db, len(batch["audio"])))
        import tensorflow as tf

        gain_db = tf.random.uniform([tf.shape(batch["audio"])[0]], self.min_db, self.max_db, seed=self.seed)
        return apply_gain(batch, gain_db)
