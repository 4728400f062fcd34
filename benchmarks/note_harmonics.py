"""The harmonic levels of one note: the original recording beside a trained model's output.

A per-pitch f0 figure far off on one note (e.g. the seeds benchmark's G#3 at 250 cents) says the
eval's CREPE read the generated audio at another pitch, not why. This benchmark measures, for
every eval example whose input f0 sits on the note (confident frames within half a semitone),
the level of harmonics 1..K relative to the strongest one, from one Hann-windowed spectrum of the
note's frames, in the original and in the generated audio, and their difference: a harmonic
that is much louder in the model than in the recording is one the tracker can lock onto. The
table gives per run the median over those examples, beside the training soundfont's own note of
that pitch (the bundled notes/ set); --json writes every example's levels.

    python -m benchmarks.note_harmonics --runs tilt6db-seed4,after-seed4 --midi 56 --markdown
    python -m benchmarks.note_harmonics --smoke       # synthesized tones, no model: ~5 s

It reads the generated audio that `eval_crepe` captures (under out/bench/eval_crepe, from the
seeds benchmark's runs; captured there when missing).
"""

import argparse
import os
import sys

import numpy as np

from benchmarks import eval_crepe

N_HARMONICS = 8
MIN_FRAMES = 25  # 0.1 s at 250 frames/s: enough for one spectrum that resolves a low note's harmonics.
MIN_CONFIDENCE = 0.5  # The quick preset's eval threshold.


def harmonic_levels_db(audio, sample_rate, f0_hz, n_harmonics=N_HARMONICS):
    """[n_harmonics] level of harmonics 1..n of f0_hz in `audio` (1-D, a steady stretch), in dB
    relative to the strongest of them: the peak magnitude of a Hann-windowed spectrum within
    +-3 % of k * f0_hz. The spectrum is zero-padded to at least 16 periods' worth of bins per f0
    (so a low note's +-3 % band holds bins even for a 0.1 s stretch). Harmonics at or above
    Nyquist read -inf; all -inf when none is below it."""
    n_fft = max(len(audio), int(np.ceil(16.0 * sample_rate / f0_hz)))
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio)), n_fft))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    levels = np.full(n_harmonics, -np.inf)
    for k in range(1, n_harmonics + 1):
        band = (freqs > 0.97 * k * f0_hz) & (freqs < 1.03 * k * f0_hz)
        if band.any() and k * f0_hz < sample_rate / 2:
            levels[k - 1] = 20.0 * np.log10(spectrum[band].max() + 1e-12)
    return levels - levels.max() if np.isfinite(levels).any() else levels


def note_stretches(batch, midi):
    """[(example index, first frame, last frame + 1)] of the batch's examples whose longest run of
    confident frames on `midi` (the nearest note, as the eval's per-pitch table assigns frames)
    lasts MIN_FRAMES or more."""
    from ddsp_core.evaluation import pitch_metrics

    on_note = (pitch_metrics.midi_notes(batch["f0_hz"]) == midi) & (batch["f0_confidence"] >= MIN_CONFIDENCE)
    found = []
    for index, row in enumerate(on_note):
        best, start = (0, 0, 0), None
        for frame, flag in enumerate(np.append(row, False)):
            if flag and start is None:
                start = frame
            elif not flag and start is not None:
                best, start = max(best, (frame - start, start, frame)), None
        if best[0] >= MIN_FRAMES:
            found.append((index, best[1], best[2]))
    return found


def measure(batches, midi):
    """One row per example on the note: its levels in the original and the generated audio."""
    rows = []
    for batch_index, batch in enumerate(batches):
        sample_rate, frame_rate = int(batch["sample_rate"]), int(batch["frame_rate"])
        hop = sample_rate // frame_rate
        for index, first, stop in note_stretches(batch, midi):
            f0_hz = float(np.median(batch["f0_hz"][index, first:stop]))
            span = slice(first * hop, stop * hop)
            original = harmonic_levels_db(batch["audio"][index, span], sample_rate, f0_hz)
            generated = harmonic_levels_db(batch["audio_gen"][index, span], sample_rate, f0_hz)
            rows.append({"example": f"{batch_index}/{index}", "frames": stop - first, "f0_hz": f0_hz,
                         "loudness_db": float(np.median(batch["loudness_db"][index, first:stop])),
                         "original_db": original.tolist(), "generated_db": generated.tolist()})
    return rows


def _difference(row):
    """generated - original per harmonic; nan where either is -inf (at or above Nyquist)."""
    generated, original = np.asarray(row["generated_db"]), np.asarray(row["original_db"])
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(generated) & np.isfinite(original), generated - original, np.nan)


def json_safe(row):
    """The row with non-finite levels (a harmonic at or above Nyquist) as None, so that it is valid JSON."""
    return {key: [level if np.isfinite(level) else None for level in value] if isinstance(value, list) else value
            for key, value in row.items()}


