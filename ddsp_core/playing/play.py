"""Playing a trained instrument: from MIDI notes, or from a recording (timbre transfer).

    play_midi(instrument, notes)            notes -> f0/level curves per voice -> audio (voices mixed)
    play_recording(instrument, path)        recording -> adjusted features -> audio
    write_outputs(...)                      the WAV (and a PNG of spectrograms and curves), whole or not at all

Rendering goes through `streaming.render`: blocks of at most `chunk_seconds` with the GRU and synth
state carried across, so there are no seams and memory does not grow with the input's length.
Voices of a chord are rendered together as a batch and summed.
"""

import dataclasses
import io
import logging
import os

import numpy as np

from ddsp_core import plotting
from ddsp_core.example_format import F0_TRACKER_SAMPLE_RATE
from ddsp_core.playing import midi as midi_lib
from ddsp_core.playing import streaming, transfer
from ddsp_core.io import storage
from ddsp_core.models.model_statistics import midi_of

# Notes this far outside the training notes' pitch range (semitones) are refused.
PITCH_MARGIN_SEMITONES = 1.0
# The mix is scaled down to this peak if it would clip.
MAX_PEAK = 0.98


class PlayError(ValueError):
    """Input the instrument cannot play; the message says what to change."""


@dataclasses.dataclass
class Performance:
    """What was played: the audio and the curves that drove it.

    Attributes:
        audio: Output, NumPy float32 [n_samples] at `sample_rate`.
        sample_rate: Hz.
        frame_rate: Frames per second of the curves.
        f0_hz, level_db: The curves the model played, [n_voices, n_frames].
        level_key: 'loudness_db' or 'power_db'.
        input_audio_16k: The recording (timbre transfer), or None.
        facts: Numbers worth printing (voices, octave shift, gain applied, ...).
    """

    audio: np.ndarray
    sample_rate: int
    frame_rate: int
    f0_hz: np.ndarray
    level_db: np.ndarray
    level_key: str
    input_audio_16k: np.ndarray | None = None
    facts: dict = dataclasses.field(default_factory=dict)


def render_features(instrument, f0_hz, level_db, seed=0, chunk_seconds=2.0):
    """Renders curves with the instrument, one voice per row, and mixes the voices.

    Args:
        instrument: A loaded `Instrument`.
        f0_hz, level_db: NumPy [n_voices, n_frames].
        seed: Noise seed.
        chunk_seconds: Longest rendered block, in seconds (`streaming.block_frames` fits it to the input).

    Returns:
        (mix NumPy float32 [n_frames * hop], gain applied to avoid clipping).
    """
    f0_hz, level_db = np.atleast_2d(f0_hz).astype("float32"), np.atleast_2d(level_db).astype("float32")
    synth = instrument.synth(batch_size=f0_hz.shape[0], seed=seed)
    chunk_frames = max(1, int(round(chunk_seconds * instrument.frame_rate)))
    voices = streaming.render(synth, {"f0_hz": f0_hz, instrument.level_key: level_db}, chunk_frames=chunk_frames)
    mix = voices.sum(axis=0)
    peak = float(np.max(np.abs(mix))) if mix.size else 0.0
    gain = 1.0
    if peak > MAX_PEAK:
        gain = MAX_PEAK / peak
        logging.warning("The mix peaks at %.2f (%.1f dBFS): scaled by %.3f so that it does not clip.", peak,
                        20 * np.log10(peak), gain)
    return (mix * gain).astype("float32"), gain


def check_pitch_range(instrument, midi_notes, what):
    """Raises PlayError if any pitch lies outside the training notes' range (with a margin)."""
    low, high = instrument.pitch_range_midi()
    midi_notes = np.asarray(midi_notes, np.float64)
    outside = midi_notes[(midi_notes < low - PITCH_MARGIN_SEMITONES) | (midi_notes > high + PITCH_MARGIN_SEMITONES)]
    if outside.size:
        raise PlayError(f"{what} has pitches outside the instrument's range: MIDI {outside.min():.0f}-"
                        f"{outside.max():.0f}, while it was trained on MIDI {low:.0f}-{high:.0f}. Transpose with "
                        "--pitch_shift (semitones), or pass --allow_out_of_range to play them anyway.")


def octaves_into_range(instrument, pitches):
    """Semitones (a multiple of 12) that move the most of `pitches` into the instrument's range."""
    low, high = instrument.pitch_range_midi()
    pitches = np.asarray(pitches, np.float64)
    shifts = [12.0 * octave for octave in range(-4, 5)]
    inside = [np.mean((pitches + shift >= low - PITCH_MARGIN_SEMITONES) & (pitches + shift <= high + PITCH_MARGIN_SEMITONES))
              for shift in shifts]
    best = max(inside)
    return min((abs(shift), shift) for shift, share in zip(shifts, inside) if share == best)[1]


