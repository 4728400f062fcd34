"""CPU benchmark of ddsp_core's DSP hot spots on the TensorFlow and JAX Keras backends.

Times, per backend:
  1. `synths.Harmonic` forward: amplitudes [B, F, 1], harmonic_distribution [B, F, 60],
     f0_hz [B, F, 1] -> audio [B, N].
  2. `synths.Harmonic` forward + backward: gradient of mean(audio ** 2) w.r.t. the
     amplitudes and the harmonic distribution.
  3. `losses.SpectralLoss(loss_type='L1', mag_weight=1, logmag_weight=1)` forward +
     backward between target and predicted audio [B, N], gradient w.r.t. the prediction.

Defaults: B = 16, 4 s of 16 kHz audio (N = 64000 samples, F = 1000 frames at 250
frames/s). Each function is compiled the fast way for its backend (TensorFlow:
`tf.function`, with and without `jit_compile=True`, gradients by `tf.GradientTape`;
JAX: `jax.jit` of `jax.value_and_grad`), called once untimed (tracing + compilation,
reported as "first call"), then timed `--repeats` times with the results materialised
(`.numpy()` / `.block_until_ready()`) before the clock stops.

The Keras backend is fixed when keras is imported, so the script re-runs itself once
per backend (`--_worker BACKEND`, KERAS_BACKEND set in the child's environment); the
children write JSON, and the parent prints one table. Peak RSS is the worker process's
`ru_maxrss`: a running peak, so each row shows the largest RSS the worker had reached
by the end of that row (rows run in table order). `--isolate` runs every row in its own
process instead, so each row's peak RSS is its own.

The machine may be shared. Before each row's timed runs the worker waits (up to
`--max-wait` s) until other processes use at most `--idle-threshold` cores, and re-times
a row that they disturbed more (`--retries`). The "other load" column is how many cores
other processes kept busy during the timed runs that were kept (from /proc/stat); well
above 0 on a 2-core machine means that row's timings are inflated.

    python -m benchmarks.bench_dsp                       # both backends, 1-4 min on 2 cores
    python -m benchmarks.bench_dsp --backends jax --repeats 3
    python -m benchmarks.bench_dsp --quick               # tiny run: batch 2, 0.2 s, every case
    python -m benchmarks.bench_dsp --smoke               # --quick, TensorFlow only, no XLA: seconds
    python -m benchmarks.bench_dsp --markdown --json out/bench.json
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

SAMPLE_RATE = 16000
FRAME_RATE = 250
N_HARMONICS = 60
BACKENDS = ("tensorflow", "jax")
CASES = ("spectral_loss_fwd_bwd", "harmonic_fwd", "harmonic_fwd_bwd")
# Compile modes per backend, in table order.
MODES = {"tensorflow": ("tf.function", "tf.function(jit_compile=True)"), "jax": ("jax.jit",)}


def _shapes(batch, seconds):
    n_frames = int(round(seconds * FRAME_RATE))
    if n_frames < 1:
        raise SystemExit(f"--seconds {seconds} gives no frames at {FRAME_RATE} frames/s.")
    n_samples = n_frames * (SAMPLE_RATE // FRAME_RATE)
    return n_frames, n_samples


def _describe(case, batch, n_frames, n_samples):
    if case == "harmonic_fwd":
        return f"Harmonic fwd [{batch},{n_frames},{N_HARMONICS}] -> [{batch},{n_samples}]"
    if case == "harmonic_fwd_bwd":
        return f"Harmonic fwd+bwd (grad amps, harm. dist.) [{batch},{n_frames},{N_HARMONICS}]"
    return f"SpectralLoss L1 mag+logmag fwd+bwd [{batch},{n_samples}], 6 FFT sizes"


# --------------------------------------------------------------------------- worker


def _make_inputs(batch, n_frames, n_samples, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    return {
        # Raw network-style outputs; Harmonic applies exp_sigmoid to these.
        "amplitudes": rng.normal(size=(batch, n_frames, 1)).astype("float32"),
        "harmonic_distribution": rng.normal(size=(batch, n_frames, N_HARMONICS)).astype("float32"),
        "f0_hz": rng.uniform(100.0, 1000.0, size=(batch, n_frames, 1)).astype("float32"),
        "target_audio": rng.uniform(-0.5, 0.5, size=(batch, n_samples)).astype("float32"),
        "audio": rng.uniform(-0.5, 0.5, size=(batch, n_samples)).astype("float32"),
    }


def _build_tf(case, mode, synth, loss, data):
    import tensorflow as tf

    jit = mode.endswith("(jit_compile=True)")
    tensors = {name: tf.constant(value) for name, value in data.items()}

    if case == "harmonic_fwd":
        def fn(amplitudes, harmonic_distribution, f0_hz):
            return synth(amplitudes, harmonic_distribution, f0_hz)
        args = (tensors["amplitudes"], tensors["harmonic_distribution"], tensors["f0_hz"])
    elif case == "harmonic_fwd_bwd":
        def fn(amplitudes, harmonic_distribution, f0_hz):
            with tf.GradientTape() as tape:
                tape.watch(amplitudes)
                tape.watch(harmonic_distribution)
                audio = synth(amplitudes, harmonic_distribution, f0_hz)
                value = tf.reduce_mean(audio * audio)
            return value, tape.gradient(value, [amplitudes, harmonic_distribution])
        args = (tensors["amplitudes"], tensors["harmonic_distribution"], tensors["f0_hz"])
    else:
        def fn(target_audio, audio):
            with tf.GradientTape() as tape:
                tape.watch(audio)
                value = loss(target_audio, audio)
            return value, tape.gradient(value, audio)
        args = (tensors["target_audio"], tensors["audio"])

    compiled = tf.function(fn, jit_compile=jit)

    def run():
        outputs = compiled(*args)
        return [tensor.numpy() for tensor in tf.nest.flatten(outputs)]

    return run


def _build_jax(case, mode, synth, loss, data):
    import jax
    import jax.numpy as jnp

    del mode
    arrays = {name: jax.device_put(jnp.asarray(value)) for name, value in data.items()}

    if case == "harmonic_fwd":
        def fn(amplitudes, harmonic_distribution, f0_hz):
            return synth(amplitudes, harmonic_distribution, f0_hz)
        compiled = jax.jit(fn)
        args = (arrays["amplitudes"], arrays["harmonic_distribution"], arrays["f0_hz"])
    elif case == "harmonic_fwd_bwd":
        def objective(amplitudes, harmonic_distribution, f0_hz):
            audio = synth(amplitudes, harmonic_distribution, f0_hz)
            return jnp.mean(audio * audio)
        compiled = jax.jit(jax.value_and_grad(objective, argnums=(0, 1)))
        args = (arrays["amplitudes"], arrays["harmonic_distribution"], arrays["f0_hz"])
    else:
        def objective(audio, target_audio):
            return loss(target_audio, audio)
        compiled = jax.jit(jax.value_and_grad(objective, argnums=0))
        args = (arrays["audio"], arrays["target_audio"])

    def run():
        return jax.block_until_ready(compiled(*args))

    return run


def worker(backend, cases, modes, args):
    """Runs the benchmark rows of one backend in this process and writes JSON to args._out."""
    if os.environ.get("KERAS_BACKEND") != backend:
        raise SystemExit(f"worker for {backend} started with KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}")
    import_start = time.perf_counter()
    import keras
    import ddsp_core

    if backend == "tensorflow":
        import tensorflow as tf
        versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
        build_backend = _build_tf
    else:
        import jax
        versions = {"jax": jax.__version__, "keras": keras.__version__,
                    "jax_devices": [str(device) for device in jax.devices()]}
        build_backend = _build_jax
    if keras.backend.backend() != backend:
        raise SystemExit(f"keras picked backend {keras.backend.backend()!r}, expected {backend!r}")

    batch = args.batch
    n_frames, n_samples = _shapes(batch, args.seconds)
    data = _make_inputs(batch, n_frames, n_samples)
    synth = ddsp_core.synths.Harmonic(n_samples=n_samples, sample_rate=SAMPLE_RATE)
    loss = ddsp_core.losses.SpectralLoss(loss_type="L1", mag_weight=1.0, logmag_weight=1.0)
    result = {"backend": backend, "versions": versions, "pid": os.getpid(), "source_digest": common.source_digest(ddsp_core),
              "import_s": time.perf_counter() - import_start, "rss_after_setup_mb": common.peak_rss_mb(), "rows": []}

    for case in cases:
        for mode in modes:
            row = {"case": case, "what": _describe(case, batch, n_frames, n_samples),
                   "configuration": mode, "backend": backend}
            try:
                row.update(common.time_case(lambda: build_backend(case, mode, synth, loss, data), args.repeats,
                                      args.idle_threshold, args.max_wait, args.retries))
                times = row["times_s"]
                row.update(median_s=statistics.median(times), min_s=min(times), max_s=max(times))
            except Exception as error:  # Report the failure as a row and go on.
                row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
            row["peak_rss_mb"] = common.peak_rss_mb()
            result["rows"].append(row)
            print(f"[{backend}] {case} {mode}: "
                  + (f"median {row['median_s']:.3f} s, {row['attempts']} attempt(s), waited {row['waited_s']:.0f} s"
                     if "median_s" in row else row["error"])
                  + f", peak RSS {row['peak_rss_mb']:.0f} MB, other load {common.format_number(row.get('other_load'), 2)}",
                  file=sys.stderr, flush=True)
    result["peak_rss_mb"] = common.peak_rss_mb()
    with open(args._out, "w") as handle:
        json.dump(result, handle, indent=1)


# --------------------------------------------------------------------------- parent


def _run_worker(backend, cases, modes, args, workdir):
    out_path = os.path.join(workdir, f"{backend}-{len(os.listdir(workdir))}.json")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    command = common.module_command(
        "benchmarks.bench_dsp", "--_worker", backend, "--_out", out_path, "--_cases", ",".join(cases),
        "--_modes", "|".join(modes), "--batch", str(args.batch), "--seconds", str(args.seconds),
        "--repeats", str(args.repeats), "--idle-threshold", str(args.idle_threshold), "--max-wait", str(args.max_wait),
        "--retries", str(args.retries))
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, cwd=common.ROOT)
    wall = time.perf_counter() - start
    if completed.returncode != 0 or not os.path.exists(out_path):
        rows = [{"case": case, "what": _describe(case, args.batch, *_shapes(args.batch, args.seconds)),
                 "configuration": mode, "backend": backend,
                 "error": f"worker exited with status {completed.returncode}"}
                for case in cases for mode in modes]
        return {"backend": backend, "rows": rows, "wall_s": wall}
    with open(out_path) as handle:
        result = json.load(handle)
    result["wall_s"] = wall
    return result


def format_table(rows, markdown=False):
    headers = ["what", "configuration", "backend", "median s", "min s", "max s", "first call s", "peak RSS MB",
               "other load"]
    lines = []
    for row in rows:
        if "error" in row:
            numbers = [f"ERROR {row['error']}", "", "", "", "", ""]
            if row.get("peak_rss_mb") is not None:
                numbers[-1] = common.format_number(row["peak_rss_mb"], 0)
        else:
            numbers = [common.format_number(row["median_s"]), common.format_number(row["min_s"]), common.format_number(row["max_s"]),
                       common.format_number(row["first_s"], 1), common.format_number(row["peak_rss_mb"], 0),
                       common.format_number(row.get("other_load"), 2)]
        lines.append([row["what"], row["configuration"], row["backend"]] + numbers)
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * 6) + "|"]
        out += ["| " + " | ".join(cells) + " |" for cells in lines]
        return "\n".join(out)
    widths = [max(len(header), *(len(cells[i]) for cells in lines)) if lines else len(header)
              for i, header in enumerate(headers)]
    numeric = set(range(3, len(headers)))

    def render(cells):
        return "  ".join(cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                         for i, cell in enumerate(cells)).rstrip()

    out = [render(headers), render(["-" * width for width in widths])]
    out += [render(cells) for cells in lines]
    return "\n".join(out)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated Keras backends to run (default: tensorflow,jax)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per row, after one untimed (default 5)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default 16)")
    parser.add_argument("--seconds", type=float, default=4.0,
                        help=f"audio length in seconds at {SAMPLE_RATE} Hz, {FRAME_RATE} frames/s (default 4)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny smoke configuration: batch 2, 0.2 s, 2 repeats, no idle waits or retries (overrides those)")
    parser.add_argument("--smoke", action="store_true",
                        help="--quick on TensorFlow only, without the XLA rows: seconds (run by tests/benchmarks)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--no-xla", action="store_true", help="TensorFlow: skip the jit_compile=True rows")
    common.add_common_flags(parser, max_wait=20.0)
    parser.add_argument("--retries", type=int, default=1,
                        help="extra timing attempts for a row that other processes disturbed (default 1)")
    parser.add_argument("--isolate", action="store_true",
                        help="run every row in its own worker process (per-row peak RSS; more start-up time)")
    parser.add_argument("--_worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    parser.add_argument("--_cases", help=argparse.SUPPRESS)
    parser.add_argument("--_modes", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.quick, args.backends, args.no_xla = True, "tensorflow", True
    if args.quick:
        args.batch, args.seconds, args.repeats, args.max_wait, args.retries = 2, 0.2, 2, 0.0, 0
    if args.repeats < 1 or args.batch < 1 or args.seconds <= 0:
        parser.error("--repeats and --batch must be >= 1 and --seconds > 0")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args._worker:
        worker(args._worker, args._cases.split(","), args._modes.split("|"), args)
        return 0

    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    cases = [name.strip() for name in args.cases.split(",") if name.strip()]
    for name in backends:
        if name not in BACKENDS:
            raise SystemExit(f"unknown backend {name!r}; choose from {BACKENDS}")
    for name in cases:
        if name not in CASES:
            raise SystemExit(f"unknown case {name!r}; choose from {CASES}")

    n_frames, n_samples = _shapes(args.batch, args.seconds)
    started = datetime.datetime.now().astimezone()
    load_before = common.load_average()
    start = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_dsp_") as workdir:
        for backend in backends:
            modes = [mode for mode in MODES[backend] if not (args.no_xla and "jit_compile" in mode)]
            if args.isolate:
                for case in cases:
                    for mode in modes:
                        results.append(_run_worker(backend, [case], [mode], args, workdir))
            else:
                results.append(_run_worker(backend, cases, modes, args, workdir))
    total = time.perf_counter() - start
    load_after = common.load_average()

    rows = [row for result in results for row in result["rows"]]
    peaks = {}
    for result in results:
        peaks[result["backend"]] = max(peaks.get(result["backend"], 0.0), result.get("peak_rss_mb") or 0.0)
    print()
    print(f"ddsp_core DSP benchmark, {started:%Y-%m-%d %H:%M %Z}")
    print(f"Machine: {common.machine_description()}")
    digests = sorted({result.get("source_digest") for result in results if result.get("source_digest")})
    print(f"Code: {common.code_description()}; ddsp_core source digest {', '.join(digests) or '-'}"
          + (" -- WARNING: ddsp_core changed while the benchmark ran, rows are from different code"
             if len(digests) > 1 else ""))
    print(f"Config: batch {args.batch}, {args.seconds:g} s at {SAMPLE_RATE} Hz = {n_samples} samples, "
          f"{n_frames} frames, {N_HARMONICS} harmonics; {args.repeats} timed repeats after 1 untimed call; "
          f"{'one process per row' if args.isolate else 'one process per backend'}; idle threshold "
          f"{args.idle_threshold:g} cores, max wait {args.max_wait:g} s, {args.retries} retries; total wall {total:.0f} s")
    print(f"Load average (1 min) before {common.format_number(load_before, 2)}, after {common.format_number(load_after, 2)}; "
          "'other load' = cores busy with other processes during a row's timed runs (from /proc/stat)")
    print("Peak RSS per backend worker: "
          + ", ".join(f"{backend} {peak:.0f} MB" for backend, peak in peaks.items()))
    print()
    print(format_table(rows, markdown=args.markdown))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump({"date": started.isoformat(), "machine": common.machine_description(), "code": common.code_description(),
                       "argv": argv,
                       "batch": args.batch, "seconds": args.seconds, "n_samples": n_samples,
                       "n_frames": n_frames, "repeats": args.repeats, "total_s": total,
                       "load_average_before": load_before, "load_average_after": load_after,
                       "results": results}, handle, indent=1)
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
