"""Time to quality: our quick recipe and magenta ddsp 3.7.0's solo instrument, same CPU, same data.

Both train on the same TFRecords of the bundled training material (written once by our
prepare job, tiny CREPE; magenta's `ddsp_run` reads them: same keys and lengths), each
with its own recipe and the whole machine, one after the other:

    ours      ddsp_run --mode=train, the quick preset's recipe: models/solo_instrument_dry.gin +
              augmentation/gain.gin, 1 s examples, batch 16, learning rate 1e-3 after a
              100-step warm-up
    magenta   its ddsp_run --mode=train, models/solo_instrument.gin (trainable reverb), its
              default 4 s examples, batch 16, learning rate 3e-4

Each run is stopped after its wall-time budget (counted from the command's start, so
start-up counts), saving a checkpoint every few steps. Then, for each time budget, the
newest checkpoint written within it resynthesizes the validation clarinet (the same 4 s
windows for both), and the same code measures both (`quality.measure`: loudness L1 overall
and on quiet frames, silent level, onset lag, f0 from CREPE tiny, spectral loss).

    python -m benchmarks.time_to_quality --markdown          # ~45 min: 10 min ours, 20 min magenta, evals
    python -m benchmarks.time_to_quality --smoke             # imports and settings only (no magenta here)

magenta's venv is conformance/magenta_venv.py's (with TensorBoard, which magenta's
training loop needs for its summaries); conformance/magenta_side/ is put first on its path,
for the `crepe` stand-in there.
"""

import argparse
import glob
import json
import os
import subprocess
import sys
import time

from benchmarks import quality  # Features, windows, metrics.
from conformance import magenta_venv
from ddsp_core.steps import presets

ROOT = quality.ROOT
QUICK = presets.get_preset("quick")  # Our recipe is the quick preset's, as `make run` trains it.
# The gin files and bindings of the pipeline's train step (steps.train) for the quick preset.
OURS_GIN = [QUICK.model_gin, "datasets/tfrecord.gin", *QUICK.gin_files]
OURS_PARAMS = [*QUICK.gin_params, f"batch_size = {QUICK.batch_size}", f"n_samples = {QUICK.example_format.n_samples}",
               f"TFRecordProvider.example_secs = {QUICK.example_format.example_secs}"]
MAGENTA_PARAMS = ["batch_size = 16"]
EVAL_SECS = 4.0


def prepare(folder, example_secs, hop_secs, for_magenta=False):
    """Our prepare job on the training material into `folder` (kept between runs); returns the shard glob.

    for_magenta: also add the feature 'audio_16k' (a copy of 'audio' at 16 kHz), which magenta
    3.7.0's TFRecordProvider requires whatever the sample rate; our job writes it only when
    the audio is not at 16 kHz.
    """
    from ddsp_core.training.data_preparation import ddsp_prepare_tfrecord

    prefix = os.path.join(folder, "train.tfrecord")
    if not glob.glob(prefix + "-*"):
        status = ddsp_prepare_tfrecord.main([
            f"--input_audio_filepatterns={quality.TRAIN_AUDIO}", f"--output_tfrecord_path={prefix}",
            f"--example_secs={example_secs}", f"--hop_secs={hop_secs}", "--crepe_capacity=tiny",
            "--num_shards=2", "--overwrite"])
        if status != 0:
            raise SystemExit(f"time_to_quality.py: the prepare job failed (exit {status})")
    if not for_magenta:
        return prefix + "*"
    magenta_prefix = os.path.join(folder, "magenta", "train.tfrecord")
    if not glob.glob(magenta_prefix + "-*"):
        _add_audio_16k(sorted(glob.glob(prefix + "-*")), magenta_prefix)
    return magenta_prefix + "*"


def _add_audio_16k(paths, prefix):
    import tensorflow as tf

    os.makedirs(os.path.dirname(prefix), exist_ok=True)
    for index, path in enumerate(paths):
        with tf.io.TFRecordWriter(f"{prefix}-{index:05d}-of-{len(paths):05d}") as writer:
            for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
                example = tf.train.Example.FromString(record)
                features = example.features.feature
                features["audio_16k"].float_list.value.extend(features["audio"].float_list.value)
                writer.write(example.SerializeToString())


