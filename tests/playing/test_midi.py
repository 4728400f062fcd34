"""Tests for ddsp_core.playing.midi against closed-form values and MIDI files written with mido."""

import math

import mido
import numpy as np
import pytest

from ddsp_core.playing.midi import (Expression, MidiError, Note, PitchBend, builtin_melody, notes_to_curves,
                                    read_midi, render_plan, split_voices)

FRAME_RATE = 1000  # 1 ms frames: times in the tests fall on frames
RANGE_DB = (-60.0, -10.0)
SILENCE_DB = -80.0


def _frame(time_s):
    return int(round(time_s * FRAME_RATE))


def _midi(f0_hz):
    return 69.0 + 12.0 * np.log2(np.asarray(f0_hz, np.float64) / 440.0)


def _curves(notes, **kwargs):
    return notes_to_curves(notes, FRAME_RATE, RANGE_DB, **kwargs)


# ------------------------------------------------------------------------------------------
# Notes, expression and validation.


@pytest.mark.parametrize("kwargs", [dict(pitch=128), dict(velocity=0), dict(channel=16), dict(end_s=0.5)],
                         ids=["pitch_above_127", "velocity_0", "channel_16", "end_before_start"])
def test_note_rejects_bad_fields(kwargs):
    fields = dict(start_s=1.0, end_s=2.0, pitch=60, velocity=100) | kwargs
    with pytest.raises(ValueError):
        Note(**fields)


@pytest.mark.parametrize("kwargs", [dict(frame_rate=0), dict(loudness_range_db=(-10.0, -60.0)),
                                    dict(loudness_range_db=(-60.0, -60.0))],
                         ids=["frame_rate_0", "range_reversed", "range_empty"])
def test_notes_to_curves_rejects_bad_arguments(kwargs):
    arguments = dict(frame_rate=FRAME_RATE, loudness_range_db=RANGE_DB) | kwargs
    with pytest.raises(ValueError):
        notes_to_curves([Note(0.0, 1.0, 69, 100)], **arguments)


def test_overlapping_notes_point_to_split_voices():
    with pytest.raises(ValueError, match="split_voices"):
        _curves([Note(0.0, 1.0, 60, 100), Note(0.5, 1.5, 64, 100)])


def test_no_notes_is_a_midi_error():
    with pytest.raises(MidiError):
        _curves([])
    with pytest.raises(MidiError):
        render_plan([], FRAME_RATE, RANGE_DB)


def test_expression_rejects_negative_times():
    with pytest.raises(ValueError, match="attack_s"):
        Expression(attack_s=-0.1)


# ------------------------------------------------------------------------------------------
# f0.


def test_a4_is_440_hz_and_f0_is_continuous():
    notes = [Note(0.5, 1.0, 69, 100), Note(1.5, 2.0, 72, 100)]
    f0_hz, loudness_db = _curves(notes)
    assert f0_hz.dtype == np.float32 and loudness_db.dtype == np.float32
    assert f0_hz.shape == loudness_db.shape
    np.testing.assert_allclose(f0_hz[_frame(0.6):_frame(1.0)], 440.0, atol=0.01)
    # Before the first note: its pitch; in the rest: the previous pitch; from the next note on: C5.
    np.testing.assert_allclose(f0_hz[:_frame(0.5)], 440.0, atol=0.01)
    np.testing.assert_allclose(f0_hz[_frame(1.0):_frame(1.5)], 440.0, atol=0.01)
    np.testing.assert_allclose(f0_hz[_frame(1.5):], 440.0 * 2 ** (3 / 12), atol=0.01)


def test_default_length_covers_release_and_tail():
    expression = Expression(release_s=0.3)
    f0_hz, _ = _curves([Note(0.0, 1.0, 60, 100)], expression=expression)
    assert len(f0_hz) == _frame(1.0 + 0.3 + 0.2)
    f0_hz, _ = _curves([Note(0.0, 1.0, 60, 100)], n_frames=123)
    assert len(f0_hz) == 123


def test_legato_glide_is_linear_in_midi():
    expression = Expression(glide_s=0.05)
    f0_hz, _ = _curves([Note(0.0, 1.0, 67, 100), Note(1.0, 2.0, 69, 100)], expression=expression)
    midi = _midi(f0_hz)
    assert midi[_frame(1.0)] == pytest.approx(67.0, abs=1e-3)
    assert midi[_frame(1.025)] == pytest.approx(68.0, abs=1e-3)
    assert midi[_frame(1.01)] == pytest.approx(67.4, abs=1e-3)
    np.testing.assert_allclose(midi[_frame(1.05):_frame(2.0)], 69.0, atol=1e-3)


