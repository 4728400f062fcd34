"""Tests for ddsp_core.evaluation.pitch_metrics: hand-built frames whose answers are known.

Stable frames and transitions counted frame by frame, outlier locations, per-note rows of
two notes with known loudness errors and synth energies, and the registers of a scale.

Pure NumPy: marked `dsp`, so CI also runs it on JAX.
"""

import numpy as np
import pytest

from ddsp_core.evaluation import pitch_metrics

pytestmark = pytest.mark.dsp

FRAME_RATE = 250
N_FRAMES = 250
W = 10  # The stability window's half-width at 250 frames/s: 40 ms.
A4_HZ = 440.0
SEMITONE = 2.0 ** (1.0 / 12.0)


def midi_hz(note):
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def _unstable(f0_hz, confident=None, loudness_db=None):
    """unstable_frames of one example [n_frames] -> (transition, onset_offset), each [n_frames]."""
    f0_hz = np.asarray(f0_hz, np.float64)[None, :]
    confident = np.ones(f0_hz.shape, bool) if confident is None else np.asarray(confident)[None, :]
    loudness_db = np.zeros(f0_hz.shape) if loudness_db is None else np.asarray(loudness_db)[None, :]
    transition, onset_offset = pitch_metrics.unstable_frames(f0_hz, confident, loudness_db, FRAME_RATE)
    return transition[0], onset_offset[0]


def _frames(mask):
    return np.flatnonzero(mask).tolist()


# ------------------------------------------------------------------------------------------
# midi_notes, note_name, window_frames
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("f0_hz, note", [
    pytest.param(261.63, 60, id="C4"),
    pytest.param(440.0, 69, id="A4"),
    pytest.param(440.0 * 2 ** (49 / 1200), 69, id="A4_plus_49_cents"),
    pytest.param(440.0 * 2 ** (51 / 1200), 70, id="A4_plus_51_cents"),
    pytest.param(0.0, 0, id="unpitched"),
    pytest.param(-5.0, 0, id="negative"),
    pytest.param(40000.0, 127, id="clipped"),
])
def test_midi_notes(f0_hz, note):
    assert pitch_metrics.midi_notes(np.array([f0_hz])).tolist() == [note]


@pytest.mark.parametrize("midi, name", [(60, "C4"), (69, "A4"), (70, "A#4"), (52, "E3"), (21, "A0")])
def test_note_name(midi, name):
    assert pitch_metrics.note_name(midi) == name


@pytest.mark.parametrize("frame_rate, frames", [(250, 10), (100, 4), (50, 2), (10, 1)])
def test_window_frames_is_40_ms(frame_rate, frames):
    assert pitch_metrics.window_frames(frame_rate) == frames


# ------------------------------------------------------------------------------------------
# unstable_frames: the stable-frame rule
# ------------------------------------------------------------------------------------------


def test_a_held_note_is_stable_except_within_the_window_of_the_example_ends():
    transition, onset_offset = _unstable(np.full(N_FRAMES, A4_HZ))
    assert not transition.any()
    assert _frames(onset_offset) == [*range(W), *range(N_FRAMES - W, N_FRAMES)]


def test_a_note_change_makes_the_frames_within_the_window_transitions():
    change = 125
    f0_hz = np.where(np.arange(N_FRAMES) < change, A4_HZ, A4_HZ * SEMITONE)  # 100 cents up at frame 125.
    transition, onset_offset = _unstable(f0_hz)
    assert _frames(transition) == list(range(change - W, change + W))
    assert not (transition & onset_offset).any()


def test_vibrato_within_50_cents_is_stable():
    cents = 20.0 * np.sin(2 * np.pi * 5.0 * np.arange(N_FRAMES) / FRAME_RATE)  # 5 Hz, +-20 cents: 40 cents wide.
    transition, onset_offset = _unstable(A4_HZ * 2.0 ** (cents / 1200.0))
    assert not transition.any()
    assert onset_offset.sum() == 2 * W


