"""Quality of training recipes on the held-out validation clarinet: what a listener hears.

Each recipe (a variant: training audio, example length, gin bindings such as the gain
augmentation) trains the solo-instrument model for a number of steps, then resynthesizes
every window of the validation clarinet (`data/clarinet/validation`, another soundfont,
never trained on) and measures it with the eval metrics (`metrics.F0LoudnessMetrics`):
loudness L1 overall and on quiet frames, the generated level where the input is silent,
onset lag, f0 L1 and outliers. Rows of one run share the data, the features and the CREPE
that measures them.

The windows are the prepare job's (`examples.cut_examples`, silent windows dropped) and the
features the same functions' (CREPE, A-weighted loudness), but computed here, in memory,
without TFRecords or TensorFlow, so the script runs where only JAX is installed (a GPU
machine). Training is `train_on_batch` on shuffled batches of those windows with the model
and optimizer the gin files give (`ddsp_run --mode=train` uses the same, through `fit`).

    python -m benchmarks.quality                                   # every variant, quick scale
    python -m benchmarks.quality --variants material,material_gain --steps 600 --markdown
    KERAS_BACKEND=jax python -m benchmarks.quality --variants full --json out/quality.json
    python -m benchmarks.quality --smoke    # one small variant, 2 steps, 2 training and 2 validation files

CREPE 'tiny' computes the features and the f0 metric by default (--crepe-capacity).
"""

import argparse
import glob
import json
import os
import statistics
import sys
import time
import traceback

from benchmarks import common

ROOT = common.ROOT

SAMPLE_RATE = 16000
FRAME_RATE = 250
DATA = os.path.join(ROOT, "data", "clarinet")
OLD_NOTES = os.path.join(DATA, "notes", "*.flac")
TRAIN_AUDIO = os.path.join(DATA, "train", "*.flac")
VALIDATION_AUDIO = os.path.join(DATA, "validation", "*.flac")
GAIN = ("augmentation/gain.gin",)
DRY = ("models/solo_instrument_dry.gin",)
SMALL = ("RnnFcDecoder.rnn_channels = 256", "RnnFcDecoder.ch = 256", "RnnFcDecoder.layers_per_stack = 2")


def _scale(name, learning_rate):
    """Window, hop, batch and steps of a pipeline preset (the learning rate as measured: without
    the quick preset's later warm-up, which a variant adds with --gin-param)."""
    from ddsp_core.steps import presets

    preset = presets.get_preset(name)
    example_format = preset.example_format
    return dict(example_secs=example_format.example_secs, hop_secs=example_format.hop_secs,
                batch_size=preset.batch_size,
                steps=preset.num_steps, learning_rate=learning_rate)


QUICK = _scale("quick", 1e-3)
FULL = _scale("full", 3e-4)
# name: (description, training audio, settings, gin files after models/solo_instrument.gin, gin bindings)
VARIANTS = {
    "notes": ("old set: 45 sustained notes, quick recipe", OLD_NOTES, QUICK, (), ()),
    "material": ("new material, quick recipe", TRAIN_AUDIO, QUICK, (), ()),
    "material_gain": ("new material + gain augmentation U(-40, +3) dB", TRAIN_AUDIO, QUICK, GAIN, ()),
    "material_gain_dry": ("... + no reverb (the quick preset now)", TRAIN_AUDIO, QUICK, GAIN + DRY, ()),
    "material_gain_small": ("... + smaller decoder (256 units, 2 layers)", TRAIN_AUDIO, QUICK, GAIN, SMALL),
    "material_gain_dry_small": ("... no reverb, smaller decoder", TRAIN_AUDIO, QUICK, GAIN + DRY, SMALL),
    "material_dry": ("new material, no reverb, no gain augmentation", TRAIN_AUDIO, QUICK, DRY, ()),
    "full": ("full recipe with reverb: 4 s windows, batch 16, lr 3e-4, gain augmentation", TRAIN_AUDIO, FULL,
             GAIN, ()),
    "full_dry": ("full recipe, no reverb (the full preset now)", TRAIN_AUDIO, FULL, GAIN + DRY, ()),
}
METRICS = ("loudness_l1_db", "quiet_loudness_l1_db", "silent_level_db", "onset_lag_median_ms", "f0_l1_cents",
           "f0_outlier_ratio", "spectral_loss")


