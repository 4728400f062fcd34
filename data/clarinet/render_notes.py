#!/usr/bin/env python3
"""Render clarinet single notes from the FluidR3_GM SoundFont with fluidsynth.

One note per file, chromatic over a MIDI range, at a few dynamics (MIDI
velocities), in the spirit of the MTG "Clarinet single notes" Freesound pack.
By default every note is rendered at every dynamic; with ``--cycle_dynamics``
each note gets one dynamic, taken in turn in pitch order (pp, mf, ff, pp, ...).

For each (note, dynamic) the script writes a tiny Standard MIDI File (format 0,
one track: tempo, program change to GM program 71 "Clarinet", note on, note
off, end of track) into a temporary directory, renders it with the fluidsynth
command-line program (chorus and reverb off, 32-bit float WAV, 44.1 kHz),
optionally mixes to mono and resamples with soxr, trims the silence before the
onset and after the release, and writes ``clarinet_m{midi:03d}_{dynamic}.{ext}``.

Levels are never normalised per file: every note of a run is rendered with the
same fluidsynth master gain (``--gain``), so the relative loudness of the
dynamics and of the notes is kept.  The script refuses to write a file whose
peak would clip (>= 1.0) and asks for a lower ``--gain`` instead.

Requirements (Debian/Ubuntu): ``apt-get install fluidsynth fluid-soundfont-gm``
and the Python packages numpy, soundfile and soxr.

The bundled subset in ``data/clarinet/notes/`` was made with::

    python data/clarinet/render_notes.py --subset
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

DEFAULT_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
APT_HINT = "apt-get install fluidsynth fluid-soundfont-gm"

GM_PROGRAM_CLARINET = 71  # 0-based General MIDI program number ("Clarinet")
DEFAULT_DYNAMICS = "pp=40,mf=80,ff=120"
RENDER_RATE = 44100
LEAD_IN_S = 0.05  # silence before the note on, so the onset is not at sample 0

# Preset for the committed subset (see README.md).
SUBSET_PRESET = {
    "low": 50,
    "high": 94,
    "step": 1,
    "dynamics": DEFAULT_DYNAMICS,
    "cycle_dynamics": True,
    "mono": True,
    "sample_rate": 16000,
    "format": "flac",
    "out_dir": str(Path(__file__).resolve().parent / "notes"),
}


# --------------------------------------------------------------------------
# Minimal Standard MIDI File writer
# --------------------------------------------------------------------------

def _varlen(value: int) -> bytes:
    """Encode a non-negative int as a MIDI variable-length quantity."""
    if value < 0:
        raise ValueError("variable-length quantity must be >= 0")
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    return bytes(reversed(out))


def build_note_smf(
    note: int,
    velocity: int,
    hold_s: float,
    tail_s: float,
    program: int = GM_PROGRAM_CLARINET,
    channel: int = 0,
    lead_in_s: float = LEAD_IN_S,
) -> bytes:
    """Return the bytes of a format-0 SMF that plays a single note.

    Timing: 1000 ticks per quarter note at 1,000,000 us per quarter note,
    i.e. exactly one tick per millisecond.
    """
    if not 0 <= note <= 127:
        raise ValueError(f"MIDI note out of range: {note}")
    if not 1 <= velocity <= 127:
        raise ValueError(f"MIDI velocity out of range: {velocity}")
    if not 0 <= program <= 127:
        raise ValueError(f"GM program out of range: {program}")
    division = 1000  # ticks per quarter note
    tempo_us = 1_000_000  # us per quarter note -> 1 tick == 1 ms
    lead = int(round(lead_in_s * 1000))
    hold = max(1, int(round(hold_s * 1000)))
    tail = max(1, int(round(tail_s * 1000)))

    ch = channel & 0x0F
    events = b"".join([
        _varlen(0) + b"\xFF\x51\x03" + tempo_us.to_bytes(3, "big"),
        _varlen(0) + bytes([0xC0 | ch, program]),
        _varlen(lead) + bytes([0x90 | ch, note, velocity]),
        _varlen(hold) + bytes([0x80 | ch, note, 64]),
        _varlen(tail) + b"\xFF\x2F\x00",  # end of track after the release tail
    ])
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, division)
    track = b"MTrk" + struct.pack(">I", len(events)) + events
    return header + track


# --------------------------------------------------------------------------
# Rendering and post-processing
# --------------------------------------------------------------------------

class RenderError(RuntimeError):
    pass


def check_requirements(fluidsynth: str, soundfont: str) -> str:
    """Return the fluidsynth path or raise RenderError with an install hint."""
    exe = shutil.which(fluidsynth)
    if exe is None:
        raise RenderError(
            f"fluidsynth program not found ({fluidsynth!r}). Install it with: {APT_HINT}"
        )
    if not os.path.isfile(soundfont):
        raise RenderError(
            f"SoundFont not found: {soundfont}. Install FluidR3_GM with: {APT_HINT} "
            "(or pass --soundfont)"
        )
    return exe


def render_with_fluidsynth(
    exe: str, soundfont: str, midi_path: Path, wav_path: Path, gain: float
) -> tuple[np.ndarray, int]:
    import soundfile as sf

    cmd = [
        exe, "-n", "-i", "-q",
        "-C", "0", "-R", "0",
        "-g", repr(float(gain)),
        "-r", str(RENDER_RATE),
        "-T", "wav", "-O", "float",
        "-F", str(wav_path),
        soundfont, str(midi_path),
    ]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0 or not wav_path.is_file():
        raise RenderError(
            f"fluidsynth failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr}"
        )
    audio, sr = sf.read(str(wav_path), dtype="float64", always_2d=True)
    if sr != RENDER_RATE:
        raise RenderError(f"fluidsynth wrote {sr} Hz, expected {RENDER_RATE} Hz")
    return audio, sr


def trim_silence(
    audio: np.ndarray, sr: int, threshold_db: float, margin_ms: float
) -> np.ndarray:
    """Trim leading/trailing samples below ``threshold_db`` relative to the peak.

    ``audio`` has shape (frames, channels). A margin of ``margin_ms`` is kept on
    both sides (clamped to the signal).
    """
    env = np.max(np.abs(audio), axis=1)
    peak = float(env.max()) if env.size else 0.0
    if peak <= 0.0:
        raise RenderError("rendered audio is silent")
    thr = peak * 10.0 ** (threshold_db / 20.0)
    above = np.flatnonzero(env > thr)
    margin = int(round(margin_ms * 1e-3 * sr))
    start = max(0, int(above[0]) - margin)
    stop = min(len(env), int(above[-1]) + 1 + margin)
    return audio[start:stop]


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Quantise float audio in [-1, 1) to int16 (round to nearest, no dither)."""
    return np.round(audio * 32767.0).astype(np.int16)


