"""Tests for ddsp_core.evaluation.metrics.

Closed-form answers: octave and semitone distances in cents, hand-built loudness and
confidence arrays, and sines resynthesized exactly, a semitone sharp, 6.02 dB quieter
(half the amplitude) or silent, measured with the real CREPE 'tiny' weights.

Backend-agnostic (NumPy plus CREPE through Keras): marked `dsp`, so CI also runs it on JAX.
"""

import gin
import numpy as np
import pytest

from ddsp_core import crepe, spectral_ops
from ddsp_core.evaluation import metrics, reference_tone
from tests.gin_helpers import build_from_gin

pytestmark = pytest.mark.dsp

FRAME_RATE = 250
SECONDS = 1
N_FRAMES = SECONDS * FRAME_RATE  # An example's frames (not centred: the end frame is left out).
A4_HZ = 440.0
SEMITONE_UP_HZ = 466.16  # A#4, 100 cents above A4.
AMPLITUDE = 0.5
HALF_AMPLITUDE_DB = 20.0 * np.log10(2.0)  # 6.02 dB


@pytest.fixture(scope="module")
def tiny_tracker():
    # 256 frames per forward pass: one pass per 1 s example (251 frames).
    return crepe.PitchTracker("tiny", batch_size=256)


def _sine(frequency_hz, amplitude=AMPLITUDE, sample_rate=16000):
    """[n_samples] float32 sine of SECONDS seconds."""
    t = np.arange(SECONDS * sample_rate) / sample_rate
    return (amplitude * np.sin(2.0 * np.pi * frequency_hz * t)).astype(np.float32)


def _example_batch(audio, sample_rate=16000, f0_hz=A4_HZ, confidence=1.0):
    """A batch of one example as the data pipeline gives it, with the features of `audio` [n_samples]."""
    loudness_db = spectral_ops.compute_loudness(audio, sample_rate, FRAME_RATE, use_tf=False)[:N_FRAMES]
    return {
        "audio": audio[None, :],  # [1, n_samples]
        "f0_hz": np.full([1, N_FRAMES], f0_hz, np.float32),
        "f0_confidence": np.full([1, N_FRAMES], confidence, np.float32),
        "loudness_db": loudness_db[None, :].astype(np.float32),  # [1, N_FRAMES]
    }


def _measure(tracker, batch, audio_gen, sample_rate=16000, **kwargs):
    """result() after one update_state of `audio_gen` [n_samples]."""
    metric = metrics.F0LoudnessMetrics(sample_rate=sample_rate, frame_rate=FRAME_RATE, pitch_tracker=tracker, **kwargs)
    metric.update_state(batch, audio_gen[None, :])
    return metric.result()


# ------------------------------------------------------------------------------------------
# cents_error
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("reference_hz, estimate_hz, expected_cents", [
    pytest.param(440.0, 880.0, 1200.0, id="octave_up"),
    pytest.param(880.0, 440.0, 1200.0, id="octave_down"),
    pytest.param(440.0, 440.0 * 2.0 ** (1.0 / 12.0), 100.0, id="semitone"),
    pytest.param(440.0, 440.0, 0.0, id="equal"),
    pytest.param(100.0, 100.0 * 2.0 ** (50.0 / 1200.0), 50.0, id="quarter_tone"),
])
def test_cents_error_closed_form(reference_hz, estimate_hz, expected_cents):
    np.testing.assert_allclose(metrics.cents_error(np.array([reference_hz]), np.array([estimate_hz])),
                               [expected_cents], atol=1e-9)


def test_cents_error_is_symmetric():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(30.0, 2000.0, size=[2, 3, 5])
    np.testing.assert_allclose(metrics.cents_error(a, b), metrics.cents_error(b, a), rtol=1e-12)


@pytest.mark.parametrize("estimate_hz", [0.0, -5.0, np.nan, np.inf], ids=["zero", "negative", "nan", "inf"])
def test_cents_error_of_an_unpitched_estimate_is_large_and_finite(estimate_hz):
    with np.errstate(all="raise"):  # No warning either.
        error = metrics.cents_error(np.array([440.0, 440.0]), np.array([estimate_hz, 440.0]))
    np.testing.assert_array_equal(error, [metrics.UNPITCHED_ERROR_CENTS, 0.0])
    assert metrics.UNPITCHED_ERROR_CENTS > 7000.0


def test_cents_error_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="same shape"):
        metrics.cents_error(np.ones([2, 3]), np.ones([2, 4]))


