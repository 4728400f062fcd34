"""Songs as people find them: list a MIDI file's parts and pick the line an instrument plays.

A General MIDI song has several parts (melody, accompaniment, bass, drums on channel 10), in
several tracks (type 1) or on several channels of one track (type 0). A DDSP instrument plays
one line, so `ddsp_play` lists the parts and plays the one picked:

    parts, bends = midi.read_parts("song.mid")          # one Part per (track, channel) with notes
    print(parts_table(parts, "song.mid"))               # --list
    picked = select(parts, bends, track="Melody")       # --track NAME|N, --channel N (1-16)
    notes = top_line(picked.notes)                      # --polyphony top: the highest note only

Rules:
  * Percussion (channel 10) is never played as pitches: `select` leaves it out of every pick
    and refuses a pick that has nothing else.
  * No --track/--channel: a file with one pitched part plays it; with several, `select` picks
    the likeliest melody (`melody_part`: a part named like one, else the mostly monophonic part
    with the highest median pitch) and says so.
  * `polyphony` is the most notes sounding at once. A polyphonic pick plays one voice per
    simultaneous note (mixed), or with `top_line` its highest note at each moment.

Pure Python and NumPy; reading is `midi.read_parts`.
"""

import dataclasses

import numpy as np

from ddsp_core.playing.midi import DRUM_CHANNEL, LEGATO_TOLERANCE_S, MidiError

__all__ = ["GM_PROGRAMS", "Selection", "melody_part", "monophonic_share", "note_name", "parts_table", "polyphony",
           "select", "top_line"]

# General MIDI Level 1 program names, by program number 0-127 (shown 1-128).
GM_PROGRAMS = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano",
    "Electric Piano 1", "Electric Piano 2", "Harpsichord", "Clavinet",
    "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba", "Xylophone", "Tubular Bells", "Dulcimer",
    "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ", "Reed Organ", "Accordion", "Harmonica",
    "Tango Accordion",
    "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)", "Electric Guitar (jazz)", "Electric Guitar (clean)",
    "Electric Guitar (muted)", "Overdriven Guitar", "Distortion Guitar", "Guitar Harmonics",
    "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)", "Fretless Bass", "Slap Bass 1",
    "Slap Bass 2", "Synth Bass 1", "Synth Bass 2",
    "Violin", "Viola", "Cello", "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani",
    "String Ensemble 1", "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs",
    "Synth Voice", "Orchestra Hit",
    "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1", "Synth Brass 2",
    "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon", "Clarinet",
    "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)",
    "Pad 1 (new age)", "Pad 2 (warm)", "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)",
    "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)",
    "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe", "Fiddle", "Shanai",
    "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom", "Synth Drum", "Reverse Cymbal",
    "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet", "Telephone Ring", "Helicopter", "Applause",
    "Gunshot",
)
assert len(GM_PROGRAMS) == 128

# Words in a track's name that mark the melody (lower case; matched as substrings).
MELODY_WORDS = ("melody", "lead", "vocal", "voice", "solo", "tune", "theme", "sing")
# A part is "mostly monophonic" when one note sounds alone for at least this share of its sounding time.
MONOPHONIC_SHARE = 0.9

NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def note_name(pitch):
    """Scientific pitch name of a MIDI note number: 60 -> 'C4', 69 -> 'A4'."""
    return f"{NOTE_NAMES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


def _counts(notes):
    """(times [m], notes sounding from times[k] to times[k + 1] [m - 1]) of a sweep over the notes."""
    # An end within LEGATO_TOLERANCE_S of a start comes before it: legato notes do not overlap.
    events = sorted([(note.start_s, 1) for note in notes] + [(note.end_s - LEGATO_TOLERANCE_S, -1) for note in notes])
    times = np.array([time for time, _ in events])
    counts = np.cumsum([step for _, step in events])[:-1]
    return times, counts


def polyphony(notes):
    """The most notes sounding at once (0 for no notes; legato neighbours do not overlap)."""
    if not notes:
        return 0
    return int(max(_counts(notes)[1].max(initial=0), 1))


def monophonic_share(notes):
    """Share of the sounding time (any note on) during which exactly one note sounds, in [0, 1]."""
    if not notes:
        return 0.0
    times, counts = _counts(notes)
    durations = np.diff(times)
    sounding = durations[counts >= 1].sum()
    return float(durations[counts == 1].sum() / sounding) if sounding > 0 else 1.0


