"""A General MIDI song built with mido, with known parts: melody, chords, bass, drums.

At 120 bpm (0.5 s a beat), 8 beats:
  track 1 'Melody'  channel 1   Flute (program 74)        MELODY, one note a beat (0.45 s each), D6-A6
  track 2 'Chords'  channel 2   Acoustic Grand Piano (1)  C4-E4-G4 held 1.9 beats, 4 times (polyphony 3)
  track 3 'Bass'    channel 3   Electric Bass (finger)    BASS, 2 beats each: E1-C3, the issue's MIDI 28-48
  track 4 'Drums'   channel 10  (percussion)              kick and hi-hat on every half beat
Track 0 holds only the tempo. The type 0 version has all of it in one track named 'Song'.
"""

import mido

TICKS_PER_BEAT = 480
BEAT_S = 0.5
MELODY = (86, 88, 90, 91, 93, 91, 90, 88)  # MIDI, above the known instrument's 50-86: --transpose auto is -12
CHORD = (60, 64, 67)
BASS = (28, 36, 40, 48)
MELODY_NOTE_BEATS = 0.9


def _note(events, beat, beats, pitch, channel, velocity):
    start, end = int(beat * TICKS_PER_BEAT), int((beat + beats) * TICKS_PER_BEAT)
    events.append((start, mido.Message("note_on", channel=channel, note=pitch, velocity=velocity)))
    events.append((end, mido.Message("note_off", channel=channel, note=pitch)))


def song_parts(names=True):
    """The song's tracks: lists of (absolute tick, message); the first is the tempo track."""
    def named(name):
        return [(0, mido.MetaMessage("track_name", name=name))] if names else []

    tempo = [(0, mido.MetaMessage("set_tempo", tempo=int(BEAT_S * 1e6)))]
    melody = named("Melody") + [(0, mido.Message("program_change", channel=0, program=73))]
    for beat, pitch in enumerate(MELODY):
        _note(melody, beat, MELODY_NOTE_BEATS, pitch, 0, 100)
    chords = named("Chords") + [(0, mido.Message("program_change", channel=1, program=0))]
    for bar in range(4):
        for pitch in CHORD:
            _note(chords, 2 * bar, 1.9, pitch, 1, 70)
    bass = named("Bass") + [(0, mido.Message("program_change", channel=2, program=33))]
    for bar, pitch in enumerate(BASS):
        _note(bass, 2 * bar, 1.9, pitch, 2, 90)
    drums = named("Drums")
    for half in range(16):
        _note(drums, half / 2, 0.2, 36 if half % 2 == 0 else 42, 9, 100)
    return [tempo, melody, chords, bass, drums]


def _track(events):
    track, tick = mido.MidiTrack(), 0
    for at, message in sorted(events, key=lambda event: event[0]):  # stable: note_off before note_on at a tick
        track.append(message.copy(time=at - tick))
        tick = at
    return track


def write_song(path, midi_type=1, names=True):
    """Writes the song as a type 1 (one track per part) or type 0 (one track, a channel per part) file."""
    midi_file = mido.MidiFile(type=midi_type, ticks_per_beat=TICKS_PER_BEAT)
    tracks = song_parts(names)
    if midi_type == 0:
        merged = [(0, mido.MetaMessage("track_name", name="Song"))] + [event for track in tracks for event in track
                                                                         if event[1].type != "track_name"]
        midi_file.tracks.append(_track(merged))
    else:
        midi_file.tracks.extend(_track(events) for events in tracks)
    midi_file.save(str(path))
    return str(path)
