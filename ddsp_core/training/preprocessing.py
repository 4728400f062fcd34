"""Preprocessors: turn dataset features into the decoder's scaled conditioning.

A preprocessor is a Keras layer called on the feature dict of a batch; it returns a
new dict with the original features (given a trailing channel axis) and the scaled
versions the network reads.
"""

import gin
import keras

from ddsp_core.core.units import DB_RANGE, float32, hz_to_midi

# f0 is scaled by the MIDI range: f0_scaled = midi(f0_hz) / F0_RANGE, in [0, 1] for MIDI 0-127.
F0_RANGE = 127.0


def at_least_3d(x):
    """Adds a trailing channel axis to a [batch, n_frames] tensor: [batch, n_frames, 1]."""
    x = float32(x)
    return x[..., None] if len(x.shape) == 2 else x


def scale_f0_hz(f0_hz):
    """f0 in Hz -> MIDI note / 127 (0 Hz maps to 0)."""
    return hz_to_midi(f0_hz) / F0_RANGE


def scale_db(loudness_db):
    """Loudness in dB (range [-DB_RANGE, 0]) -> [0, 1]: dB / DB_RANGE + 1."""
    return float32(loudness_db) / DB_RANGE + 1.0


@gin.register
class F0LoudnessPreprocessor(keras.layers.Layer):
    """Scales f0 and loudness for the decoder.

    Input features: 'f0_hz' and 'loudness_db', each [batch, n_frames] or
    [batch, n_frames, 1]. Output: the input dict plus
        f0_hz        [batch, n_frames, 1]  Hz
        loudness_db  [batch, n_frames, 1]  dB
        f0_scaled    [batch, n_frames, 1]  midi(f0_hz) / 127
        ld_scaled    [batch, n_frames, 1]  loudness_db / 80 + 1
    """

    def __init__(self, name="f0_loudness_preprocessor"):
        super().__init__(name=name)

    def call(self, features):
        for key in ("f0_hz", "loudness_db"):
            if key not in features:
                raise KeyError(
                    f"F0LoudnessPreprocessor needs the feature '{key}'; the batch has {sorted(features)}."
                )
        outputs = dict(features)
        outputs["f0_hz"] = at_least_3d(features["f0_hz"])
        outputs["loudness_db"] = at_least_3d(features["loudness_db"])
        outputs["f0_scaled"] = scale_f0_hz(outputs["f0_hz"])
        outputs["ld_scaled"] = scale_db(outputs["loudness_db"])
        return outputs
