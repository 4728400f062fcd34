"""ddsp_play end to end on a known instrument (tests/playing/conftest.py): modes, outputs, bad input."""

import os

import mido
import numpy as np
import pytest
import soundfile

from ddsp_core.playing import ddsp_play
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
    return {
        "not_audio": (["--audio", str(text)], "not a readable audio file"),
        "silence": (["--audio", str(silent)], "silent"),
        "no_voiced_frames": (["--audio", str(noise)], "No voiced frame"),
        "midi_not_midi": (["--midi", str(text)], "not a Standard MIDI File"),
        "midi_without_notes": (["--midi", str(tmp_path / "empty.mid")], "no notes"),
        "pitch_out_of_range": (["--midi", high], "outside the instrument's range"),
        "no_checkpoint": (["--model", str(no_checkpoint)], "no checkpoint"),
        "no_such_model": (["--model", str(tmp_path / "nowhere")], "does not exist"),
    }


@pytest.mark.parametrize("case", ["not_audio", "silence", "no_voiced_frames", "midi_not_midi",
                                  "midi_without_notes", "pitch_out_of_range", "no_checkpoint", "no_such_model"])
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