# ------------------------------------------------------------------------------------------
# loudness_l1_db
# ------------------------------------------------------------------------------------------


def test_loudness_l1_db_known_mean():
    reference = np.array([[0.0, -10.0, -20.0, -30.0], [5.0, 5.0, 5.0, 5.0]])
    estimate = np.array([[1.0, -12.0, -17.0, -30.0], [5.0, 5.0, 5.0, 9.0]])
    np.testing.assert_allclose(metrics.loudness_l1_db(reference, estimate), [(1 + 2 + 3 + 0) / 4, 4 / 4])


@pytest.mark.parametrize("shorter", ["reference", "estimate"])
def test_loudness_l1_db_truncates_to_the_shorter(shorter):
    long_frames = np.array([[0.0, 0.0, 0.0, 100.0]])  # The last frame would add 25 dB to the mean.
    short_frames = np.array([[1.0, 2.0, 3.0]])
    arrays = (short_frames, long_frames) if shorter == "reference" else (long_frames, short_frames)
    np.testing.assert_allclose(metrics.loudness_l1_db(*arrays), [2.0])


@pytest.mark.parametrize("reference, estimate, message", [
    pytest.param(np.zeros([4]), np.zeros([1, 4]), "rank 2", id="rank"),
    pytest.param(np.zeros([2, 4]), np.zeros([3, 4]), "Batch sizes differ", id="batch"),
    pytest.param(np.zeros([2, 0]), np.zeros([2, 4]), "No frames", id="empty"),
])
def test_loudness_l1_db_bad_input(reference, estimate, message):
    with pytest.raises(ValueError, match=message):
        metrics.loudness_l1_db(reference, estimate)


# ------------------------------------------------------------------------------------------
# f0_errors_cents
# ------------------------------------------------------------------------------------------


def test_f0_errors_cents_keeps_only_confidently_pitched_input_frames():
    octave = 2.0
    f0_input = np.array([[440.0, 440.0, 440.0, 0.0, 440.0],
                         [220.0, 220.0, 220.0, 220.0, 220.0]])
    confidence = np.array([[0.9, 0.5, 0.85, 1.0, 0.8499],  # kept, low, at the threshold, f0 = 0, just below
                           [0.0, 0.0, 1.0, 0.0, 0.0]])
    f0_generated = np.array([[440.0, 880.0, 440.0 * 2 ** (1 / 12), 440.0, 880.0],
                             [220.0 * octave, 1.0, 220.0 * octave, 0.0, 0.0]])
    errors = metrics.f0_errors_cents(f0_input, confidence, f0_generated)
    np.testing.assert_allclose(errors, [0.0, 100.0, 1200.0], atol=1e-9)


def test_f0_errors_cents_truncates_and_honours_min_confidence():
    f0_input = np.full([1, 4], 440.0)
    confidence = np.array([[0.2, 0.6, 0.6, 0.6]])
    f0_generated = np.full([1, 3], 880.0)  # One frame fewer: the input's last frame is not compared.
    errors = metrics.f0_errors_cents(f0_input, confidence, f0_generated, min_confidence=0.5)
    np.testing.assert_allclose(errors, [1200.0, 1200.0])


def test_f0_errors_cents_no_confident_frame_is_empty():
    errors = metrics.f0_errors_cents(np.full([2, 3], 440.0), np.zeros([2, 3]), np.full([2, 3], 440.0))
    assert errors.shape == (0,)


def test_f0_errors_cents_confidence_shape_must_match_f0():
    with pytest.raises(ValueError, match="f0_confidence_input"):
        metrics.f0_errors_cents(np.ones([1, 4]), np.ones([1, 3]), np.ones([1, 4]))


# ------------------------------------------------------------------------------------------
# F0LoudnessMetrics with CREPE 'tiny'
# ------------------------------------------------------------------------------------------


def test_same_sine_gives_small_errors(tiny_tracker):
    result = _measure(tiny_tracker, _example_batch(_sine(A4_HZ)), _sine(A4_HZ))
    assert result["f0_l1_cents"] < 10.0
    assert result["f0_outlier_ratio"] < 0.05
    assert result["loudness_l1_db"] < 0.5
    assert result["n_examples"] == 1
    assert result["n_confident_frames"] == N_FRAMES


def test_semitone_sharp_sine_is_100_cents_off(tiny_tracker):
    result = _measure(tiny_tracker, _example_batch(_sine(A4_HZ)), _sine(SEMITONE_UP_HZ))
    assert abs(result["f0_l1_cents"] - 100.0) < 15.0
    assert result["f0_outlier_ratio"] > 0.9