def summary(rows):
    """Per run: the median over its examples of the original's, the generated audio's and their
    difference's levels (dB per harmonic), and the number of examples."""
    runs = {}
    for row in rows:
        runs.setdefault(row["run"], []).append(row)
    return [{"run": run, "n_examples": len(found),
             "original_db": np.median([row["original_db"] for row in found], axis=0).tolist(),
             "generated_db": np.median([row["generated_db"] for row in found], axis=0).tolist(),
             "difference_db": np.median([_difference(row) for row in found], axis=0).tolist()}
            for run, found in runs.items()]


def training_note_levels(notes_folder, midi):
    """Levels of the bundled single note of `midi` (the training instrument's soundfont, notes/), from
    0.8 to 2.0 s into the file, where it is steady; None when there is no such file."""
    import glob

    import soundfile

    from ddsp_core.core import units

    paths = sorted(glob.glob(os.path.join(notes_folder, f"clarinet_m{midi:03d}_*.flac")))
    if not paths:
        return None
    audio, sample_rate = soundfile.read(paths[0], dtype="float32")
    return harmonic_levels_db(audio[int(0.8 * sample_rate):int(2.0 * sample_rate)], sample_rate,
                              float(units.midi_to_hz(midi))).tolist()


def table(summaries, training_levels=None, markdown=False):
    heads = [f"h{k}" for k in range(1, N_HARMONICS + 1)]
    lines = ["| run | examples | audio | " + " | ".join(heads) + " |", "|---|---:|---|" + "---:|" * N_HARMONICS]

    def cells(levels):
        return " | ".join("-" if not np.isfinite(level) else f"{round(level):+d}" for level in levels)

    if training_levels is not None:
        lines.append(f"| training soundfont | 1 | bundled note (notes/) | {cells(training_levels)} |")
    for found in summaries:
        if not found["n_examples"]:
            lines.append(f"| {found['run']} | 0 | no window on this note | " + " | ".join(["-"] * N_HARMONICS) + " |")
            continue
        for name in ("original", "generated", "difference"):
            lines.append(f"| {found['run']} | {found['n_examples']} | {name} | {cells(found[name + '_db'])} |")
    return "\n".join(lines) if markdown else "\n".join(line.replace("|", " ").strip() for line in lines
                                                       if not line.startswith("|---"))


def smoke_batches():
    """One batch of two 1 s tones at 220 Hz (MIDI 57): the original with harmonics at 1/k, the
    'generated' ones with their 5th harmonic 12 dB louder."""
    sample_rate, frame_rate, n = 16000, 250, 16000
    t = np.arange(n) / sample_rate
    original = sum(0.3 / k * np.sin(2 * np.pi * k * 220.0 * t) for k in range(1, 9))
    generated = original + (10 ** (12 / 20) - 1) * 0.3 / 5 * np.sin(2 * np.pi * 5 * 220.0 * t)
    f0_hz = np.full((2, frame_rate + 1), 220.0)
    return [{"f0_hz": f0_hz, "f0_confidence": np.ones_like(f0_hz), "loudness_db": np.full_like(f0_hz, -20.0),
             "audio": np.stack([original, original]).astype(np.float32),
             "audio_gen": np.stack([generated, generated]).astype(np.float32),
             "sample_rate": sample_rate, "frame_rate": frame_rate}]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="after-seed4", help="Runs of the seeds benchmark (its --out).")
    parser.add_argument("--sets", default="dry", help="Eval sets: dry, room.")
    parser.add_argument("--midi", type=int, default=56, help="The note (MIDI number; 56 is G#3).")
    parser.add_argument("--seeds-out", default=eval_crepe.SEEDS_OUT, help="The seeds benchmark's --out.")
    parser.add_argument("--out", default=eval_crepe.DEFAULT_OUT, help="Where the generated audio is kept.")
    parser.add_argument("--notes", default=os.path.join(eval_crepe.common.ROOT, "data", "clarinet", "notes"),
                        help="The training soundfont's single notes, for a reference row.")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", default="", help="Also write the rows here.")
    parser.add_argument("--smoke", action="store_true", help="Synthesized tones, no model.")
    args = parser.parse_args(argv)

    if args.smoke:
        sets, midi = {"smoke": smoke_batches()}, 57
    else:
        sets = eval_crepe.captured_sets(args.runs, args.sets, args.seeds_out, args.out, with_original=True)
        midi = args.midi
    rows = [{"run": name, "midi": midi, **row} for name, batches in sets.items() for row in measure(batches, midi)]
    summaries = summary(rows) + [{"run": name, "n_examples": 0} for name in sets
                                 if not any(row["run"] == name for row in rows)]
    for found in summaries:
        eval_crepe.emit(json_safe(found))
    training_levels = None if args.smoke else training_note_levels(args.notes, midi)
    eval_crepe.finish([json_safe(row) for row in rows], table(summaries, training_levels, args.markdown), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