def test_detached_notes_jump_without_glide():
    f0_hz, _ = _curves([Note(0.0, 1.0, 67, 100), Note(1.5, 2.0, 69, 100)])
    assert _midi(f0_hz[_frame(1.5)]) == pytest.approx(69.0, abs=1e-3)


def test_vibrato_depth_rate_and_delay():
    expression = Expression(vibrato_cents=30.0, vibrato_hz=5.0, vibrato_delay_s=0.3)
    f0_hz, _ = _curves([Note(0.0, 3.0, 69, 100)], expression=expression)
    cents = 1200.0 * np.log2(f0_hz.astype(np.float64) / 440.0)
    np.testing.assert_allclose(cents[:_frame(0.3)], 0.0, atol=1e-3)  # no vibrato before the delay
    full = cents[_frame(0.5):_frame(3.0)]  # faded in from 0.3 s to 0.5 s
    assert full.max() == pytest.approx(30.0, abs=1.0)
    assert full.min() == pytest.approx(-30.0, abs=1.0)
    assert np.abs(cents[_frame(0.3):_frame(0.4)]).max() < 30.0 * 0.5 + 1.0  # still fading in
    crossings = np.sum(np.diff((full > 0).astype(int)) == 1)  # upward zero crossings in 2.5 s at 5 Hz
    assert crossings in (12, 13)


def test_pitch_bend_of_two_semitones():
    bends = [PitchBend(1.0, 2.0), PitchBend(1.5, 0.0), PitchBend(0.0, 5.0, channel=3)]
    f0_hz, _ = _curves([Note(0.0, 2.0, 69, 100)], bends=bends)
    np.testing.assert_allclose(f0_hz[_frame(0.1):_frame(1.0)], 440.0, atol=0.01)  # channel 3 ignored
    np.testing.assert_allclose(f0_hz[_frame(1.0):_frame(1.5)], 493.88, atol=0.01)
    np.testing.assert_allclose(f0_hz[_frame(1.5):_frame(2.0)], 440.0, atol=0.01)


def test_pitch_bends_follow_each_notes_channel():
    notes = [Note(0.0, 1.0, 69, 100, channel=0), Note(1.0, 2.0, 69, 100, channel=1)]
    f0_hz, _ = _curves(notes, bends=[PitchBend(0.0, 1.0, channel=1)], expression=Expression(glide_s=0.0))
    np.testing.assert_allclose(_midi(f0_hz[_frame(0.1):_frame(1.0)]), 69.0, atol=1e-3)
    np.testing.assert_allclose(_midi(f0_hz[_frame(1.0):_frame(2.0)]), 70.0, atol=1e-3)


# ------------------------------------------------------------------------------------------
# Loudness.


def test_velocity_127_is_high_db_and_mapping_is_monotonic():
    sustain = []
    for velocity in (1, 20, 40, 64, 100, 127):
        _, loudness_db = _curves([Note(0.0, 1.0, 60, velocity)])
        sustain.append(float(loudness_db[_frame(0.5)]))
    assert sustain[-1] == pytest.approx(-10.0, abs=1e-4)
    assert sustain[0] == pytest.approx(-60.0 + 50.0 / 127, abs=1e-4)
    assert np.all(np.diff(sustain) > 0)
    _, loudness_db = _curves([Note(0.0, 1.0, 60, 64)], expression=Expression(velocity_curve=2.0))
    assert loudness_db[_frame(0.5)] == pytest.approx(-60.0 + 50.0 * (64 / 127) ** 2, abs=1e-4)


def test_attack_is_an_amplitude_ramp_and_release_is_linear_in_db():
    expression = Expression(attack_s=0.04, release_s=0.1)
    _, loudness_db = _curves([Note(0.5, 1.0, 60, 127)], expression=expression)
    target = -10.0
    assert loudness_db[_frame(0.5)] == SILENCE_DB
    # Halfway through the attack the amplitude is half the target's: -6.02 dB.
    assert loudness_db[_frame(0.52)] == pytest.approx(target + 20 * math.log10(0.5), abs=1e-3)
    assert np.all(np.diff(loudness_db[_frame(0.5):_frame(0.54)]) > 0)
    np.testing.assert_allclose(loudness_db[_frame(0.54) + 1:_frame(1.0) + 1], target, atol=1e-4)
    # Release: linear in dB from the target at the end to silence one release later.
    assert loudness_db[_frame(1.05)] == pytest.approx((target + SILENCE_DB) / 2, abs=1e-3)
    np.testing.assert_allclose(loudness_db[_frame(1.1):], SILENCE_DB)
    np.testing.assert_allclose(loudness_db[:_frame(0.5)], SILENCE_DB)


