"""MIDI notes to the frame-rate controls a DDSP model plays: f0 in Hz and loudness in dB.

A DDSP solo-instrument model is driven by two curves with one value per frame: the
fundamental frequency `f0_hz` and the (A-weighted) loudness `loudness_db`. This module turns
note events (from a Standard MIDI File, `read_midi`, or the bundled `builtin_melody`) into
those curves, with a small amount of performance shaping (`Expression`): attack and release
envelopes, legato transitions with portamento, delayed vibrato and pitch bends.

    notes, bends = read_midi("tune.mid")
    for f0_hz, loudness_db in render_plan(notes, frame_rate=250, loudness_range_db=(-60.0, -10.0),
                                          bends=bends):
        ...  # run the model on each voice, then mix the voices

The model plays one note at a time, so polyphony is handled by `split_voices` (one
monophonic voice per simultaneously sounding note) and `render_plan` (curves per voice, all
of the same length, for the caller to render and mix).

Shapes of the envelope (all times in seconds, frame i is at time i / frame_rate):
  * attack (a note after silence): the *amplitude* ramps linearly from 0 to the target
    amplitude over `attack_s`; the curve is 20 * log10 of that ramp, floored at `silence_db`.
    A ramp linear in dB would sit near silence for most of the attack and then jump; the
    amplitude ramp is what a player's onset looks like on a level meter.
  * release (after a note not followed legato): linear in dB from the level at the note's
    end down to `silence_db` over `release_s`, i.e. an exponential decay of the amplitude,
    like a real instrument's (and a room's) decay.
  * legato (a note starting when the previous one ends, within `LEGATO_TOLERANCE_S`): no
    release and no new attack; the level moves linearly in dB from the current level to the
    new target over `attack_s`, and f0 glides linearly in MIDI note number (log-frequency)
    from the current pitch to the new one over `glide_s`.
  * a release cut short by the next (detached) note: the two envelopes overlap and the level
    is the larger of the two (the old note's tail, then the new note's attack).
f0 keeps the note's pitch through its release and holds it through the silence that
follows (before the first note it is the first note's pitch): DDSP models are trained on
continuous f0 and misbehave on jumps to 0 Hz.

A song's parts (one per track and channel; pick the melody with `midi_tracks`) come from
`read_parts`; `read_midi` is all its pitched parts at once.

Pure NumPy; `mido` is imported only by the readers.
"""

import bisect
import dataclasses
import math
import os

import numpy as np

# Two event times closer than this are the same time (legato, "ended at or before").
# Tempo conversion of tick times leaves errors of ~1e-12 s; a musical gap is > 1 ms.
LEGATO_TOLERANCE_S = 1e-6

# MIDI channel 10, General MIDI percussion: no pitch to play.
DRUM_CHANNEL = 9

# Vibrato fades in linearly over this long, starting `vibrato_delay_s` after the note start.
VIBRATO_FADE_IN_S = 0.2

# Silence after the last note's release in the default curve length.
TAIL_S = 0.2

__all__ = ["DRUM_CHANNEL", "LEGATO_TOLERANCE_S", "Expression", "MidiError", "Note", "Part", "PitchBend",
           "builtin_melody", "notes_to_curves", "read_midi", "read_parts", "render_plan", "split_voices"]


