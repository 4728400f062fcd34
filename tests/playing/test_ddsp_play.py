"""ddsp_play end to end on a known instrument (tests/playing/conftest.py): modes, outputs, bad input."""

import os

import mido
import numpy as np
import pytest
import soundfile

from ddsp_core.playing import ddsp_play
from tests.playing import midi_songs
from tests.playing.conftest import SAMPLE_RATE


def _peak_hz(audio, sample_rate=SAMPLE_RATE):
    window = audio * np.hanning(audio.size)
    spectrum = np.abs(np.fft.rfft(window))
    return np.argmax(spectrum) * sample_rate / audio.size, spectrum


def _write_midi(path, notes, ticks_per_beat=480):
    """notes: (pitch, start_beat, end_beat, velocity); tempo 120 bpm (0.5 s per beat)."""
    midi = mido.MidiFile(ticks_per_beat=ticks_per_beat)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    events = []
    for pitch, start, end, velocity in notes:
        events.append((int(start * ticks_per_beat), "note_on", pitch, velocity))
        events.append((int(end * ticks_per_beat), "note_off", pitch, 0))
    now = 0
    for tick, kind, pitch, velocity in sorted(events, key=lambda e: (e[0], e[1] == "note_on")):
        track.append(mido.Message(kind, note=pitch, velocity=velocity, time=tick - now))
        now = tick
    midi.save(path)
    return path


def test_builtin_melody(known_instrument_dir, tmp_path):
    output = tmp_path / "melody.wav"
    assert ddsp_play.main(["--model", str(known_instrument_dir), "--output", str(output)]) == 0
    audio, rate = soundfile.read(output)
    assert rate == SAMPLE_RATE and 8.0 < audio.size / rate < 11.0
    assert (tmp_path / "melody.png").stat().st_size > 10_000


def test_midi_note_and_chord(known_instrument_dir, tmp_path):
    """A4 alone peaks at 440 Hz; A4 + E5 together give both peaks (one voice per note, mixed)."""
    midi = _write_midi(str(tmp_path / "chord.mid"), [(69, 0, 2, 100), (69, 3, 5, 100), (76, 3, 5, 100)])
    output = tmp_path / "chord.wav"
    assert ddsp_play.main(["--model", str(known_instrument_dir), "--midi", midi, "--output", str(output),
                           "--no_plot"]) == 0
    assert not (tmp_path / "chord.png").exists()
    audio, _ = soundfile.read(output)
    single, _ = _peak_hz(audio[int(0.2 * SAMPLE_RATE):int(0.9 * SAMPLE_RATE)])
    assert abs(single - 440.0) < 3.0
    _, spectrum = _peak_hz(audio[int(1.7 * SAMPLE_RATE):int(2.4 * SAMPLE_RATE)])
    bins = np.fft.rfftfreq(int(0.7 * SAMPLE_RATE), 1 / SAMPLE_RATE)
    top_two = sorted(bins[np.argsort(spectrum)[-40:]])
    assert any(abs(f - 440.0) < 3 for f in top_two) and any(abs(f - 659.26) < 3 for f in top_two)
    # (This instrument ignores the level: silence between notes is a trained model's property,
    # measured by benchmarks/bench_play.py.)


def test_timbre_transfer(known_instrument_dir, tmp_path):
    """A stereo 44.1 kHz recording of a 440 Hz tone -> the instrument's tone at 440 Hz, at 16 kHz."""
    t = np.arange(int(1.5 * 44100)) / 44100
    tone = 0.3 * np.sin(2 * np.pi * 440.0 * t) * np.minimum(1.0, t / 0.05)
    recording = tmp_path / "tone.flac"
    soundfile.write(recording, np.stack([tone, tone], axis=1), 44100)
    output = tmp_path / "transfer.wav"
    assert ddsp_play.main(["--model", str(known_instrument_dir), "--audio", str(recording), "--output",
                           str(output), "--crepe_capacity", "tiny"]) == 0
    audio, rate = soundfile.read(output)
    assert rate == SAMPLE_RATE and abs(audio.size - 1.5 * SAMPLE_RATE) <= 2 * 64
    peak, _ = _peak_hz(audio[int(0.3 * SAMPLE_RATE):int(1.2 * SAMPLE_RATE)])
    assert abs(peak - 440.0) < 3.0
    assert (tmp_path / "transfer.png").exists()