def parse_dynamics(spec: str) -> list[tuple[str, int]]:
    out = []
    for item in spec.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, vel = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(
                f"bad dynamic {item!r}; expected NAME=VELOCITY, e.g. mf=80"
            )
        name = name.strip()
        if not name.isalnum():
            raise argparse.ArgumentTypeError(f"dynamic name must be alphanumeric: {name!r}")
        v = int(vel)
        if not 1 <= v <= 127:
            raise argparse.ArgumentTypeError(f"velocity out of range 1..127: {v}")
        out.append((name, v))
    if not out:
        raise argparse.ArgumentTypeError("no dynamics given")
    return out


def note_dynamics(
    notes: list[int], dynamics: list[tuple[str, int]], cycle: bool
) -> list[tuple[int, str, int]]:
    """(midi, dynamic name, velocity) for every file to render, in pitch order.

    Without ``cycle`` every note is paired with every dynamic; with it the i-th
    note gets only ``dynamics[i % len(dynamics)]``.
    """
    if cycle:
        return [(midi, *dynamics[i % len(dynamics)]) for i, midi in enumerate(notes)]
    return [(midi, name, velocity) for midi in notes for name, velocity in dynamics]


def note_name(midi: int) -> str:
    names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
    return f"{names[midi % 12]}{midi // 12 - 1}"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Render clarinet single notes (FluidR3_GM, GM program 71) with fluidsynth.",
    )
    p.add_argument("--subset", action="store_true",
                   help="preset for the bundled subset: --low 50 --high 94 --step 1 "
                        "--dynamics pp=40,mf=80,ff=120 --cycle_dynamics --mono "
                        "--sample_rate 16000 --format flac --out_dir <this script's dir>/notes; "
                        "flags given explicitly override the preset (except --mono and "
                        "--cycle_dynamics)")
    p.add_argument("--out_dir", default=None,
                   help="output directory (default: ./clarinet_notes, or "
                        "data/clarinet/notes with --subset)")
    p.add_argument("--low", type=int, default=None,
                   help="lowest MIDI note (default 50 = concert D3)")
    p.add_argument("--high", type=int, default=None,
                   help="highest MIDI note, inclusive (default 94 = concert A#6)")
    p.add_argument("--step", type=int, default=None,
                   help="semitone step between rendered notes (default 1 = chromatic)")
    p.add_argument("--dynamics", default=None,
                   help=f"comma list NAME=VELOCITY (default {DEFAULT_DYNAMICS})")
    p.add_argument("--cycle_dynamics", action="store_true", default=None,
                   help="render each note at ONE dynamic, cycling through --dynamics in "
                        "pitch order (note 1 at the first, note 2 at the second, ...), "
                        "instead of every note at every dynamic")
    p.add_argument("--hold", type=float, default=3.0, help="seconds between note on and note off (default 3.0)")
    p.add_argument("--tail", type=float, default=1.0,
                   help="seconds rendered after the note off (release; trimmed afterwards; default 1.0)")
    p.add_argument("--gain", type=float, default=1.5,
                   help="fluidsynth master gain (-g), the same for every note of the run; "
                        "1.5 puts the loudest ff note at about -4.3 dBFS (default 1.5)")
    p.add_argument("--threshold_db", type=float, default=-60.0,
                   help="trim threshold in dB relative to each file's peak (default -60)")
    p.add_argument("--margin_ms", type=float, default=5.0,
                   help="margin kept before the onset and after the release when trimming (default 5)")
    p.add_argument("--format", choices=["wav", "flac"], default=None,
                   help="output file format, PCM 16-bit (default wav)")
    p.add_argument("--sample_rate", type=int, default=None,
                   help=f"output sample rate; resampled with soxr VHQ if != {RENDER_RATE}")
    p.add_argument("--mono", action="store_true", default=None,
                   help="mix the stereo render down to mono (mean of L and R)")
    p.add_argument("--soundfont", default=DEFAULT_SOUNDFONT, help=f"SoundFont (.sf2) path (default {DEFAULT_SOUNDFONT})")
    p.add_argument("--fluidsynth", default="fluidsynth", help="fluidsynth executable (default: fluidsynth on PATH)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    return p


def resolve_args(args: argparse.Namespace) -> argparse.Namespace:
    defaults = {
        "low": 50, "high": 94, "step": 1, "dynamics": DEFAULT_DYNAMICS,
        "cycle_dynamics": False, "mono": False, "sample_rate": RENDER_RATE, "format": "wav",
        "out_dir": "clarinet_notes",
    }
    if args.subset:
        defaults.update(SUBSET_PRESET)
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = resolve_args(parser.parse_args(argv))
    try:
        dynamics = parse_dynamics(args.dynamics)
    except (argparse.ArgumentTypeError, ValueError) as exc:
        parser.error(str(exc))
    if not 0 <= args.low <= args.high <= 127:
        parser.error("need 0 <= --low <= --high <= 127")
    if args.step < 1:
        parser.error("--step must be >= 1")
    if args.sample_rate <= 0:
        parser.error("--sample_rate must be positive")
    if not 0 < args.gain < 10:
        parser.error("--gain must be in (0, 10)")

    try:
        exe = check_requirements(args.fluidsynth, args.soundfont)
    except RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    import soundfile as sf

    notes = list(range(args.low, args.high + 1, args.step))
    jobs = note_dynamics(notes, dynamics, args.cycle_dynamics)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ext = args.format
    subtype = "PCM_16"

    total_s = 0.0
    n_written = 0
    with tempfile.TemporaryDirectory(prefix="clarinet_render_") as tmp:
        tmp_dir = Path(tmp)
        for midi, dyn_name, velocity in jobs:
            mid_path = tmp_dir / f"m{midi:03d}_{dyn_name}.mid"
            wav_path = tmp_dir / f"m{midi:03d}_{dyn_name}.wav"
            mid_path.write_bytes(build_note_smf(
                midi, velocity, args.hold, args.tail, program=GM_PROGRAM_CLARINET))
            try:
                audio, sr = render_with_fluidsynth(
                    exe, args.soundfont, mid_path, wav_path, args.gain)
                if args.mono:
                    audio = audio.mean(axis=1, keepdims=True)
                if args.sample_rate != sr:
                    import soxr
                    audio = soxr.resample(audio, sr, args.sample_rate, quality="VHQ")
                    sr = args.sample_rate
                audio = trim_silence(audio, sr, args.threshold_db, args.margin_ms)
            except RenderError as exc:
                print(f"error: m{midi:03d} {dyn_name}: {exc}", file=sys.stderr)
                return 1
            peak = float(np.max(np.abs(audio)))
            if peak >= 32767.0 / 32768.0:
                print(
                    f"error: m{midi:03d} {dyn_name} would clip (peak {peak:.4f}); "
                    f"lower --gain (now {args.gain})", file=sys.stderr)
                return 1
            wav_path.unlink()
            out_path = out_dir / f"clarinet_m{midi:03d}_{dyn_name}.{ext}"
            sf.write(str(out_path), to_pcm16(audio), sr,
                     format=ext.upper(), subtype=subtype)
            dur = audio.shape[0] / sr
            total_s += dur
            n_written += 1
            if not args.quiet:
                peak_db = 20 * np.log10(peak)
                print(f"{out_path}  {note_name(midi):>4}  vel {velocity:3d}  "
                      f"{dur:5.2f} s  peak {peak_db:6.1f} dBFS")
    if not args.quiet:
        print(f"wrote {n_written} files, {total_s:.1f} s total, to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