class MidiError(ValueError):
    """A MIDI file (or a list of notes) that cannot be played; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Note:
    """One note: times in seconds, `pitch` a MIDI note number (69 = A4 = 440 Hz)."""

    start_s: float
    end_s: float
    pitch: int  # MIDI note number, 0-127
    velocity: int  # 1-127 (a note_on with velocity 0 is a note_off)
    channel: int = 0  # 0-15

    def __post_init__(self):
        if not 0 <= self.pitch <= 127:
            raise ValueError(f"Note pitch must be a MIDI note number in 0-127, got {self.pitch}.")
        if not 1 <= self.velocity <= 127:
            raise ValueError(f"Note velocity must be in 1-127, got {self.velocity} (velocity 0 is a note_off).")
        if not 0 <= self.channel <= 15:
            raise ValueError(f"Note channel must be in 0-15, got {self.channel}.")
        if not 0.0 <= self.start_s < self.end_s:
            raise ValueError(f"A note needs 0 <= start_s < end_s, got start_s={self.start_s}, end_s={self.end_s}.")


@dataclasses.dataclass(frozen=True)
class PitchBend:
    """A pitch-wheel position from `time_s` on, already converted to semitones."""

    time_s: float
    semitones: float
    channel: int = 0


@dataclasses.dataclass(frozen=True)
class Expression:
    """How notes are shaped into curves (see the module docstring for the envelope shapes).

    attack_s: onset time after silence (amplitude ramp), and the time of a legato level change.
    release_s: decay to silence after a note's end (linear in dB).
    glide_s: legato portamento time (linear in MIDI note number).
    vibrato_cents: peak vibrato depth in cents (0 = no vibrato).
    vibrato_hz: vibrato rate.
    vibrato_delay_s: vibrato starts this long after each note start, then fades in over 0.2 s.
    velocity_curve: exponent on velocity / 127 before mapping to dB (> 1 makes soft notes softer).
    """

    attack_s: float = 0.03
    release_s: float = 0.12
    glide_s: float = 0.05
    vibrato_cents: float = 0.0
    vibrato_hz: float = 5.0
    vibrato_delay_s: float = 0.3
    velocity_curve: float = 1.0

    def __post_init__(self):
        for name in ("attack_s", "release_s", "glide_s", "vibrato_cents", "vibrato_delay_s"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"Expression.{name} must be >= 0, got {getattr(self, name)}.")
        for name in ("vibrato_hz", "velocity_curve"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"Expression.{name} must be > 0, got {getattr(self, name)}.")


# ------------------------------------------------------------------------------------------
# Reading notes.


def read_midi(path, bend_range_semitones=2.0):
    """Reads the notes and pitch bends of every pitched part of a Standard MIDI File (type 0 or 1).

    All tracks and channels at once, the drum channel (MIDI channel 10, index 9) left out: the
    notes of `read_parts` merged. To list the parts and pick one (the melody of a song), see
    `midi_tracks`.

    Args:
        path: path of the .mid file.
        bend_range_semitones: the synthesizer's pitch-bend range: a full wheel (8192) is this
            many semitones.

    Returns:
        (notes, bends): notes sorted by start time (then pitch), pitch bends sorted by time.

    Raises:
        MidiError: the file is missing, is not a Standard MIDI File, is type 2, or has no
            notes outside the drum channel.
    """
    parts, bends = read_parts(path, bend_range_semitones)
    notes = sorted((note for part in parts if not part.percussion for note in part.notes),
                   key=lambda note: (note.start_s, note.pitch))
    if not notes:
        raise MidiError(f"{os.fspath(path)} has no notes (only drums or none at all): pass a MIDI file with "
                        "melodic notes on a channel other than 10.")
    return notes, [bend for bend in bends if bend.channel != DRUM_CHANNEL]


@dataclasses.dataclass(frozen=True)
class Part:
    """The notes one track of a MIDI file plays on one channel.

    track: the track's index in the file (0-based; a type 0 file has only track 0).
    channel: 0-15 (mido's numbering: MIDI channel 10, the General MIDI drums, is 9).
    track_name: the track's name (its first track_name meta message), or "".
    program: the channel's first program_change in the track (0-127, General MIDI numbering
        minus one), or None.
    notes: tuple of Note on this channel, sorted by start time (then pitch).
    """

    track: int
    channel: int
    track_name: str
    program: int | None
    notes: tuple

    def __post_init__(self):
        if not (self.track >= 0 and 0 <= self.channel <= 15):
            raise ValueError(f"Part needs track >= 0 and channel 0-15, got track {self.track}, channel {self.channel}.")
        if any(note.channel != self.channel for note in self.notes):
            raise ValueError(f"Part on channel {self.channel} holds notes of another channel.")

    @property
    def percussion(self):
        """General MIDI percussion (channel 10): each key is a drum sound, not a pitch."""
        return self.channel == DRUM_CHANNEL


def read_parts(path, bend_range_semitones=2.0):
    """Reads a Standard MIDI File (type 0 or 1) as parts: one per (track, channel) with notes.

    Tempo changes in any track are honoured (tick times become seconds through one tempo map).
    A note_on with velocity 0 is a note_off; a note_on for a key already sounding on the same
    channel of the same track ends the earlier note; notes still sounding at the end of the
    file end there; zero-length notes are dropped. Drum parts (channel 10) are returned too
    (`Part.percussion`), for listing; nothing here plays them. Sustain pedal (CC64) and other
    controllers are not interpreted.

    Args:
        path: path of the .mid file.
        bend_range_semitones: the synthesizer's pitch-bend range: a full wheel (8192) is this
            many semitones.

    Returns:
        (parts, bends): parts sorted by track then channel (only those with notes), and the
        pitch bends of all tracks sorted by time (each with its channel).

    Raises:
        MidiError: the file is missing, is not a Standard MIDI File, or is type 2.
    """
    if not bend_range_semitones > 0:
        raise ValueError(f"bend_range_semitones must be > 0, got {bend_range_semitones}.")
    midi_file = _open_midi(path)
    to_seconds, end_tick = _tempo_map(midi_file)
    end_s = to_seconds(end_tick)
    parts, bends = [], []
    for index, track in enumerate(midi_file.tracks):
        name, programs, notes = "", {}, {}  # notes: channel -> [Note]
        sounding = {}  # (channel, pitch) -> (start_s, velocity)

        def end_note(key, at_s):
            start_s, velocity = sounding.pop(key)
            if at_s - start_s > LEGATO_TOLERANCE_S:
                notes.setdefault(key[0], []).append(Note(start_s, at_s, key[1], velocity, key[0]))

        tick = 0
        for message in track:
            tick += message.time
            if message.type == "track_name" and not name:
                name = message.name.strip()
            if message.is_meta:
                continue
            now = to_seconds(tick)
            if message.type == "note_on" and message.velocity > 0:
                key = (message.channel, message.note)
                if key in sounding:
                    end_note(key, now)
                sounding[key] = (now, message.velocity)
            elif message.type in ("note_on", "note_off"):
                key = (message.channel, message.note)
                if key in sounding:
                    end_note(key, now)
            elif message.type == "program_change":
                programs.setdefault(message.channel, message.program)
            elif message.type == "pitchwheel":
                bends.append(PitchBend(now, message.pitch / 8192.0 * bend_range_semitones, message.channel))
        for key in list(sounding):
            end_note(key, end_s)
        for channel in sorted(notes):
            ordered = tuple(sorted(notes[channel], key=lambda note: (note.start_s, note.pitch)))
            parts.append(Part(index, channel, name, programs.get(channel), ordered))
    bends.sort(key=lambda bend: bend.time_s)
    return parts, bends


def _open_midi(path):
    """The mido.MidiFile at `path` (type 0 or 1), or a MidiError that says what to pass."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise MidiError(f"MIDI file {path} does not exist: check the path.")
    if not os.path.isfile(path):
        raise MidiError(f"MIDI file {path} is not a file (a directory?): pass the path of a .mid file.")
    import mido

    try:
        midi_file = mido.MidiFile(path)
    except Exception as error:  # mido raises OSError, EOFError, ValueError, KeyError, ... on garbage
        raise MidiError(f"{path} is not a Standard MIDI File ({type(error).__name__}: {error}): "
                        "pass a .mid file (type 0 or 1).") from error
    if midi_file.type == 2:
        raise MidiError(f"{path} is a type 2 (asynchronous tracks) MIDI file, which cannot be played "
                        "as one piece: convert it to type 0 or 1.")
    return midi_file