def _bad_inputs(tmp_path, known_instrument_dir):
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    silent = tmp_path / "silent.wav"
    soundfile.write(silent, np.zeros(16000), 16000)
    noise = tmp_path / "noise.wav"
    soundfile.write(noise, np.random.default_rng(0).uniform(-0.5, 0.5, 16000), 16000)
    empty_midi = mido.MidiFile()
    empty_midi.tracks.append(mido.MidiTrack())
    empty_midi.save(tmp_path / "empty.mid")
    high = _write_midi(str(tmp_path / "high.mid"), [(110, 0, 1, 100)])
    no_checkpoint = tmp_path / "empty_run"
    no_checkpoint.mkdir()
    song = midi_songs.write_song(tmp_path / "song.mid")
    return {
        "not_audio": (["--audio", str(text)], "not a readable audio file"),
        "silence": (["--audio", str(silent)], "silent"),
        "no_voiced_frames": (["--audio", str(noise)], "No voiced frame"),
        "midi_not_midi": (["--midi", str(text)], "not a Standard MIDI File"),
        "midi_without_notes": (["--midi", str(tmp_path / "empty.mid")], "no notes"),
        "pitch_out_of_range": (["--midi", high], "outside the instrument's range"),
        "no_checkpoint": (["--model", str(no_checkpoint)], "no checkpoint"),
        "no_such_model": (["--model", str(tmp_path / "nowhere")], "does not exist"),
        "midi_drum_channel": (["--midi", song, "--channel", "10"], "Channel 10 of"),
        "midi_drum_track": (["--midi", song, "--track", "Drums"], "has only percussion"),
        "midi_no_such_track": (["--midi", song, "--track", "Violin"], "No track is named 'Violin'"),
        "melody_out_of_range": (["--midi", song], "Or pass --transpose auto"),
        "wider_than_range": (["--midi", _write_midi(str(tmp_path / "wide.mid"), [(30, 0, 1, 90), (100, 1, 2, 90)]),
                              "--transpose", "auto"], "the best whole-octave fit, but the line spans 70 semitones"),
        "track_without_midi": (["--track", "1"], "--list, --track and --channel read a MIDI file"),
        "transpose_audio": (["--audio", str(silent), "--transpose", "auto"], "--transpose is for MIDI"),
        "transpose_not_a_number": (["--midi", song, "--transpose", "up"], "'auto' or whole semitones"),
        "bend_range_zero": (["--midi", song, "--bend_range", "0"], "a number of semitones > 0"),
    }


@pytest.mark.parametrize("case", ["not_audio", "silence", "no_voiced_frames", "midi_not_midi",
                                  "midi_without_notes", "pitch_out_of_range", "no_checkpoint", "no_such_model",
                                  "midi_drum_channel", "midi_drum_track", "midi_no_such_track", "melody_out_of_range",
                                  "wider_than_range", "track_without_midi", "transpose_audio",
                                  "transpose_not_a_number", "bend_range_zero"])
def test_bad_input(case, known_instrument_dir, tmp_path, capsys):
    arguments, message = _bad_inputs(tmp_path, known_instrument_dir)[case]
    output = tmp_path / "out" / "result.wav"
    model = [] if "--model" in arguments else ["--model", str(known_instrument_dir)]
    status = ddsp_play.main([*model, *arguments, "--output", str(output), "--crepe_capacity", "tiny"])
    assert status == 2
    assert message in capsys.readouterr().err
    leftovers = os.listdir(output.parent) if output.parent.exists() else []
    assert leftovers == []


def test_long_input_in_chunks(known_instrument_dir, tmp_path):
    """10 minutes of MIDI render in bounded blocks (a 2 s block at a time) without seams."""
    from ddsp_core.playing import play
    from ddsp_core.playing.instrument import load_instrument
    from ddsp_core.playing.midi import Note

    instrument = load_instrument(str(known_instrument_dir))
    notes = [Note(start_s=float(i), end_s=float(i) + 0.98 if i % 2 else float(i) + 1.0, pitch=69, velocity=100)
             for i in range(600)]
    performance = play.play_midi(instrument, notes, chunk_seconds=2.0)
    audio = performance.audio
    assert audio.size >= 600 * SAMPLE_RATE
    # Inside a held note across a block boundary (t = 2 s: legato 1 s -> 2 s) the level does not jump.
    envelope = np.abs(audio[int(1.9 * SAMPLE_RATE):int(2.1 * SAMPLE_RATE)])
    frames = envelope.reshape(-1, 160).max(axis=1)
    assert frames.min() > 0.5 * frames.max()


# ------------------------------------------------------------------------------------------
# Songs: several tracks and channels (tests/playing/midi_songs.py).


