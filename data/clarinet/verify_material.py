#!/usr/bin/env python3
"""Check rendered clarinet material against its scores: pitch, rests, level.

For every ``*.flac`` with a score next to it (same stem, ``.json``, see
``material_score.py``) in the given directories (default: ``train/`` and
``validation/`` next to this script), using numpy and soundfile only:

* **pitch**: every scored note held at least 0.25 s is measured over its
  middle (from 20 % of the note, at least 80 ms, after the onset to 10 % before
  the offset; never while another note is held or within ``release_guard_s``
  (at most 0.1 s) of another note's offset).  Notes without pitch bend: one
  estimate over that window (autocorrelation for the coarse f0, then the
  interpolated FFT peak of the fundamental, as ``verify_notes.py`` does);
  the error is the deviation in cents from the scored MIDI pitch.  Notes with
  pitch bend (vibrato, glides): 64 ms frames every 20 ms, each compared with
  the scored pitch plus the scored bend averaged over the frame with the
  same Hann window; the note's error is the median over its frames.  The
  "bend gain" is the least-squares slope of the measured deviation from the
  key against the scored bend, over all bent frames of a file: 1.0 means the
  synthesizer follows the pitch bends exactly, 0 that it ignores them.
* **rests**: every stretch of at least 0.3 s in which the score holds no note
  (including the lead-in and the tail), from ``release_guard_s`` after the
  previous note off (the release, 0.08 s for FluidR3, 0.25 s for sf_GMbank)
  to 10 ms before the next onset, must have an RMS at or below -60 dB
  relative to the file's peak.
* **level**: the peak must be below -1 dBFS and no sample may be at full
  scale (16-bit 32767 / -32768).
* **CC depth**: for notes with CC 7 / CC 11 automation, the range of the
  20 ms RMS level over the note (dB): how much the ramps change the level.

Prints one Markdown table row per file (``--notes`` adds one per note) and a
summary per directory; exits 1 if a note is off by more than
``--tolerance_cents`` (15), a rest is not silent, or a file clips.

    python data/clarinet/verify_material.py
    python data/clarinet/verify_material.py data/clarinet/validation --notes
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import material_score as ms  # noqa: E402
from verify_notes import acf_f0  # noqa: E402

MIN_NOTE_S = 0.25
MIN_WINDOW_S = 0.1
MIN_REST_S = 0.3
REST_END_MARGIN_S = 0.01
FRAME = 1024  # samples at 16 kHz: 64 ms
HOP = 320  # 20 ms
BENT_CENTS = 0.5


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def cents(f: float, ref: float) -> float:
    return 1200.0 * math.log2(f / ref)


def db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else float("-inf")


def fft_peak(x: np.ndarray, sr: int, f_guess: float, nfft: int, rel_width: float = 0.03) -> float:
    """Interpolated (parabolic on log magnitude) Hann-window FFT peak near ``f_guess``."""
    x = (x - x.mean()) * np.hanning(len(x))
    nfft = max(nfft, 1 << int(math.ceil(math.log2(len(x)))))
    mag = np.abs(np.fft.rfft(x, nfft))
    k_lo = max(1, int(math.floor(f_guess * (1 - rel_width) * nfft / sr)))
    k_hi = min(len(mag) - 2, int(math.ceil(f_guess * (1 + rel_width) * nfft / sr)))
    k = k_lo + int(np.argmax(mag[k_lo:k_hi + 1]))
    la, lb, lc = (math.log(mag[k - 1] + 1e-30), math.log(mag[k] + 1e-30),
                  math.log(mag[k + 1] + 1e-30))
    denom = la - 2 * lb + lc
    shift = 0.5 * (la - lc) / denom if denom != 0 else 0.0
    return (k + shift) * sr / nfft


def note_window(notes: list[dict], i: int, guard: float) -> tuple[float, float]:
    """Analysis window (seconds) of note i: its middle, clear of other notes."""
    n = notes[i]
    dur = n["offset_s"] - n["onset_s"]
    a = n["onset_s"] + max(0.08, 0.2 * dur)
    b = n["offset_s"] - max(0.03, 0.1 * dur)
    for j, o in enumerate(notes):
        if j == i:
            continue
        if o["onset_s"] <= n["onset_s"]:
            if o["offset_s"] + guard > a:
                a = o["offset_s"] + guard
        elif o["onset_s"] < b:
            b = o["onset_s"]
    return a, b


def measure_note(x: np.ndarray, sr: int, note: dict, a: float, b: float, tracks: dict) -> dict:
    """Pitch error of one note over [a, b] (seconds); see the module docstring."""
    key_hz = midi_to_hz(note["midi"])
    i0, i1 = int(round(a * sr)), int(round(b * sr))
    seg = x[i0:i1]
    t_samples = np.arange(i0, i1) / sr
    bend = ms.track_at(tracks, "bend", t_samples)
    res = {"window_s": (a, b), "bent": bool(np.any(np.abs(bend) > BENT_CENTS)),
           "level_db": db(float(np.sqrt(np.mean(seg ** 2)))) if len(seg) else float("-inf")}
    if not res["bent"]:
        f_coarse = acf_f0(seg, sr)
        if not np.isfinite(f_coarse) or abs(cents(f_coarse, key_hz)) > 150:
            res.update(f0=f_coarse, cents=float("nan"), gross=True)
            return res
        f0 = fft_peak(seg, sr, f_coarse, 1 << 18)
        res.update(f0=f0, cents=cents(f0, key_hz), gross=False)
        return res
    win = np.hanning(FRAME)
    errs, xs, ys, n_gross = [], [], [], 0
    for s in range(0, len(seg) - FRAME + 1, HOP):
        frame = seg[s:s + FRAME]
        expected_bend = float(np.sum(win * bend[s:s + FRAME]) / np.sum(win))
        f_exp = key_hz * 2.0 ** (expected_bend / 1200.0)
        f_coarse = acf_f0(frame, sr)
        if not np.isfinite(f_coarse) or abs(cents(f_coarse, f_exp)) > 150:
            n_gross += 1
            continue
        f = fft_peak(frame, sr, f_coarse, 1 << 15)
        errs.append(cents(f, f_exp))
        xs.append(expected_bend)
        ys.append(cents(f, key_hz))
    n_frames = len(errs) + n_gross
    gross = n_frames == 0 or n_gross > 0.2 * n_frames
    res.update(f0=float("nan"), cents=float(np.median(errs)) if errs else float("nan"),
               gross=gross, frames=n_frames, bend_x=xs, bend_y=ys)
    return res


def cc_depth(x: np.ndarray, sr: int, note: dict) -> float:
    """Range (dB) of the 20 ms RMS level over a note (50 ms after the onset to 20 ms before
    the offset)."""
    i0 = int(round((note["onset_s"] + 0.05) * sr))
    i1 = int(round((note["offset_s"] - 0.02) * sr))
    h = int(0.02 * sr)
    n = (i1 - i0) // h
    if n < 2:
        return float("nan")
    rms = np.sqrt(np.mean(x[i0:i0 + n * h].reshape(n, h) ** 2, axis=1))
    lev = 20 * np.log10(np.maximum(rms, 1e-12))
    return float(lev.max() - lev.min())


def analyse(flac: Path, score: dict | None = None) -> dict:
    """Everything the table shows for one file (see the module docstring)."""
    import soundfile as sf

    if score is None:
        score = ms.load_score(flac.with_suffix(".json"))
    pcm, sr = sf.read(str(flac), dtype="int16", always_2d=True)
    if pcm.shape[1] != 1:
        raise ValueError(f"{flac}: expected mono audio")
    pcm = pcm[:, 0]
    x = pcm.astype(np.float64) / 32768.0
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    peak_int = int(np.max(np.abs(pcm.astype(np.int32)))) if len(x) else 0
    guard = float(score.get("release_guard_s", 0.08))
    tracks = ms.controller_tracks(score)
    notes = sorted(ms.notes_of(score), key=lambda n: (n["onset_s"], n["midi"]))

    note_rows = []
    bend_x, bend_y = [], []
    depths = []
    cc_keys = [k for k in tracks if k in ("cc7", "cc11")]
    for i, n in enumerate(notes):
        dur = n["offset_s"] - n["onset_s"]
        row = dict(n, checked=False, reason="")
        if cc_keys:
            t = np.linspace(n["onset_s"], n["offset_s"], 50)
            if any(np.ptp(ms.track_at(tracks, k, t)) > 0 for k in cc_keys):
                row["cc_depth_db"] = cc_depth(x, sr, n)
                depths.append(row["cc_depth_db"])
        if dur < MIN_NOTE_S:
            row["reason"] = "short note"
        else:
            a, b = note_window(notes, i, min(guard, 0.1))
            if b - a < MIN_WINDOW_S:
                row["reason"] = "short window"
            else:
                m = measure_note(x, sr, n, a, b, tracks)
                row.update(checked=True, **{k: v for k, v in m.items() if k not in ("bend_x", "bend_y")})
                bend_x += m.get("bend_x", [])
                bend_y += m.get("bend_y", [])
        note_rows.append(row)

    rest_rows = []
    for r in ms.rests_of(score, MIN_REST_S):
        a = r["start_s"] + (guard if r["after_note"] else 0.0)
        b = r["end_s"] - REST_END_MARGIN_S
        if b - a < 0.05:
            continue
        seg = x[int(round(a * sr)):int(round(b * sr))]
        rms = float(np.sqrt(np.mean(seg ** 2)))
        rest_rows.append({"start_s": a, "end_s": b, "rms_db_re_peak": db(rms) - db(peak),
                          "peak_db_re_peak": db(float(np.max(np.abs(seg)))) - db(peak)})

    bend_gain = float("nan")
    if len(bend_x) > 10 and np.var(bend_x) > 1.0:
        bx, by = np.array(bend_x), np.array(bend_y)
        bend_gain = float(np.sum((bx - bx.mean()) * (by - by.mean())) / np.sum((bx - bx.mean()) ** 2))
    return {
        "file": flac.name, "kind": score.get("kind", "?"), "set": score.get("set", "?"),
        "soundfont": score.get("soundfont"), "sample_rate": sr, "duration_s": len(x) / sr,
        "score_duration_s": score["duration_s"], "bytes": flac.stat().st_size,
        "peak": peak, "peak_dbfs": db(peak), "clipped": peak_int >= 32767,
        "notes": note_rows, "rests": rest_rows, "bend_gain": bend_gain,
        "cc_depths_db": depths,
    }


def file_problems(r: dict, tolerance: float, silence_db: float, max_peak_db: float) -> list[str]:
    problems = []
    bad = [n for n in r["notes"] if n["checked"] and (n.get("gross") or not abs(n["cents"]) <= tolerance)]
    if bad:
        problems.append(f"PITCH({len(bad)})")
    loud = [x for x in r["rests"] if x["rms_db_re_peak"] > silence_db]
    if loud:
        problems.append(f"REST({len(loud)})")
    if r["clipped"]:
        problems.append("CLIPPED")
    elif r["peak_dbfs"] > max_peak_db:
        problems.append("HOT")
    if abs(r["duration_s"] - r["score_duration_s"]) > 1.0 / r["sample_rate"]:
        problems.append("LENGTH")
    return problems


def _fmt(v: float, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if v == float("-inf"):
        return "-inf"
    return format(v, spec)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("paths", nargs="*", default=[str(HERE / "train"), str(HERE / "validation")],
                   help="directories (or FLAC files) to check (default: train/ and validation/)")
    p.add_argument("--tolerance_cents", type=float, default=15.0)
    p.add_argument("--silence_db", type=float, default=-60.0,
                   help="rests must have an RMS at or below this, in dB re the file's peak")
    p.add_argument("--max_peak_db", type=float, default=-1.0)
    p.add_argument("--notes", action="store_true", help="also print a row per note")
    args = p.parse_args(argv)

    groups: list[tuple[str, list[Path]]] = []
    for path in map(Path, args.paths):
        if path.is_dir():
            files = sorted(f for f in path.glob("*.flac") if f.with_suffix(".json").is_file())
            groups.append((str(path), files))
        else:
            groups.append((str(path), [path]))
    if not any(files for _, files in groups):
        print("error: no FLAC files with a score JSON found", file=sys.stderr)
        return 2

    failures = []
    print("| file | duration (s) | notes | pitch checked | bent | cents min | cents median | cents max "
          "| bend gain | CC depth (dB) | rests checked | loudest rest (dB re peak) | peak (dBFS) | status |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    summaries = []
    per_note_lines = []
    for label, files in groups:
        results = []
        for f in files:
            r = analyse(f)
            results.append(r)
            checked = [n for n in r["notes"] if n["checked"] and np.isfinite(n["cents"])]
            cs = [n["cents"] for n in checked]
            bent = sum(1 for n in checked if n.get("bent"))
            rests = [x["rms_db_re_peak"] for x in r["rests"]]
            problems = file_problems(r, args.tolerance_cents, args.silence_db, args.max_peak_db)
            status = ",".join(problems) if problems else "ok"
            if problems:
                failures.append(f.name)
            depth = float(np.median(r["cc_depths_db"])) if r["cc_depths_db"] else float("nan")
            print(f"| {r['file']} | {r['duration_s']:.2f} | {len(r['notes'])} | {len(checked)} | {bent} "
                  f"| {_fmt(min(cs) if cs else None, '+.1f')} | {_fmt(float(np.median(cs)) if cs else None, '+.1f')} "
                  f"| {_fmt(max(cs) if cs else None, '+.1f')} | {_fmt(r['bend_gain'], '.2f')} | {_fmt(depth, '.0f')} "
                  f"| {len(rests)} | {_fmt(max(rests) if rests else None, '.0f')} | {r['peak_dbfs']:.1f} | {status} |")
            if args.notes:
                for n in r["notes"]:
                    per_note_lines.append(
                        f"| {r['file']} | {n['onset_s']:.3f} | {n['offset_s']:.3f} | {n['midi']} | {n['velocity']} "
                        f"| {'bend' if n.get('bent') else ''} | {_fmt(n.get('cents') if n['checked'] else None, '+.1f')} "
                        f"| {n['reason']} |")
        summaries.append((label, results))
    if per_note_lines:
        print()
        print("| file | onset (s) | offset (s) | MIDI | velocity | bend | cents | not checked |")
        print("|---|---:|---:|---:|---:|---|---:|---|")
        print("\n".join(per_note_lines))
    print()
    for label, results in summaries:
        if not results:
            continue
        cs = [n["cents"] for r in results for n in r["notes"] if n["checked"] and np.isfinite(n["cents"])]
        n_notes = sum(len(r["notes"]) for r in results)
        rests = [x["rms_db_re_peak"] for r in results for x in r["rests"]]
        peaks = [r["peak_dbfs"] for r in results]
        total_s = sum(r["duration_s"] for r in results)
        total_b = sum(r["bytes"] for r in results)
        gains = [r["bend_gain"] for r in results if np.isfinite(r["bend_gain"])]
        depths = [d for r in results for d in r["cc_depths_db"] if np.isfinite(d)]
        print(f"{label}: {len(results)} files, {total_s:.1f} s ({total_s / 60:.2f} min), "
              f"{total_b} bytes ({total_b / 1e6:.2f} MB); soundfonts: "
              f"{', '.join(sorted({str(r['soundfont']) for r in results}))}")
        if cs:
            print(f"  pitch: {len(cs)} of {n_notes} notes checked, {min(cs):+.1f} to {max(cs):+.1f} cents "
                  f"(median {np.median(cs):+.1f}, max |dev| {max(abs(c) for c in cs):.1f})")
        if rests:
            print(f"  rests: {len(rests)} checked, loudest {max(rests):.1f} dB re file peak")
        print(f"  peaks: {min(peaks):.1f} to {max(peaks):.1f} dBFS")
        if gains:
            print(f"  bend gain: {min(gains):.2f} to {max(gains):.2f}")
        if depths:
            print(f"  CC 7/11 depth over ramped notes: {min(depths):.0f} to {max(depths):.0f} dB")
    if failures:
        print(f"FAILED ({len(failures)}): {', '.join(failures)}")
        return 1
    print(f"all files ok: notes within {args.tolerance_cents:g} cents, rests at or below "
          f"{args.silence_db:g} dB re peak, no clipping")
    return 0


if __name__ == "__main__":
    sys.exit(main())
