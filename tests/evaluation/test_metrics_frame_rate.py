"""F0LoudnessMetrics with CREPE on fewer frames (`crepe_frame_rate`): the same known answers at every stride.

Synthesized tones with a known pitch error, measured with the real CREPE 'tiny' weights at
250 frames/s and on every 2nd, 5th and 10th frame: a tone 30 cents sharp reads 30 cents and no
outliers, a tone sharp by a semitone over its second half reads half its frames as outliers.

Backend-agnostic (NumPy plus CREPE through Keras): marked `dsp`, so CI also runs it on JAX.
"""

import numpy as np
import pytest

from ddsp_core import crepe, spectral_ops
from ddsp_core.evaluation import metrics

pytestmark = pytest.mark.dsp

SAMPLE_RATE = 16000
FRAME_RATE = 250
N_FRAMES = FRAME_RATE + 1  # A centred 1 s example.
A4_HZ = 440.0
STRIDES = (1, 2, 5, 10)  # crepe_frame_rate 250, 125, 50, 25.


@pytest.fixture(scope="module")
def tiny_tracker():
    return crepe.PitchTracker("tiny", batch_size=256)


def _tone(f0_hz):
    """A 1 s tone of 5 harmonics following f0_hz [n_samples] (phase-continuous), float32."""
    phase = 2.0 * np.pi * np.cumsum(f0_hz) / SAMPLE_RATE
    return sum(0.3 / k * np.sin(k * phase) for k in range(1, 6)).astype(np.float32)


def _batch(audio, f0_hz=A4_HZ):
    loudness_db = spectral_ops.compute_loudness(audio, SAMPLE_RATE, FRAME_RATE, use_tf=False)[:N_FRAMES]
    return {"f0_hz": np.full([1, N_FRAMES], f0_hz, np.float32), "f0_confidence": np.ones([1, N_FRAMES], np.float32),
            "loudness_db": loudness_db[None, :].astype(np.float32)}


def _result(tracker, stride, audio_gen, batch):
    metric = metrics.F0LoudnessMetrics(sample_rate=SAMPLE_RATE, frame_rate=FRAME_RATE, pitch_tracker=tracker,
                                       crepe_frame_rate=FRAME_RATE / stride)
    assert metric.frame_stride == stride
    metric.update_state(batch, audio_gen[None, :])
    return metric


@pytest.mark.parametrize("frame_rate, crepe_frame_rate, stride", [
    pytest.param(250, None, 1, id="every_frame"),
    pytest.param(250, 50, 5, id="50_of_250"),
    pytest.param(250, 60, 4, id="at_least_60_of_250"),
    pytest.param(100, 50, 2, id="50_of_100_at_44k"),
    pytest.param(25, 50, 1, id="more_than_there_are"),
])
def test_frame_stride(frame_rate, crepe_frame_rate, stride):
    assert metrics.frame_stride(frame_rate, crepe_frame_rate) == stride


def test_frame_stride_rejects_a_rate_that_is_not_positive():
    with pytest.raises(ValueError, match="crepe_frame_rate"):
        metrics.F0LoudnessMetrics(crepe_frame_rate=0)