def _tempo_map(midi_file):
    """(ticks -> seconds function, the file's last tick) from the set_tempo messages of all tracks."""
    import mido

    changes, end_tick = [], 0
    for track in midi_file.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "set_tempo":
                changes.append((tick, message.tempo))
        end_tick = max(end_tick, tick)
    ticks, tempos, seconds = [0], [500000], [0.0]  # 120 bpm until the first set_tempo
    for tick, tempo in sorted(changes, key=lambda change: change[0]):  # stable: a later track wins a tie
        seconds.append(seconds[-1] + mido.tick2second(tick - ticks[-1], midi_file.ticks_per_beat, tempos[-1]))
        ticks.append(tick)
        tempos.append(tempo)

    def to_seconds(tick):
        k = bisect.bisect_right(ticks, tick) - 1
        return seconds[k] + mido.tick2second(tick - ticks[k], midi_file.ticks_per_beat, tempos[k])

    return to_seconds, end_tick


def builtin_melody():
    """A short original melody for the clarinet (9 s at 100 bpm, MIDI 55-79), monophonic.

    It has detached notes with rests, legato runs (a note starting exactly when the previous
    one ends), staccato notes, velocities from 40 to 120, and two long held notes, so that a
    demo exercises attacks, releases, legato transitions and sustained tone.

    Returns:
        list of Note sorted by start time, all on channel 0.
    """
    beat_s = 60.0 / 100.0
    # (start, duration) in beats, MIDI pitch, velocity. Beats are halves and quarters, so
    # start + duration is exact and legato neighbours share the same float time.
    phrase = [
        (0.0, 0.5, 62, 64),  # D4, detached: a rest of half a beat follows
        (1.0, 0.5, 67, 72),  # G4, then a legato run up and back
        (1.5, 0.5, 69, 80),
        (2.0, 1.0, 71, 90),
        (3.0, 0.5, 74, 96),
        (3.5, 0.5, 72, 84),
        (4.0, 1.0, 71, 76),  # rest of half a beat
        (5.5, 0.5, 76, 100),
        (6.0, 0.5, 74, 92),
        (6.75, 0.25, 71, 60),  # staccato
        (7.25, 0.25, 67, 56),
        (7.5, 0.5, 69, 68),  # legato climb to the top
        (8.0, 0.5, 71, 80),
        (8.5, 0.5, 72, 90),
        (9.0, 0.5, 76, 110),
        (9.5, 0.5, 78, 120),
        (10.0, 2.0, 79, 104),  # G5 held 1.2 s, rest of half a beat
        (12.5, 0.5, 67, 44),
        (13.0, 2.0, 55, 40),  # low G3 held to the end, pianissimo
    ]
    return [Note(start * beat_s, (start + duration) * beat_s, pitch, velocity)
            for start, duration, pitch, velocity in phrase]