def test_a_confidence_drop_is_kept_away_from():
    confident = np.ones(N_FRAMES, bool)
    confident[100:105] = False
    transition, onset_offset = _unstable(np.full(N_FRAMES, A4_HZ), confident)
    assert not transition.any()
    assert _frames(onset_offset[W:N_FRAMES - W]) == [i - W for i in (*range(90, 100), *range(105, 115))]
    assert not onset_offset[100:105].any()  # Frames that are not confident are in neither mask.


def test_input_onsets_and_offsets_are_kept_away_from():
    loudness_db = np.zeros(N_FRAMES)
    loudness_db[:50] = -60.0  # Quiet (30 dB or more below the peak) until the onset at 50 ...
    loudness_db[200:] = -60.0  # ... and from the offset at 200.
    transition, onset_offset = _unstable(np.full(N_FRAMES, A4_HZ), loudness_db=loudness_db)
    assert not transition.any()
    expected = {*range(W), *range(50 - W, 50 + W + 1), *range(200 - W, 200 + W + 1), *range(N_FRAMES - W, N_FRAMES)}
    assert set(_frames(onset_offset)) == expected


def test_unstable_frames_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="one shape"):
        pitch_metrics.unstable_frames(np.ones([1, 4]), np.ones([1, 3], bool), np.ones([1, 4]), FRAME_RATE)


# ------------------------------------------------------------------------------------------
# outlier_locations
# ------------------------------------------------------------------------------------------


def test_outlier_locations_counts_each_outlier_once_in_order():
    outlier = np.array([[1, 1, 1, 1, 1, 0]], bool)
    transition = np.array([[1, 0, 0, 0, 0, 1]], bool)
    onset_offset = np.array([[0, 1, 0, 0, 0, 0]], bool)
    low_generated = np.array([[1, 1, 1, 0, 0, 1]], bool)  # Frames 0 and 1 are counted before.
    counts = pitch_metrics.outlier_locations(outlier, transition, onset_offset, low_generated)
    assert counts == {"at_transitions": 1, "near_onsets_offsets": 1, "low_generated_confidence": 1, "elsewhere": 2}


# ------------------------------------------------------------------------------------------
# note_sums and per_pitch_rows
# ------------------------------------------------------------------------------------------


def _two_notes(n_60=100, with_energies=True):
    """Frames of MIDI 60 then 67; loudness 2 dB off on 60 and exact on 67; f0 100 cents off on 67;
    harmonic / noise energy 0.09 / 0.01 on 60 and 0.04 / 0.04 on 67. Returns note_sums."""
    on_60 = np.arange(N_FRAMES)[None, :] < n_60  # [1, n_frames]
    notes = pitch_metrics.midi_notes(np.where(on_60, midi_hz(60), midi_hz(67)))
    energies = {"harmonic_energy": np.where(on_60, 0.09, 0.04), "noise_energy": np.where(on_60, 0.01, 0.04)}
    return pitch_metrics.note_sums(notes, np.ones(notes.shape, bool), np.where(on_60, 2.0, 0.0),
                                   np.where(on_60, 0.0, 100.0), ~on_60, **(energies if with_energies else {}))


def test_per_pitch_rows_of_two_notes():
    rows = pitch_metrics.per_pitch_rows(_two_notes())
    assert [row["midi"] for row in rows] == [60, 67]
    assert rows[0] == {"midi": 60, "note": "C4", "n_frames": 100, "loudness_l1_db": 2.0, "f0_l1_cents": 0.0,
                       "f0_outlier_ratio": 0.0, "harmonic_share": pytest.approx(0.9)}
    assert rows[1] == {"midi": 67, "note": "G4", "n_frames": 150, "loudness_l1_db": 0.0, "f0_l1_cents": 100.0,
                       "f0_outlier_ratio": 1.0, "harmonic_share": pytest.approx(0.5)}