def load_files(pattern, pitch_tracker, max_files=None):
    """[(name, audio [n] at 16 kHz, features)] of every file of `pattern` (the first `max_files`, sorted)."""
    import soundfile

    from ddsp_core.training.data_preparation import audio_io, examples

    files = []
    for path in sorted(glob.glob(pattern))[:max_files]:
        audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
        audio = audio_io.resample(audio.mean(axis=1), rate, SAMPLE_RATE)
        files.append((os.path.basename(path), audio, examples.compute_features(audio, FRAME_RATE, pitch_tracker)))
    if not files:
        raise SystemExit(f"quality.py: no audio matches {pattern}")
    return files


def cut_windows(files, example_secs, hop_secs):
    """The prepare job's windows of `files`, stacked: {'audio': [n, n_samples], 'f0_hz': [n, n_frames], ...}."""
    import numpy as np

    from ddsp_core.example_format import ExampleFormat
    from ddsp_core.training.data_preparation import examples

    shape = ExampleFormat(SAMPLE_RATE, FRAME_RATE, example_secs, hop_secs, False)
    windows = []
    for _, audio, features in files:
        windows += examples.cut_examples(audio, audio, features, shape)
    return {key: np.stack([window[key] for window in windows]) for key in windows[0]}


def build(variant, settings, extra_params, example_batch, seed=0, total_steps=None):
    """(model, augmentation or None) of a variant, built on example_batch and compiled as training compiles
    it; `seed` seeds the weights, the noise and the augmentation (`seeding.py`, as train.seed does)."""
    import gin

    from ddsp_core.training import ddsp_run, seeding, trainers
    from ddsp_core.training.models import get_model

    n_samples = int(settings["example_secs"] * SAMPLE_RATE)
    _, _, _, gin_files, gin_params = VARIANTS[variant]
    ddsp_run.parse_gin(["models/solo_instrument.gin", *gin_files],
                       [f"n_samples = {n_samples}", f"learning_rate = {settings['learning_rate']}", *gin_params,
                        *extra_params])
    seeding.seed_weights(seed)
    model = get_model()
    model(example_batch)  # Creates the variables.
    seeding.seed_noise(model, seed)
    try:
        augmentation = gin.query_parameter("train.augmentation")
    except ValueError:
        augmentation = None
    if augmentation is not None:
        augmentation = gin.get_configurable(augmentation.selector)()
        augmentation.reseed(seeding.derive(seed, "augmentation"))
    trainers.Trainer().compile(model, total_steps=total_steps or settings["steps"])
    return model, augmentation


def train(model, augmentation, windows, settings, steps, seed=0, log_every=100, max_secs=None):
    """Up to `steps` train_on_batch steps on shuffled batches, or until max_secs of wall time have
    passed; returns (steps taken, median seconds per step, last loss)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n, batch_size = len(windows["audio"]), settings["batch_size"]
    order, position, times, loss = rng.permutation(n), 0, [], float("nan")
    started = time.perf_counter()
    for step in range(1, steps + 1):
        if position + batch_size > n:
            order, position = rng.permutation(n), 0
        batch = {key: values[order[position:position + batch_size]] for key, values in windows.items()}
        position += batch_size
        if augmentation is not None:
            batch = augmentation(batch)
        start = time.perf_counter()
        loss = float(np.asarray(model.train_on_batch(batch, return_dict=True)["total_loss"]))
        times.append(time.perf_counter() - start)
        out_of_time = max_secs is not None and time.perf_counter() - started > max_secs
        if step % log_every == 0 or step == steps or out_of_time:
            print(f"  step {step}/{steps}  total_loss {loss:.3f}  ({statistics.median(times):.3f} s/step)",
                  file=sys.stderr, flush=True)
        if out_of_time:
            break
    return step, statistics.median(times[1:] or times), loss


def generate(model, windows, batch_size=16):
    """The model's audio for every window, [n, n_samples] float32."""
    import keras
    import numpy as np

    generated = []
    for start in range(0, len(windows["audio"]), batch_size):
        batch = {key: values[start:start + batch_size] for key, values in windows.items()}
        outputs = model.predict_on_batch(batch)
        generated.append(np.asarray(keras.ops.convert_to_numpy(outputs["audio_synth"]), np.float32))
    return np.concatenate(generated)


