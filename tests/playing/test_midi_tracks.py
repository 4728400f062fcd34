"""Tests for ddsp_core.playing.midi_tracks (and midi.read_parts) on songs built with mido (midi_songs.py)."""

import re

import mido
import pytest

from ddsp_core.playing.midi import MidiError, Note, PitchBend, read_midi, read_parts, split_voices
from ddsp_core.playing.midi_tracks import (melody_part, monophonic_share, note_name, parts_table, polyphony, select,
                                           top_line)
from tests.playing.midi_songs import BASS, BEAT_S, CHORD, MELODY, MELODY_NOTE_BEATS, write_song

# (track, channel 0-15, name, program 0-127, notes) of the type 1 song.
SONG_PARTS = [(1, 0, "Melody", 73, 8), (2, 1, "Chords", 0, 12), (3, 2, "Bass", 33, 4), (4, 9, "Drums", None, 16)]


@pytest.fixture(scope="module")
def song(tmp_path_factory):
    return write_song(tmp_path_factory.mktemp("songs") / "song.mid")


@pytest.fixture(scope="module")
def song_type_0(tmp_path_factory):
    return write_song(tmp_path_factory.mktemp("songs") / "song0.mid", midi_type=0)


def _summary(parts):
    return [(part.track, part.channel, part.track_name, part.program, len(part.notes)) for part in parts]


# ------------------------------------------------------------------------------------------
# Reading parts.


def test_read_parts_of_a_type_1_song(song):
    parts, _ = read_parts(song)
    assert _summary(parts) == SONG_PARTS
    melody = parts[0].notes
    assert [note.pitch for note in melody] == list(MELODY)
    for beat, note in enumerate(melody):
        assert note.start_s == pytest.approx(beat * BEAT_S, abs=1e-9)
        assert note.end_s == pytest.approx((beat + MELODY_NOTE_BEATS) * BEAT_S, abs=1e-9)
    assert [note.pitch for note in parts[2].notes] == list(BASS)
    assert [part.percussion for part in parts] == [False, False, False, True]


def test_type_0_song_has_the_same_parts_on_its_channels(song, song_type_0):
    parts_1, _ = read_parts(song)
    parts_0, _ = read_parts(song_type_0)
    assert [(part.track, part.channel, part.track_name, part.program) for part in parts_0] == [
        (0, 0, "Song", 73), (0, 1, "Song", 0), (0, 2, "Song", 33), (0, 9, "Song", None)]
    assert [part.notes for part in parts_0] == [part.notes for part in parts_1]


def test_read_midi_is_every_pitched_part_without_drums(song):
    notes, _ = read_midi(song)
    assert len(notes) == 8 + 12 + 4
    assert all(note.channel != 9 for note in notes)


def test_tempo_in_another_track_and_bends_keep_their_channel(tmp_path):
    midi_file = mido.MidiFile(type=1, ticks_per_beat=480)
    first, second = mido.MidiTrack(), mido.MidiTrack()
    first.extend([mido.Message("note_on", channel=3, note=70, velocity=90, time=0),
                  mido.Message("pitchwheel", channel=3, pitch=-8192, time=480),
                  mido.Message("note_off", channel=3, note=70, time=480)])
    second.extend([mido.MetaMessage("set_tempo", tempo=250000, time=480)])  # from beat 1 on, 0.25 s a beat
    midi_file.tracks.extend([first, second])
    midi_file.save(tmp_path / "tempo.mid")
    parts, bends = read_parts(tmp_path / "tempo.mid")
    (note,) = parts[0].notes
    assert (note.start_s, note.end_s, note.channel) == (0.0, pytest.approx(0.75), 3)
    assert bends == [PitchBend(pytest.approx(0.5), -2.0, 3)]


# ------------------------------------------------------------------------------------------
# Polyphony and the listing.


@pytest.mark.parametrize("notes, most, share", [
    ([], 0, 0.0),
    ([Note(0.0, 1.0, 60, 90)], 1, 1.0),
    ([Note(0.0, 1.0, 60, 90), Note(1.0, 2.0, 62, 90)], 1, 1.0),  # legato: no overlap
    ([Note(0.0, 2.0, 60, 90), Note(1.0, 3.0, 64, 90)], 2, 2.0 / 3.0),  # 1 s of 3 with two notes
    ([Note(0.0, 1.0, pitch, 90) for pitch in CHORD], 3, 0.0),
], ids=["none", "one", "legato", "overlap", "triad"])
def test_polyphony_and_monophonic_share(notes, most, share):
    assert polyphony(notes) == most
    assert monophonic_share(notes) == pytest.approx(share, abs=1e-5)


def test_note_names():
    assert [note_name(pitch) for pitch in (21, 28, 60, 69, 86, 93, 127)] == ["A0", "E1", "C4", "A4", "D6", "A6",
                                                                             "G9"]


def test_parts_table_rows(song):
    parts, _ = read_parts(song)
    lines = parts_table(parts, song).splitlines()
    assert lines[0] == f"{song}: 4 parts (track, channel) with notes"
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]
    assert rows == [["track", "name", "channel", "program", "notes", "range", "polyphony"],
                    ["1", "Melody", "1", "74 Flute", "8", "D6-A6 (86-93)", "1"],
                    ["2", "Chords", "2", "1 Acoustic Grand Piano", "12", "C4-G4 (60-67)", "3"],
                    ["3", "Bass", "3", "34 Electric Bass (finger)", "4", "E1-C3 (28-48)", "1"],
                    ["4", "Drums", "10", "percussion", "16", "(drums)", "-"]]