def test_level_reaches_target_within_attack_and_silence_after_release_at_250_hz():
    frame_rate, expression = 250, Expression()
    _, loudness_db = notes_to_curves([Note(0.2, 1.0, 60, 127)], frame_rate, RANGE_DB, expression=expression)
    reached = int(math.ceil((0.2 + expression.attack_s) * frame_rate)) + 1
    np.testing.assert_allclose(loudness_db[reached:int(1.0 * frame_rate)], -10.0, atol=1e-4)
    silent = int(math.ceil((1.0 + expression.release_s) * frame_rate))
    np.testing.assert_allclose(loudness_db[silent:], SILENCE_DB)


def test_silence_between_detached_notes():
    expression = Expression(release_s=0.1)
    _, loudness_db = _curves([Note(0.0, 1.0, 60, 100), Note(1.5, 2.0, 62, 100)], expression=expression)
    np.testing.assert_allclose(loudness_db[_frame(1.1):_frame(1.5) + 1], SILENCE_DB)


def test_release_cut_by_next_note_is_the_larger_envelope():
    expression = Expression(release_s=0.2, attack_s=0.03)
    _, loudness_db = _curves([Note(0.0, 1.0, 60, 127), Note(1.1, 2.0, 62, 127)], expression=expression)
    target = -10.0
    assert loudness_db[_frame(1.1)] == pytest.approx((target + SILENCE_DB) / 2, abs=1e-3)  # half the release
    t = np.arange(_frame(1.1), _frame(1.13) + 1) / FRAME_RATE
    release = target + (SILENCE_DB - target) * (t - 1.0) / 0.2
    attack = target + 20 * np.log10(np.maximum((t - 1.1) / 0.03, 1e-12))
    np.testing.assert_allclose(loudness_db[_frame(1.1):_frame(1.13) + 1], np.maximum(release, attack), atol=1e-3)
    np.testing.assert_allclose(loudness_db[_frame(1.13):_frame(2.0) + 1], target, atol=1e-4)


def test_legato_moves_between_targets_without_release():
    expression = Expression(attack_s=0.04)
    notes = [Note(0.0, 1.0, 60, 127), Note(1.0, 2.0, 62, 1)]
    _, loudness_db = _curves(notes, expression=expression)
    high, low = -10.0, -60.0 + 50.0 / 127
    assert loudness_db[_frame(1.0)] == pytest.approx(high, abs=1e-4)
    assert loudness_db[_frame(1.02)] == pytest.approx((high + low) / 2, abs=1e-3)  # linear in dB
    np.testing.assert_allclose(loudness_db[_frame(1.04):_frame(2.0) + 1], low, atol=1e-4)
    assert loudness_db[_frame(0.5):_frame(2.0)].min() >= low - 1e-4  # no dip to silence


# ------------------------------------------------------------------------------------------
# Voices.


def test_chord_splits_into_one_voice_per_note():
    chord = [Note(0.0, 1.0, 64, 90), Note(0.0, 1.0, 60, 90), Note(0.0, 1.0, 67, 90), Note(1.0, 2.0, 65, 90)]
    voices = split_voices(chord)
    assert [[note.pitch for note in voice] for voice in voices] == [[60, 65], [64], [67]]
    plan = render_plan(chord, FRAME_RATE, RANGE_DB)
    assert len(plan) == 3
    assert len({len(f0_hz) for f0_hz, _ in plan} | {len(loudness_db) for _, loudness_db in plan}) == 1
    assert len(plan[1][0]) == len(plan[0][0])  # the short voice is padded to the longest


def test_legato_stays_one_voice_and_overlap_does_not():
    legato = [Note(0.0, 0.5, 60, 90), Note(0.5, 1.0, 62, 90), Note(1.0, 1.5, 64, 90)]
    assert split_voices(legato) == [legato]
    overlapping = [Note(0.0, 0.6, 60, 90), Note(0.5, 1.0, 62, 90)]
    assert len(split_voices(overlapping)) == 2


# ------------------------------------------------------------------------------------------
# Reading MIDI files.


def _write_midi(path, tracks, ticks_per_beat=480):
    """tracks: lists of (absolute tick, message); writes a type 1 file."""
    midi_file = mido.MidiFile(type=1, ticks_per_beat=ticks_per_beat)
    for events in tracks:
        track = mido.MidiTrack()
        tick = 0
        for at, message in sorted(events, key=lambda event: event[0]):
            track.append(message.copy(time=at - tick))
            tick = at
        midi_file.tracks.append(track)
    midi_file.save(path)
    return path