def measure(windows, generated, pitch_tracker, batch_size=16):
    """Eval metrics of `generated` [n, n_samples] against `windows`, plus the spectral loss
    (multi-scale L1 of magnitudes and log magnitudes, the models' training loss)."""
    import keras
    import numpy as np

    from ddsp_core.losses import SpectralLoss
    from ddsp_core.training.metrics import F0LoudnessMetrics

    metric = F0LoudnessMetrics(sample_rate=SAMPLE_RATE, frame_rate=FRAME_RATE, pitch_tracker=pitch_tracker,
                               min_f0_confidence=0.5)
    loss, spectral = SpectralLoss(loss_type="L1", mag_weight=1.0, logmag_weight=1.0), 0.0
    for start in range(0, len(generated), batch_size):
        batch = {key: values[start:start + batch_size] for key, values in windows.items()}
        audio = generated[start:start + batch_size]
        metric.update_state(batch, audio)
        spectral += float(keras.ops.convert_to_numpy(loss(batch["audio"], audio))) * len(audio)
    result = metric.result()
    result["spectral_loss"] = spectral / len(generated)
    return result


def run_variant(name, args, pitch_tracker, validation, cache):
    import numpy as np

    description, pattern, settings, _, _ = VARIANTS[name]
    steps = args.steps or settings["steps"]
    key = (pattern, settings["example_secs"], settings["hop_secs"])
    if pattern not in cache:
        cache[pattern] = load_files(pattern, pitch_tracker, args.max_files)
    if key not in cache:
        cache[key] = cut_windows(cache[pattern], settings["example_secs"], settings["hop_secs"])
    windows = cache[key]
    print(f"== {name}: {description}; {len(windows['audio'])} training windows, {steps} steps", file=sys.stderr)
    model, augmentation = build(name, settings, args.gin_param, {key: values[:1] for key, values in windows.items()},
                                seed=args.seed, total_steps=steps)
    started = time.perf_counter()
    steps, step_s, loss = train(model, augmentation, windows, settings, steps, seed=args.seed,
                                max_secs=args.max_train_secs)
    train_s = time.perf_counter() - started
    eval_windows = cut_windows(validation, settings["example_secs"], settings["example_secs"])
    generated = generate(model, eval_windows)
    result = measure(eval_windows, generated, pitch_tracker)
    row = {"variant": name, "description": description, "steps": steps, "batch": settings["batch_size"],
           "example_secs": settings["example_secs"], "train_s": round(train_s, 1), "step_s": step_s,
           "train_loss": loss, "n_eval_windows": len(eval_windows["audio"]),
           **{metric: result[metric] for metric in METRICS}}
    if args.audio_dir:
        os.makedirs(args.audio_dir, exist_ok=True)
        n = min(len(generated), args.audio_examples)
        np.savez_compressed(os.path.join(args.audio_dir, f"{name}.npz"),
                            original=(eval_windows["audio"][:n] * 32767).astype(np.int16),
                            generated=(np.clip(generated[:n], -1, 1) * 32767).astype(np.int16))
    return row


