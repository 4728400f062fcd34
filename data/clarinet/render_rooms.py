#!/usr/bin/env python3
"""Put the clarinet material in a (synthetic) room: seeded reverberation, reproducibly.

The bundled sets are dry: FluidSynth renders them with reverb and chorus off.
This script convolves each file with a synthetic room impulse response (RIR)
of its own, so that quality claims can be checked on reverberant audio too.

The impulse response (``room_impulse_response``), at ``sample_rate`` Hz::

    h[0] = 1                                  direct path
    h[1 : n_pre] = 0                          pre-delay, n_pre = round(predelay_s * sample_rate)
    h[n_pre + i] = g * (low[i] * env(i / sample_rate, rt60_s)
                        + high[i] * env(i / sample_rate, hf_rt60_ratio * rt60_s))
    env(t, T) = exp(-6.9078 * t / T)          amplitude; the energy falls 60 dB in T seconds

``low`` and ``high`` are one white Gaussian noise sequence split at
``hf_crossover_hz`` (brick-wall, in the frequency domain; they add up to the
noise), so below the crossover the tail decays with ``rt60_s`` and above it
faster, with ``hf_rt60_ratio * rt60_s`` (air and wall absorption of the highs;
``hf_rt60_ratio=1`` turns that off).  ``g`` sets the direct-to-reverberant
energy ratio: ``10 * log10(h[0] ** 2 / sum(h[n_pre:] ** 2)) == drr_db``.  The
tail lasts until the slower band has fallen ``tail_db`` (80) dB: 60 dB plus a
margin, ``ceil(tail_db / 60 * rt60_s * sample_rate)`` samples.  The noise comes
from ``numpy.random.default_rng(seed)``: the same seed gives the same samples.

Each file gets its own RIR: ``file_seed(master_seed, name)`` is
``zlib.crc32(f"{master_seed}/{name}")`` of the file's base name (stable across
machines and Python versions, unlike ``hash()``), and its RT60 is drawn
uniformly from ``rt60_range`` (0.3 to 0.9 s by default) with
``numpy.random.default_rng([seed, 1])``.

Each output file (same name as its source, in the output folder) is the full
convolution of the dry file with its RIR, ``len(dry) + len(rir) - 1`` samples
(the reverb of the last note is not cut off), scaled so that its peak equals
the dry file's peak (levels stay comparable; it cannot clip where the dry file
did not), written as 16-bit FLAC at the dry file's rate.  A JSON sidecar next
to it records the source, the seeds, RT60, DRR, the other RIR settings, the
RT60 measured back from the RIR, and the source's own sidecar (its score) if
it has one.  Everything is written to a temporary name first and then moved
into place.  Only numpy and soundfile are needed.

    python data/clarinet/render_rooms.py --input 'data/clarinet/validation/*.flac' \\
        --output data/clarinet/validation_room --seed 0
    python data/clarinet/render_rooms.py --input 'data/clarinet/train/*.flac' \\
        --output out/rooms/train --seed 0 --rt60-range 0.3,0.9

What it does not model: the early reflections of a real room (their pattern,
their density building up: the tail starts at full density after the
pre-delay), a source or microphone position, frequency dependence beyond two
bands, modes of small rooms, and anything spatial (mono in, mono out).
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import json
import math
import os
import sys
import zlib
from pathlib import Path

import numpy as np

FORMAT = "clarinet-room/1"
GENERATOR = "data/clarinet/render_rooms.py"
LN_1000 = 3.0 * math.log(10.0)  # 6.9078: an amplitude envelope exp(-LN_1000 * t / T) falls 60 dB in T
RT60_RANGE_S = (0.3, 0.9)
DRR_DB = 3.0
PREDELAY_S = 0.005
HF_CROSSOVER_HZ = 4000.0
HF_RT60_RATIO = 0.7
TAIL_DB = 80.0
FULL_SCALE = 32768.0  # soundfile reads 16-bit PCM as int / 32768
SIDECAR_SUFFIX = ".json"


class RoomError(Exception):
    """A file cannot be made; the message names it and what to do."""


# ----------------------------------------------------------------------------- DSP (numpy only)

def room_impulse_response(rt60_s: float, sample_rate: int, seed: int, *, drr_db: float = DRR_DB,
                          predelay_s: float = PREDELAY_S, hf_crossover_hz: float = HF_CROSSOVER_HZ,
                          hf_rt60_ratio: float = HF_RT60_RATIO, tail_db: float = TAIL_DB) -> np.ndarray:
    """A synthetic room impulse response: direct path, pre-delay, exponentially decaying noise.

    Args:
        rt60_s: Time in seconds in which the tail's energy falls 60 dB (below
            hf_crossover_hz). > 0.
        sample_rate: Samples per second (Hz).
        seed: Seed of numpy.random.default_rng for the noise (int >= 0).
        drr_db: Direct-to-reverberant energy ratio in dB: h[0]**2 over the
            energy of the tail.
        predelay_s: Seconds from the direct path to the start of the tail.
        hf_crossover_hz: Above this frequency (Hz) the tail decays with
            hf_rt60_ratio * rt60_s; at or above Nyquist, one band.
        hf_rt60_ratio: RT60 above the crossover over rt60_s, in (0, 1].
        tail_db: How far (dB) the slower band has fallen when the tail ends.

    Returns:
        float64 array, shape [n_pre + ceil(tail_db / 60 * rt60_s * sample_rate)],
        with h[0] = 1.0 (the direct path) and h[1:n_pre] = 0.
    """
    if not rt60_s > 0 or not sample_rate > 0:
        raise ValueError(f"rt60_s and sample_rate must be > 0, got {rt60_s}, {sample_rate}")
    if not 0 < hf_rt60_ratio <= 1:
        raise ValueError(f"hf_rt60_ratio must be in (0, 1], got {hf_rt60_ratio}")
    if predelay_s < 0 or tail_db <= 0:
        raise ValueError(f"predelay_s must be >= 0 and tail_db > 0, got {predelay_s}, {tail_db}")
    n_pre = max(1, int(round(predelay_s * sample_rate)))
    n_tail = int(math.ceil(tail_db / 60.0 * rt60_s * sample_rate))
    noise = np.random.default_rng(seed).standard_normal(n_tail)  # [n_tail]
    t = np.arange(n_tail) / sample_rate  # seconds from the start of the tail
    tail = noise * np.exp(-LN_1000 * t / rt60_s)
    if hf_rt60_ratio < 1 and hf_crossover_hz < sample_rate / 2:
        spectrum = np.fft.rfft(noise)  # [n_tail // 2 + 1]
        above = np.fft.rfftfreq(n_tail, 1.0 / sample_rate) >= hf_crossover_hz
        high = np.fft.irfft(np.where(above, spectrum, 0.0), n_tail)  # [n_tail]
        low = noise - high
        tail = (low * np.exp(-LN_1000 * t / rt60_s)
                + high * np.exp(-LN_1000 * t / (hf_rt60_ratio * rt60_s)))
    tail *= math.sqrt(10.0 ** (-drr_db / 10.0) / float(np.sum(tail ** 2)))
    h = np.zeros(n_pre + n_tail)
    h[0] = 1.0
    h[n_pre:] = tail
    return h


def convolve(audio: np.ndarray, ir: np.ndarray) -> np.ndarray:
    """Full linear convolution by FFT.

    Args:
        audio: Signal, shape [n_samples].
        ir: Impulse response, shape [n_ir].

    Returns:
        float64, shape [n_samples + n_ir - 1]: nothing of the tail is cut off.
    """
    n_out = len(audio) + len(ir) - 1
    n_fft = 1 << (n_out - 1).bit_length()
    spectrum = np.fft.rfft(audio, n_fft) * np.fft.rfft(ir, n_fft)  # [n_fft // 2 + 1]
    return np.fft.irfft(spectrum, n_fft)[:n_out]


def normalise_peak(audio: np.ndarray, peak: float) -> np.ndarray:
    """Scale audio so that max(|audio|) == peak (silence stays silence). Shape kept."""
    current = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio * (peak / current) if current > 0 else audio.copy()


def schroeder_rt60(ir: np.ndarray, sample_rate: int, fit_db: tuple[float, float] = (-5.0, -35.0)) -> float:
    """RT60 in seconds by Schroeder backward integration (T30: fit of -5 to -35 dB, times 2).

    Args:
        ir: Impulse response, shape [n_samples].
        sample_rate: Hz.
        fit_db: The range of the energy decay curve (dB re its start) fitted by a line.

    Returns:
        -60 / slope of the least-squares line through the decay curve in that
        range, in seconds.
    """
    edc = np.cumsum((ir.astype(np.float64) ** 2)[::-1])[::-1]  # [n_samples], energy from t on
    edc_db = 10.0 * np.log10(np.maximum(edc / edc[0], 1e-300))
    hi, lo = max(fit_db), min(fit_db)
    idx = np.flatnonzero((edc_db <= hi) & (edc_db >= lo))
    if idx.size < 2:
        raise ValueError(f"the decay curve does not cover {lo} to {hi} dB")
    slope = np.polyfit(idx / sample_rate, edc_db[idx], 1)[0]  # dB per second
    return float(-60.0 / slope)


# ----------------------------------------------------------------------------- per file

def file_seed(master_seed: int, name: str) -> int:
    """The seed of one file: crc32 of 'master_seed/name' (name: the base name, e.g. 'x.flac')."""
    return zlib.crc32(f"{int(master_seed)}/{name}".encode("utf-8"))


def draw_rt60(seed: int, rt60_range_s: tuple[float, float] = RT60_RANGE_S) -> float:
    """RT60 in seconds, uniform in rt60_range_s, from numpy.random.default_rng([seed, 1])."""
    lo, hi = rt60_range_s
    return float(np.random.default_rng([seed, 1]).uniform(lo, hi))


def reverberate_file(source: str | os.PathLike, master_seed: int = 0,
                     rt60_range_s: tuple[float, float] = RT60_RANGE_S, drr_db: float = DRR_DB,
                     hf_rt60_ratio: float = HF_RT60_RATIO) -> tuple[np.ndarray, int, dict]:
    """The reverberant version of one mono audio file, without writing anything.

    Returns:
        (pcm, sample_rate, sidecar): pcm is int16, shape [n_source + n_ir - 1],
        whose peak is the source's (within 16-bit rounding); sidecar is the
        record written next to it.
    """
    import soundfile as sf

    source = Path(source)
    try:
        dry, sr = sf.read(str(source), dtype="float64", always_2d=True)  # [n, channels]
    except Exception as exc:  # soundfile raises LibsndfileError, RuntimeError, TypeError...
        raise RoomError(f"{source}: cannot read it as audio ({exc}); give --input a pattern that "
                        f"matches audio files only, e.g. 'dir/*.flac'") from exc
    if dry.shape[1] != 1:
        raise RoomError(f"{source}: has {dry.shape[1]} channels; only mono is supported, "
                        f"mix it down first")
    dry = dry[:, 0]  # [n]
    seed = file_seed(master_seed, source.name)
    rt60_s = draw_rt60(seed, rt60_range_s)
    ir = room_impulse_response(rt60_s, sr, seed, drr_db=drr_db, hf_rt60_ratio=hf_rt60_ratio)
    dry_peak = float(np.max(np.abs(dry))) if dry.size else 0.0
    peak = min(dry_peak, 32767.0 / FULL_SCALE)
    wet = normalise_peak(convolve(dry, ir), peak)  # [n + n_ir - 1]
    pcm = np.clip(np.round(wet * FULL_SCALE), -32768, 32767).astype(np.int16)
    score = None
    score_path = source.with_suffix(SIDECAR_SUFFIX)
    if score_path.is_file():
        try:
            score = json.loads(score_path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise RoomError(f"{score_path}: not valid JSON ({exc}); fix or remove it") from exc
    sidecar = {
        "format": FORMAT,
        "file": source.name,
        "source_file": source.name,
        "source_sha256": hashlib.sha256(source.read_bytes()).hexdigest(),
        "generator": GENERATOR,
        "sample_rate": int(sr),
        "source_samples": int(len(dry)),
        "samples": int(len(pcm)),
        "duration_s": round(len(pcm) / sr, 6),
        "master_seed": int(master_seed),
        "seed": seed,
        "rt60_range_s": [float(rt60_range_s[0]), float(rt60_range_s[1])],
        "rt60_s": rt60_s,
        "drr_db": float(drr_db),
        "predelay_s": PREDELAY_S,
        "hf_crossover_hz": HF_CROSSOVER_HZ,
        "hf_rt60_ratio": float(hf_rt60_ratio),
        "tail_db": TAIL_DB,
        "ir_samples": int(len(ir)),
        "rt60_measured_broadband_s": round(schroeder_rt60(ir, sr), 4),
        "peak_dbfs": round(20 * math.log10(dry_peak), 2) if dry_peak > 0 else None,
        "source_sidecar": score,
    }
    return pcm, int(sr), sidecar


def dump_sidecar(sidecar: dict) -> str:
    """JSON text with one key per line, and one line per key of the nested source sidecar."""
    def block(d: dict, indent: str) -> str:
        lines = []
        for k, v in d.items():
            text = block(v, indent + "  ") if isinstance(v, dict) and indent == "  " else json.dumps(v)
            lines.append(f"{indent}{json.dumps(k)}: {text}")
        return "{\n" + ",\n".join(lines) + "\n" + indent[:-2] + "}"
    text = block(sidecar, "  ") + "\n"
    json.loads(text)  # sanity
    return text


def _write_atomically(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_room_file(pcm: np.ndarray, sample_rate: int, sidecar: dict, out_dir: str | os.PathLike) -> Path:
    """Writes out_dir/<file> (16-bit FLAC) and its .json sidecar, each atomically. Returns the FLAC path."""
    import soundfile as sf

    out_dir = Path(out_dir)
    flac = out_dir / sidecar["file"]
    _write_atomically(flac, lambda p: sf.write(str(p), pcm, sample_rate, format="FLAC", subtype="PCM_16"))
    _write_atomically(flac.with_suffix(SIDECAR_SUFFIX),
                      lambda p: p.write_text(dump_sidecar(sidecar), encoding="utf-8"))
    return flac


# ----------------------------------------------------------------------------- CLI

def _rt60_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers like 0.3,0.9, got {text!r}") from None
    if not 0 < lo <= hi <= 10:
        raise argparse.ArgumentTypeError(f"need 0 < low <= high <= 10 seconds, got {text!r}")
    return lo, hi


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="Convolve mono audio files with seeded synthetic room impulse responses "
                    "(one RT60 per file) and write 16-bit FLAC plus a JSON sidecar per file.")
    p.add_argument("--input", required=True,
                   help="glob of the dry files, quoted, e.g. 'data/clarinet/validation/*.flac'")
    p.add_argument("--output", required=True, help="output folder (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    p.add_argument("--rt60-range", type=_rt60_range, default=RT60_RANGE_S, metavar="LOW,HIGH",
                   help="seconds; each file's RT60 is drawn uniformly from it (default 0.3,0.9)")
    p.add_argument("--drr-db", type=float, default=DRR_DB,
                   help=f"direct-to-reverberant energy ratio in dB (default {DRR_DB})")
    p.add_argument("--hf-rt60-ratio", type=float, default=HF_RT60_RATIO,
                   help=f"RT60 above {HF_CROSSOVER_HZ:.0f} Hz over the RT60 below it, in (0, 1] "
                        f"(default {HF_RT60_RATIO}; 1: the same decay at all frequencies)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("-q", "--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 < args.hf_rt60_ratio <= 1:
        parser.error("--hf-rt60-ratio must be in (0, 1]")
    sources = sorted(Path(p) for p in glob.glob(args.input) if not p.endswith(SIDECAR_SUFFIX))
    out_dir = Path(args.output)
    try:
        if not sources:
            raise RoomError(f"no files match --input {args.input!r}; quote the pattern and check the path")
        names = [s.name for s in sources]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise RoomError(f"several input files are named {dup[0]}; their outputs would collide: "
                            f"give one folder per run")
        if any(s.parent.resolve() == out_dir.resolve() for s in sources):
            raise RoomError(f"--output {out_dir} is the input folder; choose another folder")
        targets = [out_dir / n for n in names] + [(out_dir / n).with_suffix(SIDECAR_SUFFIX) for n in names]
        existing = [t for t in targets if t.exists()]
        if existing and not args.overwrite:
            raise RoomError(f"{existing[0]} exists ({len(existing)} of the output files do); "
                            f"pass --overwrite to replace them, or choose another --output")
        out_dir.mkdir(parents=True, exist_ok=True)
        total_s = 0.0
        for source in sources:
            pcm, sr, sidecar = reverberate_file(source, args.seed, args.rt60_range, args.drr_db,
                                                args.hf_rt60_ratio)
            path = write_room_file(pcm, sr, sidecar, out_dir)
            total_s += len(pcm) / sr
            if not args.quiet:
                print(f"{path}: rt60 {sidecar['rt60_s']:.3f} s "
                      f"(broadband T30 {sidecar['rt60_measured_broadband_s']:.3f} s), seed {sidecar['seed']}, "
                      f"{len(pcm) / sr:.2f} s, peak {sidecar['peak_dbfs']} dBFS")
    except (RoomError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"{len(sources)} files, {total_s:.1f} s, written to {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
