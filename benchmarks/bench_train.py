"""Train-step time and peak memory of the solo-instrument model, per Keras backend.

One training step of `models/solo_instrument.gin` (4,849,150 parameters: RnnFcDecoder
with a 512-unit GRU, Harmonic + FilteredNoise + trainable Reverb, multi-scale
SpectralLoss L1 mag+logmag; Adam with global-norm clipping), exactly as `ddsp_run
--mode=train` compiles it (`trainers.Trainer().compile`), run with `train_on_batch` on
a fixed synthetic batch: batch 16 of 4 s at 16 kHz (64000 samples, 1000 frames at 250
frames/s) by default. Configurations:

    tensorflow  tf.function            (the TensorFlow default: Trainer.jit_compile='auto')
    tensorflow  tf.function + XLA      (jit_compile=True)
    jax         jax.jit                (the JAX default)

Each configuration runs in its own process (KERAS_BACKEND is fixed at import), so its
peak RSS (`ru_maxrss`) is its own; on a GPU the peak device memory is reported too
(JAX: `memory_stats()['peak_bytes_in_use']`). The first step (tracing + compilation) is
reported apart; then `--repeats` steps are timed, each ended by fetching the loss.

    python -m benchmarks.bench_train                     # all three, ~5 min on 2 cores
    python -m benchmarks.bench_train --configs jax --repeats 10 --markdown
    python -m benchmarks.bench_train --quick              # tiny model, batch 2, 1 s, every config
    python -m benchmarks.bench_train --smoke              # --quick on TensorFlow only: seconds
    python -m benchmarks.bench_train --gin-param "RnnFcDecoder.precision = 'float32'"
    python -m benchmarks.bench_train --configs tensorflow --presets quick@16000,quick@48000,hq@16000,hq@48000

`--presets NAME@RATE,...` times a pipeline preset's train step instead: its model and gin files,
its batch and example length, at RATE Hz (`presets.get_preset(NAME, RATE)`), one row each.

The model is the gin default, so `RnnFcDecoder.precision = 'auto'`: bfloat16 matmuls on a GPU
or (TensorFlow) on a CPU with bfloat16 units; pass --gin-param to fix it.
"""

import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import common

ROOT = common.ROOT
CONFIGS = {
    "tensorflow": ("tensorflow", False, "tf.function"),
    "tensorflow-xla": ("tensorflow", True, "tf.function + XLA"),
    "jax": ("jax", True, "jax.jit"),
}
SAMPLE_RATE = 16000
FRAME_RATE = 250


