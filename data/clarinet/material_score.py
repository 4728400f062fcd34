"""Score files of the rendered clarinet material (numpy only).

Every FLAC in ``data/clarinet/train/`` and ``data/clarinet/validation/`` has a
score next to it (same stem, ``.json``) that says exactly what was sent to the
synthesizer, so the audio can be checked against it.  This module reads and
writes those scores and turns their compact automation into the controller
events that ``render_material.py`` sends and ``verify_material.py`` expects.

Score format (``"format": "clarinet-material-score/1"``)::

    {
      "format": "clarinet-material-score/1",
      "file": "fluidr3_notes_00.flac",      # the audio this score describes
      "kind": "notes",                      # notes, swell, legato, detached, vibrato, glide
      "set": "train",                       # train or validation
      "sample_rate": 16000, "duration_s": 24.731,
      "soundfont": "FluidR3_GM.sf2", "preset_name": "Clarinet", "bank": 0,
      "program": 71, "channel": 0, "gain": 1.5,
      "pitch_bend_range_semitones": 2,
      "release_guard_s": 0.08,              # time after a note off before silence is expected
      "note_fields": ["onset_s", "offset_s", "midi", "velocity"],
      "notes": [[0.3, 1.112, 62, 87], ...],
      "automation": [...]
    }

Times are seconds from the first sample of the audio file, on the 1 ms grid
of the MIDI file.  ``automation`` is a list of items, each expanded to MIDI
events on a fixed time grid:

* ``{"type": "cc", "controller": 11, "step_s": 0.015, "points": [[t, v], ...]}``:
  control change, linear between the points, one event every ``step_s`` from
  the first to the last point (a single point is a single event).
  Controller 11 is expression, 7 is channel volume.
* ``{"type": "bend", "step_s": 0.01, "points": [[t, cents], ...]}``: pitch
  bend in cents, linear between the points, one event every ``step_s``.
* ``{"type": "vibrato", "step_s": 0.01, "start_s", "end_s", "rate_hz",
  "depth_cents", "fade_in_s"}``: pitch bend
  ``depth * sin(2 pi rate (t - start)) * min(1, (t - start) / fade_in)``,
  one event every ``step_s`` from ``start_s``, and a return to 0 cents at ``end_s``.

The state of a controller at time t is the value of its last event at or
before t (MIDI is sample-and-hold); before the first event it is the General
MIDI default (CC 7 = 100, CC 11 = 127, bend = 0).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

FORMAT = "clarinet-material-score/1"
NOTE_FIELDS = ["onset_s", "offset_s", "midi", "velocity"]
DEFAULTS = {"cc7": 100, "cc11": 127, "bend": 0.0}
BEND_MAX = 8191
BEND_MIN = -8192


def quantise_time(t: float) -> float:
    """Round a time to the 1 ms tick grid of the MIDI files."""
    return round(round(float(t) * 1000.0) / 1000.0, 3)


def tick(t: float) -> int:
    return int(round(float(t) * 1000.0))


def bend_value(cents: float, range_semitones: float) -> int:
    """14-bit pitch-wheel value (centred, -8192..8191) for a bend in cents."""
    v = int(round(cents / (100.0 * range_semitones) * 8192.0))
    return max(BEND_MIN, min(BEND_MAX, v))


def bend_cents(value: int, range_semitones: float) -> float:
    """Cents of a pitch-wheel value (the inverse of :func:`bend_value`)."""
    return value * 100.0 * range_semitones / 8192.0


def _grid(start: float, end: float, step: float) -> list[float]:
    n = int(math.floor((end - start) / step + 1e-9))
    times = [quantise_time(start + k * step) for k in range(n + 1)]
    if times[-1] < quantise_time(end):
        times.append(quantise_time(end))
    return times


def expand_item(item: dict, range_semitones: float) -> tuple[str, list[tuple[float, int]]]:
    """Events of one automation item: (controller key, [(time_s, midi value), ...]).

    The controller key is ``"cc7"``, ``"cc11"`` (any ``"ccN"``) or ``"bend"``;
    bend values are 14-bit pitch-wheel values (see :func:`bend_value`).
    """
    typ = item["type"]
    if typ in ("cc", "bend"):
        pts = sorted((quantise_time(t), float(v)) for t, v in item["points"])
        ts = np.array([p[0] for p in pts])
        vs = np.array([p[1] for p in pts])
        times = [pts[0][0]] if len(pts) == 1 else _grid(pts[0][0], pts[-1][0], item["step_s"])
        vals = np.interp(times, ts, vs)
        if typ == "cc":
            key = f"cc{int(item['controller'])}"
            ev = [(t, int(max(0, min(127, round(v))))) for t, v in zip(times, vals)]
        else:
            key = "bend"
            ev = [(t, bend_value(v, range_semitones)) for t, v in zip(times, vals)]
        return key, ev
    if typ == "vibrato":
        start, end = float(item["start_s"]), float(item["end_s"])
        times = _grid(start, end, item["step_s"])[:-1]
        ev = []
        for t in times:
            fade = min(1.0, (t - start) / item["fade_in_s"]) if item["fade_in_s"] > 0 else 1.0
            c = item["depth_cents"] * math.sin(2 * math.pi * item["rate_hz"] * (t - start)) * fade
            ev.append((t, bend_value(c, range_semitones)))
        ev.append((quantise_time(end), 0))
        return "bend", ev
    raise ValueError(f"unknown automation type {typ!r}")


def controller_tracks(score: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """All automation merged per controller: key -> (times, values), time-sorted.

    Bend values are returned in cents.  Events of later items win at equal
    times (the same order the MIDI file has).
    """
    rng = score.get("pitch_bend_range_semitones", 2)
    merged: dict[str, list[tuple[float, int, float]]] = {}
    order = 0
    for item in score.get("automation", []):
        key, ev = expand_item(item, rng)
        for t, v in ev:
            val = bend_cents(v, rng) if key == "bend" else float(v)
            merged.setdefault(key, []).append((t, order, val))
            order += 1
    out = {}
    for key, ev in merged.items():
        ev.sort()
        out[key] = (np.array([e[0] for e in ev]), np.array([e[2] for e in ev]))
    return out


def track_at(tracks: dict, key: str, t: np.ndarray) -> np.ndarray:
    """Sample-and-hold value of a controller at times ``t`` (seconds)."""
    t = np.asarray(t, dtype=float)
    default = DEFAULTS.get(key, 0.0)
    if key not in tracks:
        return np.full(t.shape, float(default))
    times, vals = tracks[key]
    # a tiny tolerance so that an event exactly at t counts
    idx = np.searchsorted(times, t + 1e-9, side="right") - 1
    return np.where(idx >= 0, vals[np.clip(idx, 0, None)], float(default))


def notes_of(score: dict) -> list[dict]:
    """The score's notes as dicts with the :data:`NOTE_FIELDS` keys."""
    fields = score.get("note_fields", NOTE_FIELDS)
    out = []
    for row in score["notes"]:
        d = dict(zip(fields, row))
        d["midi"] = int(d["midi"])
        d["velocity"] = int(d["velocity"])
        out.append(d)
    return out