def test_half_amplitude_sine_is_6_db_quieter(tiny_tracker):
    result = _measure(tiny_tracker, _example_batch(_sine(A4_HZ)), _sine(A4_HZ, AMPLITUDE / 2))
    assert abs(result["loudness_l1_db"] - HALF_AMPLITUDE_DB) < 0.3
    assert result["f0_l1_cents"] < 10.0  # CREPE normalises each frame: the level does not matter.


def test_silence_gives_finite_large_errors(tiny_tracker):
    result = _measure(tiny_tracker, _example_batch(_sine(A4_HZ)), np.zeros([SECONDS * 16000], np.float32))
    assert all(np.isfinite(result[key]) for key in ("loudness_l1_db", "f0_l1_cents", "f0_outlier_ratio"))
    assert result["loudness_l1_db"] > 60.0  # ~9.7 dB against the -80 dB floor.
    assert result["f0_outlier_ratio"] > 0.9


def test_no_confident_input_frame_gives_no_f0_metrics(tiny_tracker):
    result = _measure(tiny_tracker, _example_batch(_sine(A4_HZ), confidence=0.0), _sine(A4_HZ))
    assert result["f0_l1_cents"] is None
    assert result["f0_outlier_ratio"] is None
    assert result["n_confident_frames"] == 0
    assert result["loudness_l1_db"] < 0.5


def test_48_khz_audio_is_resampled_for_crepe(tiny_tracker):
    sample_rate = 48000
    original = _sine(A4_HZ, sample_rate=sample_rate)
    metric = metrics.F0LoudnessMetrics(sample_rate=sample_rate, frame_rate=FRAME_RATE, pitch_tracker=tiny_tracker)
    generated = metric.update_state(_example_batch(original, sample_rate), original[None, :])
    result = metric.result()
    assert result["f0_l1_cents"] < 10.0
    assert result["loudness_l1_db"] < 0.5
    # Both features of the generated audio have 1 + n_samples // hop frames, centred on i / frame_rate.
    assert generated["f0_hz_gen"].shape == generated["loudness_db_gen"].shape == (1, N_FRAMES + 1)


def test_update_state_returns_the_generated_features(tiny_tracker):
    metric = metrics.F0LoudnessMetrics(frame_rate=FRAME_RATE, pitch_tracker=tiny_tracker)
    generated = metric.update_state(_example_batch(_sine(A4_HZ)), _sine(SEMITONE_UP_HZ)[None, :])
    assert set(generated) == {"f0_hz_gen", "f0_confidence_gen", "loudness_db_gen", "example_metrics", "per_pitch"}
    assert [row["midi"] for row in generated.pop("per_pitch")] == [69]
    example_metrics = generated.pop("example_metrics")
    assert len(example_metrics) == 1 and example_metrics[0]["f0_l1_cents"] == pytest.approx(100.0, abs=15.0)
    for value in generated.values():
        assert value.shape == (1, N_FRAMES + 1) and value.dtype == np.float32
    steady = generated["f0_hz_gen"][0, 25:-25]
    np.testing.assert_allclose(np.median(steady), SEMITONE_UP_HZ, rtol=2 ** (15 / 1200) - 1)


def test_batches_accumulate_per_example_and_per_frame(tiny_tracker):
    original = _sine(A4_HZ)
    example = _example_batch(original)
    # One batch of two examples (exact, half amplitude), then a batch of one (a semitone sharp).
    two = {key: np.concatenate([value, value]) for key, value in example.items()}
    metric = metrics.F0LoudnessMetrics(frame_rate=FRAME_RATE, pitch_tracker=tiny_tracker)
    metric.update_state(two, np.stack([original, _sine(A4_HZ, AMPLITUDE / 2)]))
    metric.update_state(example, _sine(SEMITONE_UP_HZ)[None, :])
    result = metric.result()

    alone = [_measure(tiny_tracker, example, audio) for audio in
             (original, _sine(A4_HZ, AMPLITUDE / 2), _sine(SEMITONE_UP_HZ))]
    assert result["n_examples"] == 3
    assert result["n_confident_frames"] == 3 * N_FRAMES
    np.testing.assert_allclose(result["loudness_l1_db"], np.mean([r["loudness_l1_db"] for r in alone]), rtol=1e-6)
    np.testing.assert_allclose(result["f0_l1_cents"], np.mean([r["f0_l1_cents"] for r in alone]), rtol=1e-6)
    np.testing.assert_allclose(result["f0_outlier_ratio"], np.mean([r["f0_outlier_ratio"] for r in alone]),
                               rtol=1e-6)