def train_for(command, minutes, log_path, env=None):
    """Runs a training command for `minutes` of wall time, then stops it; returns its start time."""
    started = time.time()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            process.wait(timeout=minutes * 60)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=120)
    return started


def checkpoints_by_time(save_dir, pattern, started):
    """[(seconds after start, step, path)] of the checkpoints of save_dir, oldest first."""
    found = []
    for path in glob.glob(os.path.join(save_dir, pattern)):
        step = int(os.path.basename(path).split("-")[1].split(".")[0])
        found.append((os.path.getmtime(path) - started, step, path))
    return sorted(found)


def at_budgets(checkpoints, budgets_min):
    """{budget: (seconds, step, path)}: the newest checkpoint written within each budget."""
    chosen = {}
    for budget in budgets_min:
        within = [item for item in checkpoints if item[0] <= budget * 60]
        if within:
            chosen[budget] = within[-1]
    return chosen


def our_model(save_dir):
    """Our trained model, configured from its operative gin for EVAL_SECS windows."""
    from ddsp_core.training import ddsp_run
    from ddsp_core.training.models import get_model

    ddsp_run.parse_gin([], [f"n_samples = {int(EVAL_SECS * quality.SAMPLE_RATE)}"], operative_config_dir=save_dir)
    return get_model()


def evaluate_ours(save_dir, chosen, windows, tracker):
    from ddsp_core.training import eval_util

    model = our_model(save_dir)
    model({key: values[:1] for key, values in windows.items()})
    rows = {}
    for budget, (seconds, step, path) in chosen.items():
        eval_util.restore_for_inference(model, path)
        rows[budget] = dict(seconds=seconds, step=step, **quality.measure(windows, quality.generate(model, windows),
                                                                         tracker))
    return rows


def evaluate_magenta(python, save_dir, chosen, windows_path, windows, tracker, work):
    import numpy as np

    prefixes = sorted({os.path.basename(path)[:-len(".index")] for _, _, path in chosen.values()})
    out_dir = os.path.join(work, "magenta_generated")
    subprocess.run([python, os.path.join(magenta_venv.SIDE_DIR, "generate.py"), save_dir, windows_path, out_dir,
                    *prefixes], check=True, env=magenta_venv.magenta_env(magenta_venv.SIDE_DIR))
    rows = {}
    for budget, (seconds, step, path) in chosen.items():
        generated = np.load(os.path.join(out_dir, os.path.basename(path)[:-len(".index")] + ".npz"))["generated"]
        rows[budget] = dict(seconds=seconds, step=step, **quality.measure(windows, generated, tracker))
    return rows