def _program_text(part):
    if part.percussion:
        return "percussion"
    if part.program is None:
        return "-"
    return f"{part.program + 1} {GM_PROGRAMS[part.program]}"


def _range_text(part):
    if part.percussion:
        return "(drums)"
    pitches = [note.pitch for note in part.notes]
    low, high = min(pitches), max(pitches)
    return f"{note_name(low)}-{note_name(high)} ({low}-{high})"


def parts_table(parts, path=""):
    """The parts as a text table: track, name, channel (1-16), program, notes, pitch range, polyphony."""
    header = ("track", "name", "channel", "program", "notes", "range", "polyphony")
    rows = [(str(part.track), part.track_name or "-", str(part.channel + 1), _program_text(part),
             str(len(part.notes)), _range_text(part), "-" if part.percussion else str(polyphony(part.notes)))
            for part in parts]
    widths = [max(len(row[k]) for row in [header, *rows]) for k in range(len(header))]
    numeric = {0, 2, 4, 6}
    lines = ["  ".join(cell.rjust(width) if k in numeric else cell.ljust(width)
                       for k, (cell, width) in enumerate(zip(row, widths))).rstrip()
             for row in [header, *rows]]
    title = f"{path}: {len(parts)} parts (track, channel) with notes" if path else f"{len(parts)} parts"
    return "\n".join([title, *lines])


@dataclasses.dataclass(frozen=True)
class Selection:
    """The notes picked to play, and what they are.

    notes: tuple of Note (no percussion), sorted by start time then pitch.
    bends: tuple of PitchBend on the picked parts' channels.
    parts: the picked parts (tuple of midi.Part).
    description: the pick in words, e.g. "track 1 'Melody' (channel 1)".
    reason: why these parts ("picked with --track 1", "the likeliest melody of its 3 pitched parts ...").
    """

    notes: tuple
    bends: tuple
    parts: tuple
    description: str
    reason: str

    @property
    def polyphony(self):
        return polyphony(self.notes)


def _describe(parts):
    tracks = sorted({part.track for part in parts})
    channels = ", ".join(str(channel + 1) for channel in sorted({part.channel for part in parts}))
    plural = "s" if "," in channels else ""
    if len(tracks) == 1:
        name = parts[0].track_name
        return f"track {tracks[0]}{f' {name!r}' if name else ''} (channel{plural} {channels})"
    return f"tracks {', '.join(map(str, tracks))} (channel{plural} {channels})"


def _asked(track, channel):
    what = " and ".join(filter(None, [f"track {track}" if track is not None else "",
                                      f"channel {channel}" if channel is not None else ""]))
    return what[0].upper() + what[1:]


def melody_part(parts):
    """The likeliest melody among pitched parts: a part whose track is named like a melody
    (MELODY_WORDS), then a mostly monophonic one (MONOPHONIC_SHARE), then the highest median
    pitch, then the most notes. A heuristic: --list shows what else there is."""
    def score(part):
        named = any(word in part.track_name.lower() for word in MELODY_WORDS)
        return (named, monophonic_share(part.notes) >= MONOPHONIC_SHARE,
                float(np.median([note.pitch for note in part.notes])), len(part.notes))

    return max(parts, key=score)


def _match_track(parts, track, hint):
    """The parts of the track named or numbered `track` (a string as typed, or an int)."""
    text = str(track).strip()
    if text.isdigit():
        found = [part for part in parts if part.track == int(text)]
        if not found:
            raise MidiError(f"There is no track {text} with notes. {hint}")
        return found
    names = {part.track_name for part in parts if part.track_name}
    exact = [name for name in names if name.lower() == text.lower()]
    matches = exact or sorted(name for name in names if text.lower() in name.lower())
    if not matches:
        raise MidiError(f"No track is named {text!r} (names: {', '.join(sorted(map(repr, names))) or 'none'}). "
                        f"{hint}")
    if len(matches) > 1:
        raise MidiError(f"--track {text!r} matches several tracks: {', '.join(map(repr, matches))}: give the whole "
                        f"name or the track's number. {hint}")
    return [part for part in parts if part.track_name == matches[0]]


