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

    python benchmarks/bench_dsp.py                       # both backends, 1-4 min on 2 cores
    python benchmarks/bench_dsp.py --backends jax --repeats 3
    python benchmarks/bench_dsp.py --quick               # tiny smoke run, seconds
    python benchmarks/bench_dsp.py --markdown --json out/bench.json
"""

import argparse
import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

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


def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB.


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


def _busy_cpu_s():
    """CPU seconds the whole machine has spent busy since boot (from /proc/stat), or None."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait are busy.
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s():
    times = os.times()
    return times.user + times.system


def _other_load(busy, own, wall):
    """Cores busy with other processes since (busy, own, wall) = (_busy_cpu_s(), _own_cpu_s(), perf_counter())."""
    elapsed = time.perf_counter() - wall
    if busy is None or elapsed < 0.5:  # /proc/stat counts in 10 ms ticks: too coarse for less.
        return None
    return max(0.0, (_busy_cpu_s() - busy) - (_own_cpu_s() - own)) / elapsed


def _wait_for_idle(threshold, max_wait):
    """Sleeps (1 s samples, at most max_wait s) until other processes use <= threshold cores; returns s waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait:
        mark = (_busy_cpu_s(), _own_cpu_s(), time.perf_counter())
        time.sleep(1.0)
        other = _other_load(*mark)
        if other is None or other <= threshold:
            break
    return time.perf_counter() - start


def _source_digest(package):
    """Short SHA-1 of the package's .py sources as imported, to spot code that changed between workers."""
    root = os.path.dirname(os.path.abspath(package.__file__))
    digest = hashlib.sha1()
    for directory, subdirectories, files in sorted(os.walk(root)):
        subdirectories.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                digest.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as handle:
                    digest.update(handle.read())
    return digest.hexdigest()[:10]


def _time_case(build, repeats, idle_threshold, max_wait, retries):
    """Compiles and times one row.

    Waits (up to max_wait s) for the machine to be idle before the timed runs; if other
    processes still used more than idle_threshold cores during them, times again, up to
    `retries` more times, and keeps the attempt with the least interference.

    Returns:
        {'first_s', 'times_s', 'other_load', 'attempts', 'waited_s'}.
    """
    start = time.perf_counter()
    run = build()
    run()  # Trace + compile + first run: not in the timed repeats.
    first = time.perf_counter() - start
    best, waited = None, 0.0
    for attempt in range(1 + max(0, retries)):
        if idle_threshold >= 0 and max_wait > 0:
            waited += _wait_for_idle(idle_threshold, max_wait)
        times = []
        mark = (_busy_cpu_s(), _own_cpu_s(), time.perf_counter())
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        other = _other_load(*mark)
        if best is None or (other is not None and (best["other_load"] is None or other < best["other_load"])):
            best = {"times_s": times, "other_load": other}
        if idle_threshold < 0 or other is None or other <= idle_threshold:
            break
    return dict(best, first_s=first, attempts=attempt + 1, waited_s=waited)


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
    result = {"backend": backend, "versions": versions, "pid": os.getpid(), "source_digest": _source_digest(ddsp_core),
              "import_s": time.perf_counter() - import_start, "rss_after_setup_mb": _peak_rss_mb(), "rows": []}

    for case in cases:
        for mode in modes:
            row = {"case": case, "what": _describe(case, batch, n_frames, n_samples),
                   "configuration": mode, "backend": backend}
            try:
                row.update(_time_case(lambda: build_backend(case, mode, synth, loss, data), args.repeats,
                                      args.idle_threshold, args.max_wait, args.retries))
                times = row["times_s"]
                row.update(median_s=statistics.median(times), min_s=min(times), max_s=max(times))
            except Exception as error:  # Report the failure as a row and go on.
                row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
            row["peak_rss_mb"] = _peak_rss_mb()
            result["rows"].append(row)
            print(f"[{backend}] {case} {mode}: "
                  + (f"median {row['median_s']:.3f} s, {row['attempts']} attempt(s), waited {row['waited_s']:.0f} s"
                     if "median_s" in row else row["error"])
                  + f", peak RSS {row['peak_rss_mb']:.0f} MB, other load {_format(row.get('other_load'), 2)}",
                  file=sys.stderr, flush=True)
    result["peak_rss_mb"] = _peak_rss_mb()
    with open(args._out, "w") as handle:
        json.dump(result, handle, indent=1)


# --------------------------------------------------------------------------- parent


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(*names):
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def machine_description():
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        with open("/proc/meminfo") as handle:
            mem_gb = int(handle.readline().split()[1]) / 1024 ** 2
        memory = f", {mem_gb:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        memory = ""
    return (f"{_cpu_model()}, {usable} cores usable ({os.cpu_count()} logical){memory}; "
            f"Python {platform.python_version()}, tensorflow {_version('tensorflow-cpu', 'tensorflow')}, "
            f"keras {_version('keras')}, jax {_version('jax')} (jaxlib {_version('jaxlib')})")