@pytest.mark.parametrize("stride", STRIDES)
def test_a_tone_30_cents_sharp_reads_30_cents_at_every_stride(tiny_tracker, stride):
    sharp = _tone(np.full(SAMPLE_RATE, A4_HZ * 2.0 ** (30.0 / 1200.0)))
    metric = _result(tiny_tracker, stride, sharp, _batch(sharp))
    result = metric.result()
    assert abs(result["f0_l1_cents"] - 30.0) < 4.0
    assert result["f0_outlier_ratio"] == 0.0
    assert abs(result["f0_l1_cents_stable"] - 30.0) < 4.0
    # Every stride-th frame of the 251 is compared: 251, 126, 51, 26.
    assert result["n_confident_frames"] == -(-N_FRAMES // stride)
    assert metric.settings()["crepe_frame_rate"] == FRAME_RATE / stride


def test_a_note_sharp_by_a_semitone_half_the_time_reads_the_same_at_every_stride(tiny_tracker):
    """Input A4 throughout; generated A4 for 0.5 s, then A#4: half the frames are 100 cents off."""
    f0_hz = np.where(np.arange(SAMPLE_RATE) < SAMPLE_RATE // 2, A4_HZ, A4_HZ * 2.0 ** (100.0 / 1200.0))
    audio_gen = _tone(f0_hz)
    batch = _batch(_tone(np.full(SAMPLE_RATE, A4_HZ)))
    results = [_result(tiny_tracker, stride, audio_gen, batch).result() for stride in STRIDES]
    for stride, result in zip(STRIDES, results):
        assert abs(result["f0_outlier_ratio"] - 0.5) < 0.04, stride
        assert abs(result["f0_l1_cents"] - 50.0) < 5.0, stride
        assert abs(result["f0_l1_cents"] - results[0]["f0_l1_cents"]) < 3.0, stride


def test_fewer_frames_keep_the_loudness_figures_and_the_table_rows(tiny_tracker):
    """Loudness is measured on every frame at any stride; the table's f0 columns come from CREPE's frames."""
    sharp = _tone(np.full(SAMPLE_RATE, A4_HZ * 2.0 ** (30.0 / 1200.0)))
    batch = _batch(_tone(np.full(SAMPLE_RATE, A4_HZ)))
    every, fifth = (_result(tiny_tracker, stride, sharp, batch) for stride in (1, 5))
    assert fifth.result()["loudness_l1_db"] == every.result()["loudness_l1_db"]
    assert fifth.result()["middle_register_loudness_l1_db"] == every.result()["middle_register_loudness_l1_db"]
    [row_every], [row_fifth] = every.per_pitch(), fifth.per_pitch()
    assert row_fifth["midi"] == row_every["midi"] == 69
    assert row_fifth["n_frames"] == row_every["n_frames"] == N_FRAMES
    assert row_fifth["loudness_l1_db"] == row_every["loudness_l1_db"]
    assert abs(row_fifth["f0_l1_cents"] - 30.0) < 4.0
    assert abs(fifth.result()["middle_register_f0_l1_cents"] - 30.0) < 4.0


def test_the_generated_f0_is_given_at_the_feature_frame_rate(tiny_tracker):
    sharp = _tone(np.full(SAMPLE_RATE, A4_HZ))
    metric = metrics.F0LoudnessMetrics(sample_rate=SAMPLE_RATE, frame_rate=FRAME_RATE, pitch_tracker=tiny_tracker,
                                       crepe_frame_rate=50)
    generated = metric.update_state(_batch(sharp), sharp[None, :])
    assert generated["f0_hz_gen"].shape == generated["f0_confidence_gen"].shape == (1, N_FRAMES)
    # Held over the 5 frames from each CREPE frame.
    assert np.all(generated["f0_hz_gen"][0, :250].reshape(50, 5) == generated["f0_hz_gen"][0, :250:5, None])


def test_examples_tracked_together_read_as_each_alone(tiny_tracker):
    """_track_f0 runs the frames of a whole batch through CREPE at once: the same f0 as compute_f0 per example."""
    audio = np.stack([_tone(np.full(SAMPLE_RATE, hz)) for hz in (220.0, 330.0, 495.0)])
    metric = metrics.F0LoudnessMetrics(sample_rate=SAMPLE_RATE, frame_rate=FRAME_RATE, pitch_tracker=tiny_tracker)
    f0_together, confidence_together = metric._track_f0(audio)
    for i, example in enumerate(audio):
        f0_alone, confidence_alone = spectral_ops.compute_f0(example, FRAME_RATE, pitch_tracker=tiny_tracker)
        np.testing.assert_allclose(f0_together[i], f0_alone, rtol=1e-3)
        np.testing.assert_allclose(confidence_together[i], confidence_alone, atol=1e-3)