def test_per_pitch_rows_without_synth_energies_have_no_harmonic_share():
    rows = pitch_metrics.per_pitch_rows(_two_notes(with_energies=False))
    assert all("harmonic_share" not in row for row in rows)
    assert [row["loudness_l1_db"] for row in rows] == [2.0, 0.0]


def test_note_sums_count_only_masked_frames_and_add_up():
    notes = np.full([2, 4], 60)
    mask = np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool)
    errors = np.array([[1.0, 3.0, 100.0, 100.0], [5.0, 100.0, 100.0, 100.0]])
    sums = pitch_metrics.note_sums(notes, mask, errors, np.zeros([2, 4]), np.zeros([2, 4], bool))
    total = pitch_metrics.add_sums(pitch_metrics.add_sums(None, sums), sums)
    [row] = pitch_metrics.per_pitch_rows(total)
    assert (row["n_frames"], row["loudness_l1_db"]) == (6, 3.0)
    assert pitch_metrics.per_pitch_rows(None) == []


# ------------------------------------------------------------------------------------------
# Registers
# ------------------------------------------------------------------------------------------

SCALE = (55, 57, 59, 60, 62, 64, 65, 67, 69, 71, 72)  # G3 major up to C5: median note 64.


def _scale_sums(frames_per_note=30, stray=None):
    """note_sums of SCALE, frames_per_note each, loudness error (note - 50) dB, f0 error note cents;
    `stray` = (note, n_frames) adds a few frames of another note with a 99 dB error."""
    notes = np.repeat(SCALE, frames_per_note)
    errors = notes - 50.0
    if stray is not None:
        notes = np.concatenate([notes, np.full(stray[1], stray[0])])
        errors = np.concatenate([errors, np.full(stray[1], 99.0)])
    energies = {"harmonic_energy": (notes < 60).astype(float), "noise_energy": np.ones(notes.shape)}
    return pitch_metrics.note_sums(notes[None, :], np.ones([1, notes.size], bool), errors[None, :],
                                   notes[None, :].astype(float), np.zeros([1, notes.size], bool),
                                   **{name: value[None, :] for name, value in energies.items()})


def test_registers_of_a_scale():
    result = pitch_metrics.register_summaries(_scale_sums(), min_note_frames=25)
    assert result == {
        "lowest_register_midi": 55, "middle_register_midi": 64,
        # Lowest: MIDI 55-59 holds 55, 57, 59 (errors 5, 7, 9 dB; all harmonic energy 1 vs noise 1).
        "lowest_register_loudness_l1_db": pytest.approx(7.0), "lowest_register_f0_l1_cents": pytest.approx(57.0),
        "lowest_register_harmonic_share": pytest.approx(0.5),
        # Middle: MIDI 62-66 holds 62, 64, 65 (no harmonic energy at or above 60).
        "middle_register_loudness_l1_db": pytest.approx(41 / 3), "middle_register_f0_l1_cents": pytest.approx(191 / 3),
        "middle_register_harmonic_share": 0.0,
    }


def test_a_few_stray_frames_do_not_move_the_lowest_register():
    sums = _scale_sums(stray=(40, 3))
    assert pitch_metrics.register_notes(sums, min_note_frames=25) == ((55, 59), (62, 66))
    assert pitch_metrics.register_summaries(sums, min_note_frames=25)["lowest_register_loudness_l1_db"] == \
        pytest.approx(7.0)
    assert pitch_metrics.register_notes(sums, min_note_frames=1)[0] == (40, 44)
    assert pitch_metrics.register_summaries(sums, min_note_frames=1)["lowest_register_loudness_l1_db"] == 99.0


def test_registers_without_frames_are_none():
    assert pitch_metrics.register_notes(None) == (None, None)
    result = pitch_metrics.register_summaries(None)
    assert result["lowest_register_midi"] is None and result["middle_register_loudness_l1_db"] is None
