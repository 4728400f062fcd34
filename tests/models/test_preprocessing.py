"""Tests for ddsp_core.models.preprocessing: f0 and loudness scaling against closed forms."""

import math

import numpy as np
import pytest
from keras import ops

from ddsp_core.models import preprocessing
from tests.gradients import gradient

pytestmark = pytest.mark.dsp


def _scaled(f0_hz, loudness_db):
    """Runs the preprocessor; returns its outputs as NumPy arrays."""
    features = {"f0_hz": np.asarray(f0_hz, np.float32), "loudness_db": np.asarray(loudness_db, np.float32)}
    outputs = preprocessing.F0LoudnessPreprocessor()(features)
    return {key: ops.convert_to_numpy(value) for key, value in outputs.items()}


@pytest.mark.parametrize("f0_hz, midi", [
    pytest.param(440.0, 69.0, id="a4"),
    pytest.param(27.5, 21.0, id="a0"),
    pytest.param(261.6255653, 60.0, id="middle_c"),
    pytest.param(4186.009, 108.0, id="c8"),
    pytest.param(12543.854, 127.0, id="g9"),
])
def test_f0_scaled_is_midi_over_127(f0_hz, midi):
    outputs = _scaled(np.full([1, 3], f0_hz), np.zeros([1, 3]))
    np.testing.assert_allclose(outputs["f0_scaled"], midi / 127.0, atol=1e-5)


def test_f0_scaled_matches_numpy_over_the_audible_range():
    f0_hz = np.geomspace(20.0, 8000.0, 50).reshape([2, 25])
    expected = (12.0 * np.log2(f0_hz / 440.0) + 69.0) / 127.0
    np.testing.assert_allclose(_scaled(f0_hz, np.zeros_like(f0_hz))["f0_scaled"][..., 0], expected, atol=1e-5)


@pytest.mark.parametrize("f0_hz", [0.0, 1.0, 8.0], ids=["silence", "1hz", "below_midi_0"])
def test_f0_scaled_is_zero_for_silence_and_below_midi_0(f0_hz):
    outputs = _scaled(np.full([1, 4], f0_hz), np.zeros([1, 4]))
    np.testing.assert_array_equal(outputs["f0_scaled"], 0.0)


@pytest.mark.parametrize("loudness_db, expected", [(-80.0, 0.0), (0.0, 1.0), (-40.0, 0.5), (-20.0, 0.75)],
                         ids=["floor", "full_scale", "half", "three_quarters"])
def test_ld_scaled_is_db_over_80_plus_1(loudness_db, expected):
    outputs = _scaled(np.full([2, 3], 440.0), np.full([2, 3], loudness_db))
    np.testing.assert_allclose(outputs["ld_scaled"], expected, atol=1e-6)


@pytest.mark.parametrize("input_shape", [(3, 7), (3, 7, 1)], ids=["2d", "3d"])
def test_outputs_have_a_trailing_channel_axis(input_shape):
    outputs = _scaled(np.full(input_shape, 220.0), np.full(input_shape, -30.0))
    for key in ("f0_hz", "loudness_db", "f0_scaled", "ld_scaled"):
        assert outputs[key].shape == (3, 7, 1), key
    np.testing.assert_array_equal(outputs["f0_hz"], 220.0)  # The originals are kept, unscaled.
    np.testing.assert_array_equal(outputs["loudness_db"], -30.0)


def test_other_features_pass_through_unchanged():
    audio = np.random.default_rng(0).normal(size=[2, 160]).astype(np.float32)
    features = {"f0_hz": np.full([2, 4], 440.0, np.float32), "loudness_db": np.zeros([2, 4], np.float32),
                "audio": audio}
    outputs = preprocessing.F0LoudnessPreprocessor()(features)
    np.testing.assert_array_equal(ops.convert_to_numpy(outputs["audio"]), audio)
    assert features["f0_hz"].shape == (2, 4)  # The input dict is not modified.
    assert sorted(features) == ["audio", "f0_hz", "loudness_db"]


@pytest.mark.parametrize("missing", ["f0_hz", "loudness_db"])
def test_missing_feature_raises_key_error_naming_it(missing):
    features = {"f0_hz": np.zeros([1, 4], np.float32), "loudness_db": np.zeros([1, 4], np.float32)}
    del features[missing]
    with pytest.raises(KeyError, match=missing):
        preprocessing.F0LoudnessPreprocessor()(features)


