"""The eval's CREPE on the generated audio: its cost and what the f0 metrics read, per CREPE choice.

The eval step runs CREPE on every generated example to measure its pitch (f0 L1, outliers:
`ddsp_core.evaluation.metrics.F0LoudnessMetrics`). With full CREPE on every 250 frames/s frame
this dominates the eval of the full and hq presets. This benchmark generates the eval's audio
once per trained model (as the eval step does: `steps.evaluate` with the quick preset's batches,
on the seeds benchmark's datasets), then measures that SAME audio with each choice of CREPE
(capacity, and the frame rate CREPE runs at: `F0LoudnessMetrics.crepe_frame_rate`) and prints,
per choice, CREPE's CPU seconds per second of audio (TensorFlow on one thread: one core) and the f0
metrics, with their distance from the reference choice (full CREPE on every frame).

    python -m benchmarks.eval_crepe --markdown                       # after-seed1 and -seed5, dry set
    python -m benchmarks.eval_crepe --runs after-seed1 --choices full@250,full@50
    python -m benchmarks.eval_crepe --smoke                          # synthesized tones, tiny CREPE

The generated audio is kept under --out (eval_crepe/<run>-<set>.npz) and reused.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import common

SEEDS_OUT = os.path.join(common.ROOT, "out", "bench", "seeds")
DEFAULT_OUT = os.path.join(common.ROOT, "out", "bench", "eval_crepe")
# capacity@frames per second CREPE runs at (the features' rate is 250): the reference first.
CHOICES = ("full@250", "full@50", "tiny@250", "full@25", "full@125", "medium@250", "small@250")
# The metrics compared, and the full and hq presets' input-confidence threshold.
F0_METRICS = ("f0_l1_cents", "f0_outlier_ratio", "f0_l1_cents_stable", "f0_outlier_ratio_stable",
              "lowest_register_f0_l1_cents", "middle_register_f0_l1_cents")
MIN_F0_CONFIDENCE = 0.85
FEATURES = ("f0_hz", "f0_confidence", "loudness_db")


def parse_choice(text):
    capacity, _, rate = text.partition("@")
    return capacity, float(rate) if rate else None


def capture(dataset, model, path):
    """Runs the eval step's generation on `dataset` with `model`; writes its batches' features and audio to path.

    Call it once per process (gin and Keras state, as the pipeline runs each step): `main` runs it in a worker.
    """
    import gin
    import numpy as np

    from ddsp_core.evaluation import evaluators
    from ddsp_core.steps import steps

    collected = []

    @gin.register(module="eval_crepe")
    class Capture(evaluators.Evaluator):
        def update(self, batch, outputs, losses):
            collected.append({**{key: np.asarray(batch[key]) for key in (*FEATURES, "audio")},
                              "audio_gen": np.asarray(outputs["audio_synth"]),
                              "sample_rate": self.sample_rate, "frame_rate": self.frame_rate})

    with tempfile.TemporaryDirectory(prefix="eval_crepe_") as eval_dir:
        steps.evaluate(dataset, model, eval_dir, preset="quick",
                       gin_params=["evaluate.evaluator_classes = [@eval_crepe.Capture]"])
    arrays = {f"{key}_{i}": value for i, batch in enumerate(collected) for key, value in batch.items()}
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.savez(path + ".tmp.npz", **arrays)
    os.replace(path + ".tmp.npz", path)


def load_batches(path):
    import numpy as np

    with np.load(path) as data:
        n = len([key for key in data.files if key.startswith("audio_gen_")])
        keys = [key for key in (*FEATURES, "audio_gen", "audio", "sample_rate", "frame_rate") if f"{key}_0" in data.files]
        return [{key: data[f"{key}_{i}"] for key in keys} for i in range(n)]


def captured_sets(runs, sets, seeds_out, out, with_original=False):
    """{'<run> <set>': batches} of the eval's generated audio per seeds-benchmark run (comma-separated) and eval
    set, captured once into out/<run>-<set>.npz (in a worker process) and reused; with_original, captured
    again when a file lacks the original audio (captured before it was kept)."""
    found = {}
    for run in [name.strip() for name in runs.split(",") if name.strip()]:
        for name in [name.strip() for name in sets.split(",") if name.strip()]:
            path = os.path.join(out, f"{run}-{name}.npz")
            if with_original and os.path.exists(path) and "audio" not in load_batches(path)[0]:
                os.remove(path)  # A cache of generated audio: captured again below, with the original.
            if not os.path.exists(path):
                print(f"generate: {run} on {name}", flush=True)
                subprocess.run(common.module_command(
                    "benchmarks.eval_crepe", "--capture", os.path.join(seeds_out, "datasets", name),
                    os.path.join(seeds_out, "runs", run, "model"), path), check=True, cwd=common.ROOT)
            found[f"{run} {name}"] = load_batches(path)
    return found


def emit(row):
    """Prints one measured row as JSON (progress as it comes) and returns it."""
    print(json.dumps(row), flush=True)
    return row


def finish(rows, table_text, json_path=""):
    """Prints the table; writes the rows to json_path when given."""
    print(table_text)
    if json_path:
        with open(json_path, "w") as handle:
            json.dump(rows, handle, indent=1)


def measure(batches, choice, precision="auto"):
    """{'choice', 'crepe_s', 'audio_s', 's_per_s', 'settings', metrics...} of one choice on the batches."""
    import ddsp_core.training  # noqa: F401 (first: it imports the evaluation modules in their order)
    from ddsp_core.evaluation.metrics import F0LoudnessMetrics

    class Timed(F0LoudnessMetrics):
        """Adds up the CPU seconds of the eval's CREPE (framing, network, decoding; this process's, so other
        jobs on a shared machine do not count) and the seconds of audio it ran on."""

        crepe_s = audio_s = 0.0

        def _track_f0(self, audio_gen):
            started = time.process_time()
            result = super()._track_f0(audio_gen)
            self.crepe_s += time.process_time() - started
            self.audio_s += audio_gen.size / self.sample_rate
            return result

    capacity, rate = parse_choice(choice)
    metrics = Timed(sample_rate=int(batches[0]["sample_rate"]), frame_rate=int(batches[0]["frame_rate"]),
                                crepe_capacity=capacity, crepe_precision=precision, crepe_frame_rate=rate,
                                min_f0_confidence=MIN_F0_CONFIDENCE,
                                # As the results in RESULTS.md were measured (benchmarks/f0_floor.py: with the screen).
                                screen_unreadable_frames=False)
    metrics._track_f0(batches[0]["audio_gen"][:1])  # Load and trace, untimed.
    metrics.crepe_s = metrics.audio_s = 0.0
    for batch in batches:
        metrics.update_state({key: batch[key] for key in FEATURES}, batch["audio_gen"])
    result = metrics.result()
    return {"choice": choice, "crepe_s": metrics.crepe_s, "audio_s": metrics.audio_s,
            "s_per_s": metrics.crepe_s / metrics.audio_s, "settings": metrics.settings(),
            "n_confident_frames": result["n_confident_frames"],
            **{name: result[name] for name in F0_METRICS}}


def table(rows, markdown=False):
    """One line per (set, choice): CREPE s per s of audio, speed-up, each metric and its change from the first choice."""
    lines = ["| audio | choice | CREPE CPU s / s audio | speed-up | " + " | ".join(F0_METRICS) + " |",
             "|---|---|---:|---:|" + "---:|" * len(F0_METRICS)]
    reference = {}
    for row in rows:
        base = reference.setdefault(row["set"], row)
        cells = []
        for name in F0_METRICS:
            value, base_value = row[name], base[name]
            if value is None:
                cells.append("-")
                continue
            scale, unit = (100.0, " pt") if "ratio" in name else (1.0, "")
            text = f"{value * scale:.2f}"
            if row is not base and base_value is not None:
                text += f" ({(value - base_value) * scale:+.2f}{unit})"
            cells.append(text)
        lines.append(f"| {row['set']} | {row['choice']} | {row['s_per_s']:.3f} | "
                     f"{base['s_per_s'] / row['s_per_s']:.1f}x | " + " | ".join(cells) + " |")
    return "\n".join(lines) if markdown else "\n".join(line.replace("|", " ").strip() for line in lines
                                                       if not line.startswith("|---"))


def smoke_batches():
    """Two batches of two 1 s tones (220 and 330 Hz, a glide), 'generated' a few cents sharp: no model needed."""
    import numpy as np

    sample_rate, frame_rate, n = 16000, 250, 16000
    t = np.arange(n) / sample_rate
    batches = []
    for f0s in ((220.0, 330.0), (262.0, 392.0)):
        f0_in = np.stack([np.full(frame_rate + 1, f0) for f0 in f0s])
        audio = np.stack([sum(0.3 / k * np.sin(2 * np.pi * k * f0 * 1.01 * t) for k in range(1, 6)) for f0 in f0s])
        batches.append({"f0_hz": f0_in, "f0_confidence": np.ones_like(f0_in),
                        "loudness_db": np.full_like(f0_in, -20.0), "audio_gen": audio.astype(np.float32),
                        "sample_rate": sample_rate, "frame_rate": frame_rate})
    return batches


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--capture":  # The worker: dataset, model, path.
        capture(*argv[1:])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="after-seed1,after-seed5", help="Runs of the seeds benchmark (its --out).")
    parser.add_argument("--sets", default="dry", help="Eval sets: dry, room.")
    parser.add_argument("--choices", default=",".join(CHOICES), help="capacity@frames per second; the first is "
                                                                     "the reference.")
    parser.add_argument("--seeds-out", default=SEEDS_OUT, help="The seeds benchmark's --out (datasets, runs).")
    parser.add_argument("--out", default=DEFAULT_OUT, help="Where the generated audio is kept.")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads (1: one core).")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--json", default="", help="Also write the rows here.")
    parser.add_argument("--smoke", action="store_true", help="Synthesized tones, tiny CREPE at 250 and 50 frames/s.")
    args = parser.parse_args(argv)

    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    print(f"# {common.machine_description()}\n# {common.code_description()}, {args.threads} TensorFlow thread(s), "
          f"min_f0_confidence {MIN_F0_CONFIDENCE}, crepe_precision auto", flush=True)
    choices = [choice.strip() for choice in args.choices.split(",") if choice.strip()]
    rows = []
    if args.smoke:
        sets = {"smoke tones": smoke_batches()}
        choices = ["tiny@250", "tiny@50"]
    else:
        sets = captured_sets(args.runs, args.sets, args.seeds_out, args.out)
    for name, batches in sets.items():
        for choice in choices:
            rows.append(emit({"set": name, **measure(batches, choice)}))
    finish(rows, table(rows, args.markdown), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