def rests_of(score: dict, min_gap_s: float = 0.3) -> list[dict]:
    """Stretches of at least ``min_gap_s`` in which no note is held.

    Includes the lead-in before the first note and the tail after the last
    one.  ``after_note`` says whether a note ended at the rest's start (so a
    release is still ringing there).
    """
    notes = sorted(notes_of(score), key=lambda n: n["onset_s"])
    out = []
    sounding_end = None  # latest offset so far
    cursor = 0.0
    for n in notes:
        if n["onset_s"] - cursor >= min_gap_s:
            out.append({"start_s": cursor, "end_s": n["onset_s"],
                        "after_note": sounding_end is not None})
        sounding_end = n["offset_s"] if sounding_end is None else max(sounding_end, n["offset_s"])
        cursor = max(cursor, sounding_end)
    if score["duration_s"] - cursor >= min_gap_s:
        out.append({"start_s": cursor, "end_s": score["duration_s"],
                    "after_note": sounding_end is not None})
    return out


def load_score(path: str | Path) -> dict:
    with open(path, encoding="utf-8") as f:
        score = json.load(f)
    if score.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} score")
    return score


def dump_score(score: dict, path: str | Path) -> None:
    """Write a score with one note / one automation item per line (diff friendly)."""
    head = {k: v for k, v in score.items() if k not in ("notes", "automation")}
    lines = ["{"]
    for k, v in head.items():
        lines.append(f"  {json.dumps(k)}: {json.dumps(v)},")
    lines.append('  "notes": [')
    lines.append(",\n".join(f"    {json.dumps(n)}" for n in score["notes"]))
    lines.append("  ],")
    lines.append('  "automation": [')
    lines.append(",\n".join(f"    {json.dumps(a)}" for a in score["automation"]))
    lines.append("  ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # sanity
    Path(path).write_text(text, encoding="utf-8")
