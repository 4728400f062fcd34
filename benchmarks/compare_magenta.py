"""ddsp_core side by side with magenta's ddsp 3.7.0: same machine, same run, identical inputs.

Rows (each side of each row in its own fresh process, ours then magenta's, so their
peak RSS is their own and a change in machine load hits both sides of a row alike):

    harmonic        Harmonic, 60 harmonics, fwd + bwd (grads w.r.t. raw amps and distribution)
    noise           FilteredNoise, 65 bands, window 257, fwd + bwd
    reverb          Reverb with a given 48000-sample IR, fwd + bwd (grads w.r.t. audio and IR)
    spectral_loss   SpectralLoss L1 mag + logmag, 6 FFT sizes, fwd + bwd
    train_step      one step of models/solo_instrument.gin as each `ddsp_run` runs it
                    (ours: Keras fit step, `--backends`; magenta: its Trainer.train_step)
    inference       the solo model's forward pass (decoder + synths + reverb), batch 1, ONE core
                    (taskset -c 0 and one compute thread): real-time factor = audio s / compute s
    crepe           CREPE salience at 250 frames/s on a 4 s tone, per `--crepe-capacities`
                    (ours: PitchTracker.salience, batch 512; magenta: its compute_f0 framing
                    through the crepe stand-in, conformance/magenta_side/crepe, Keras predict batch 32)
    prepare         the prepare command on `--prepare-files` bundled notes (as 16-bit WAV, which
                    magenta's pydub loader reads without ffmpeg), CREPE `--prepare-capacity`

Defaults: batch 16, 4 s at 16 kHz (64000 samples, 1000 frames). Magenta's ddsp lives in a
venv built when missing (`--magenta-venv`; conformance/magenta_venv.py; never a project dependency):
python3.11 with tensorflow-cpu 2.21.0, tf-keras, tensorflow-probability 0.25.0 and the
libraries its modules import, then `ddsp==3.7.0 note-seq==0.0.3` without dependencies; it
runs with TF_USE_LEGACY_KERAS=1 and PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python. The
`crepe` package does not install here, so magenta's side imports a stand-in built from
CREPE's published architecture and the original weights (see conformance/magenta_side/crepe).

Our side needs only keras and one backend: on a machine with JAX and no TensorFlow (a GPU
box), `--cases train_step,crepe --train-configs jax:float32,jax:bfloat16 --crepe-backends jax
--no-magenta` runs. Each row also gives the worker's CPU seconds per call ("CPU s"), which
other jobs on a shared machine disturb less than wall time.

    python -m benchmarks.compare_magenta --markdown --json /tmp/compare.json
    python -m benchmarks.compare_magenta --quick            # small shapes, 1 run, no prepare row
    python -m benchmarks.compare_magenta --cases train_step --no-magenta --quick   # our side only
    python -m benchmarks.compare_magenta --smoke            # our side only: harmonic, train_step; TensorFlow
"""

import argparse
import datetime
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import common
from benchmarks import compare_inputs as inputs
from conformance import magenta_venv

ROOT = common.ROOT
CASES = ("harmonic", "noise", "reverb", "spectral_loss", "train_step", "inference", "crepe", "prepare")
# --------------------------------------------------------------------------- our worker


def _ours_grad_fn(fn, n_watched):
    """Compiled fn(*args) and its gradient w.r.t. the first n_watched args, on the active backend."""
    import keras

    if keras.backend.backend() == "jax":
        import jax
        import jax.numpy as jnp

        def objective(watched, rest):
            out = fn(*watched, *rest)
            return jnp.mean(out * out) if out.ndim else out
        compiled = jax.jit(jax.value_and_grad(objective))
        return lambda *args: jax.block_until_ready(compiled(list(args[:n_watched]), list(args[n_watched:])))
    import tensorflow as tf

    step = inputs.tf_value_and_grad(fn, n_watched)
    return lambda *args: [t.numpy() for t in tf.nest.flatten(step(*args))]


