"""Timbre transfer's feature adjustment, against closed forms."""

import numpy as np
import pytest

from ddsp_core.playing import transfer
from ddsp_core.models import model_statistics


def test_map_quantiles_moves_one_distribution_onto_another():
    source = np.linspace(-60.0, -20.0, 101)
    target = np.linspace(-30.0, 0.0, 101)
    values = np.array([-60.0, -40.0, -20.0, -70.0, -10.0])
    # Inside: same quantile; below and above: same distance to the ends.
    np.testing.assert_allclose(transfer.map_quantiles(values, source, target), [-30.0, -15.0, 0.0, -40.0, 10.0],
                               atol=1e-4)


def test_octave_shift_moves_by_whole_octaves_towards_the_model():
    model_pitch = np.linspace(60.0, 84.0, 101)  # median 72
    assert transfer.octave_shift(np.full(10, 48.0), model_pitch) == 24.0
    assert transfer.octave_shift(np.full(10, 77.0), model_pitch) == 0.0
    assert transfer.octave_shift(np.full(10, 88.0), model_pitch) == -12.0


def test_short_unvoiced_dips_are_filled_long_rests_kept():
    voiced = np.array([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0], bool)
    filled = transfer.fill_short_gaps(voiced, max_gap_frames=3)
    np.testing.assert_array_equal(filled, [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0])


def _statistics():
    examples = [{"f0_hz": np.full(100, 440.0, "float32"), "f0_confidence": np.full(100, 0.9, "float32"),
                 "loudness_db": np.linspace(-40.0, -10.0, 100).astype("float32")}]
    return model_statistics.compute(examples, 16000, 100)


def test_adjust_keeps_unvoiced_frames_quiet_and_shifts_pitch():
    n = 100
    confidence = np.where(np.arange(n) < 60, 0.9, 0.1).astype("float32")
    features = {"f0_hz": np.full(n, 110.0, "float32"), "f0_confidence": confidence,
                "loudness_db": np.full(n, -25.0, "float32")}
    adjusted, facts = transfer.adjust(features, "loudness_db", _statistics(),
                                      transfer.Adjustment(auto_adjust=True, pitch_shift=1.0, loudness_shift=-3.0))
    assert facts["octaves_shifted"] == 2  # 110 Hz (MIDI 45) towards 440 Hz (MIDI 69)
    np.testing.assert_allclose(adjusted["f0_hz"][:60], 440.0 * 2 ** (1 / 12), rtol=1e-5)
    assert np.all(adjusted["loudness_db"][60:] == transfer.QUIET_DB)
    assert np.all(adjusted["loudness_db"][:60] > -45.0)


def test_adjust_refuses_a_recording_without_voiced_frames():
    features = {"f0_hz": np.full(50, 200.0, "float32"), "f0_confidence": np.zeros(50, "float32"),
                "loudness_db": np.full(50, -20.0, "float32")}
    with pytest.raises(transfer.TransferError, match="No voiced frame"):
        transfer.adjust(features, "loudness_db", _statistics())
