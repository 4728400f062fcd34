#!/usr/bin/env python3
"""Render musical clarinet training material and a held-out validation set.

The single-note set in ``notes/`` has only sustained notes, trimmed to the
note: a model trained on it never sees an attack from silence, a release, a
quiet frame, a crescendo or a note transition.  This script writes phrases
that contain all of those, as Standard MIDI Files (with ``mido``), renders
them with the fluidsynth command-line program, and writes 16 kHz mono 16-bit
FLAC files plus a score JSON per file (see ``material_score.py``).

Kinds of material (one kind per file, files of about 10-30 s):

``notes``     every MIDI pitch 50..94, each alone, attack from and release into
              silence, velocities 35..120, held 0.3-1.5 s, with rests between;
``swell``     held notes with crescendo, diminuendo and swell (<>) ramps of
              CC 11 (expression) or CC 7 (volume), one event every 15 ms,
              from near silence (about -50 dB) to full level;
``legato``    scales, arpeggios and interval jumps, notes touching or
              overlapping by 5-25 ms (velocities up to 108);
``detached``  staccato, portato and repeated notes with gaps;
``vibrato``   held notes with pitch-bend vibrato (5-6 Hz, +-20..40 cents,
              delayed and faded in), one bend event every 10 ms;
``glide``     held notes with pitch bends: scoops into the note, falls at
              its end, slides up or down by 1-2 semitones and back.

Between phrases there are rests of 0.3-1.0 s, and every third rest of a file
(the 2nd, 5th, ...) is 1.2-2.0 s long, so that training windows contain silence, attacks and
releases.  Every file starts with 0.3 s of silence and ends 1.0 s after its
last note off.

Two sets, never mixed (the validation instrument is held out):

``train``       FluidR3_GM (Debian ``fluid-soundfont-gm``), ``train/fluidr3_*``;
``validation``  sf_GMbank (Debian ``csound-soundfont``), ``validation/gmbank_*``,
                a different seed and fewer phrases.

Both use GM program 71 (0-based, "Clarinet"), bank 0, channel 0, with the
pitch-bend range set to 2 semitones (RPN 0).  Everything is deterministic: the
arrangement comes from ``numpy.random.default_rng`` with a fixed seed per set
and kind, and the rendering from fluidsynth's offline (fast) renderer.  Levels
are not normalised per file: each set is rendered with one fluidsynth gain,
and the script refuses to write a file that would clip (lower ``--gain``).

Requirements: ``apt-get install fluidsynth fluid-soundfont-gm csound-soundfont``
and the Python packages numpy, soundfile, soxr and mido.

    python data/clarinet/render_material.py              # both sets
    python data/clarinet/render_material.py --set train  # one of them
    python data/clarinet/render_material.py --list_presets /usr/share/sounds/sf2/sf_GMbank.sf2
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import material_score as ms  # noqa: E402

GM_PROGRAM_CLARINET = 71  # 0-based General MIDI program ("Clarinet")
RENDER_RATE = 44100
SAMPLE_RATE = 16000
LOW, HIGH = 50, 94  # concert pitch range, MIDI
VEL_MIN, VEL_MAX = 35, 120
LEGATO_VEL_MAX = 108
BEND_RANGE = 2  # semitones, set with RPN 0
LEAD_IN_S = 0.3
TAIL_S = 1.0
CC_STEP_S = 0.015
BEND_STEP_S = 0.01
TARGET_FILE_S = 28.0  # files are at most about this long
APT_HINT = "apt-get install fluidsynth fluid-soundfont-gm csound-soundfont"

SETS = {
    "train": {
        "soundfont": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
        "prefix": "fluidr3",
        "out_dir": HERE / "train",
        # 1.5 puts the loudest notes (velocity 120) at about -4.3 dBFS, as in notes/.
        "gain": 1.5,
        "seed": 1201,
        # FluidR3's clarinet is 60 dB down about 10-20 ms after the note off.
        "release_guard_s": 0.08,
        "kinds": {
            "notes": {"dynamics_per_pitch": 2, "min_s": 0.3, "max_s": 1.3},
            "swell": {"count": 12},
            "legato": {"count": 12},
            "detached": {"count": 10},
            "vibrato": {"count": 8},
            "glide": {"count": 8},
        },
    },
    "validation": {
        "soundfont": "/usr/share/sounds/sf2/sf_GMbank.sf2",
        "prefix": "gmbank",
        "out_dir": HERE / "validation",
        # sf_GMbank's clarinet is about 7 dB quieter than FluidR3's at the same gain.
        "gain": 2.2,
        "seed": 2402,
        # sf_GMbank's clarinet has a ~200 ms release (60 dB down after about 200 ms).
        "release_guard_s": 0.25,
        "kinds": {
            "notes": {"dynamics_per_pitch": 1, "min_s": 0.3, "max_s": 1.0},
            "swell": {"count": 5},
            "legato": {"count": 5},
            "detached": {"count": 4},
            "vibrato": {"count": 3},
            "glide": {"count": 3},
        },
    },
}
KIND_ORDER = ["notes", "swell", "legato", "detached", "vibrato", "glide"]


class RenderError(RuntimeError):
    pass


# --------------------------------------------------------------------------
# SoundFont presets (a tiny RIFF reader for the INFO list and 'phdr')
# --------------------------------------------------------------------------

def _riff_chunks(data: bytes, start: int, end: int):
    off = start
    while off + 8 <= end:
        cid = data[off:off + 4]
        size = struct.unpack("<I", data[off + 4:off + 8])[0]
        yield cid, off + 8, size
        off += 8 + size + (size & 1)


def sf2_info(path: str | os.PathLike) -> tuple[dict[str, str], list[tuple[int, int, str]]]:
    """(INFO strings, [(bank, program, preset name), ...]) of an SF2 file.

    Reads only the RIFF structure: the INFO list (INAM, ICOP, ...) and the
    preset headers ('phdr' in the 'pdta' list; 38-byte records, the last one
    is the terminal 'EOP' record).
    """
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"RIFF" or data[8:12] != b"sfbk":
        raise RenderError(f"{path}: not a SoundFont 2 file")
    info: dict[str, str] = {}
    presets: list[tuple[int, int, str]] = []
    for cid, off, size in _riff_chunks(data, 12, len(data)):
        if cid != b"LIST":
            continue
        list_type = data[off:off + 4]
        for sub, soff, ssize in _riff_chunks(data, off + 4, off + size):
            if list_type == b"INFO" and sub != b"ifil":
                info[sub.decode("latin-1")] = (
                    data[soff:soff + ssize].split(b"\0")[0].decode("latin-1").strip())
            elif list_type == b"pdta" and sub == b"phdr":
                for i in range(ssize // 38 - 1):
                    rec = data[soff + 38 * i: soff + 38 * (i + 1)]
                    name = rec[:20].split(b"\0")[0].decode("latin-1").strip()
                    program, bank = struct.unpack("<HH", rec[20:24])
                    presets.append((bank, program, name))
    return info, presets


def preset_name(soundfont: str, program: int = GM_PROGRAM_CLARINET, bank: int = 0) -> str:
    _, presets = sf2_info(soundfont)
    for b, p, name in presets:
        if b == bank and p == program:
            return name
    raise RenderError(f"{soundfont} has no preset bank {bank} program {program}")


# --------------------------------------------------------------------------
# Arrangement (deterministic, numpy Generator)
# --------------------------------------------------------------------------

def _q(t: float) -> float:
    return ms.quantise_time(t)


def _vel(v: float) -> int:
    return int(max(VEL_MIN, min(VEL_MAX, round(v))))


def _phrase(notes, automation=None, init=None) -> dict:
    """A phrase: notes [(onset, offset, midi, velocity)] from time 0 (first onset),
    automation items (times relative to the phrase), and the controller state
    it expects at its start ({"cc7": .., "cc11": .., "bend": cents})."""
    state = dict(ms.DEFAULTS)
    state.update(init or {})
    notes = [(_q(a), _q(b), int(m), _vel(v)) for a, b, m, v in notes]
    return {"notes": notes, "automation": automation or [], "init": state,
            "length": max(n[1] for n in notes)}


def gen_notes(rng: np.random.Generator, p: dict) -> list[dict]:
    """Every pitch LOW..HIGH, alone, with attack and release into silence."""
    pitches = list(range(LOW, HIGH + 1))
    jobs = []
    if p["dynamics_per_pitch"] == 1:
        vels = np.linspace(VEL_MIN, VEL_MAX, len(pitches))
        rng.shuffle(vels)
        jobs = [(m, v) for m, v in zip(pitches, vels)]
    else:
        for m in pitches:  # one soft and one loud note per pitch
            jobs.append((m, rng.uniform(VEL_MIN, 75)))
            jobs.append((m, rng.uniform(80, VEL_MAX)))
    order = rng.permutation(len(jobs))
    out = []
    for i in order:
        m, v = jobs[i]
        dur = rng.uniform(p["min_s"], p["max_s"])
        out.append(_phrase([(0.0, dur, m, v)]))
    return out


def _geom_points(t0: float, t1: float, v0: float, v1: float, n: int = 6) -> list[list[float]]:
    """Breakpoints from v0 to v1 spaced geometrically in value: fluidsynth's CC 7 / CC 11
    curve is close to 40*log10(v/127) dB, so this is a roughly linear ramp in dB."""
    pts = []
    for k in range(n + 1):
        x = k / n
        v = v0 * (v1 / v0) ** x
        pts.append([_q(t0 + (t1 - t0) * x), round(v, 2)])
    return pts


def gen_swell(rng: np.random.Generator, p: dict) -> list[dict]:
    """Held notes with CC 11 or CC 7 ramps: crescendo, diminuendo, swell."""
    shapes = ["cresc", "dim", "swell"]
    pitches = rng.permutation(np.arange(LOW, HIGH + 1))
    out = []
    for i in range(p["count"]):
        ctrl = 11 if i % 2 == 0 else 7
        shape = shapes[(i // 2) % 3]
        m = int(pitches[i % len(pitches)])
        dur = rng.uniform(2.5, 4.0)
        vel = rng.uniform(95, 118)
        low = float(rng.integers(6, 13))
        high = 127.0 if ctrl == 11 else 100.0
        if shape == "cresc":
            t_top = dur - rng.uniform(0.2, 0.5)
            pts = [[-0.02, low]] + _geom_points(0.0, t_top, low, high)
        elif shape == "dim":
            t_start = rng.uniform(0.2, 0.5)
            pts = [[-0.02, high]] + _geom_points(t_start, dur, high, low)
        else:
            t_top = dur * rng.uniform(0.4, 0.6)
            pts = ([[-0.02, low]] + _geom_points(0.0, t_top, low, high)
                   + _geom_points(t_top, dur, high, low)[1:])
        pts = [[_q(t), v] for t, v in pts]
        item = {"type": "cc", "controller": ctrl, "step_s": CC_STEP_S, "points": pts}
        out.append(_phrase([(0.0, dur, m, vel)], [item], {f"cc{ctrl}": pts[0][1]}))
    return out


SCALES = {
    "major": [2, 2, 1, 2, 2, 2, 1],
    "minor": [2, 1, 2, 2, 1, 2, 2],
    "harmonic minor": [2, 1, 2, 2, 1, 3, 1],
    "chromatic": [1],
    "whole tone": [2],
}
CHORDS = {
    "major": [0, 4, 7],
    "minor": [0, 3, 7],
    "dominant 7th": [0, 4, 7, 10],
    "diminished 7th": [0, 3, 6, 9],
}


def _fit(seq: list[int], rng: np.random.Generator) -> list[int]:
    """Transpose a pitch sequence (relative to its first note) into LOW..HIGH."""
    lo, hi = min(seq), max(seq)
    start = int(rng.integers(LOW - lo, HIGH - hi + 1))
    return [start + s for s in seq]


def _scale_seq(rng: np.random.Generator) -> list[int]:
    steps = SCALES[list(SCALES)[int(rng.integers(len(SCALES)))]]
    n = int(rng.integers(5, 11))
    seq = [0]
    for k in range(n - 1):
        seq.append(seq[-1] + steps[k % len(steps)])
    direction = int(rng.integers(3))
    if direction == 1:
        seq = seq[::-1]
    elif direction == 2:
        half = seq[: (n + 1) // 2 + 1]
        seq = half + half[-2::-1]
    return seq


def _arpeggio_seq(rng: np.random.Generator) -> list[int]:
    chord = CHORDS[list(CHORDS)[int(rng.integers(len(CHORDS)))]]
    octaves = int(rng.integers(1, 3))
    up = [o * 12 + c for o in range(octaves) for c in chord] + [octaves * 12]
    return up + up[-2::-1] if rng.random() < 0.5 else up


def _interval_seq(rng: np.random.Generator) -> list[int]:
    n = int(rng.integers(4, 8))
    seq = [0]
    for _ in range(n - 1):
        jump = int(rng.integers(3, 13)) * (1 if rng.random() < 0.5 else -1)
        if not -20 <= seq[-1] + jump <= 20:
            jump = -jump
        seq.append(seq[-1] + jump)
    return seq


def _velocities(rng: np.random.Generator, n: int) -> list[float]:
    base = rng.uniform(45, 112)
    if rng.random() < 0.4:  # a crescendo or diminuendo through the phrase
        span = rng.uniform(15, 35) * (1 if rng.random() < 0.5 else -1)
        return [base - span / 2 + span * k / max(1, n - 1) for k in range(n)]
    return [base + rng.uniform(-8, 8) for _ in range(n)]


def gen_legato(rng: np.random.Generator, p: dict) -> list[dict]:
    """Scales, arpeggios and interval jumps; notes touching or overlapping."""
    makers = [_scale_seq, _arpeggio_seq, _interval_seq]
    out = []
    for i in range(p["count"]):
        seq = _fit(makers[i % 3](rng), rng)
        base = rng.uniform(0.22, 0.45)
        # at most 108: two overlapping notes add up, and ff peaks should stay below -3 dBFS
        vels = [min(v, LEGATO_VEL_MAX) for v in _velocities(rng, len(seq))]
        notes, t = [], 0.0
        for k, (m, v) in enumerate(zip(seq, vels)):
            dur = base * rng.uniform(0.85, 1.15)
            if k == len(seq) - 1:
                notes.append((t, t + dur * rng.uniform(1.8, 3.0), m, v))
                break
            nxt = t + dur
            # touching (next onset == this offset) or overlapping by 5-25 ms
            overlap = 0.0 if rng.random() < 0.6 else rng.uniform(0.005, 0.025)
            notes.append((t, nxt + overlap, m, v))
            t = nxt
        out.append(_phrase(notes))
    return out


def gen_detached(rng: np.random.Generator, p: dict) -> list[dict]:
    """Staccato, portato and repeated notes, separated by short gaps."""
    out = []
    for i in range(p["count"]):
        style = ["staccato", "portato", "repeated"][i % 3]
        n = int(rng.integers(5, 10))
        if style == "repeated":
            seq, k = [], 0
            while len(seq) < n:
                reps = int(rng.integers(2, 5))
                seq += [k] * reps
                k += int(rng.integers(-5, 6)) or 2
            seq = seq[:n]
        else:
            seq = [0]
            for _ in range(n - 1):
                seq.append(seq[-1] + int(rng.integers(-5, 6)))
        seq = _fit(seq, rng)
        vels = _velocities(rng, n)
        notes, t = [], 0.0
        for m, v in zip(seq, vels):
            if style == "portato":
                dur, gap = rng.uniform(0.28, 0.5), rng.uniform(0.08, 0.2)
            else:
                dur, gap = rng.uniform(0.08, 0.2), rng.uniform(0.1, 0.3)
            notes.append((t, t + dur, m, v))
            t += dur + gap
        out.append(_phrase(notes))
    return out


def gen_vibrato(rng: np.random.Generator, p: dict) -> list[dict]:
    """Held notes with delayed, faded-in pitch-bend vibrato."""
    pitches = rng.permutation(np.arange(LOW + 1, HIGH))
    out = []
    for i in range(p["count"]):
        m = int(pitches[i % len(pitches)])
        dur = rng.uniform(1.5, 3.0)
        start = rng.uniform(0.15, 0.5)
        item = {
            "type": "vibrato", "step_s": BEND_STEP_S,
            "start_s": _q(start), "end_s": _q(dur),
            "rate_hz": round(float(rng.uniform(5.0, 6.0)), 3),
            "depth_cents": round(float(rng.uniform(20.0, 40.0)), 2),
            "fade_in_s": round(float(rng.uniform(0.2, 0.6)), 3),
        }
        out.append(_phrase([(0.0, dur, m, rng.uniform(60, 115))], [item]))
    return out


def gen_glide(rng: np.random.Generator, p: dict) -> list[dict]:
    """Held notes with pitch bends: scoop, fall, slide and return, slide and stay."""
    pitches = rng.permutation(np.arange(LOW + 2, HIGH - 1))
    out = []
    for i in range(p["count"]):
        m = int(pitches[i % len(pitches)])
        style = ["scoop", "fall", "slide back", "slide stay"][i % 4]
        vel = rng.uniform(60, 115)
        if style == "scoop":
            d = -rng.uniform(60, 150)
            dur = rng.uniform(1.2, 2.2)
            pts = [[-0.02, d], [0.0, d], [rng.uniform(0.12, 0.3), 0.0]]
        elif style == "fall":
            dur = rng.uniform(1.2, 2.2)
            pts = [[dur - rng.uniform(0.25, 0.5), 0.0], [dur, -rng.uniform(100, 200)]]
        else:
            target = rng.uniform(100, 200) * (1 if rng.random() < 0.5 else -1)
            t1 = rng.uniform(0.4, 0.8)
            t2 = t1 + rng.uniform(0.2, 0.5)
            t3 = t2 + rng.uniform(0.4, 0.8)
            if style == "slide back":
                t4 = t3 + rng.uniform(0.2, 0.5)
                pts = [[t1, 0.0], [t2, target], [t3, target], [t4, 0.0]]
                dur = t4 + rng.uniform(0.4, 0.8)
            else:
                pts = [[t1, 0.0], [t2, target]]
                dur = t3
        pts = [[_q(t), round(float(c), 2)] for t, c in pts]
        item = {"type": "bend", "step_s": BEND_STEP_S, "points": pts}
        init = {"bend": pts[0][1]} if pts[0][0] < 0 else {}
        out.append(_phrase([(0.0, dur, m, vel)], [item], init))
    return out


GENERATORS = {
    "notes": gen_notes, "swell": gen_swell, "legato": gen_legato,
    "detached": gen_detached, "vibrato": gen_vibrato, "glide": gen_glide,
}


def _rest(rng: np.random.Generator, index: int) -> float:
    """Rest after the index-th phrase of a file: the 2nd, 5th, 8th, ... are 1.2-2.0 s."""
    if index % 3 == 1:
        return rng.uniform(1.2, 2.0)
    if rng.random() < 0.25:
        return rng.uniform(0.3, 0.45)
    return rng.uniform(0.45, 1.0)


def _shift_item(item: dict, dt: float) -> dict:
    item = dict(item)
    if "points" in item:
        item["points"] = [[_q(t + dt), v] for t, v in item["points"]]
    else:
        item["start_s"] = _q(item["start_s"] + dt)
        item["end_s"] = _q(item["end_s"] + dt)
    return item


def _final_state(state: dict, items: list[dict]) -> dict:
    state = dict(state)
    for item in items:
        key, ev = ms.expand_item(item, BEND_RANGE)
        if ev:
            v = ev[-1][1]
            state[key] = ms.bend_cents(v, BEND_RANGE) if key == "bend" else v
    return state


def pack(phrases: list[dict], rng: np.random.Generator) -> list[dict]:
    """Lay phrases out in files of about TARGET_FILE_S with rests between them.

    Returns [{"duration_s", "notes", "automation"}, ...].  Before each phrase,
    controllers that differ from what the phrase expects are reset 30 ms
    before its first onset (inside the rest, after the previous release).
    """
    rests = [_rest(rng, i) for i in range(len(phrases))]
    spans = [ph["length"] + r for ph, r in zip(phrases, rests)]
    total = LEAD_IN_S + sum(spans) + TAIL_S
    n_files = max(1, int(math.ceil(total / TARGET_FILE_S)))
    bounds = np.cumsum(spans) / sum(spans) * n_files
    groups: list[list[int]] = [[] for _ in range(n_files)]
    for i, b in enumerate(bounds):
        groups[min(n_files - 1, int(math.ceil(b - 1e-9)) - 1)].append(i)
    files = []
    for group in groups:
        if not group:
            continue
        t = LEAD_IN_S
        state = dict(ms.DEFAULTS)
        notes, automation = [], []
        for j, i in enumerate(group):
            ph = phrases[i]
            # controllers the phrase's own automation sets before its first onset
            own = {ms.expand_item(it, BEND_RANGE)[0] for it in ph["automation"]
                   if min(p[0] for p in ms.expand_item(it, BEND_RANGE)[1]) <= 0}
            for key, want in ph["init"].items():
                if key not in own and abs(state[key] - want) > 1e-6:
                    if key == "bend":
                        automation.append({"type": "bend", "step_s": BEND_STEP_S,
                                           "points": [[_q(t - 0.03), want]]})
                    else:
                        automation.append({"type": "cc", "controller": int(key[2:]),
                                           "step_s": CC_STEP_S, "points": [[_q(t - 0.03), want]]})
                    state[key] = want
            notes += [[_q(a + t), _q(b + t), m, v] for a, b, m, v in ph["notes"]]
            items = [_shift_item(it, t) for it in ph["automation"]]
            automation += items
            state = _final_state(state, items)
            end = t + ph["length"]
            # the last phrase of a file is followed by the tail, not a rest
            t = _q(end + (rests[i] if j < len(group) - 1 else TAIL_S))
        notes.sort(key=lambda n: (n[0], n[2]))
        files.append({"duration_s": _q(t), "notes": notes, "automation": automation})
    return files


def arrange(set_name: str, seed: int | None = None) -> list[dict]:
    """The scores (without rendering metadata) of one set, kind by kind."""
    cfg = SETS[set_name]
    seed = cfg["seed"] if seed is None else seed
    out = []
    for k_index, kind in enumerate(KIND_ORDER):
        params = cfg["kinds"].get(kind)
        if params is None:
            continue
        rng = np.random.default_rng([seed, k_index])
        phrases = GENERATORS[kind](rng, params)
        for nn, f in enumerate(pack(phrases, rng)):
            f["kind"] = kind
            f["name"] = f"{cfg['prefix']}_{kind}_{nn:02d}"
            out.append(f)
    return out


# --------------------------------------------------------------------------
# MIDI (mido) and rendering (fluidsynth)
# --------------------------------------------------------------------------

def build_midi(score: dict):
    """A format-0 mido.MidiFile for a score: 1000 ticks per beat at 60 bpm = 1 ms per tick."""
    import mido

    ch = int(score.get("channel", 0))
    rng = score.get("pitch_bend_range_semitones", BEND_RANGE)
    events: list[tuple[int, int, int, object]] = []  # (tick, priority, order, message)
    order = 0

    def add(t: float, prio: int, msg) -> None:
        nonlocal order
        events.append((ms.tick(t), prio, order, msg))
        order += 1

    setup = [
        mido.Message("program_change", channel=ch, program=int(score["program"])),
        # RPN 0 (pitch-bend sensitivity) = rng semitones, 0 cents; then RPN null
        mido.Message("control_change", channel=ch, control=101, value=0),
        mido.Message("control_change", channel=ch, control=100, value=0),
        mido.Message("control_change", channel=ch, control=6, value=int(rng)),
        mido.Message("control_change", channel=ch, control=38, value=0),
        mido.Message("control_change", channel=ch, control=101, value=127),
        mido.Message("control_change", channel=ch, control=100, value=127),
        mido.Message("control_change", channel=ch, control=7, value=ms.DEFAULTS["cc7"]),
        mido.Message("control_change", channel=ch, control=11, value=ms.DEFAULTS["cc11"]),
        mido.Message("pitchwheel", channel=ch, pitch=0),
    ]
    for msg in setup:
        add(0.0, -1, msg)
    for item in score.get("automation", []):
        key, ev = ms.expand_item(item, rng)
        for t, v in ev:
            if key == "bend":
                add(t, 1, mido.Message("pitchwheel", channel=ch, pitch=int(v)))
            else:
                add(t, 1, mido.Message("control_change", channel=ch, control=int(key[2:]), value=int(v)))
    for n in ms.notes_of(score):
        add(n["onset_s"], 2, mido.Message("note_on", channel=ch, note=n["midi"], velocity=n["velocity"]))
        add(n["offset_s"], 0, mido.Message("note_off", channel=ch, note=n["midi"], velocity=64))
    events.sort(key=lambda e: (e[0], e[1], e[2]))

    mid = mido.MidiFile(type=0, ticks_per_beat=1000)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=1_000_000, time=0))
    now = 0
    for tk, _, _, msg in events:
        if tk < 0:
            raise RenderError(f"event before time 0: {msg}")
        track.append(msg.copy(time=tk - now))
        now = tk
    end = ms.tick(score["duration_s"])
    track.append(mido.MetaMessage("end_of_track", time=max(0, end - now)))
    return mid


def check_requirements(fluidsynth: str, soundfont: str) -> str:
    exe = shutil.which(fluidsynth)
    if exe is None:
        raise RenderError(f"fluidsynth program not found ({fluidsynth!r}); install it with: {APT_HINT}")
    if not os.path.isfile(soundfont):
        raise RenderError(f"SoundFont not found: {soundfont}; install it with: {APT_HINT}")
    try:
        import mido  # noqa: F401
    except ImportError as exc:
        raise RenderError("the mido package is needed: pip install mido") from exc
    return exe


def render_score(score: dict, soundfont: str, gain: float, out_path: str | os.PathLike,
                 fluidsynth: str = "fluidsynth", midi_path: str | os.PathLike | None = None) -> float:
    """Render a score to a 16-bit mono FLAC at score["sample_rate"]; returns the peak (linear).

    Raises RenderError when fluidsynth fails or the audio would clip.
    """
    import soundfile as sf
    import soxr

    exe = check_requirements(fluidsynth, soundfont)
    sr = int(score["sample_rate"])
    with tempfile.TemporaryDirectory(prefix="clarinet_material_") as tmp:
        mid = Path(midi_path) if midi_path else Path(tmp) / "score.mid"
        wav = Path(tmp) / "render.wav"
        build_midi(score).save(str(mid))
        cmd = [exe, "-n", "-i", "-q", "-C", "0", "-R", "0", "-g", repr(float(gain)),
               "-r", str(RENDER_RATE), "-T", "wav", "-O", "float", "-F", str(wav),
               str(soundfont), str(mid)]
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if proc.returncode != 0 or not wav.is_file():
            raise RenderError(f"fluidsynth failed (exit {proc.returncode}): {' '.join(cmd)}\n{proc.stderr}")
        audio, rate = sf.read(str(wav), dtype="float64", always_2d=True)
    if rate != RENDER_RATE:
        raise RenderError(f"fluidsynth wrote {rate} Hz, expected {RENDER_RATE}")
    n_render = int(round(score["duration_s"] * RENDER_RATE))
    if audio.shape[0] < n_render - RENDER_RATE // 100:
        raise RenderError(f"fluidsynth rendered {audio.shape[0]} frames, expected {n_render}")
    mono = audio.mean(axis=1)
    mono = np.pad(mono, (0, max(0, n_render - len(mono))))[:n_render]
    if sr != RENDER_RATE:
        mono = soxr.resample(mono, RENDER_RATE, sr, quality="VHQ")
    n_out = int(round(score["duration_s"] * sr))
    mono = np.pad(mono, (0, max(0, n_out - len(mono))))[:n_out]
    peak = float(np.max(np.abs(mono)))
    if peak >= 32767.0 / 32768.0:
        raise RenderError(f"{out_path} would clip (peak {peak:.4f}); lower the gain (now {gain})")
    pcm = np.round(mono * 32767.0).astype(np.int16)
    sf.write(str(out_path), pcm, sr, format="FLAC", subtype="PCM_16")
    return peak


def _first_line(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    except OSError:
        return None
    line = out.stdout.strip().splitlines()
    return line[0].strip() if out.returncode == 0 and line else None


def package_of(path: str) -> str | None:
    """'package version' of the Debian package that ships ``path`` (None without dpkg)."""
    owner = _first_line(["dpkg", "-S", os.path.realpath(path)]) or _first_line(["dpkg", "-S", path])
    if not owner:
        return None
    pkg = owner.split(":")[0].strip()
    ver = _first_line(["dpkg-query", "-W", "-f=${Version}", pkg])
    return f"{pkg} {ver}" if ver else pkg


def render_set(set_name: str, args: argparse.Namespace) -> int:
    cfg = SETS[set_name]
    soundfont = args.soundfont or cfg["soundfont"]
    gain = args.gain if args.gain is not None else cfg["gain"]
    seed = args.seed if args.seed is not None else cfg["seed"]
    out_dir = Path(args.out_dir) if args.out_dir else cfg["out_dir"]
    exe = check_requirements(args.fluidsynth, soundfont)
    info, _ = sf2_info(soundfont)
    name = preset_name(soundfont, GM_PROGRAM_CLARINET, 0)
    if "clarinet" not in name.lower():
        raise RenderError(f"{soundfont}: bank 0 program {GM_PROGRAM_CLARINET} is {name!r}, not a clarinet")
    renderer = _first_line([exe, "--version"])
    package = package_of(soundfont)
    scores = arrange(set_name, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    keep = {s["name"] for s in scores}
    pattern = re.compile(rf"^{re.escape(cfg['prefix'])}_[a-z]+_\d\d\.(flac|json)$")
    for old in out_dir.iterdir():  # files of an earlier arrangement
        if pattern.match(old.name) and old.stem not in keep:
            old.unlink()
    if args.keep_midi:
        Path(args.keep_midi).mkdir(parents=True, exist_ok=True)
    total_s = 0.0
    total_bytes = 0
    for s in scores:
        score = {
            "format": ms.FORMAT,
            "file": f"{s['name']}.flac",
            "kind": s["kind"],
            "set": set_name,
            "sample_rate": SAMPLE_RATE,
            "duration_s": s["duration_s"],
            "soundfont": os.path.basename(soundfont),
            "soundfont_package": package,
            "soundfont_name": info.get("INAM"),
            "soundfont_copyright": info.get("ICOP"),
            "preset_name": name,
            "bank": 0,
            "program": GM_PROGRAM_CLARINET,
            "channel": 0,
            "gain": gain,
            "renderer": renderer,
            "generator": "data/clarinet/render_material.py",
            "seed": seed,
            "pitch_bend_range_semitones": BEND_RANGE,
            "release_guard_s": cfg["release_guard_s"],
            "note_fields": ms.NOTE_FIELDS,
            "notes": s["notes"],
            "automation": s["automation"],
        }
        flac = out_dir / score["file"]
        midi_path = Path(args.keep_midi) / f"{s['name']}.mid" if args.keep_midi else None
        peak = render_score(score, soundfont, gain, flac, args.fluidsynth, midi_path)
        ms.dump_score(score, out_dir / f"{s['name']}.json")
        total_s += score["duration_s"]
        total_bytes += flac.stat().st_size
        if not args.quiet:
            print(f"{flac}  {score['duration_s']:6.2f} s  {len(score['notes']):3d} notes  "
                  f"peak {20 * math.log10(peak):6.1f} dBFS")
    if not args.quiet:
        print(f"{set_name}: {len(scores)} files, {total_s:.1f} s ({total_s / 60:.2f} min), "
              f"{total_bytes} bytes of FLAC, soundfont {soundfont} ({name!r}), gain {gain}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Render clarinet phrases (attacks, releases, rests, swells, legato, "
                    "staccato, vibrato, glides) with fluidsynth: the training set from FluidR3_GM "
                    "and the held-out validation set from sf_GMbank.")
    p.add_argument("--set", choices=["train", "validation", "all"], default="all",
                   help="which set to render (default: all)")
    p.add_argument("--out_dir", default=None,
                   help="output directory (default: data/clarinet/train or data/clarinet/validation); "
                        "only with a single --set")
    p.add_argument("--soundfont", default=None, help="override the set's SoundFont")
    p.add_argument("--gain", type=float, default=None,
                   help="override the set's fluidsynth gain (train 1.5, validation 2.2)")
    p.add_argument("--seed", type=int, default=None, help="override the set's arrangement seed")
    p.add_argument("--fluidsynth", default="fluidsynth", help="fluidsynth executable")
    p.add_argument("--keep_midi", default=None, metavar="DIR",
                   help="also write the Standard MIDI Files into DIR")
    p.add_argument("--list_presets", default=None, metavar="SF2",
                   help="print the INFO fields and presets of a SoundFont and exit")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_presets:
        info, presets = sf2_info(args.list_presets)
        for k, v in info.items():
            print(f"{k}: {v}")
        for bank, program, name in sorted(presets):
            print(f"bank {bank:3d} program {program:3d}  {name}")
        return 0
    if args.set == "all" and (args.out_dir or args.soundfont):
        parser.error("--out_dir and --soundfont need a single --set")
    if args.gain is not None and not 0 < args.gain < 10:
        parser.error("--gain must be in (0, 10)")
    try:
        for name in (["train", "validation"] if args.set == "all" else [args.set]):
            render_set(name, args)
    except RenderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