def format_value(value):
    return "-" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)


def render(headers, lines, markdown=False):
    """A text (or Markdown) table of `lines` (lists of strings) under `headers`."""
    if markdown:
        return "\n".join(["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
                         + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    return "\n".join("  ".join(v.rjust(w) for v, w in zip(line, widths)) for line in [headers, *lines])


def format_table(rows, markdown=False):
    headers = ["variant", "steps", "train s", "loudness L1 dB", "quiet L1 dB", "silent level dB", "onset lag ms",
               "f0 L1 cents", "f0 outliers", "spectral loss"]
    keys = ["variant", "steps", "train_s", *METRICS]
    return render(headers, [[format_value(row[key]) for key in keys] for row in rows], markdown)


def machine_line():
    """'<backend> on <device or CPU model>'."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        if jax.devices()[0].platform != "cpu":
            return f"jax on {jax.devices()[0].device_kind}"
    return f"{keras.backend.backend()} on {common.cpu_model()} ({os.cpu_count()} cores)"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default=",".join(name for name in VARIANTS if not name.startswith("full")),
                        help=f"Comma-separated, of: {', '.join(VARIANTS)}.")
    parser.add_argument("--steps", type=int, default=0, help="Training steps (default: each variant's).")
    parser.add_argument("--crepe-capacity", default="tiny", help="CREPE for the features and the f0 metric.")
    parser.add_argument("--gin-param", action="append", default=[], help="More gin bindings, for every variant.")
    parser.add_argument("--max-train-secs", type=float, default=None,
                        help="Stop each variant's training after this many seconds (the steps reached are reported).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="Write the rows here (after each variant).")
    parser.add_argument("--audio-dir", default=None, help="Save original and generated validation audio here.")
    parser.add_argument("--audio-examples", type=int, default=8, help="Windows saved per variant.")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--max-files", type=int, default=None,
                        help="Only the first N training and validation files (sorted).")
    parser.add_argument("--smoke", action="store_true",
                        help="material_gain_dry_small (unless --variants), 2 steps, 2 training and 2 validation files "
                             "(run by tests/benchmarks)")
    args = parser.parse_args(argv)
    if args.smoke:
        if args.variants == parser.get_default("variants"):
            args.variants = "material_gain_dry_small"
        args.steps, args.max_files = args.steps or 2, args.max_files or 2
    return args


def main(argv=None):
    args = parse_args(argv)
    import keras

    from ddsp_core import crepe

    names = [name.strip() for name in args.variants.split(",") if name.strip()]
    unknown = [name for name in names if name not in VARIANTS]
    if unknown:
        raise SystemExit(f"quality.py: unknown variant(s) {unknown}; known: {', '.join(VARIANTS)}")
    pitch_tracker = crepe.PitchTracker(args.crepe_capacity, batch_size=512)
    validation = load_files(VALIDATION_AUDIO, pitch_tracker, args.max_files)
    rows, cache = [], {}
    machine = machine_line()
    for name in names:
        try:
            rows.append(run_variant(name, args, pitch_tracker, validation, cache))
        except Exception:  # One failed variant must not cost the others (a device run is one shot).
            traceback.print_exc()
            rows.append({"variant": name, "description": f"FAILED: {traceback.format_exc().splitlines()[-1]}",
                         **{key: None for key in ("steps", "train_s", *METRICS)}})
        print(format_table(rows[-1:]), file=sys.stderr, flush=True)
        if args.json:
            with open(args.json + ".tmp", "w") as file:
                json.dump({"machine": machine, "crepe": args.crepe_capacity, "rows": rows}, file, indent=1)
            os.replace(args.json + ".tmp", args.json)
    print(f"Quality on the validation clarinet ({len(validation)} files), {machine}, CREPE {args.crepe_capacity}:")
    print(format_table(rows, args.markdown))
    return 1 if any(row["description"].startswith("FAILED") for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