def test_read_midi_honours_tempo_changes(tmp_path):
    tempo = [(0, mido.MetaMessage("set_tempo", tempo=500000)),  # 0.5 s per beat for 2 beats
             (960, mido.MetaMessage("set_tempo", tempo=250000))]  # then 0.25 s per beat
    melody = [(0, mido.Message("note_on", note=60, velocity=80)), (480, mido.Message("note_off", note=60)),
              (720, mido.Message("note_on", note=62, velocity=90)), (1200, mido.Message("note_off", note=62)),
              (1440, mido.Message("note_on", note=64, velocity=100)),
              (1920, mido.Message("note_on", note=64, velocity=0)),  # velocity 0 ends the note
              (480, mido.Message("pitchwheel", pitch=4096)),
              (2400, mido.MetaMessage("end_of_track"))]
    drums = [(0, mido.Message("note_on", channel=9, note=36, velocity=100)),
             (240, mido.Message("note_off", channel=9, note=36))]
    path = _write_midi(tmp_path / "tune.mid", [tempo, melody, drums])
    notes, bends = read_midi(path)
    expected = [(0.0, 0.5, 60, 80), (0.75, 1.125, 62, 90), (1.25, 1.5, 64, 100)]
    assert len(notes) == 3  # the drum note is ignored
    for note, (start_s, end_s, pitch, velocity) in zip(notes, expected):
        assert note.start_s == pytest.approx(start_s, abs=1e-3)
        assert note.end_s == pytest.approx(end_s, abs=1e-3)
        assert (note.pitch, note.velocity, note.channel) == (pitch, velocity, 0)
    assert len(bends) == 1
    assert bends[0].time_s == pytest.approx(0.5, abs=1e-3)
    assert bends[0].semitones == pytest.approx(1.0)
    assert read_midi(path, bend_range_semitones=12.0)[1][0].semitones == pytest.approx(6.0)


def test_read_midi_retrigger_and_notes_held_to_the_end(tmp_path):
    events = [(0, mido.MetaMessage("set_tempo", tempo=500000)),
              (0, mido.Message("note_on", note=67, velocity=70)),
              (480, mido.Message("note_on", note=67, velocity=110)),  # same key again: ends the first
              (960, mido.Message("note_off", note=67)),
              (960, mido.Message("note_on", channel=2, note=55, velocity=50)),  # never ended
              (1920, mido.MetaMessage("end_of_track"))]
    notes, _ = read_midi(_write_midi(tmp_path / "held.mid", [events]))
    times = [(round(note.start_s, 3), round(note.end_s, 3), note.pitch, note.velocity, note.channel)
             for note in notes]
    assert times == [(0.0, 0.5, 67, 70, 0), (0.5, 1.0, 67, 110, 0), (1.0, 2.0, 55, 50, 2)]


def test_read_midi_errors_name_the_path(tmp_path):
    missing = tmp_path / "missing.mid"
    with pytest.raises(MidiError, match="does not exist") as error:
        read_midi(missing)
    assert str(missing) in str(error.value)

    text = tmp_path / "notes.txt"
    text.write_text("C D E F G\n")
    with pytest.raises(MidiError, match="is not a Standard MIDI File") as error:
        read_midi(text)
    assert str(text) in str(error.value)

    drums_only = _write_midi(tmp_path / "drums.mid", [[(0, mido.Message("note_on", channel=9, note=36, velocity=99)),
                                                       (240, mido.Message("note_off", channel=9, note=36))]])
    with pytest.raises(MidiError, match=r"has no notes \(only drums or none at all\)") as error:
        read_midi(drums_only)
    assert str(drums_only) in str(error.value)


# ------------------------------------------------------------------------------------------
# The built-in melody.


def test_builtin_melody_matches_its_description():
    notes = builtin_melody()
    assert 8.0 <= notes[-1].end_s <= 10.0 and notes[0].start_s == 0.0
    assert all(55 <= note.pitch <= 82 for note in notes)
    velocities = [note.velocity for note in notes]
    assert min(velocities) >= 40 and max(velocities) <= 120 and max(velocities) - min(velocities) >= 60
    assert split_voices(notes) == [notes]  # monophonic
    assert any(note.end_s - note.start_s >= 1.2 for note in notes)
    gaps = [following.start_s - note.end_s for note, following in zip(notes, notes[1:])]
    assert any(gap >= 0.25 for gap in gaps)  # a rest
    assert any(gap == 0.0 for gap in gaps)  # a legato pair
    f0_hz, loudness_db = render_plan(notes, 250, RANGE_DB)[0]
    assert np.all(np.isfinite(f0_hz)) and np.all(loudness_db <= 0.0)
