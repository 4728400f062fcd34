"""Tests for ddsp_core.evaluation.level_metrics: constructed loudness curves with known answers.

A note from frame 10 to 60 at 0 dB in -80 dB silence; the 'generated' curve is the same,
or keeps sounding through the release, or fades in: each metric reads the value worked
out by hand.
"""

import numpy as np
import pytest

from ddsp_core.evaluation import level_metrics

pytestmark = pytest.mark.dsp

FRAME_RATE = 250
N_FRAMES = 100
FLOOR_DB = -80.0


def _note(start=10, end=60, level_db=0.0, n_frames=N_FRAMES):
    """[1, n_frames] loudness: level_db on frames start..end-1, FLOOR_DB elsewhere."""
    loudness = np.full([1, n_frames], FLOOR_DB)
    loudness[0, start:end] = level_db
    return loudness


def test_below_peak_is_relative_to_each_example():
    loudness = np.array([[0.0, -10.0, -40.0], [-20.0, -50.0, -90.0]])
    np.testing.assert_allclose(level_metrics.below_peak_db(loudness), [[0, 10, 40], [0, 30, 70]])


def test_quiet_errors_on_a_perfect_copy_are_zero():
    errors, counts = level_metrics.quiet_loudness_errors_db(_note(), _note())
    assert counts.tolist() == [N_FRAMES - 50] and np.all(errors == 0.0)


def test_a_tail_that_keeps_sounding_is_caught_on_quiet_frames():
    generated = _note(end=80)  # 20 frames of 0 dB after the input's release (80 dB too loud).
    errors, counts = level_metrics.quiet_loudness_errors_db(_note(), generated)
    assert counts.tolist() == [50]
    assert np.mean(errors) == pytest.approx(20 * 80.0 / 50)  # 32 dB.


def test_silent_level_of_a_tail_is_its_power_mean_re_the_peak():
    generated = _note(end=60)
    generated[0, 60:70] = -20.0  # 10 of the 50 silent frames at -20 dB re the 0 dB peak.
    levels, powers, counts = level_metrics.silent_level_db(_note(), generated)
    expected = 10 * np.log10((10 * 10 ** -2.0 + 40 * 10 ** -8.0) / 50)
    assert counts.tolist() == [50]
    assert levels[0] == pytest.approx(expected)  # -26.99 dB
    assert level_metrics.pooled_level_db(powers, counts) == pytest.approx(expected)


def test_silent_level_of_true_silence_is_the_floor():
    levels, _, _ = level_metrics.silent_level_db(_note(), _note())
    assert levels[0] == pytest.approx(FLOOR_DB)


def test_example_without_silent_frames_gives_nan_and_is_left_out_of_the_pool():
    loud = np.zeros([1, N_FRAMES])
    levels, powers, counts = level_metrics.silent_level_db(loud, loud)
    assert np.isnan(levels[0]) and counts[0] == 0
    assert level_metrics.pooled_level_db(powers, counts) is None


def test_onsets_include_a_window_that_starts_inside_a_note():
    loudness = _note(start=0, end=30)[0]
    loudness[50:70] = -5.0
    assert level_metrics.onset_frames(loudness) == [(0, 30), (50, 70)]


@pytest.mark.parametrize("delay_frames", [0, 5, 12])
def test_onset_lag_of_a_late_attack(delay_frames):
    generated = _note(start=10 + delay_frames)
    lags = level_metrics.onset_lags_s(_note(), generated, FRAME_RATE)
    np.testing.assert_allclose(lags[0], [delay_frames / FRAME_RATE])


def test_onset_lag_of_a_fade_in_counts_until_within_3_db():
    generated = _note(start=0, end=60)
    generated[0, :60] = np.minimum(0.0, -30.0 + np.arange(60) * 1.0)  # Rises 1 dB a frame to 0 dB.
    lags = level_metrics.onset_lags_s(_note(start=0), generated, FRAME_RATE)
    np.testing.assert_allclose(lags[0], [27 / FRAME_RATE])  # -3 dB at frame 27: 108 ms.


def test_onset_that_never_catches_up_counts_its_whole_span():
    lags = level_metrics.onset_lags_s(_note(), np.full([1, N_FRAMES], FLOOR_DB), FRAME_RATE)
    np.testing.assert_allclose(lags[0], [50 / FRAME_RATE])


def test_shapes_are_cut_to_the_shorter_and_checked():
    reference, estimate = level_metrics.aligned(np.zeros([2, 10]), np.zeros([2, 12]))
    assert reference.shape == estimate.shape == (2, 10)
    with pytest.raises(ValueError, match="rank 2"):
        level_metrics.aligned(np.zeros([10]), np.zeros([1, 10]))
    with pytest.raises(ValueError, match="Batch sizes differ"):
        level_metrics.aligned(np.zeros([2, 10]), np.zeros([3, 10]))
    with pytest.raises(ValueError, match="frame_rate"):
        level_metrics.onset_lags_s(np.zeros([1, 10]), np.zeros([1, 10]), 0)
