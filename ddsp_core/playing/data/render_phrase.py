"""Renders flute_phrase.flac beside this script: a short flute phrase, the non-clarinet input the
pipeline's sample page transfers to the trained clarinet (timbre transfer, playing/listening.py).

The FLAC is package data (pyproject's package-data takes data/*.flac, so it is in the wheel and
the image); this script is not (a tool for whoever changes the phrase, not needed to play it).

A phrase written here (MIDI, with mido), rendered by the fluidsynth program with
FluidR3_GM's flute (GM program 74, index 73), mixed to mono, resampled to 16 kHz with soxr
and written as 16-bit FLAC. Requirements: ``apt-get install fluidsynth fluid-soundfont-gm``.

    python ddsp_core/playing/data/render_phrase.py [--soundfont /usr/share/sounds/sf2/FluidR3_GM.sf2]
"""

import argparse
import os
import subprocess
import sys
import tempfile

import mido
import numpy as np
import soundfile
import soxr

from ddsp_core.example_format import ExampleFormat

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "flute_phrase.flac")
GM_PROGRAM_FLUTE = 73
# Written at the default dataset rate (16 kHz), the rate the instruments it is played through hear.
SAMPLE_RATE = ExampleFormat().sample_rate
# (MIDI note, beats, velocity) at 96 bpm; 0 as the note is a rest. An original phrase.
PHRASE = [(74, 1, 90), (76, 0.5, 80), (78, 0.5, 85), (79, 1.5, 100), (0, 0.5, 0), (78, 0.5, 80), (76, 0.5, 75),
          (74, 1, 85), (71, 1, 70), (0, 0.5, 0), (73, 0.5, 80), (74, 2, 95)]
BPM = 96


def build_midi(path):
    midi = mido.MidiFile(ticks_per_beat=480)
    track = mido.MidiTrack()
    midi.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(BPM), time=0))
    track.append(mido.Message("program_change", program=GM_PROGRAM_FLUTE, time=0))
    waiting = 0
    for note, beats, velocity in PHRASE:
        ticks = int(beats * 480)
        if note == 0:
            waiting += ticks
            continue
        track.append(mido.Message("note_on", note=note, velocity=velocity, time=waiting))
        track.append(mido.Message("note_off", note=note, velocity=0, time=ticks))
        waiting = 0
    track.append(mido.MetaMessage("end_of_track", time=480))
    midi.save(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--soundfont", default="/usr/share/sounds/sf2/FluidR3_GM.sf2")
    parser.add_argument("--output", default=OUTPUT)
    args = parser.parse_args(argv)
    if not os.path.exists(args.soundfont):
        print(f"render_phrase.py: soundfont {args.soundfont} not found: apt-get install fluid-soundfont-gm "
              "(or pass --soundfont)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as folder:
        midi_path, wav_path = os.path.join(folder, "phrase.mid"), os.path.join(folder, "phrase.wav")
        build_midi(midi_path)
        subprocess.run(["fluidsynth", "-ni", "-g", "0.6", "-r", "44100", "-F", wav_path, args.soundfont, midi_path],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        audio, rate = soundfile.read(wav_path, dtype="float32", always_2d=True)
    mono = soxr.resample(audio.mean(axis=1), rate, SAMPLE_RATE, quality="VHQ")
    peak = float(np.max(np.abs(mono)))
    soundfile.write(args.output, mono, SAMPLE_RATE, subtype="PCM_16", format="FLAC")
    print(f"Wrote {args.output}: {mono.size / SAMPLE_RATE:.2f} s, peak {20 * np.log10(peak):.1f} dBFS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