def table(rows, markdown):
    headers = ["who", "budget min", "step", "loudness L1 dB", "quiet L1 dB", "silent level dB", "onset lag ms",
               "f0 L1 cents", "spectral loss"]
    keys = ["step", "loudness_l1_db", "quiet_loudness_l1_db", "silent_level_db", "onset_lag_median_ms",
            "f0_l1_cents", "spectral_loss"]
    lines = [[who, f"{budget:g}", *[quality.format_value(row[key]) for key in keys]]
             for who, results in rows.items() for budget, row in results.items()]
    return quality.render(headers, lines, markdown)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=os.path.join(ROOT, "out", "time_to_quality"))
    parser.add_argument("--ours-minutes", type=float, default=10.0)
    parser.add_argument("--magenta-minutes", type=float, default=20.0)
    parser.add_argument("--ours-budgets", default="0.5,1,1.5,2,3,4,5,10")
    parser.add_argument("--magenta-budgets", default="5,10,20")
    parser.add_argument("--magenta-venv", default=None, help="magenta's venv (default: conformance/magenta_venv.py's)")
    parser.add_argument("--train", default="ours,magenta",
                        help="Which to train ('' to evaluate the runs already in --work).")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--smoke", action="store_true",
                        help="check the imports and print the settings, then stop: every row needs magenta's venv "
                             "(python3.11) and minutes of training (run by tests/benchmarks)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.smoke:
        print("time_to_quality smoke: imports and settings only; a measurement needs magenta's venv "
              "(conformance/magenta_venv.py) and ~45 min")
        print(f"ours: {' '.join(OURS_GIN)}; budgets {args.ours_budgets} min; magenta: budgets {args.magenta_budgets} min")
        return 0
    from ddsp_core import crepe

    os.makedirs(args.work, exist_ok=True)
    ours_dir, magenta_dir = os.path.join(args.work, "ours"), os.path.join(args.work, "magenta")
    state_path = os.path.join(args.work, "starts.json")
    magenta_python = magenta_venv.ensure_magenta_venv(args.magenta_venv)
    to_train = [name for name in args.train.split(",") if name]
    starts = {}
    if os.path.exists(state_path):
        with open(state_path) as file:
            starts = json.load(file)
    if "ours" in to_train:
        ours_data = prepare(os.path.join(args.work, "data_1s"), 1.0, 0.5)
        subprocess.run(["rm", "-rf", ours_dir], check=True)
        starts["ours"] = train_for(
            [sys.executable, "-m", "ddsp_core.ddsp_run", "--mode=train", f"--save_dir={ours_dir}",
             *[f"--gin_file={name}" for name in OURS_GIN],
             *[f"--gin_param={p}" for p in OURS_PARAMS + [f"TFRecordProvider.file_pattern='{ours_data}'",
                                                          "train.num_steps = 1000000", "train.steps_per_save = 25",
                                                          "Trainer.checkpoints_to_keep = 10000"]]],
            args.ours_minutes, os.path.join(args.work, "ours.log"))
    if "magenta" in to_train:
        magenta_data = prepare(os.path.join(args.work, "data_4s"), 4.0, 1.0, for_magenta=True)
        subprocess.run(["rm", "-rf", magenta_dir], check=True)
        starts["magenta"] = train_for(
            [magenta_python, "-m", "ddsp.training.ddsp_run", "--mode=train", f"--save_dir={magenta_dir}",
             "--gin_file=models/solo_instrument.gin", "--gin_file=datasets/tfrecord.gin",
             *[f"--gin_param={p}" for p in MAGENTA_PARAMS + [f"TFRecordProvider.file_pattern='{magenta_data}'",
                                                             "train_util.train.num_steps=1000000",
                                                             "train_util.train.steps_per_save=5",
                                                             "Trainer.checkpoints_to_keep=10000"]]],
            args.magenta_minutes, os.path.join(args.work, "magenta.log"), env=magenta_venv.magenta_env(magenta_venv.SIDE_DIR))
    with open(state_path, "w") as file:
        json.dump(starts, file)

    tracker = crepe.PitchTracker("tiny", batch_size=512)
    windows = quality.cut_windows(quality.load_files(quality.VALIDATION_AUDIO, tracker), EVAL_SECS, EVAL_SECS)
    windows_path = os.path.join(args.work, "validation_windows.npz")
    import numpy as np

    np.savez(windows_path, **windows)
    budgets = {"ours": [float(b) for b in args.ours_budgets.split(",")],
               "magenta": [float(b) for b in args.magenta_budgets.split(",")]}
    rows = {
        "ours": evaluate_ours(ours_dir, at_budgets(checkpoints_by_time(ours_dir, "ckpt-*.weights.h5",
                                                                       starts["ours"]), budgets["ours"]),
                              windows, tracker),
        "magenta": evaluate_magenta(magenta_python, magenta_dir,
                                    at_budgets(checkpoints_by_time(magenta_dir, "ckpt-*.index", starts["magenta"]),
                                               budgets["magenta"]), windows_path, windows, tracker, args.work),
    }
    with open(os.path.join(args.work, "time_to_quality.json"), "w") as file:
        json.dump(rows, file, indent=1, default=str)
    print(f"Validation clarinet ({len(windows['audio'])} windows of {EVAL_SECS:g} s), {quality.machine_line()}:")
    print(table(rows, args.markdown))
    target = rows["magenta"][max(rows["magenta"])]["loudness_l1_db"] if rows["magenta"] else None
    reached = [budget for budget, row in sorted(rows["ours"].items()) if target and row["loudness_l1_db"] <= target]
    print(f"magenta's loudness L1 after {max(rows['magenta'], default=0):g} min: {quality.format_value(target)} dB; "
          f"ours reaches it within {reached[0]:g} min" if reached else "ours does not reach it in the budgets run")


if __name__ == "__main__":
    sys.exit(main())