def split_voices(notes):
    """Assigns notes to monophonic voices, so a chord becomes one voice per note.

    Greedy in start time (ties: lower pitch first): a note goes to the first voice whose last
    note ended at or before its start (legato stays in one voice), else to a new voice.

    Args:
        notes: iterable of Note, in any order.

    Returns:
        list of voices, each a list of Note sorted by start time, none overlapping.
    """
    voices = []
    for note in sorted(notes, key=lambda note: (note.start_s, note.pitch)):
        for voice in voices:
            if voice[-1].end_s <= note.start_s + LEGATO_TOLERANCE_S:
                voice.append(note)
                break
        else:
            voices.append([note])
    return voices


# ------------------------------------------------------------------------------------------
# Curves.


def _check_range(frame_rate, loudness_range_db, silence_db):
    if not frame_rate > 0:
        raise ValueError(f"frame_rate must be > 0 frames per second, got {frame_rate}.")
    low_db, high_db = (float(x) for x in loudness_range_db)
    if not low_db < high_db:
        raise ValueError(f"loudness_range_db must be (low_db, high_db) with low_db < high_db "
                         f"(loudness in dB is in [-80, 0] here), got {tuple(loudness_range_db)}.")
    if not silence_db <= low_db:
        raise ValueError(f"silence_db ({silence_db}) must be <= the low end of loudness_range_db ({low_db}).")
    return low_db, high_db


def _default_n_frames(notes, frame_rate, expression):
    end_s = max(note.end_s for note in notes) + expression.release_s + TAIL_S
    return max(1, int(math.ceil(end_s * frame_rate - 1e-9)))