def test_gradients_match_the_closed_form():
    f0_hz = np.array([[110.0, 440.0, 1000.0]], np.float32)
    loudness_db = np.array([[-60.0, -30.0, -5.0]], np.float32)
    layer = preprocessing.F0LoudnessPreprocessor()

    d_f0, d_ld = gradient(lambda f, ld: layer({"f0_hz": f, "loudness_db": ld})["f0_scaled"], f0_hz, loudness_db)
    # d(12 log2(f / 440) + 69) / 127 / df = 12 / (ln 2 * f * 127).
    np.testing.assert_allclose(d_f0, 12.0 / (math.log(2.0) * f0_hz * 127.0), rtol=1e-4)
    np.testing.assert_array_equal(d_ld, 0.0)

    _, d_ld = gradient(lambda f, ld: layer({"f0_hz": f, "loudness_db": ld})["ld_scaled"], f0_hz, loudness_db)
    np.testing.assert_allclose(d_ld, 1.0 / 80.0, rtol=1e-6)


# F0PowerPreprocessor: DDSP-VST's inputs, f0_scaled and pw_scaled.


def _power_scaled(f0_hz, power_db):
    features = {"f0_hz": np.asarray(f0_hz, np.float32), "power_db": np.asarray(power_db, np.float32)}
    outputs = preprocessing.F0PowerPreprocessor()(features)
    return {key: ops.convert_to_numpy(value) for key, value in outputs.items()}


@pytest.mark.parametrize("power_db, expected", [(-80.0, 0.0), (0.0, 1.0), (-40.0, 0.5), (-3.0103, 0.9623713)],
                         ids=["floor", "full_scale", "half", "full_scale_sine"])
def test_pw_scaled_is_db_over_80_plus_1(power_db, expected):
    outputs = _power_scaled(np.full([2, 3], 440.0), np.full([2, 3], power_db))
    np.testing.assert_allclose(outputs["pw_scaled"], expected, atol=1e-6)
    np.testing.assert_allclose(outputs["f0_scaled"], 69.0 / 127.0, atol=1e-6)
    assert "ld_scaled" not in outputs


@pytest.mark.parametrize("input_shape", [(3, 7), (3, 7, 1)], ids=["2d", "3d"])
def test_power_outputs_have_a_trailing_channel_axis_and_keep_the_originals(input_shape):
    outputs = _power_scaled(np.full(input_shape, 220.0), np.full(input_shape, -30.0))
    for key in ("f0_hz", "power_db", "f0_scaled", "pw_scaled"):
        assert outputs[key].shape == (3, 7, 1), key
    np.testing.assert_array_equal(outputs["power_db"], -30.0)


def test_power_preprocessor_scales_f0_like_the_loudness_one():
    f0_hz = np.geomspace(20.0, 8000.0, 50).reshape([2, 25])
    np.testing.assert_array_equal(_power_scaled(f0_hz, np.zeros_like(f0_hz))["f0_scaled"],
                                  _scaled(f0_hz, np.zeros_like(f0_hz))["f0_scaled"])


def test_power_preprocessor_passes_other_features_through():
    features = {"f0_hz": np.full([2, 4], 440.0, np.float32), "power_db": np.zeros([2, 4], np.float32),
                "loudness_db": np.full([2, 4], -7.0, np.float32)}
    outputs = preprocessing.F0PowerPreprocessor()(features)
    np.testing.assert_array_equal(ops.convert_to_numpy(outputs["loudness_db"]), -7.0)
    assert sorted(features) == ["f0_hz", "loudness_db", "power_db"]


def test_missing_power_db_says_to_prepare_again():
    features = {"f0_hz": np.zeros([1, 4], np.float32), "loudness_db": np.zeros([1, 4], np.float32)}
    with pytest.raises(KeyError, match=r"F0PowerPreprocessor needs the feature 'power_db'.*re-run the prepare job"):
        preprocessing.F0PowerPreprocessor()(features)


def test_missing_f0_is_named_by_the_power_preprocessor():
    with pytest.raises(KeyError, match="'f0_hz'"):
        preprocessing.F0PowerPreprocessor()({"power_db": np.zeros([1, 4], np.float32)})


def test_power_gradient_is_one_over_80():
    layer = preprocessing.F0PowerPreprocessor()
    f0_hz, power_db = np.array([[110.0, 440.0]], np.float32), np.array([[-60.0, -5.0]], np.float32)
    d_f0, d_pw = gradient(lambda f, pw: layer({"f0_hz": f, "power_db": pw})["pw_scaled"], f0_hz, power_db)
    np.testing.assert_allclose(d_pw, 1.0 / 80.0, rtol=1e-6)
    np.testing.assert_array_equal(d_f0, 0.0)