# ------------------------------------------------------------------------------------------
# Picking what plays.


@pytest.mark.parametrize("track, channel, expected", [
    (1, None, [(1, 0)]), ("1", None, [(1, 0)]), ("Melody", None, [(1, 0)]), ("chords", None, [(2, 1)]),
    ("mel", None, [(1, 0)]), (None, 3, [(3, 2)]), ("3", 3, [(3, 2)]), ("all", None, [(1, 0), (2, 1), (3, 2)]),
], ids=["number", "digits", "name", "name_case", "part_of_name", "channel", "track_and_channel", "all"])
def test_select_by_track_and_channel(song, track, channel, expected):
    parts, _ = read_parts(song)
    picked = select(parts, track=track, channel=channel)
    assert [(part.track, part.channel) for part in picked.parts] == expected
    assert len(picked.notes) == sum(len(part.notes) for part in picked.parts)
    assert all(note.channel != 9 for note in picked.notes)
    assert picked.reason.startswith("picked with")


@pytest.mark.parametrize("kind, names", [(1, True), (1, False), (0, True)], ids=["named", "unnamed", "type_0"])
def test_default_pick_is_the_melody(tmp_path, kind, names):
    """Named: the name says so; unnamed and type 0: the mostly monophonic part with the highest pitch."""
    parts, _ = read_parts(write_song(tmp_path / "song.mid", midi_type=kind, names=names))
    picked = select(parts)
    assert [part.channel for part in picked.parts] == [0]
    assert [note.pitch for note in picked.notes] == list(MELODY)
    assert "likeliest melody of its 3 pitched parts" in picked.reason
    assert picked.polyphony == 1


def test_one_pitched_part_plays_without_a_pick(tmp_path):
    midi_file = mido.MidiFile()
    track = mido.MidiTrack()
    track.extend([mido.Message("note_on", channel=9, note=36, velocity=90),
                  mido.Message("note_on", note=40, velocity=90),
                  mido.Message("note_off", note=40, time=480), mido.Message("note_off", channel=9, note=36)])
    midi_file.tracks.append(track)
    midi_file.save(tmp_path / "bass.mid")
    parts, _ = read_parts(tmp_path / "bass.mid")
    picked = select(parts)
    assert picked.reason == "its only pitched part"
    assert [note.pitch for note in picked.notes] == [40]


def test_melody_part_prefers_a_melody_name_over_pitch():
    parts = [_part(1, 0, "Lead vocal", [Note(0.0, 1.0, 60, 90)]),
             _part(2, 1, "Flute obbligato", [Note(0.0, 1.0, 90, 90, 1)])]
    assert melody_part(parts).track_name == "Lead vocal"


@pytest.mark.parametrize("track, channel, message", [
    (None, 10, "Channel 10 of .* is General MIDI percussion"),
    ("Drums", None, r"Track 4 'Drums' \(channel 10\) of .* has only percussion"),
    ("4", None, "has only percussion"),
    ("9", None, "There is no track 9 with notes"),
    ("Violin", None, "No track is named 'Violin' \\(names: 'Bass', 'Chords', 'Drums', 'Melody'\\)"),
    ("s", None, "matches several tracks: 'Bass', 'Chords', 'Drums'"),
    ("Melody", 2, "Track Melody and channel 2 of .* has no notes"),
    (None, 17, "MIDI channel 1-16"),
], ids=["drum_channel", "drum_track", "drum_track_number", "no_such_number", "no_such_name", "ambiguous",
        "empty_intersection", "channel_17"])
def test_select_refuses_drums_and_unknown_parts(song, track, channel, message):
    parts, _ = read_parts(song)
    with pytest.raises(MidiError, match=message) as error:
        select(parts, track=track, channel=channel, path=song)
    if channel != 17:
        assert f"--midi {song} --list" in str(error.value)


def test_select_keeps_the_picked_channels_bends():
    parts = [_part(1, 0, "A", [Note(0.0, 1.0, 70, 90, 0)]), _part(2, 1, "B", [Note(0.0, 1.0, 50, 90, 1)])]
    bends = [PitchBend(0.1, 1.0, 0), PitchBend(0.2, -1.0, 1)]
    assert select(parts, bends, track="B").bends == (bends[1],)


def _part(track, channel, name, notes):
    from ddsp_core.playing.midi import Part

    return Part(track, channel, name, None, tuple(notes))


# ------------------------------------------------------------------------------------------
# The top line of chords.


def test_top_line_keeps_the_highest_note_and_returns_to_a_held_one():
    notes = [Note(0.0, 2.0, 60, 50), Note(0.0, 1.0, 64, 60), Note(0.5, 1.5, 67, 70)]
    line = top_line(notes)
    assert [(note.start_s, note.end_s, note.pitch, note.velocity) for note in line] == [
        (0.0, 0.5, 64, 60), (0.5, 1.5, 67, 70), (1.5, 2.0, 60, 50)]
    assert split_voices(line) == [line]


def test_top_line_of_a_line_is_itself_and_rests_stay():
    notes = [Note(0.0, 0.4, 72, 90), Note(0.5, 1.0, 74, 90), Note(1.0, 1.5, 76, 90)]
    assert top_line(notes) == notes
    assert top_line([]) == []


def test_top_line_of_the_chords_is_their_top_note(song):
    parts, _ = read_parts(song)
    line = top_line(parts[1].notes)
    assert [note.pitch for note in line] == [67] * 4
    assert polyphony(line) == 1