def _bend_semitones(t, bends, channel):
    """Step function of the pitch bends on `channel` at times t [n] (0 before the first)."""
    on_channel = sorted((bend for bend in bends if bend.channel == channel), key=lambda bend: bend.time_s)
    if not on_channel:
        return np.zeros_like(t)
    times = np.array([bend.time_s for bend in on_channel])
    values = np.array([bend.semitones for bend in on_channel])
    index = np.searchsorted(times, t + LEGATO_TOLERANCE_S, side="right") - 1  # [n]
    return np.where(index >= 0, values[np.maximum(index, 0)], 0.0)


def notes_to_curves(notes, frame_rate, loudness_range_db, n_frames=None, expression=Expression(),
                    bends=(), silence_db=-80.0):
    """f0 and loudness curves for ONE monophonic voice (see the module docstring for shapes).

    Args:
        notes: iterable of Note, not overlapping (use `split_voices` or `render_plan` for
            chords); any order.
        frame_rate: frames per second; frame i is at time i / frame_rate.
        loudness_range_db: (low_db, high_db), low_db < high_db (A-weighted loudness of
            loud notes can exceed 0 dB): velocity v maps to
            low_db + (high_db - low_db) * (v / 127) ** expression.velocity_curve.
        n_frames: length of the curves; default: the last note's end plus the release plus
            0.2 s. Shorter curves cut the notes off.
        expression: Expression (envelopes, glide, vibrato, velocity curve).
        bends: iterable of PitchBend; those on a note's channel are added (as a step function
            of time, in semitones) while that note owns the pitch.
        silence_db: level between notes, <= low_db.

    Returns:
        (f0_hz, loudness_db): fundamental frequency in Hz and loudness in dB, each
        float32 [n_frames].

    Raises:
        MidiError: no notes.
        ValueError: overlapping notes, or a bad frame rate / loudness range / n_frames.
    """
    notes = sorted(notes, key=lambda note: (note.start_s, note.pitch))
    if not notes:
        raise MidiError("notes_to_curves got no notes: pass at least one Note (from read_midi, "
                        "builtin_melody or your own).")
    low_db, high_db = _check_range(frame_rate, loudness_range_db, silence_db)
    for previous, note in zip(notes, notes[1:]):
        if note.start_s < previous.end_s - LEGATO_TOLERANCE_S:
            raise ValueError(f"notes_to_curves plays one monophonic voice, but {note} starts before {previous} "
                             "ends: split the notes with split_voices(notes) and render each voice, or use "
                             "render_plan(...).")
    if n_frames is None:
        n_frames = _default_n_frames(notes, frame_rate, expression)
    if int(n_frames) != n_frames or n_frames < 1:
        raise ValueError(f"n_frames must be a positive integer, got {n_frames}.")

    t = np.arange(int(n_frames), dtype=np.float64) / frame_rate  # [n_frames] seconds
    # legato[k]: note k continues note k - 1 without a release or a new attack.
    legato = [False] + [abs(note.start_s - previous.end_s) <= LEGATO_TOLERANCE_S
                        for previous, note in zip(notes, notes[1:])]
    targets = [low_db + (high_db - low_db) * (note.velocity / 127.0) ** expression.velocity_curve for note in notes]
    loudness_db = _loudness(t, notes, targets, legato, expression, silence_db)
    midi = _pitch(t, notes, legato, expression, bends)
    f0_hz = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    return f0_hz.astype(np.float32), loudness_db.astype(np.float32)