def test_list_prints_the_parts_without_a_model(tmp_path, capsys):
    song = midi_songs.write_song(tmp_path / "song.mid")
    assert ddsp_play.main(["--midi", song, "--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{song}: 4 parts (track, channel) with notes"
    assert [line.split()[:3] for line in out[2:6]] == [["1", "Melody", "1"], ["2", "Chords", "2"], ["3", "Bass", "3"],
                                                        ["4", "Drums", "10"]]
    assert "channel 10 (percussion) is never played" in out[6]
    assert sorted(os.listdir(tmp_path)) == ["song.mid"]


def test_melody_of_a_song_plays_in_tune(known_instrument_dir, tmp_path, capsys):
    """One command plays the melody track of melody + chords + bass + drums, an octave down into the
    instrument's range: CREPE on the output reads each note's pitch within 20 cents at its middle,
    and nothing of the chords (C4 E4 G4) or the bass sounds."""
    from ddsp_core import spectral_ops

    song = midi_songs.write_song(tmp_path / "song.mid")
    output = tmp_path / "melody.wav"
    assert ddsp_play.main(["--model", str(known_instrument_dir), "--midi", song, "--track", "Melody",
                           "--transpose", "auto", "--output", str(output), "--no_plot"]) == 0
    out = capsys.readouterr().out
    assert f"Playing track 1 'Melody' (channel 1) of {song} (picked with --track Melody)." in out
    assert "--transpose auto: -12 semitones (the line's MIDI 86-93 -> 74-81" in out
    audio, rate = soundfile.read(output, dtype="float32")
    frame_rate = 100
    f0_hz, confidence = spectral_ops.compute_f0(audio, frame_rate, capacity="tiny")
    errors = []
    for beat, pitch in enumerate(midi_songs.MELODY):
        middle = int(round((beat + midi_songs.MELODY_NOTE_BEATS / 2) * midi_songs.BEAT_S * frame_rate))
        expected_hz = 440.0 * 2 ** ((pitch - 12 - 69) / 12)
        errors.append(1200 * abs(np.log2(f0_hz[middle] / expected_hz)))
        assert confidence[middle] > 0.8
    assert max(errors) < 20.0, errors
    # The first note alone: D5 at 587.3 Hz; the chord's and the bass's fundamentals 60 dB or more below it.
    segment = audio[int(0.1 * rate):int(0.4 * rate)]
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(segment.size)))
    bins = np.fft.rfftfreq(segment.size, 1 / rate)
    peak = spectrum.max()
    assert abs(bins[np.argmax(spectrum)] - 587.33) < 5.0
    for hz in (261.63, 329.63, 392.0, 41.2):  # C4 E4 G4, E1
        near = spectrum[np.abs(bins - hz) < 5.0].max()
        assert 20 * np.log10(near / peak) < -60.0, hz


def test_type_0_song_plays_its_melody_by_default(known_instrument_dir, tmp_path, capsys):
    """One track, four channels, no pick: the melody channel plays (said, with the parts listed)."""
    song = midi_songs.write_song(tmp_path / "song0.mid", midi_type=0)
    output = tmp_path / "song0.wav"
    assert ddsp_play.main(["--model", str(known_instrument_dir), "--midi", song, "--transpose", "auto",
                           "--output", str(output), "--no_plot"]) == 0
    out = capsys.readouterr().out
    assert f"Playing track 0 'Song' (channel 1) of {song} (the likeliest melody of its 3 pitched parts" in out
    rows = [line.split()[:3] for line in out.splitlines()[2:6]]
    assert rows == [["0", "Song", "1"], ["0", "Song", "2"], ["0", "Song", "3"], ["0", "Song", "10"]]
    audio, _ = soundfile.read(output)
    peak, _ = _peak_hz(audio[int(0.1 * SAMPLE_RATE):int(0.4 * SAMPLE_RATE)])
    assert abs(peak - 587.33) < 5.0


@pytest.mark.slow  # 5 s; top_line itself is tested in test_midi_tracks.py
def test_chords_with_polyphony_top_play_the_top_note(known_instrument_dir, tmp_path, capsys):
    song = midi_songs.write_song(tmp_path / "song.mid")
    output = tmp_path / "chords.wav"
    assert ddsp_play.main(["--model", str(known_instrument_dir), "--midi", song, "--channel", "2",
                           "--polyphony", "top", "--output", str(output), "--no_plot"]) == 0
    assert "up to 3 notes at once; --polyphony top plays the highest note only (4 notes" in capsys.readouterr().out
    audio, _ = soundfile.read(output)
    segment = audio[int(0.2 * SAMPLE_RATE):int(0.8 * SAMPLE_RATE)]
    peak, spectrum = _peak_hz(segment)
    assert abs(peak - 392.0) < 3.0  # G4 alone
    bins = np.fft.rfftfreq(segment.size, 1 / SAMPLE_RATE)
    assert spectrum[np.abs(bins - 261.63) < 3.0].max() < 1e-3 * spectrum.max()  # no C4