def play_midi(instrument, notes, bends=(), expression=midi_lib.Expression(), pitch_shift=0.0, seed=0,
              chunk_seconds=2.0, allow_out_of_range=False, what="The MIDI file"):
    """Plays notes (a melody or chords) with the instrument.

    Velocity maps into the training notes' level range (`Instrument.level_range_db`).

    Returns:
        A `Performance`.

    Raises:
        PlayError: pitches outside the instrument's range (unless allowed).
        midi.MidiError: no notes.
    """
    if not notes:
        raise midi_lib.MidiError(f"{what} has no notes: nothing to play.")
    if pitch_shift:
        notes = [dataclasses.replace(note, pitch=int(round(note.pitch + pitch_shift))) for note in notes]
    if not allow_out_of_range:
        check_pitch_range(instrument, [note.pitch for note in notes], what)
    plan = midi_lib.render_plan(notes, instrument.frame_rate, instrument.level_range_db(), expression=expression,
                                bends=bends)
    f0_hz = np.stack([f0 for f0, _ in plan])
    level_db = np.stack([level for _, level in plan])
    audio, gain = render_features(instrument, f0_hz, level_db, seed=seed, chunk_seconds=chunk_seconds)
    return Performance(audio=audio, sample_rate=instrument.sample_rate, frame_rate=instrument.frame_rate,
                       f0_hz=f0_hz, level_db=level_db, level_key=instrument.level_key,
                       facts={"notes": len(notes), "voices": len(plan), "gain": round(gain, 4),
                              "seconds": round(audio.size / instrument.sample_rate, 2)})


def play_recording(instrument, path, adjustment=transfer.Adjustment(), crepe_capacity="full", seed=0,
                   chunk_seconds=2.0, allow_out_of_range=False):
    """Timbre transfer: plays the melody of a recording with the instrument.

    Returns:
        A `Performance` (with the recording at 16 kHz).

    Raises:
        TransferError: not audio, silent, or no voiced frame.
        PlayError: the (adjusted) melody lies mostly outside the instrument's range.
    """
    audio_16k = transfer.load_audio_16k(path)
    features = transfer.extract_features(audio_16k, instrument.level_key, instrument.frame_rate, crepe_capacity)
    adjusted, facts = transfer.adjust(features, instrument.level_key, instrument.statistics, adjustment)
    voiced = transfer.voiced_frames(features["f0_confidence"], instrument.frame_rate, adjustment.min_f0_confidence)
    if not allow_out_of_range:
        midi = midi_of(adjusted["f0_hz"][voiced])
        low, high = instrument.pitch_range_midi()
        inside = (midi >= low - PITCH_MARGIN_SEMITONES) & (midi <= high + PITCH_MARGIN_SEMITONES)
        if inside.mean() < 0.5:
            raise PlayError(f"{path}: after adjustment, {100 * (1 - inside.mean()):.0f}% of the voiced frames lie "
                            f"outside the instrument's range (MIDI {low:.0f}-{high:.0f}; the melody's median is "
                            f"MIDI {np.median(midi):.0f}). Use --auto_adjust or --pitch_shift, or pass "
                            "--allow_out_of_range.")
    audio, gain = render_features(instrument, adjusted["f0_hz"][None], adjusted[instrument.level_key][None],
                                  seed=seed, chunk_seconds=chunk_seconds)
    facts.update(gain=round(gain, 4), seconds=round(audio.size / instrument.sample_rate, 2))
    return Performance(audio=audio, sample_rate=instrument.sample_rate, frame_rate=instrument.frame_rate,
                       f0_hz=adjusted["f0_hz"][None], level_db=adjusted[instrument.level_key][None],
                       level_key=instrument.level_key, input_audio_16k=audio_16k, facts=facts)


def write_outputs(performance, wav_path, plot=True):
    """Writes the WAV (16-bit PCM at the model's rate) and, with plot, a PNG beside it, each whole
    or not at all (`storage.write_bytes`; local or gs://).

    Returns:
        The paths written.
    """
    import soundfile

    wav = io.BytesIO()
    soundfile.write(wav, performance.audio, performance.sample_rate, subtype="PCM_16", format="WAV")
    storage.write_bytes(wav_path, wav.getvalue())
    paths = [wav_path]
    if plot:
        png = io.BytesIO()
        plot_performance(performance, png)
        png_path = os.path.splitext(wav_path)[0] + ".png"
        storage.write_bytes(png_path, png.getvalue())
        paths.append(png_path)
    return paths


def plot_performance(performance, path):
    """PNG (to a path or a binary file object) of `plotting.performance_figure`: input and output
    spectrograms, and the f0 and level curves the model played."""
    figure = plotting.performance_figure(
        performance.audio, performance.sample_rate, performance.f0_hz, performance.level_db,
        performance.frame_rate, level_name=performance.level_key, input_audio=performance.input_audio_16k,
        input_sample_rate=F0_TRACKER_SAMPLE_RATE)
    figure.savefig(path, format="png", dpi=figure.dpi)