def ours_case(case, args):
    import keras
    import numpy as np

    import ddsp_core

    n_samples = inputs.shapes(args.seconds)[1]
    if case in ("harmonic", "noise", "reverb", "spectral_loss"):
        data = {k: keras.ops.convert_to_tensor(v) for k, v in inputs.dsp_inputs(args.batch, args.seconds).items()}
        if case == "harmonic":
            synth = ddsp_core.synths.Harmonic(n_samples=n_samples, sample_rate=inputs.SAMPLE_RATE)
            step, call = _ours_grad_fn(synth, 2), (data["amplitudes"], data["harmonic_distribution"], data["f0_hz"])
        elif case == "noise":
            synth = ddsp_core.synths.FilteredNoise(n_samples=n_samples, window_size=257, seed=0)
            if keras.backend.backend() == "jax":  # Fixed noise: keras.random needs a traced seed under jax.jit.
                synth.get_signal = lambda magnitudes: ddsp_core.core.frequency_filter(
                    keras.ops.convert_to_tensor(np.random.default_rng(0).uniform(-1, 1, (args.batch, n_samples))
                                                .astype("float32")), magnitudes, window_size=257)
            step, call = _ours_grad_fn(synth, 1), (data["noise_magnitudes"],)
        elif case == "reverb":
            reverb = ddsp_core.effects.Reverb(trainable=False)
            step, call = _ours_grad_fn(reverb, 2), (data["audio"], data["ir"])
        else:
            loss = ddsp_core.losses.SpectralLoss(loss_type="L1", mag_weight=1.0, logmag_weight=1.0)
            step, call = _ours_grad_fn(lambda a, t: loss(t, a), 1), (data["audio"], data["target_audio"])
        return inputs.time_runs(lambda: step(*call), args.runs)
    if case == "train_step":
        from benchmarks import bench_train

        ns = argparse.Namespace(batch=args.batch, seconds=args.seconds, quick=False, preset="")  # magenta's model.
        model, batch = bench_train.build_compiled(keras.backend.backend(), "auto", ns,
                                                  [f"RnnFcDecoder.precision = '{args.precision}'"])
        losses = []

        def step():
            logs = model.train_on_batch(batch, return_dict=True)
            losses.append(float(np.asarray(logs["total_loss"])))
        result = inputs.time_runs(step, args.runs)
        result["loss_first_last"] = [losses[0], losses[-1]]
        return result
    if case == "inference":
        from benchmarks import bench_train
        from ddsp_core.training import ddsp_run
        from ddsp_core.training.models import get_model

        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.threading.set_intra_op_parallelism_threads(args.threads)
            tf.config.threading.set_inter_op_parallelism_threads(args.threads)
        ddsp_run.parse_gin(["models/solo_instrument.gin"],
                           [f"n_samples = {n_samples}", f"RnnFcDecoder.precision = '{args.precision}'"])
        model = get_model()
        features = {k: keras.ops.convert_to_tensor(v) for k, v in bench_train.synthetic_batch(1, args.seconds).items()}
        model(features)  # Build.
        model.compile(jit_compile="auto")
        # predict_on_batch: Keras' compiled forward pass (tf.function / jax.jit), training=False.
        return inputs.time_runs(lambda: model.predict_on_batch(features)["audio_synth"], args.runs)
    if case == "crepe":
        from ddsp_core import crepe

        audio = inputs.test_tone(args.seconds)
        tracker = crepe.PitchTracker(args.capacity, 512)
        result = inputs.time_runs(lambda: tracker.salience(audio, inputs.FRAME_RATE), args.runs,
                                  budget_s=args.budget, min_runs=2)
        result["n_frames"] = int(tracker.salience(audio, inputs.FRAME_RATE).shape[0])
        return result
    if case == "prepare":
        import resource

        times = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as out:
                command = [sys.executable, "-m", "ddsp_core.prepare.ddsp_prepare_tfrecord",
                           f"--input_audio_filepatterns={args.files}", f"--output_tfrecord_path={out}/train.tfrecord",
                           "--num_shards=1", f"--crepe_capacity={args.capacity}", "--num_workers=1",
                           "--allow_skipped_files"]
                start = time.perf_counter()
                done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
                times.append(time.perf_counter() - start)
                if done.returncode:
                    raise RuntimeError(f"our prepare failed ({done.returncode}): {done.stderr[-2000:]}")
        return {"times_s": times, "median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
                "first_s": None, "other_load": None,
                "children_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0}
    raise ValueError(case)


# --------------------------------------------------------------------------- parent


def _worker_args(args, extra):
    return ["--batch", str(args.batch), "--seconds", str(args.seconds), "--runs", str(args.runs), *extra]


def run_side(side, case, args, workdir, magenta_python, backend=None, extra=()):
    """Runs one case in a fresh process; returns its result dict (or {'error': ...})."""
    out = os.path.join(workdir, f"{side}-{backend}-{case}-{len(os.listdir(workdir))}.json")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    if side == "ours":
        env["KERAS_BACKEND"] = backend
        command = [*common.module_command("benchmarks.compare_magenta"), "--_ours", case, "--_out", out,
                   *_worker_args(args, extra)]
    else:
        env = magenta_venv.magenta_env(ROOT)  # ROOT: run_case.py imports benchmarks.compare_inputs.
        command = [magenta_python, os.path.join(magenta_venv.SIDE_DIR, "run_case.py"), case, out,
                   *_worker_args(args, extra)]
    if case == "inference":  # One core: pinned to CPU 0, one compute thread on every backend.
        command = ["taskset", "-c", "0", *command]
        env.update(OMP_NUM_THREADS="1", XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    if args.idle_threshold >= 0:
        common.wait_for_idle(args.idle_threshold, args.max_wait)
    mark = (common.busy_cpu_s(), time.perf_counter())
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True)
    if done.returncode or not os.path.exists(out):
        tail = (done.stderr or "").strip().splitlines()[-3:]
        print(f"[compare] {side} {case} failed: {' | '.join(tail)}", file=sys.stderr, flush=True)
        return {"error": f"exit {done.returncode}: {tail[-1][:160] if tail else ''}"}
    with open(out) as handle:
        result = json.load(handle)
    print(f"[compare] {side}{'/' + backend if backend else ''} {case} {' '.join(extra)}: "
          f"median {result['median_s']:.3f} s", file=sys.stderr, flush=True)
    return result


def _rows_for(case, args):
    """[(label, configuration, extra worker args, units)] for a case."""
    n_frames, n_samples = inputs.shapes(args.seconds)
    b = args.batch
    if case == "harmonic":
        return [("harmonic synth fwd+bwd", f"[{b},{n_frames},60] -> [{b},{n_samples}]", [])]
    if case == "noise":
        return [("filtered noise fwd+bwd", f"[{b},{n_frames},65] -> [{b},{n_samples}], window 257", [])]
    if case == "reverb":
        return [("reverb fwd+bwd", f"[{b},{n_samples}] * IR [{b},48000]", [])]
    if case == "spectral_loss":
        return [("SpectralLoss fwd+bwd", f"[{b},{n_samples}], L1 mag+logmag, 6 FFT sizes", [])]
    if case == "train_step":
        return [("solo train step", f"batch {b} x {args.seconds:g} s, 4,849,150 params", [])]
    if case == "inference":
        return [("inference (decoder+synth+reverb)", f"batch 1 x {args.seconds:g} s, 1 core", ["--threads", "1"])]
    if case == "crepe":
        return [(f"CREPE {c}", f"{args.seconds:g} s tone, 250 frames/s", ["--capacity", c, "--budget",
                                                                             str(args.crepe_budget)])
                for c in args.crepe_capacities.split(",")]
    if case == "prepare":
        return [("prepare job", f"{args.prepare_files} notes, CREPE {args.prepare_capacity}",
                 ["--capacity", args.prepare_capacity, "--files", args._wav_glob])]
    raise ValueError(case)


def _bundled_wavs(count, workdir):
    """The first of every evenly spaced `count` bundled clarinet notes, as 16-bit WAV files; returns (glob, seconds)."""
    import soundfile

    files = sorted(glob.glob(os.path.join(ROOT, "data", "clarinet", "notes", "*.flac")))
    step = max(1, len(files) // count)
    chosen = files[::step][:count]
    folder = os.path.join(workdir, "wav")
    os.makedirs(folder, exist_ok=True)
    seconds = 0.0
    for path in chosen:
        audio, rate = soundfile.read(path, dtype="int16")
        soundfile.write(os.path.join(folder, os.path.basename(path)[:-5] + ".wav"), audio, rate, subtype="PCM_16")
        seconds += len(audio) / rate
    return os.path.join(folder, "*.wav"), seconds


def measure(args):
    magenta_python = None if args.no_magenta else magenta_venv.ensure_magenta_venv(args.magenta_venv)
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        results_dir = os.path.join(workdir, "results")
        os.makedirs(results_dir)
        if "prepare" in args.cases:
            args._wav_glob, args._prepare_audio_s = _bundled_wavs(args.prepare_files, workdir)
        for case in args.cases:
            for label, configuration, extra in _rows_for(case, args):
                runs_backup = args.runs
                if case == "prepare":
                    args.runs = args.prepare_runs
                backends = ["tensorflow"] if case == "prepare" else args.backends
                if case in ("train_step", "inference"):
                    configs = [tuple(c.split(":")) for c in args.train_configs]
                else:
                    configs = [(b, "float32") for b in (args.crepe_backends if case == "crepe" else backends)]
                first = True
                for backend, precision in configs:
                    ours = run_side("ours", case, args, results_dir, magenta_python, backend,
                                    [*extra, "--precision", precision])
                    magenta = (run_side("magenta", case, args, results_dir, magenta_python, None, extra)
                               if magenta_python and first else None)
                    first = False
                    if magenta is not None:
                        rows.append(_row(label, configuration, case, "magenta ddsp 3.7.0 (TF)", magenta, None,
                                         args))
                    side = f"ours ({backend}{', ' + precision if precision != 'float32' else ''})"
                    rows.append(_row(label, configuration, case, side, ours, _find_magenta(rows, label), args))
                args.runs = runs_backup
    return rows


def _find_magenta(rows, label):
    for row in reversed(rows):
        if row["what"] == label and row["side"].startswith("magenta"):
            return row
    return None


def _row(label, configuration, case, side, result, magenta_row, args):
    row = {"what": label, "configuration": configuration, "case": case, "side": side, **result}
    if "error" in result:
        return row
    seconds = args.seconds
    if case == "train_step":
        row["throughput"] = args.batch / result["median_s"]
        row["unit"] = "examples/s"
    elif case == "inference":
        row["throughput"] = seconds / result["median_s"]
        row["unit"] = "x real time"
    elif case == "crepe":
        row["throughput"] = result["n_frames"] / result["median_s"]
        row["unit"] = "frames/s"
    elif case == "prepare":
        row["throughput"] = args._prepare_audio_s / result["median_s"]
        row["unit"] = "audio s / s"
        row["peak_rss_mb"] = max(result.get("children_peak_rss_mb", 0.0), result.get("peak_rss_mb", 0.0))
    else:
        row["throughput"] = 1.0 / result["median_s"]
        row["unit"] = "calls/s"
    if magenta_row is not None and "error" not in magenta_row:
        row["speedup"] = magenta_row["median_s"] / result["median_s"]
        if result.get("cpu_s") and magenta_row.get("cpu_s"):
            row["cpu_speedup"] = magenta_row["cpu_s"] / result["cpu_s"]
        row["memory_ratio"] = row["peak_rss_mb"] / magenta_row["peak_rss_mb"]
    return row


def format_table(rows, markdown=False):
    headers = ["what", "configuration", "side", "median s", "min s", "max s", "runs", "first call s", "throughput",
               "speed vs magenta", "CPU s", "CPU vs magenta", "peak RSS MB", "RSS vs magenta", "other load"]
    lines = []
    for r in rows:
        if "error" in r:
            lines.append([r["what"], r["configuration"], r["side"], r["error"]] + [""] * (len(headers) - 4))
            continue
        lines.append([
            r["what"], r["configuration"], r["side"], f"{r['median_s']:.3f}", f"{r['min_s']:.3f}", f"{r['max_s']:.3f}",
            str(len(r["times_s"])), "-" if r.get("first_s") is None else f"{r['first_s']:.1f}",
            f"{r['throughput']:.3g} {r['unit']}", f"{r['speedup']:.2f}x" if "speedup" in r else "-",
            "-" if r.get("cpu_s") is None else f"{r['cpu_s']:.3f}",
            f"{r['cpu_speedup']:.2f}x" if "cpu_speedup" in r else "-", f"{r['peak_rss_mb']:.0f}", f"{r['memory_ratio']:.2f}" if "memory_ratio" in r else "-",
            common.format_number(r.get("other_load"), 2)])
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(out + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *lines)]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths)) for line in [headers, *lines])


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {CASES}")
    parser.add_argument("--backends", default="tensorflow,jax", help="our Keras backends (tensorflow, jax)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per side and row, after one untimed")
    parser.add_argument("--train-configs", default="tensorflow:float32,tensorflow:bfloat16,jax:float32",
                        help="our backend:RnnFcDecoder.precision pairs for the train_step and inference rows")
    parser.add_argument("--crepe-backends", default="tensorflow", help="our backends for the CREPE rows")
    parser.add_argument("--crepe-capacities", default="tiny,full")
    parser.add_argument("--crepe-budget", type=float, default=60.0,
                        help="stop timing a CREPE row after this many seconds (at least 2 runs)")
    parser.add_argument("--prepare-files", type=int, default=2, help="bundled notes for the prepare row")
    parser.add_argument("--prepare-capacity", default="full")
    parser.add_argument("--prepare-runs", type=int, default=1)
    parser.add_argument("--magenta-venv", default=None,
                        help="venv holding ddsp==3.7.0, built when missing (default $DDSP_MAGENTA_VENV or "
                             "~/.cache/ddsp-pipeline/magenta-ddsp-3.7.0-venv; conformance/magenta_venv.py)")
    parser.add_argument("--no-magenta", action="store_true", help="only our side (e.g. where only JAX is installed)")
    parser.add_argument("--quick", action="store_true", help="batch 2, 1 run, tiny CREPE, no prepare")
    parser.add_argument("--smoke", action="store_true",
                        help="--quick --no-magenta, 0.2 s, TensorFlow, the harmonic and train_step rows unless "
                             "--cases says otherwise (run by tests/benchmarks; magenta's venv is not built)")
    common.add_common_flags(parser, max_wait=20)
    parser.add_argument("--_ours", help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--capacity", default="full", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="float32", help=argparse.SUPPRESS)
    parser.add_argument("--budget", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--files", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.quick, args.no_magenta, args.seconds, args.backends = True, True, 0.2, "tensorflow"
        args.train_configs, args.crepe_backends, args.max_wait = "tensorflow:float32", "tensorflow", 0.0
        if args.cases == ",".join(CASES):
            args.cases = "harmonic,train_step"
    args.cases = [c for c in args.cases.split(",") if c]
    args.backends = [b for b in args.backends.split(",") if b]
    args.train_configs = [c for c in args.train_configs.split(",") if c]
    args.crepe_backends = [b for b in args.crepe_backends.split(",") if b]
    bad = [c for c in args.train_configs if len(c.split(":")) != 2]
    if bad:
        parser.error(f"--train-configs takes backend:precision pairs, got {bad}")
    if args.quick:
        args.batch, args.runs, args.crepe_capacities = 2, 1, "tiny"
        args.cases = [c for c in args.cases if c != "prepare"]
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown --cases {unknown}; choose from {CASES}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args._ours:
        start = time.perf_counter()
        result = ours_case(args._ours, args)
        import keras

        result.update(peak_rss_mb=inputs.peak_rss_mb(), wall_s=time.perf_counter() - start,
                      versions={"keras": keras.__version__, "backend": keras.backend.backend()})
        with open(args._out, "w") as handle:
            json.dump(result, handle)
        return 0
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    wall = time.perf_counter()
    rows = measure(args)
    print(f"# ddsp_core vs magenta ddsp 3.7.0, {started}, {time.perf_counter() - wall:.0f} s")
    print(f"# machine: {common.machine_description()}")
    print(f"# code: {common.code_description()}")
    print(format_table(rows, markdown=args.markdown))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"started": started, "machine": common.machine_description(), "args": vars(args),
                       "rows": rows}, handle, indent=1, default=str)
    return 0 if all("error" not in row for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