def _run_worker(backend, cases, modes, args, workdir):
    out_path = os.path.join(workdir, f"{backend}-{len(os.listdir(workdir))}.json")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    command = [sys.executable, os.path.abspath(__file__), "--_worker", backend, "--_out", out_path,
               "--_cases", ",".join(cases), "--_modes", "|".join(modes),
               "--batch", str(args.batch), "--seconds", str(args.seconds), "--repeats", str(args.repeats),
               "--idle-threshold", str(args.idle_threshold), "--max-wait", str(args.max_wait),
               "--retries", str(args.retries)]
    start = time.perf_counter()
    completed = subprocess.run(command, env=env)
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


def code_description():
    """'ddsp_core at <commit>' (+ whether ddsp_core/ has uncommitted changes), from git, if available."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ddsp_core"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "ddsp_core (no git information)"
    return f"ddsp_core at commit {commit}" + (" + uncommitted changes in ddsp_core/" if dirty else "")


def _load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _format(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def format_table(rows, markdown=False):
    headers = ["what", "configuration", "backend", "median s", "min s", "max s", "first call s", "peak RSS MB",
               "other load"]
    lines = []
    for row in rows:
        if "error" in row:
            numbers = [f"ERROR {row['error']}", "", "", "", "", ""]
            if row.get("peak_rss_mb") is not None:
                numbers[-1] = _format(row["peak_rss_mb"], 0)
        else:
            numbers = [_format(row["median_s"]), _format(row["min_s"]), _format(row["max_s"]),
                       _format(row["first_s"], 1), _format(row["peak_rss_mb"], 0),
                       _format(row.get("other_load"), 2)]
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


def add_common_flags(parser, max_wait):
    """--idle-threshold, --max-wait, --markdown and --json, shared by every benchmark here."""
    parser.add_argument("--idle-threshold", type=float, default=0.3,
                        help="before timing, wait until other processes use at most this many cores "
                             "(default 0.3; negative: never wait)")
    parser.add_argument("--max-wait", type=float, default=max_wait,
                        help=f"longest wait for an idle machine, in s (default {max_wait:g})")
    parser.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    parser.add_argument("--json", metavar="PATH", help="also write all results, with every timing, to PATH")


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
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    parser.add_argument("--no-xla", action="store_true", help="TensorFlow: skip the jit_compile=True rows")
    add_common_flags(parser, max_wait=20.0)
    parser.add_argument("--retries", type=int, default=1,
                        help="extra timing attempts for a row that other processes disturbed (default 1)")
    parser.add_argument("--isolate", action="store_true",
                        help="run every row in its own worker process (per-row peak RSS; more start-up time)")
    parser.add_argument("--_worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    parser.add_argument("--_cases", help=argparse.SUPPRESS)
    parser.add_argument("--_modes", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
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
    load_before = _load_average()
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
    load_after = _load_average()

    rows = [row for result in results for row in result["rows"]]
    peaks = {}
    for result in results:
        peaks[result["backend"]] = max(peaks.get(result["backend"], 0.0), result.get("peak_rss_mb") or 0.0)
    print()
    print(f"ddsp_core DSP benchmark, {started:%Y-%m-%d %H:%M %Z}")
    print(f"Machine: {machine_description()}")
    digests = sorted({result.get("source_digest") for result in results if result.get("source_digest")})
    print(f"Code: {code_description()}; ddsp_core source digest {', '.join(digests) or '-'}"
          + (" -- WARNING: ddsp_core changed while the benchmark ran, rows are from different code"
             if len(digests) > 1 else ""))
    print(f"Config: batch {args.batch}, {args.seconds:g} s at {SAMPLE_RATE} Hz = {n_samples} samples, "
          f"{n_frames} frames, {N_HARMONICS} harmonics; {args.repeats} timed repeats after 1 untimed call; "
          f"{'one process per row' if args.isolate else 'one process per backend'}; idle threshold "
          f"{args.idle_threshold:g} cores, max wait {args.max_wait:g} s, {args.retries} retries; total wall {total:.0f} s")
    print(f"Load average (1 min) before {_format(load_before, 2)}, after {_format(load_after, 2)}; "
          "'other load' = cores busy with other processes during a row's timed runs (from /proc/stat)")
    print("Peak RSS per backend worker: "
          + ", ".join(f"{backend} {peak:.0f} MB" for backend, peak in peaks.items()))
    print()
    print(format_table(rows, markdown=args.markdown))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump({"date": started.isoformat(), "machine": machine_description(), "code": code_description(),
                       "argv": argv,
                       "batch": args.batch, "seconds": args.seconds, "n_samples": n_samples,
                       "n_frames": n_frames, "repeats": args.repeats, "total_s": total,
                       "load_average_before": load_before, "load_average_after": load_after,
                       "results": results}, handle, indent=1)
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