def test_reset_state_clears(tiny_tracker):
    metric = metrics.F0LoudnessMetrics(frame_rate=FRAME_RATE, pitch_tracker=tiny_tracker)
    metric.update_state(_example_batch(_sine(A4_HZ)), _sine(SEMITONE_UP_HZ)[None, :])
    metric.reset_state()
    counts = {"n_examples": 0, "n_confident_frames": 0, "n_readable_frames": 0, "n_stable_frames": 0,
              "n_quiet_frames": 0, "n_silent_frames": 0, "n_onsets": 0}
    result = metric.result()
    assert {name: value for name, value in result.items() if name not in counts} == dict.fromkeys(
        ["loudness_l1_db", "f0_l1_cents", "f0_outlier_ratio", "f0_l1_cents_every_frame", "f0_outlier_ratio_every_frame",
         "f0_unreadable_ratio", "quiet_loudness_l1_db", "silent_level_db",
         "onset_lag_median_ms", "f0_l1_cents_stable", "f0_outlier_ratio_stable", "f0_outliers_at_transitions",
         "f0_outliers_near_onsets_offsets", "f0_outliers_low_generated_confidence", "f0_outliers_elsewhere",
         *metrics.REGISTER_NAMES])
    assert {name: result[name] for name in counts} == counts
    assert metric.per_pitch() == []
    metric.update_state(_example_batch(_sine(A4_HZ)), _sine(A4_HZ)[None, :])
    assert metric.result()["f0_l1_cents"] < 10.0  # The sharp batch is forgotten.


def test_results_are_plain_python_numbers(tiny_tracker):
    result = _measure(tiny_tracker, _example_batch(_sine(A4_HZ)), _sine(A4_HZ))
    assert all(type(result[key]) is float for key in ("loudness_l1_db", "f0_l1_cents", "f0_outlier_ratio"))
    assert all(type(result[key]) is int for key in ("n_examples", "n_confident_frames"))


# ------------------------------------------------------------------------------------------
# Construction and input checks
# ------------------------------------------------------------------------------------------


def test_pitch_tracker_is_built_on_first_use(monkeypatch):
    built = []

    class RecordingTracker:
        def __init__(self, capacity, precision):
            built.append((capacity, precision))

    monkeypatch.setattr(crepe, "PitchTracker", RecordingTracker)
    metric = metrics.F0LoudnessMetrics(crepe_capacity="small", crepe_precision="bfloat16")
    assert built == []
    first = metric.pitch_tracker
    assert metric.pitch_tracker is first
    assert built == [("small", "bfloat16")]


def test_gin_binds_the_constructor_arguments():
    metric = build_from_gin("F0LoudnessMetrics", """
        F0LoudnessMetrics.crepe_capacity = 'tiny'
        F0LoudnessMetrics.sample_rate = 48000
        F0LoudnessMetrics.outlier_cents = 25.0
    """)
    assert isinstance(metric, metrics.F0LoudnessMetrics)
    assert (metric.crepe_capacity, metric.sample_rate, metric.outlier_cents) == ("tiny", 48000, 25.0)
    assert gin.config_str() == ""


@pytest.mark.parametrize("kwargs, message", [
    pytest.param({"crepe_capacity": "huge"}, "Unknown CREPE capacity", id="capacity"),
    pytest.param({"crepe_precision": "float16"}, "Unknown CREPE precision", id="precision"),
    pytest.param({"sample_rate": 0}, "sample_rate", id="sample_rate"),
    pytest.param({"frame_rate": -250}, "frame_rate", id="frame_rate"),
    pytest.param({"min_f0_confidence": 1.5}, "min_f0_confidence", id="min_f0_confidence"),
    pytest.param({"outlier_cents": 0.0}, "outlier_cents", id="outlier_cents"),
])
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        metrics.F0LoudnessMetrics(**kwargs)


def _good_batch(batch_size=2, n_frames=N_FRAMES, n_samples=16000):
    return {"audio": np.zeros([batch_size, n_samples], np.float32),
            "f0_hz": np.full([batch_size, n_frames], A4_HZ, np.float32),
            "f0_confidence": np.ones([batch_size, n_frames], np.float32),
            "loudness_db": np.zeros([batch_size, n_frames], np.float32)}