def select(parts, bends=(), track=None, channel=None, path="the MIDI file"):
    """Picks the parts to play.

    Args:
        parts: list of midi.Part (from `midi.read_parts`), drum parts included.
        bends: iterable of midi.PitchBend; those on the picked channels are kept.
        track: None, 'all' (every pitched part together), a track number as in `parts_table`
            (int or digits) or a track name (case-insensitive; a unique part of a name is enough).
        channel: None or a MIDI channel 1-16 as in `parts_table` (10 is percussion).
        path: the file, for messages.

    Returns:
        A `Selection`.

    Raises:
        MidiError: nothing pitched in the file or in the pick, channel 10 picked, no such track or
            channel, a name that matches several tracks.
    """
    hint = f"Run ddsp_play --midi {path} --list to see the parts."
    pitched = [part for part in parts if not part.percussion]
    if not pitched:
        raise MidiError(f"{path} has no notes (only drums or none at all): pass a MIDI file with melodic notes "
                        "on a channel other than 10.")
    if channel is not None and not 1 <= int(channel) <= 16:
        raise MidiError(f"--channel must be a MIDI channel 1-16, got {channel}.")
    if channel is not None and int(channel) - 1 == DRUM_CHANNEL:
        raise MidiError(f"Channel 10 of {path} is General MIDI percussion: its keys are drum sounds, not pitches, "
                        f"so it is never played. Pick another --channel or a --track. {hint}")

    if track is None and channel is None:
        if len(pitched) == 1:
            picked, reason = pitched, "its only pitched part"
        else:
            picked = [melody_part(pitched)]
            reason = (f"the likeliest melody of its {len(pitched)} pitched parts (none picked: --list shows them, "
                      "--track/--channel pick another, --track all plays them all)")
    else:
        picked = pitched if track is None or str(track).strip().lower() == "all" else _match_track(parts, track, hint)
        if channel is not None:
            picked = [part for part in picked if part.channel == int(channel) - 1]
        reason = "picked with " + " and ".join(filter(None, [f"--track {track}" if track is not None else "",
                                                               f"--channel {channel}" if channel is not None else ""]))
        if not picked:
            raise MidiError(f"{_asked(track, channel)} of {path} has no notes. {hint}")
        if all(part.percussion for part in picked):
            raise MidiError(f"{_describe(picked)[0].upper()}{_describe(picked)[1:]} of {path} has only percussion "
                            f"(channel 10), which is never played as pitches. Pick another part. {hint}")
        picked = [part for part in picked if not part.percussion]
    notes = tuple(sorted((note for part in picked for note in part.notes), key=lambda note: (note.start_s, note.pitch)))
    channels = {part.channel for part in picked}
    kept_bends = tuple(bend for bend in bends if bend.channel in channels)
    return Selection(notes, kept_bends, tuple(picked), _describe(picked), reason)


def top_line(notes):
    """The highest sounding note at each moment, as a monophonic line.

    Where a higher note ends while a lower one still sounds, the lower one comes back (as a
    legato continuation, with its own velocity) for the rest of its length.

    Args:
        notes: iterable of Note (chords allowed).

    Returns:
        list of Note, sorted and not overlapping (legato where one hands over to the next).
    """
    notes = sorted(notes, key=lambda note: (note.start_s, note.pitch))
    if not notes:
        return []
    starts = np.array([note.start_s for note in notes])
    ends = np.array([note.end_s for note in notes])
    pitches = np.array([note.pitch for note in notes])
    times = np.unique(np.concatenate([starts, ends]))  # [m] every boundary
    line = []  # [owner note index, start_s, end_s]
    for begin, end in zip(times[:-1], times[1:]):
        if end - begin <= LEGATO_TOLERANCE_S:
            continue
        middle = 0.5 * (begin + end)
        sounding = np.flatnonzero((starts <= middle) & (ends > middle))
        if not sounding.size:
            continue
        owner = int(sounding[np.argmax(pitches[sounding])])
        if line and line[-1][0] == owner and abs(line[-1][2] - begin) <= LEGATO_TOLERANCE_S:
            line[-1][2] = float(end)
        else:
            line.append([owner, float(begin), float(end)])
    return [dataclasses.replace(notes[owner], start_s=begin, end_s=end) for owner, begin, end in line]