def synthetic_batch(batch, seconds, seed=0, sample_rate=SAMPLE_RATE, frame_rate=FRAME_RATE):
    """Clarinet-like controls and noise audio: {'audio', 'f0_hz', 'f0_confidence', 'loudness_db'}."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n_frames, n_samples = int(seconds * frame_rate), int(seconds * sample_rate)
    f0 = rng.uniform(150.0, 900.0, size=(batch, 1)) * np.ones((1, n_frames))
    return {
        "audio": rng.uniform(-0.3, 0.3, size=(batch, n_samples)).astype("float32"),
        "f0_hz": f0.astype("float32"),
        "f0_confidence": np.ones((batch, n_frames), "float32"),
        "loudness_db": rng.uniform(-60.0, -10.0, size=(batch, n_frames)).astype("float32"),
    }


def _device(backend):
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return ("CPU" if device.platform == "cpu" else device.device_kind), device
    import tensorflow as tf

    return ("GPU" if tf.config.list_physical_devices("GPU") else "CPU"), None


def build_compiled(backend, jit_compile, args, extra_gin_params=()):
    """The solo-instrument model as `ddsp_run --mode=train` compiles it, and a synthetic batch.

    Returns (model, batch). `extra_gin_params` are appended to the gin bindings.
    """
    import gin

    from ddsp_core.training import ddsp_run, gin_configs, trainers
    from ddsp_core.training.models import get_model

    if args.preset:  # A pipeline preset's model at a rate: its gin files, batch and example length.
        from ddsp_core.steps import presets

        name, _, rate = args.preset.partition("@")
        preset = presets.get_preset(name, int(rate or 0))
        example_format = preset.example_format
        ddsp_run.parse_gin([preset.model_gin, *preset.gin_files], [*preset.gin_params, *extra_gin_params])
        gin_configs.bind_example_format(example_format)
        args.batch, args.seconds = preset.batch_size, example_format.example_secs
        shape = dict(sample_rate=example_format.sample_rate, frame_rate=example_format.frame_rate)
    else:
        params = [f"n_samples = {int(args.seconds * SAMPLE_RATE)}"]
        if args.quick:
            params += ["RnnFcDecoder.rnn_channels = 32", "RnnFcDecoder.ch = 32", "Reverb.reverb_length = 1600"]
        ddsp_run.parse_gin(["models/solo_instrument.gin"], params + list(extra_gin_params))
        shape = {}
    batch = synthetic_batch(args.batch, args.seconds, **shape)
    model = get_model()
    model(synthetic_batch(1, args.seconds, **shape))  # Build the variables.
    with gin.unlock_config():
        trainer = trainers.Trainer(jit_compile=jit_compile)
    trainer.compile(model)
    return model, batch


def worker(config, args):
    """Builds, compiles and times the train step in this process; returns a result row."""
    backend, jit_compile, label = CONFIGS[config]
    import keras
    import numpy as np

    from ddsp_core.training import train_util
    from ddsp_core.training.models import count_trainable_parameters

    model, batch = build_compiled(backend, jit_compile, args, args.gin_param)
    device_name, jax_device = _device(backend)

    start = time.perf_counter()
    first_loss = float(np.asarray(model.train_on_batch(batch, return_dict=True)["total_loss"]))
    first_s = time.perf_counter() - start
    times, losses = [], []
    for _ in range(args.repeats):
        common.wait_for_idle(args.idle_threshold, args.max_wait) if args.idle_threshold >= 0 else None
        start = time.perf_counter()
        logs = model.train_on_batch(batch, return_dict=True)
        losses.append(float(np.asarray(logs["total_loss"])))
        times.append(time.perf_counter() - start)
    peak_device_mb = None
    if jax_device is not None and jax_device.platform != "cpu":
        stats = jax_device.memory_stats() or {}
        peak_device_mb = stats.get("peak_bytes_in_use", 0) / 2 ** 20
    return {
        "config": config, "backend": backend, "compile": label, "device": device_name, "preset": args.preset,
        "batch": args.batch, "seconds": args.seconds, "params": count_trainable_parameters(model),
        "first_step_s": first_s, "times_s": times, "median_s": statistics.median(times),
        "min_s": min(times), "max_s": max(times), "steps_per_s": 1.0 / statistics.median(times),
        "peak_rss_mb": common.peak_rss_mb(), "peak_device_mb": peak_device_mb,
        "loss_first": first_loss, "loss_last": losses[-1], "keras": keras.__version__,
        "train_util": train_util.__name__,
    }


def run_worker(config, args, workdir):
    backend = CONFIGS[config][0]
    out = os.path.join(workdir, f"{config}-{args.preset.replace('@', '-') or 'model'}.json")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    command = [*common.module_command("benchmarks.bench_train"), "--_worker", config, "--_out", out,
               "--batch", str(args.batch), "--seconds", str(args.seconds), "--repeats", str(args.repeats),
               "--idle-threshold", str(args.idle_threshold), "--max-wait", str(args.max_wait)]
    if args.quick:
        command.append("--quick")
    if args.preset:
        command += ["--preset", args.preset]
    for binding in args.gin_param:
        command += ["--gin-param", binding]
    completed = subprocess.run(command, env=env, cwd=ROOT)
    if completed.returncode != 0 or not os.path.exists(out):
        return {"config": config, "error": f"worker exited with status {completed.returncode}"}
    with open(out) as handle:
        return json.load(handle)


def format_table(rows, markdown=False):
    headers = ["preset @ Hz", "backend", "compile", "device", "batch x s", "params", "first step s", "median s", "min s",
               "max s", "runs", "steps/s", "peak RSS MB", "peak device MB", "loss first -> last"]
    lines = []
    for row in rows:
        if "error" in row:
            lines.append([row.get("preset") or "-", row["config"], row["error"]] + [""] * (len(headers) - 3))
            continue
        lines.append([row.get("preset") or "-", row["backend"], row["compile"], row["device"], f"{row['batch']} x {row['seconds']:g}",
                      f"{row['params']:,}", f"{row['first_step_s']:.1f}", f"{row['median_s']:.3f}",
                      f"{row['min_s']:.3f}", f"{row['max_s']:.3f}", str(len(row["times_s"])),
                      f"{row['steps_per_s']:.3f}", f"{row['peak_rss_mb']:.0f}",
                      "-" if row["peak_device_mb"] is None else f"{row['peak_device_mb']:.0f}",
                      f"{row['loss_first']:.2f} -> {row['loss_last']:.2f}"])
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *lines)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in [headers, *lines])


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default="tensorflow,tensorflow-xla,jax",
                        help=f"comma-separated, from {sorted(CONFIGS)}")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny model, batch 2, 1 s, 2 repeats: a smoke run")
    parser.add_argument("--smoke", action="store_true",
                        help="--quick on the tensorflow config only (run by tests/benchmarks)")
    parser.add_argument("--gin-param", action="append", default=[],
                        help="extra gin binding, e.g. \"RnnFcDecoder.precision = 'float32'\" (repeatable)")
    common.add_common_flags(parser, max_wait=60)
    parser.add_argument("--presets", default="",
                        help="comma-separated NAME@RATE, e.g. quick@16000,hq@48000: time each preset's train step "
                             "(its model, batch and example length) at RATE Hz, with each of --configs")
    parser.add_argument("--preset", default="", help=argparse.SUPPRESS)  # One of --presets, in a worker.
    parser.add_argument("--_worker", help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.quick, args.configs, args.max_wait = True, "tensorflow", 0.0
    if args.quick:
        args.batch, args.seconds, args.repeats = 2, 1.0, 2
    unknown = [c for c in args.configs.split(",") if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown --configs {unknown}; choose from {sorted(CONFIGS)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args._worker:
        result = worker(args._worker, args)
        with open(args._out, "w") as handle:
            json.dump(result, handle)
        return 0
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    with tempfile.TemporaryDirectory() as workdir:
        rows = []
        for preset in args.presets.split(",") if args.presets else [""]:
            args.preset = preset
            rows += [run_worker(config, args, workdir) for config in args.configs.split(",")]
    print(f"# Solo-instrument train step, {started}")
    print(f"# machine: {common.machine_description()}")
    print(f"# code: {common.code_description()}")
    print(format_table(rows, markdown=args.markdown))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"started": started, "machine": common.machine_description(), "rows": rows}, handle, indent=1)
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