def _with(**changes):
    batch = _good_batch()
    for key, value in changes.items():
        if value is None:
            del batch[key]
        else:
            batch[key] = value
    return batch


@pytest.mark.parametrize("batch, audio_gen, message", [
    pytest.param(_with(loudness_db=None), np.zeros([2, 16000]), r"missing \['loudness_db'\]", id="missing_key"),
    pytest.param(_with(f0_hz=None, f0_confidence=None), np.zeros([2, 16000]),
                 r"missing \['f0_hz', 'f0_confidence'\]", id="missing_keys"),
    pytest.param(_with(f0_hz=np.ones([2, N_FRAMES, 1])), np.zeros([2, 16000]), r"batch\['f0_hz'\].*rank 2",
                 id="f0_rank"),
    pytest.param(_good_batch(), np.zeros([16000]), "audio_gen.*rank 2", id="audio_gen_rank"),
    pytest.param(_good_batch(), np.zeros([3, 16000]), "Batch sizes differ", id="audio_gen_batch"),
    pytest.param(_with(audio=np.zeros([3, 16000])), np.zeros([2, 16000]), "Batch sizes differ", id="audio_batch"),
    pytest.param(_with(loudness_db=np.zeros([1, N_FRAMES])), np.zeros([2, 16000]), "Batch sizes differ",
                 id="loudness_batch"),
    pytest.param(_with(f0_confidence=np.ones([2, N_FRAMES - 1])), np.zeros([2, 16000]), "f0_confidence",
                 id="confidence_frames"),
    pytest.param(_good_batch(), np.full([2, 16000], np.nan), "NaN", id="nan_audio"),
    pytest.param(_with(loudness_db=np.full([2, N_FRAMES], np.nan)), np.zeros([2, 16000]),
                 r"batch\['loudness_db'\] contains .* NaN", id="nan_loudness"),
    pytest.param(_good_batch(), np.zeros([0, 16000]), "empty", id="empty"),
])
def test_bad_batches_are_named(batch, audio_gen, message):
    metric = metrics.F0LoudnessMetrics(pitch_tracker=object())  # Checks come before any tracking.
    with pytest.raises(ValueError, match=message):
        metric.update_state(batch, audio_gen)
    assert metric.result()["n_examples"] == 0


def test_batch_must_be_a_dict():
    with pytest.raises(TypeError, match="dict"):
        metrics.F0LoudnessMetrics(pitch_tracker=object()).update_state([np.zeros([1, 4])], np.zeros([1, 16000]))


# ------------------------------------------------------------------------------------------
# Releases, rests and onsets (level_metrics through F0LoudnessMetrics)
# ------------------------------------------------------------------------------------------