def _loudness(t, notes, targets, legato, expression, silence_db):
    """Loudness in dB at times t [n] for sorted, non-overlapping notes."""
    attack_s, release_s = expression.attack_s, expression.release_s
    out = np.full(t.shape, silence_db)  # [n]
    level_from = silence_db  # level at the start of a legato note
    for k, note in enumerate(notes):
        target = targets[k]
        if legato[k]:
            def level(tt, start=note.start_s, target=target, level_from=level_from):
                frac = np.clip((np.asarray(tt) - start) / attack_s, 0.0, 1.0) if attack_s > 0 else 1.0
                return level_from + (target - level_from) * frac  # linear in dB
        else:
            def level(tt, start=note.start_s, target=target):
                if attack_s <= 0:
                    return np.full(np.shape(tt), target)
                frac = np.clip((np.asarray(tt) - start) / attack_s, 0.0, 1.0)
                amplitude = frac * 10.0 ** (target / 20.0)  # linear in amplitude
                return np.maximum(20.0 * np.log10(np.maximum(amplitude, 1e-12)), silence_db)

        last_of_phrase = k + 1 == len(notes) or not legato[k + 1]
        if last_of_phrase:
            during = (t >= note.start_s) & (t <= note.end_s)
        else:
            during = (t >= note.start_s) & (t < notes[k + 1].start_s)
        out[during] = np.maximum(out[during], level(t[during]))
        if last_of_phrase:
            level_end = float(level(note.end_s))
            after = (t > note.end_s) & (t < note.end_s + release_s)
            frac = (t[after] - note.end_s) / release_s  # empty when release_s == 0
            out[after] = np.maximum(out[after], level_end + (silence_db - level_end) * frac)  # linear in dB
        else:
            level_from = float(level(notes[k + 1].start_s))
    return out


def _pitch(t, notes, legato, expression, bends):
    """MIDI note number (fractional: glides, vibrato, bends) at times t [n]."""
    starts = np.array([note.start_s for note in notes])
    # The note that owns each frame: the last one started (the first one before it starts).
    owner = np.maximum(np.searchsorted(starts, t + LEGATO_TOLERANCE_S, side="right") - 1, 0)  # [n]
    midi = np.empty_like(t)
    channel = np.empty(t.shape, dtype=np.int64)
    vibrato_s = expression.vibrato_delay_s
    pitch_from = float(notes[0].pitch)  # pitch at the start of a legato note
    for k, note in enumerate(notes):
        owned = owner == k
        tt = t[owned]
        if legato[k] and expression.glide_s > 0:
            frac = np.clip((tt - note.start_s) / expression.glide_s, 0.0, 1.0)
            midi[owned] = pitch_from + (note.pitch - pitch_from) * frac  # linear in MIDI
        else:
            midi[owned] = note.pitch
        if expression.vibrato_cents > 0:
            since = tt - note.start_s
            fade = np.clip((since - vibrato_s) / VIBRATO_FADE_IN_S, 0.0, 1.0)
            fade = np.where(tt < note.end_s + expression.release_s, fade, 0.0)
            midi[owned] += expression.vibrato_cents / 100.0 * fade * np.sin(2 * np.pi * expression.vibrato_hz * since)
        channel[owned] = note.channel
        if k + 1 < len(notes):  # the pitch (without vibrato) where the next note starts
            frac = (notes[k + 1].start_s - note.start_s) / expression.glide_s if expression.glide_s > 0 else 1.0
            glided = legato[k] and expression.glide_s > 0
            pitch_from = pitch_from + (note.pitch - pitch_from) * min(frac, 1.0) if glided else float(note.pitch)
    for c in np.unique(channel):
        on_channel = channel == c
        midi[on_channel] += _bend_semitones(t[on_channel], bends, int(c))
    return midi


def render_plan(notes, frame_rate, loudness_range_db, expression=Expression(), bends=(), silence_db=-80.0):
    """Curves for every voice of possibly polyphonic notes, all of the same length.

    `split_voices` assigns the notes to monophonic voices; each voice becomes (f0_hz,
    loudness_db) with `notes_to_curves`, over the frames needed by the longest voice. The
    caller renders each voice with the model and mixes the audio.

    Args:
        notes: iterable of Note (chords allowed).
        frame_rate, loudness_range_db, expression, bends, silence_db: as in `notes_to_curves`.

    Returns:
        list with one (f0_hz, loudness_db) per voice, each float32 [n_frames].

    Raises:
        MidiError: no notes.
    """
    notes = list(notes)
    if not notes:
        raise MidiError("render_plan got no notes: pass at least one Note (from read_midi, "
                        "builtin_melody or your own).")
    _check_range(frame_rate, loudness_range_db, silence_db)
    n_frames = _default_n_frames(notes, frame_rate, expression)
    return [notes_to_curves(voice, frame_rate, loudness_range_db, n_frames=n_frames, expression=expression,
                            bends=bends, silence_db=silence_db)
            for voice in split_voices(notes)]
