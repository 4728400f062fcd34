"""f0 outliers: the yardstick's floor. What does the f0 metric read on audio that follows the input exactly?

The eval's f0 figures compare CREPE's reading of the generated audio with the input f0 (CREPE's
reading of the original recording). This benchmark measures three sources on the same eval
batches, with the eval's own metric (`F0LoudnessMetrics`, the unreadable-frame screen on):

    original    the original recording itself: it has the input's f0 by definition
    tone        `reference_tone` of the input f0 and loudness: a synth that follows them exactly
    model       a trained model's generated audio (the eval step's, as `eval_crepe` captures it)

for each CREPE choice (capacity@frames per second CREPE runs at, with the input-confidence
threshold of the preset that uses it), and prints per (run, choice, source) the outlier ratio on
every confident frame (the definition before the screen), on the readable frames (the metric now),
the share of frames left out as unreadable, and f0 L1 both ways.

    python -m benchmarks.f0_floor --markdown                       # after-seed1, dry, tiny@250 and full@50
    python -m benchmarks.f0_floor --runs after-seed1,before-seed2 --choices tiny@250
    python -m benchmarks.f0_floor --smoke                          # synthesized tones, tiny CREPE

It reads the seeds benchmark's datasets and runs (`--seeds-out`) and keeps the generated audio
under out/bench/eval_crepe (shared with `eval_crepe`).
"""

import argparse
import sys

from benchmarks import common, eval_crepe

# capacity@rate -> min_f0_confidence: the quick preset's eval (tiny on every frame, 0.5), full's (full at 50, 0.85).
CHOICES = {"tiny@250": 0.5, "full@50": 0.85}
SOURCES = ("original", "tone", "model")
COLUMNS = (("f0_outlier_ratio_every_frame", "outliers, every frame"), ("f0_outlier_ratio", "outliers, readable"),
           ("f0_unreadable_ratio", "unreadable"), ("f0_l1_cents_every_frame", "f0 L1 every frame (cents)"),
           ("f0_l1_cents", "f0 L1 readable (cents)"), ("f0_outliers_at_transitions", "every-frame outliers at transitions"))


def source_audio(batch, source):
    """[batch, n_samples] audio of one source for a captured batch."""
    from ddsp_core.evaluation import reference_tone

    if source == "original":
        return batch["audio"]
    if source == "tone":
        return reference_tone.reference_tone(batch["f0_hz"], batch["loudness_db"], batch["audio_gen"].shape[1],
                                             int(batch["sample_rate"]))
    return batch["audio_gen"]


def measure(batches, choice, source):
    """The metric's f0 figures of one source under one CREPE choice (each source's metric runs CREPE on the
    reference tone again: the same mask three times, a benchmark's simplicity over its speed)."""
    from ddsp_core.evaluation.metrics import F0LoudnessMetrics

    capacity, rate = eval_crepe.parse_choice(choice)
    metric = F0LoudnessMetrics(sample_rate=int(batches[0]["sample_rate"]), frame_rate=int(batches[0]["frame_rate"]),
                               crepe_capacity=capacity, crepe_precision="auto", crepe_frame_rate=rate,
                               min_f0_confidence=CHOICES.get(choice, 0.85))
    for batch in batches:
        metric.update_state({key: batch[key] for key in eval_crepe.FEATURES}, source_audio(batch, source))
    result = metric.result()
    return {"choice": choice, "source": source, "min_f0_confidence": metric.min_f0_confidence,
            "n_confident_frames": result["n_confident_frames"], **{name: result[name] for name, _ in COLUMNS}}


def table(rows, markdown=False):
    lines = ["| audio | CREPE | source | " + " | ".join(heading for _, heading in COLUMNS) + " |",
             "|---|---|---|" + "---:|" * len(COLUMNS)]
    for row in rows:
        cells = []
        for name, _ in COLUMNS:
            value = row[name]
            if value is None:
                cells.append("-")
            elif "ratio" in name or "outliers_at" in name:
                cells.append(f"{100.0 * value:.2f} %")
            else:
                cells.append(f"{value:.1f}")
        lines.append(f"| {row['set']} | {row['choice']} (conf >= {row['min_f0_confidence']}) | {row['source']} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) if markdown else "\n".join(line.replace("|", " ").strip() for line in lines
                                                       if not line.startswith("|---"))


def smoke_batches():
    """eval_crepe's smoke tones with their own audio as the 'original'."""
    batches = eval_crepe.smoke_batches()
    for batch in batches:
        batch["audio"] = batch["audio_gen"]
    return batches


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="after-seed1", help="Runs of the seeds benchmark (its --out).")
    parser.add_argument("--sets", default="dry", help="Eval sets: dry, room.")
    parser.add_argument("--choices", default=",".join(CHOICES), help="capacity@frames per second.")
    parser.add_argument("--batches", type=int, default=0, help="Only the first N batches (0: all).")
    parser.add_argument("--seeds-out", default=eval_crepe.SEEDS_OUT, help="The seeds benchmark's --out.")
    parser.add_argument("--out", default=eval_crepe.DEFAULT_OUT, help="Where the generated audio is kept.")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", default="", help="Also write the rows here.")
    parser.add_argument("--smoke", action="store_true", help="Synthesized tones, tiny CREPE.")
    args = parser.parse_args(argv)

    print(f"# {common.machine_description()}\n# {common.code_description()}", flush=True)
    choices = [choice.strip() for choice in args.choices.split(",") if choice.strip()]
    if args.smoke:
        sets, choices = {"smoke tones": smoke_batches()}, ["tiny@250"]
    else:
        sets = {name: batches[:args.batches] if args.batches else batches for name, batches in
                eval_crepe.captured_sets(args.runs, args.sets, args.seeds_out, args.out, with_original=True).items()}
    rows = []
    for name, batches in sets.items():
        for choice in choices:
            for source in SOURCES:
                rows.append(eval_crepe.emit({"set": name, **measure(batches, choice, source)}))
    eval_crepe.finish(rows, table(rows, args.markdown), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