def _released_sine():
    """A4 for the first half second, then digital silence: [n_samples]."""
    audio = _sine(A4_HZ)
    audio[audio.size // 2:] = 0.0
    return audio


def test_a_copy_of_a_released_note_is_silent_where_the_input_is(tiny_tracker):
    audio = _released_sine()
    result = _measure(tiny_tracker, _example_batch(audio), audio)
    assert result["n_quiet_frames"] > 100 and result["n_onsets"] == 1
    assert result["quiet_loudness_l1_db"] < 0.5
    assert result["silent_level_db"] < -60.0
    assert result["onset_lag_median_ms"] == 0.0


def test_a_note_that_keeps_sounding_after_its_release_is_caught(tiny_tracker):
    batch = _example_batch(_released_sine())
    result = _measure(tiny_tracker, batch, _sine(A4_HZ))  # Sounds on through the input's rest.
    assert result["silent_level_db"] == pytest.approx(0.0, abs=1.0)  # At the note's own level.
    assert result["quiet_loudness_l1_db"] > 60.0
    assert result["loudness_l1_db"] < result["quiet_loudness_l1_db"]


def test_a_late_attack_gives_its_onset_lag(tiny_tracker):
    audio = _sine(A4_HZ)
    late = audio.copy()
    late[:800] = 0.0  # Starts 50 ms late.
    metric = metrics.F0LoudnessMetrics(frame_rate=FRAME_RATE, pitch_tracker=tiny_tracker)
    generated = metric.update_state(_example_batch(audio), late[None, :])
    # Within 3 dB once about half of a 512-sample (32 ms) loudness frame's energy is the sine,
    # i.e. near the frame centred on the attack; frames are 4 ms apart.
    assert 46.0 <= metric.result()["onset_lag_median_ms"] <= 58.0
    per_example = generated["example_metrics"]
    assert len(per_example) == 1 and per_example[0]["onset_lag_median_ms"] == metric.result()["onset_lag_median_ms"]
    assert per_example[0]["silent_level_db"] is None  # No silent input frame.


# ------------------------------------------------------------------------------------------
# Per pitch, registers and stable frames (pitch_metrics through F0LoudnessMetrics), with the
# generated audio's f0 given (CREPE replaced) and its loudness measured for real
# ------------------------------------------------------------------------------------------

SEMITONE = 2.0 ** (1.0 / 12.0)
N_SAMPLES = SECONDS * 16000
HOP = 16000 // FRAME_RATE


def _midi_hz(note):
    return A4_HZ * 2.0 ** ((note - 69) / 12.0)


def _given_f0(monkeypatch, metric, f0_hz_gen, confidence_gen=None):
    """Makes `metric` read the generated audio's f0 as f0_hz_gen [n_frames] (confidence 1 unless given)."""
    f0 = np.append(f0_hz_gen, f0_hz_gen[-1])[None, :].astype(np.float32)  # [1, N_FRAMES + 1] as CREPE gives.
    confidence = np.ones_like(f0) if confidence_gen is None else np.append(confidence_gen, 1.0)[None, :]
    monkeypatch.setattr(metric, "_track_f0", lambda audio_gen: (f0, confidence.astype(np.float32)))
    # ... and read the reference tone's f0 as the input's (every frame readable).
    monkeypatch.setattr(metric, "_readable_frames", lambda features, n_samples: np.ones(features["f0_hz"].shape, bool))


def _measured_loudness(audio):
    """The loudness the metric measures on `audio` [n_samples], its first N_FRAMES frames."""
    return spectral_ops.compute_loudness(audio, 16000, FRAME_RATE, use_tf=False)[:N_FRAMES].astype(np.float64)


def _alternating(amplitude_per_frame):
    """[n_samples] +-amplitude (mean square amplitude^2 in each 64-sample frame)."""
    signs = np.where(np.arange(N_SAMPLES) % 2 == 0, 1.0, -1.0)
    return (np.repeat(amplitude_per_frame, HOP) * signs).astype(np.float32)


def test_per_pitch_table_of_two_notes_with_known_errors(monkeypatch):
    """MIDI 60 on frames 0-99 with the generated loudness 2 dB off, then MIDI 67 on frames 100-249 with
    the generated f0 100 cents sharp; the harmonic synth carries 90% of the energy on 60 and 50% on 67."""
    on_60 = np.arange(N_FRAMES) < 100
    audio_gen = _sine(A4_HZ)
    f0_in = np.where(on_60, _midi_hz(60), _midi_hz(67))
    batch = {"f0_hz": f0_in[None, :], "f0_confidence": np.ones([1, N_FRAMES]),
             "loudness_db": (_measured_loudness(audio_gen) + np.where(on_60, 2.0, 0.0))[None, :]}
    metric = metrics.F0LoudnessMetrics(frame_rate=FRAME_RATE, pitch_tracker=object())
    _given_f0(monkeypatch, metric, np.where(on_60, f0_in, f0_in * SEMITONE))
    harmonic = _alternating(np.where(on_60, 0.3, 0.2))  # Energy 0.09 / 0.04 per frame ...
    noise = _alternating(np.where(on_60, 0.1, 0.2))  # ... against 0.01 / 0.04.

    generated = metric.update_state(batch, audio_gen[None, :], harmonic[None, :], noise[None, :])

    rows = metric.per_pitch()
    assert generated["per_pitch"] == rows
    assert [(row["midi"], row["note"], row["n_frames"]) for row in rows] == [(60, "C4", 100), (67, "G4", 150)]
    for row, (loudness, cents, outliers, share) in zip(rows, [(2.0, 0.0, 0.0, 0.9), (0.0, 100.0, 1.0, 0.5)]):
        assert row["loudness_l1_db"] == pytest.approx(loudness, abs=1e-4)
        assert row["f0_l1_cents"] == pytest.approx(cents, abs=1e-3)
        assert row["f0_outlier_ratio"] == outliers
        assert row["harmonic_share"] == pytest.approx(share, abs=1e-6)
    result = metric.result()
    assert result["loudness_l1_db"] == pytest.approx(0.8, abs=1e-4)  # 2 dB on 100 of 250 frames.
    # Lowest register MIDI 60-64: only 60. Middle: around the median note 67 (150 of 250 frames), 65-69.
    assert (result["lowest_register_midi"], result["middle_register_midi"]) == (60, 67)
    assert result["lowest_register_loudness_l1_db"] == pytest.approx(2.0, abs=1e-4)
    assert result["middle_register_loudness_l1_db"] == pytest.approx(0.0, abs=1e-4)
    assert result["lowest_register_f0_l1_cents"] == pytest.approx(0.0, abs=1e-3)
    assert result["middle_register_f0_l1_cents"] == pytest.approx(100.0, abs=1e-3)
    assert result["lowest_register_harmonic_share"] == pytest.approx(0.9, abs=1e-6)
    assert result["middle_register_harmonic_share"] == pytest.approx(0.5, abs=1e-6)


def test_without_the_synths_audio_there_is_no_harmonic_share(monkeypatch):
    metric = metrics.F0LoudnessMetrics(frame_rate=FRAME_RATE, pitch_tracker=object())
    _given_f0(monkeypatch, metric, np.full(N_FRAMES, A4_HZ))
    metric.update_state(_example_batch(_sine(A4_HZ)), _sine(A4_HZ)[None, :])
    [row] = metric.per_pitch()
    assert row["midi"] == 69 and "harmonic_share" not in row
    result = metric.result()
    assert result["lowest_register_harmonic_share"] is None and result["lowest_register_f0_l1_cents"] == 0.0


def test_outliers_at_a_transition_count_raw_but_not_stable(monkeypatch):
    """A4 then A#4 from frame 125, with four wrong generated frames: one at the note change (125), one
    near the example's start (3), one in a held note where CREPE is unsure of the generated audio (200)
    and one in a held note where it is sure (60)."""
    f0_in = np.where(np.arange(N_FRAMES) < 125, A4_HZ, A4_HZ * SEMITONE)
    f0_gen = f0_in.copy()
    f0_gen[[3, 60, 125, 200]] *= SEMITONE  # 100 cents sharp: outliers.
    confidence_gen = np.ones(N_FRAMES)
    confidence_gen[200] = 0.1
    batch = {"f0_hz": f0_in[None, :], "f0_confidence": np.ones([1, N_FRAMES]),
             "loudness_db": np.full([1, N_FRAMES], -20.0)}
    metric = metrics.F0LoudnessMetrics(frame_rate=FRAME_RATE, pitch_tracker=object())
    _given_f0(monkeypatch, metric, f0_gen, confidence_gen)

    generated = metric.update_state(batch, _sine(A4_HZ)[None, :])
    result = metric.result()

    n_stable = N_FRAMES - 2 * 10 - 20  # Both ends' 40 ms, and 40 ms either side of the change.
    assert result["n_stable_frames"] == n_stable
    assert result["f0_outlier_ratio"] == pytest.approx(4 / N_FRAMES)
    assert result["f0_outlier_ratio_stable"] == pytest.approx(2 / n_stable)  # Frames 60 and 200.
    assert result["f0_l1_cents"] == pytest.approx(400.0 / N_FRAMES, rel=1e-5)
    assert result["f0_l1_cents_stable"] == pytest.approx(200.0 / n_stable, rel=1e-5)
    assert {name: result[f"f0_outliers_{name}"] for name in ("at_transitions", "near_onsets_offsets",
                                                             "low_generated_confidence", "elsewhere")} == \
        dict.fromkeys(["at_transitions", "near_onsets_offsets", "low_generated_confidence", "elsewhere"], 0.25)
    [example] = generated["example_metrics"]
    assert example["f0_outlier_ratio_stable"] == result["f0_outlier_ratio_stable"]
    assert example["f0_l1_cents_stable"] == pytest.approx(result["f0_l1_cents_stable"])


def test_without_outliers_their_locations_are_none(monkeypatch):
    metric = metrics.F0LoudnessMetrics(frame_rate=FRAME_RATE, pitch_tracker=object())
    _given_f0(monkeypatch, metric, np.full(N_FRAMES, A4_HZ))
    metric.update_state(_example_batch(_sine(A4_HZ)), _sine(A4_HZ)[None, :])
    result = metric.result()
    assert result["f0_outlier_ratio"] == 0.0 and result["f0_outlier_ratio_stable"] == 0.0
    assert result["f0_outliers_at_transitions"] is None and result["f0_outliers_elsewhere"] is None


def test_synth_audio_of_another_batch_size_is_an_error(monkeypatch):
    metric = metrics.F0LoudnessMetrics(frame_rate=FRAME_RATE, pitch_tracker=object())
    _given_f0(monkeypatch, metric, np.full(N_FRAMES, A4_HZ))
    with pytest.raises(ValueError, match="Batch sizes differ"):
        metric.update_state(_example_batch(_sine(A4_HZ)), _sine(A4_HZ)[None, :], np.zeros([2, N_SAMPLES]),
                            np.zeros([2, N_SAMPLES]))
    with pytest.raises(ValueError, match="noise_audio.*rank 2"):
        metric.update_state(_example_batch(_sine(A4_HZ)), _sine(A4_HZ)[None, :], np.zeros([1, N_SAMPLES]),
                            np.zeros([N_SAMPLES]))
    assert metric.result()["n_examples"] == 0 and metric.per_pitch() == []  # Nothing was added.


# ------------------------------------------------------------------------------------------
# unreadable frames: the real CREPE 'tiny' on a reference tone of the input
# ------------------------------------------------------------------------------------------

FIFTH_UP_HZ = A4_HZ * 2.0 ** (700.0 / 1200.0)  # E5


def _note_change_batch():
    """A4 then E5 from frame 125, confidently pitched: CREPE reads the change a frame or more off."""
    f0_in = np.where(np.arange(N_FRAMES) < 125, A4_HZ, FIFTH_UP_HZ)[None, :]
    tone = reference_tone.reference_tone(f0_in, np.full([1, N_FRAMES], -20.0), N_SAMPLES, 16000)
    return {"f0_hz": f0_in, "f0_confidence": np.ones([1, N_FRAMES]),
            "loudness_db": _measured_loudness(tone[0])[None, :]}


def test_a_tone_that_follows_the_input_exactly_has_no_outlier_on_readable_frames(tiny_tracker):
    batch = _note_change_batch()
    follower = reference_tone.reference_tone(batch["f0_hz"], batch["loudness_db"], N_SAMPLES, 16000)[0]
    result = _measure(tiny_tracker, batch, follower)
    # The tracker misreads the note change on the very audio that plays it: those frames are unreadable.
    assert 0.0 < result["f0_outlier_ratio_every_frame"] < 0.05
    assert result["f0_unreadable_ratio"] == pytest.approx(result["f0_outlier_ratio_every_frame"])
    assert result["f0_outlier_ratio"] == 0.0 and result["f0_l1_cents"] < 10.0
    assert result["n_readable_frames"] < result["n_confident_frames"] == N_FRAMES


def test_the_screen_at_50_frames_per_second_leaves_out_only_misread_frames(tiny_tracker):
    """CREPE on every 5th frame, each decoded alone: the follower is still read as the input wherever readable."""
    batch = _note_change_batch()
    follower = reference_tone.reference_tone(batch["f0_hz"], batch["loudness_db"], N_SAMPLES, 16000)
    metric = metrics.F0LoudnessMetrics(frame_rate=FRAME_RATE, pitch_tracker=tiny_tracker, crepe_frame_rate=50)
    [example] = metric.update_state(batch, follower)["example_metrics"]
    result = metric.result()
    assert result["n_confident_frames"] == N_FRAMES // 5
    assert result["f0_outlier_ratio"] == 0.0
    assert result["f0_unreadable_ratio"] == pytest.approx(result["f0_outlier_ratio_every_frame"])
    assert example["f0_unreadable_ratio"] == pytest.approx(result["f0_unreadable_ratio"])


def test_a_wrong_note_is_an_outlier_on_every_readable_frame(tiny_tracker):
    batch = _note_change_batch()
    sharp = reference_tone.reference_tone(batch["f0_hz"] * SEMITONE, batch["loudness_db"], N_SAMPLES, 16000)[0]
    result = _measure(tiny_tracker, batch, sharp)
    assert result["f0_outlier_ratio"] == 1.0
    assert result["f0_l1_cents"] == pytest.approx(100.0, abs=10.0)


def test_without_the_screen_every_confident_frame_counts(tiny_tracker):
    batch = _note_change_batch()
    follower = reference_tone.reference_tone(batch["f0_hz"], batch["loudness_db"], N_SAMPLES, 16000)[0]
    result = _measure(tiny_tracker, batch, follower, screen_unreadable_frames=False)
    assert result["f0_outlier_ratio"] == result["f0_outlier_ratio_every_frame"] > 0.0
    assert result["f0_l1_cents"] == result["f0_l1_cents_every_frame"]
    assert result["f0_unreadable_ratio"] == 0.0 and result["n_readable_frames"] == N_FRAMES
