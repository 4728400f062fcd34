#!/usr/bin/env python3
"""Check rendered clarinet notes: pitch vs. file name, silence, clipping.

For every ``clarinet_m{midi:03d}_{dynamic}.{wav,flac}`` in a directory the
fundamental frequency is estimated from the audio alone (numpy only, the file
name is not used for the estimate):

1. the steady middle part of the note (25 %..75 % of the file) is taken;
2. a coarse f0 comes from the normalised autocorrelation, evaluated on a
   4x finer lag grid (first lag whose peak reaches 90 % of the highest peak
   in the 50..2500 Hz lag range, which avoids sub-octave errors);
3. it is refined with the FFT peak of the fundamental (Hann window, zero
   padding to >= 2**20 points, parabolic interpolation of the log magnitude).

The estimate is compared with 440 * 2 ** ((midi - 69) / 12) Hz.  The script
also reports the frame-wise pitch spread (50 ms frames) as a vibrato/drift
check, the peak level, and flags silent (peak < -60 dBFS) or clipped
(|sample| >= 32767 in 16-bit terms) files.

Prints a Markdown table; exits 1 if any file is off by more than
``--tolerance_cents`` or is silent or clipped.

    python data/clarinet/verify_notes.py data/clarinet/notes
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

NAME_RE = re.compile(r"^clarinet_m(\d{3})_([A-Za-z0-9]+)\.(wav|flac)$")
FMIN, FMAX = 50.0, 2500.0


def midi_to_hz(midi: float) -> float:
    return 440.0 * 2.0 ** ((midi - 69.0) / 12.0)


def cents(f: float, ref: float) -> float:
    return 1200.0 * np.log2(f / ref)


def acf_f0(x: np.ndarray, sr: int, upsample: int = 4) -> float:
    """Coarse f0 from the normalised autocorrelation (no prior on the pitch).

    The autocorrelation is evaluated on a ``upsample``-times finer lag grid
    (band-limited interpolation by zero padding the power spectrum), so that
    short periods of a few samples (high notes at 16 kHz) are not biased
    towards multiples of the period.
    """
    x = x - x.mean()
    n = len(x)
    nfft = 1 << int(np.ceil(np.log2(2 * n)))
    spec = np.fft.rfft(x, nfft)
    acf = np.fft.irfft(np.abs(spec) ** 2, nfft * upsample) * upsample
    acf = acf[: n * upsample]
    if acf[0] <= 0:
        return float("nan")
    lags = np.arange(len(acf)) / upsample  # in samples
    # unbiased normalisation
    acf = acf / acf[0] * n / (n - lags)
    lo = int(np.floor(sr / FMAX * upsample))
    hi = min(int(np.ceil(sr / FMIN * upsample)), (n // 2) * upsample)
    seg = acf[lo:hi]
    # local maxima
    idx = np.flatnonzero((seg[1:-1] > seg[:-2]) & (seg[1:-1] >= seg[2:])) + 1
    if idx.size == 0:
        return float("nan")
    best = seg[idx].max()
    first = idx[np.flatnonzero(seg[idx] >= 0.9 * best)[0]]
    lag = lo + first
    # parabolic interpolation of the lag
    a, b, c = acf[lag - 1], acf[lag], acf[lag + 1]
    denom = a - 2 * b + c
    shift = 0.5 * (a - c) / denom if denom != 0 else 0.0
    return sr * upsample / (lag + shift)


def fft_peak(x: np.ndarray, sr: int, f_guess: float, rel_width: float = 0.03) -> float:
    """Refine a frequency with the interpolated FFT peak near ``f_guess``."""
    x = (x - x.mean()) * np.hanning(len(x))
    nfft = max(1 << 20, 1 << int(np.ceil(np.log2(len(x)))))
    mag = np.abs(np.fft.rfft(x, nfft))
    freqs = np.fft.rfftfreq(nfft, 1.0 / sr)
    band = np.flatnonzero((freqs >= f_guess * (1 - rel_width)) & (freqs <= f_guess * (1 + rel_width)))
    k = band[np.argmax(mag[band])]
    la, lb, lc = np.log(mag[k - 1] + 1e-30), np.log(mag[k] + 1e-30), np.log(mag[k + 1] + 1e-30)
    denom = la - 2 * lb + lc
    shift = 0.5 * (la - lc) / denom if denom != 0 else 0.0
    return (k + shift) * sr / nfft


def analyse(path: Path) -> dict:
    import soundfile as sf

    pcm, sr = sf.read(str(path), dtype="int16", always_2d=True)
    x = pcm.astype(np.float64).mean(axis=1) / 32768.0
    n = len(x)
    peak = float(np.max(np.abs(x))) if n else 0.0
    mid = x[n // 4: 3 * n // 4]
    f_coarse = acf_f0(mid, sr)
    f0 = fft_peak(mid, sr, f_coarse) if np.isfinite(f_coarse) else float("nan")
    # frame-wise spread (vibrato / drift check)
    hop = int(0.05 * sr)
    frame_f = []
    for start in range(0, len(mid) - 2 * hop, hop):
        fr = acf_f0(mid[start:start + 2 * hop], sr)
        if np.isfinite(fr) and np.isfinite(f0) and abs(cents(fr, f0)) < 600:
            frame_f.append(fr)
    spread = float(np.std([cents(f, f0) for f in frame_f])) if frame_f else float("nan")
    return {
        "sr": sr,
        "channels": pcm.shape[1],
        "duration": n / sr,
        "peak": peak,
        "peak_int": int(np.max(np.abs(pcm.astype(np.int32)))) if n else 0,
        "f_coarse": f_coarse,
        "f0": f0,
        "spread_cents": spread,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("directory", nargs="?", default=str(Path(__file__).resolve().parent / "notes"))
    p.add_argument("--tolerance_cents", type=float, default=10.0)
    p.add_argument("--silence_db", type=float, default=-60.0)
    args = p.parse_args(argv)

    files = sorted(f for f in Path(args.directory).iterdir() if NAME_RE.match(f.name))
    if not files:
        print(f"error: no clarinet_mNNN_DYN.(wav|flac) files in {args.directory}", file=sys.stderr)
        return 2

    failures = []
    devs = []
    total_s = 0.0
    total_bytes = 0
    print("| file | MIDI | expected Hz | measured Hz | deviation (cents) | frame spread (cents) "
          "| duration (s) | peak (dBFS) | status |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for f in files:
        midi = int(NAME_RE.match(f.name).group(1))
        r = analyse(f)
        ref = midi_to_hz(midi)
        dev = cents(r["f0"], ref) if np.isfinite(r["f0"]) else float("nan")
        peak_db = 20 * np.log10(r["peak"]) if r["peak"] > 0 else float("-inf")
        problems = []
        if not np.isfinite(dev) or abs(dev) > args.tolerance_cents:
            problems.append("PITCH")
        if peak_db < args.silence_db:
            problems.append("SILENT")
        if r["peak_int"] >= 32767:
            problems.append("CLIPPED")
        status = ",".join(problems) if problems else "ok"
        if problems:
            failures.append(f.name)
        if np.isfinite(dev):
            devs.append(dev)
        total_s += r["duration"]
        total_bytes += f.stat().st_size
        print(f"| {f.name} | {midi} | {ref:.2f} | {r['f0']:.2f} | {dev:+.2f} | "
              f"{r['spread_cents']:.2f} | {r['duration']:.2f} | {peak_db:.1f} | {status} |")
    print()
    print(f"files: {len(files)}, total duration: {total_s:.2f} s, total size: "
          f"{total_bytes} bytes ({total_bytes / 1e6:.2f} MB)")
    if devs:
        print(f"deviation: min {min(devs):+.2f} c, max {max(devs):+.2f} c, "
              f"mean {np.mean(devs):+.2f} c, max |dev| {max(abs(d) for d in devs):.2f} c")
    if failures:
        print(f"FAILED ({len(failures)}): {', '.join(failures)}")
        return 1
    print(f"all files within {args.tolerance_cents:g} cents, none silent or clipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
