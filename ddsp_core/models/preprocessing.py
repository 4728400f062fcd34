"""Preprocessors: turn dataset features into the decoder's scaled conditioning.

`F0LoudnessPreprocessor` (f0 and A-weighted loudness: the solo-instrument model) and
`F0PowerPreprocessor` (f0 and frame power: DDSP-VST's model).

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
    """Loudness or power in dB (range [-DB_RANGE, 0]) -> [0, 1]: dB / DB_RANGE + 1."""
    return float32(loudness_db) / DB_RANGE + 1.0


def _check_features(layer_name, features, keys, hints=None):
    """KeyError naming the first of `keys` missing from `features` (with hints[key], if any)."""
    for key in keys:
        if key not in features:
            hint = (hints or {}).get(key, "")
            raise KeyError(f"{layer_name} needs the feature '{key}'; the batch has {sorted(features)}.{hint}")


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
        _check_features("F0LoudnessPreprocessor", features, ("f0_hz", "loudness_db"))
        outputs = dict(features)
        outputs["f0_hz"] = at_least_3d(features["f0_hz"])
        outputs["loudness_db"] = at_least_3d(features["loudness_db"])
        outputs["f0_scaled"] = scale_f0_hz(outputs["f0_hz"])
        outputs["ld_scaled"] = scale_db(outputs["loudness_db"])
        return outputs


@gin.register
class F0PowerPreprocessor(keras.layers.Layer):
    """Scales f0 and frame power for the decoder: DDSP-VST's control inputs.

    Input features: 'f0_hz' and 'power_db' (`spectral_ops.compute_power_db`, written by
    the prepare job), each [batch, n_frames] or [batch, n_frames, 1]. Output: the input
    dict plus
        f0_hz      [batch, n_frames, 1]  Hz
        power_db   [batch, n_frames, 1]  dB
        f0_scaled  [batch, n_frames, 1]  midi(f0_hz) / 127
        pw_scaled  [batch, n_frames, 1]  power_db / 80 + 1
    """

    def __init__(self, name="f0_power_preprocessor"):
        super().__init__(name=name)

    def call(self, features):
        _check_features("F0PowerPreprocessor", features, ("f0_hz", "power_db"), hints={
            "power_db": " Datasets prepared before the power feature was added lack it: re-run the prepare "
                        "job (ddsp_prepare_tfrecord, or the pipeline's prepare step) on the audio."})
        outputs = dict(features)
        outputs["f0_hz"] = at_least_3d(features["f0_hz"])
        outputs["power_db"] = at_least_3d(features["power_db"])
        outputs["f0_scaled"] = scale_f0_hz(outputs["f0_hz"])
        outputs["pw_scaled"] = scale_db(outputs["power_db"])
        return outputs
