"""Benchmark of CREPE pitch tracking (`ddsp_core.crepe`) per capacity and Keras backend.

Times, per backend and per capacity (tiny, small, medium, large, full):
  1. `PitchTracker(capacity, batch_size)`: loading the model and its weights ("load s").
  2. `tracker.salience(audio, 250)` on 16 kHz audio: once untimed (tracing + compilation
     + one run, "first call s"), then `--runs` timed runs. The table gives the median,
     frames per second (n_frames / median) and, derived from it, seconds of compute per
     second of audio at 250 frames/s (250 / frames per second).
  3. Decoding, `crepe.decode(salience, viterbi=False)` and `viterbi=True` (NumPy, so the
     same on every backend), in ms per 1000 frames.

The audio is a harmonic tone (8 harmonics, amplitudes 1/k, peak 0.5) gliding one octave
up from 220 Hz over `--seconds` s (default 4 s = 64000 samples = 1001 frames with
'center' padding). `salience` cuts it into 1024-sample windows and runs them through the
network `--batch_size` frames at a time, padding the last batch to the full batch size
(so 1001 frames at batch 512 compute 1024). "f0 err" is the median |error| in cents of the
argmax-decoded f0 against the tone's f0, a check that the weights loaded.

The Keras backend is fixed when keras is imported, so the script re-runs itself once per
backend (`--_worker BACKEND`, KERAS_BACKEND set in the child's environment); the children
write JSON and the parent prints the tables. The JAX worker never imports TensorFlow, so
the script also runs where only JAX is installed (a GPU machine, say). The device each
backend ran on is reported (the CPU model, or the GPU's name).

Long rows stop early: after `--min-runs` timed runs, no further run starts once the
row's timed runs add up to more than `--row-budget` s (CREPE full on the JAX CPU backend
takes minutes per call). The machine may be shared: before a row's first timed run, and
before any run that follows one disturbed by other processes, the worker waits (up to
`--max-wait` s) until other processes use at most `--idle-threshold` cores. "other load"
is how many cores other processes kept busy during the timed runs (from /proc/stat).
Helpers for that, and the machine description, are in benchmarks/common.py.

    python -m benchmarks.bench_crepe                          # 5 capacities x 2 backends; ~30 min on 2 CPU cores
    python -m benchmarks.bench_crepe --backends tensorflow --capacities tiny,small
    python -m benchmarks.bench_crepe --quick                  # tiny + full, short audio, few runs
    python -m benchmarks.bench_crepe --smoke                  # --quick: tiny on TensorFlow only, seconds
    python -m benchmarks.bench_crepe --markdown --json out/bench_crepe.json
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

SAMPLE_RATE = 16000  # CREPE's input rate, Hz.
FRAME_RATE = 250  # Frames per second, as the prepare job uses.
BACKENDS = ("tensorflow", "jax")
CAPACITIES = ("tiny", "small", "medium", "large", "full")
N_HARMONICS = 8
BASE_F0_HZ = 220.0


def test_tone(seconds):
    """Harmonic tone gliding up one octave from 220 Hz over `seconds`.

    Returns:
        (audio [n_samples] float32 at 16 kHz, f0_hz(t) as a function of time in s).
    """
    import numpy as np

    n_samples = round(seconds * SAMPLE_RATE)

    def f0_hz(time_s):
        return BASE_F0_HZ * 2.0 ** (np.asarray(time_s) / seconds)

    phase = 2 * np.pi * np.cumsum(f0_hz(np.arange(n_samples) / SAMPLE_RATE)) / SAMPLE_RATE  # [n_samples]
    harmonics = np.arange(1, N_HARMONICS + 1)
    audio = (np.sin(phase[:, None] * harmonics[None, :]) / harmonics[None, :]).sum(axis=1)
    return (0.5 * audio / np.abs(audio).max()).astype(np.float32), f0_hz


# --------------------------------------------------------------------------- worker


def _device_description(backend):
    """(short name, details) of the device Keras computes on for `backend`."""
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "cpu":
            return "CPU", f"jax {device.platform}: {common.cpu_model()}"
        return device.device_kind, f"jax {device.platform}: {device.device_kind} ({len(jax.devices())} device(s))"
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU", f"tensorflow CPU: {common.cpu_model()}"
    name = tf.config.experimental.get_device_details(gpus[0]).get("device_name", gpus[0].name)
    return name, f"tensorflow GPU: {name} ({len(gpus)} GPU(s))"


def _timed_runs(run, args):
    """Times `run()` up to args.runs times (see --min-runs, --row-budget); waits for an idle machine.

    Returns:
        {'times_s', 'other_load' (mean over the timed runs, or None), 'waited_s'}.
    """
    times, loads, waited = [], [], 0.0
    wait_next = True
    for index in range(args.runs):
        if index >= args.min_runs and sum(times) > args.row_budget:
            break
        if wait_next and args.idle_threshold >= 0 and args.max_wait > 0:
            waited += common.wait_for_idle(args.idle_threshold, args.max_wait)
        mark = (common.busy_cpu_s(), common.own_cpu_s(), time.perf_counter())
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
        other = common.other_load(*mark)
        if other is not None:
            loads.append(other)
        wait_next = other is not None and other > args.idle_threshold
    return {"times_s": times, "other_load": statistics.mean(loads) if loads else None, "waited_s": waited}


def _salience_row(crepe, capacity, precision, audio, f0_hz, args):
    import numpy as np

    row = {"capacity": capacity, "precision": precision, "batch_size": args.batch_size}
    start = time.perf_counter()
    tracker = crepe.PitchTracker(capacity, args.batch_size, precision=precision)
    row["load_s"] = time.perf_counter() - start
    start = time.perf_counter()
    salience = tracker.salience(audio, FRAME_RATE)  # Warm-up: trace + compile + one run.
    row["first_s"] = time.perf_counter() - start
    row.update(_timed_runs(lambda: tracker.salience(audio, FRAME_RATE), args))
    times = row["times_s"]
    n_frames = salience.shape[0]
    median = statistics.median(times)
    row.update(n_frames=n_frames, median_s=median, min_s=min(times), max_s=max(times),
               frames_per_s=n_frames / median, compute_s_per_audio_s=FRAME_RATE * median / n_frames)
    estimate, _ = crepe.decode(salience, viterbi=False)
    truth = f0_hz(np.arange(n_frames) / FRAME_RATE)
    row["f0_error_cents"] = float(np.median(np.abs(1200 * np.log2(np.maximum(estimate, 1e-3) / truth))))
    return row, salience


def _decode_rows(crepe, salience, args):
    rows = []
    for viterbi in (False, True):
        crepe.decode(salience, viterbi=viterbi)  # Untimed first call.
        times = []
        for _ in range(max(args.runs, 3)):
            start = time.perf_counter()
            crepe.decode(salience, viterbi=viterbi)
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        rows.append({"viterbi": viterbi, "n_frames": salience.shape[0], "median_ms": 1000 * median,
                     "ms_per_1000_frames": 1e6 * median / salience.shape[0], "runs": len(times)})
    return rows


def worker(backend, capacities, args):
    """Runs the rows of one backend in this process and writes JSON to args._out."""
    if os.environ.get("KERAS_BACKEND") != backend:
        raise SystemExit(f"worker for {backend} started with KERAS_BACKEND={os.environ.get('KERAS_BACKEND')!r}")
    import_start = time.perf_counter()
    import keras

    import ddsp_core
    from ddsp_core import crepe

    if keras.backend.backend() != backend:
        raise SystemExit(f"keras picked backend {keras.backend.backend()!r}, expected {backend!r}")
    if backend == "jax":
        import jax

        versions = {"jax": jax.__version__, "keras": keras.__version__}
    else:
        import tensorflow as tf

        versions = {"tensorflow": tf.__version__, "keras": keras.__version__}
    device, device_details = _device_description(backend)
    result = {"backend": backend, "versions": versions, "device": device, "device_details": device_details,
              "pid": os.getpid(), "source_digest": common.source_digest(ddsp_core),
              "import_s": time.perf_counter() - import_start, "rows": [], "decode_rows": [],
              "tensorflow_imported": "tensorflow" in sys.modules}

    audio, f0_hz = test_tone(args.seconds)
    decode_salience = None
    for capacity, precision in [(c, p) for c in capacities for p in args.precisions.split(",")]:
        try:
            row, salience = _salience_row(crepe, capacity, precision, audio, f0_hz, args)
            if decode_salience is None:
                decode_salience = salience
        except Exception as error:  # noqa: BLE001  (report the failure as a row and go on)
            row = {"capacity": capacity, "precision": precision, "batch_size": args.batch_size,
                   "error": f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"}
        row.update(backend=backend, device=device, peak_rss_mb=common.peak_rss_mb())
        result["rows"].append(row)
        print(f"[{backend}] {capacity} {precision}: "
              + (f"median {row['median_s']:.3f} s over {len(row['times_s'])} runs, {row['frames_per_s']:.0f} frames/s, "
                 f"first call {row['first_s']:.1f} s, waited {row['waited_s']:.0f} s"
                 if "median_s" in row else row["error"])
              + f", other load {common.format_number(row.get('other_load'), 2)}", file=sys.stderr, flush=True)
    if decode_salience is not None:
        for row in _decode_rows(crepe, decode_salience, args):
            result["decode_rows"].append(dict(row, backend=backend))
    result["tensorflow_imported"] = "tensorflow" in sys.modules
    result["peak_rss_mb"] = common.peak_rss_mb()
    with open(args._out, "w") as handle:
        json.dump(result, handle, indent=1)


# --------------------------------------------------------------------------- parent


def _run_worker(backend, capacities, args, workdir):
    out_path = os.path.join(workdir, f"{backend}.json")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    command = [*common.module_command("benchmarks.bench_crepe"), "--_worker", backend, "--_out", out_path,
               "--capacities", ",".join(capacities), "--batch_size", str(args.batch_size),
               "--precisions", args.precisions,
               "--seconds", str(args.seconds), "--runs", str(args.runs), "--min-runs", str(args.min_runs),
               "--row-budget", str(args.row_budget), "--idle-threshold", str(args.idle_threshold),
               "--max-wait", str(args.max_wait)]
    start = time.perf_counter()
    completed = subprocess.run(command, check=False, env=env, cwd=common.ROOT)
    wall = time.perf_counter() - start
    if completed.returncode != 0 or not os.path.exists(out_path):
        rows = [{"capacity": capacity, "backend": backend, "batch_size": args.batch_size,
                 "error": f"worker exited with status {completed.returncode}"} for capacity in capacities]
        return {"backend": backend, "rows": rows, "decode_rows": [], "wall_s": wall}
    with open(out_path) as handle:
        result = json.load(handle)
    result["wall_s"] = wall
    return result


def _render(headers, lines, numeric_from, markdown):
    if markdown:
        out = ["| " + " | ".join(headers) + " |",
               "|" + "|".join(["---"] * numeric_from + ["---:"] * (len(headers) - numeric_from)) + "|"]
        return "\n".join(out + ["| " + " | ".join(cells) + " |" for cells in lines])
    widths = [max(len(header), *(len(cells[i]) for cells in lines)) if lines else len(header)
              for i, header in enumerate(headers)]

    def render(cells):
        return "  ".join(cell.rjust(widths[i]) if i >= numeric_from else cell.ljust(widths[i])
                         for i, cell in enumerate(cells)).rstrip()

    return "\n".join([render(headers), render(["-" * width for width in widths])] + [render(c) for c in lines])


def format_table(rows, markdown=False):
    """The salience table: one row per (backend, capacity)."""
    headers = ["capacity", "precision", "backend", "device", "frames", "batch", "load s", "first call s", "median s", "min s",
               "max s", "runs", "frames/s", "s compute / s audio", "f0 err cents", "peak RSS MB", "other load"]
    fmt = common.format_number
    lines = []
    for row in rows:
        head = [row["capacity"], row.get("precision", "float32"), row["backend"], row.get("device", "-")]
        if "error" in row:
            lines.append(head + ["-", str(row["batch_size"]), f"ERROR {row['error']}"] + [""] * 10)
            continue
        lines.append(head + [str(row["n_frames"]), str(row["batch_size"]), fmt(row["load_s"], 2),
                             fmt(row["first_s"], 1), fmt(row["median_s"]), fmt(row["min_s"]), fmt(row["max_s"]),
                             str(len(row["times_s"])), fmt(row["frames_per_s"], 0),
                             fmt(row["compute_s_per_audio_s"]), fmt(row["f0_error_cents"], 1),
                             fmt(row["peak_rss_mb"], 0), fmt(row.get("other_load"), 2)])
    return _render(headers, lines, 4, markdown)


def format_decode_table(rows, markdown=False):
    headers = ["decode", "backend", "frames", "median ms", "ms / 1000 frames", "runs"]
    lines = [[f"crepe.decode(viterbi={row['viterbi']})", row["backend"], str(row["n_frames"]),
              common.format_number(row["median_ms"], 2), common.format_number(row["ms_per_1000_frames"], 2), str(row["runs"])]
             for row in rows]
    return _render(headers, lines, 2, markdown)


def _names(text, allowed, what):
    names = [name.strip() for name in text.split(",") if name.strip()]
    for name in names:
        if name not in allowed:
            raise SystemExit(f"unknown {what} {name!r}; choose from {','.join(allowed)}")
    return names


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--capacities", default=None,
                        help=f"comma-separated CREPE capacities (default {','.join(CAPACITIES)}; --quick: tiny,full)")
    parser.add_argument("--backends", default=",".join(BACKENDS),
                        help="comma-separated Keras backends (default tensorflow,jax)")
    parser.add_argument("--precisions", default="float32",
                        help="comma-separated CREPE precisions: float32, bfloat16 (default float32)")
    parser.add_argument("--batch_size", type=int, default=None,
                        help="PitchTracker batch size, frames per forward pass (default 512; --quick: 128)")
    parser.add_argument("--seconds", type=float, default=None,
                        help=f"audio length in s at {SAMPLE_RATE} Hz (default 4 = 1001 frames; --quick: 0.5)")
    parser.add_argument("--runs", type=int, default=5, help="most timed runs per row, after one untimed (default 5)")
    parser.add_argument("--min-runs", type=int, default=3,
                        help="fewest timed runs per row, whatever --row-budget says (default 3)")
    parser.add_argument("--row-budget", type=float, default=60.0,
                        help="start no further timed run once a row's runs took this many s (default 60)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny and full only (unless --capacities), 0.5 s of audio, batch 128, "
                             "2 runs, no idle waits")
    parser.add_argument("--smoke", action="store_true",
                        help="--quick with CREPE tiny on TensorFlow only (run by tests/benchmarks)")
    common.add_common_flags(parser, max_wait=20.0)
    parser.add_argument("--_worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.quick, args.backends, args.capacities = True, "tensorflow", args.capacities or "tiny"
    if args.capacities is None:
        args.capacities = "tiny,full" if args.quick else ",".join(CAPACITIES)
    if args.quick:
        args.runs, args.min_runs, args.max_wait = 2, 1, 0.0
    args.batch_size = args.batch_size or (128 if args.quick else 512)
    args.seconds = args.seconds or (0.5 if args.quick else 4.0)
    args.min_runs = min(args.min_runs, args.runs)
    if args.runs < 1 or args.min_runs < 1 or args.batch_size < 1 or args.seconds <= 0:
        parser.error("--runs, --min-runs and --batch_size must be >= 1 and --seconds > 0")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    capacities = _names(args.capacities, CAPACITIES, "capacity")
    if args._worker:
        worker(args._worker, capacities, args)
        return 0
    backends = _names(args.backends, BACKENDS, "backend")

    started = datetime.datetime.now().astimezone()
    load_before = common.load_average()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench_crepe_") as workdir:
        results = [_run_worker(backend, capacities, args, workdir) for backend in backends]
    total = time.perf_counter() - start
    load_after = common.load_average()

    rows = [row for result in results for row in result["rows"]]
    decode_rows = [row for result in results for row in result["decode_rows"]]
    n_frames = 1 + round(args.seconds * SAMPLE_RATE) * FRAME_RATE // SAMPLE_RATE
    print()
    print(f"CREPE benchmark (ddsp_core.crepe), {started:%Y-%m-%d %H:%M %Z}")
    print(f"Machine: {common.machine_description()}")
    for result in results:
        if "device_details" in result:
            print(f"Device, {result['backend']}: {result['device_details']}"
                  + ("" if result["backend"] != "jax" else
                     f"; tensorflow imported by the worker: {result['tensorflow_imported']}"))
    digests = sorted({result.get("source_digest") for result in results if result.get("source_digest")})
    print(f"Code: {common.code_description()}; ddsp_core source digest {', '.join(digests) or '-'}"
          + (" -- WARNING: ddsp_core changed between workers" if len(digests) > 1 else ""))
    print(f"Config: {args.seconds:g} s harmonic tone at {SAMPLE_RATE} Hz -> {n_frames} frames at {FRAME_RATE} "
          f"frames/s ('center'); PitchTracker batch_size {args.batch_size}; tracker.salience timed after one "
          f"untimed call, {args.min_runs}-{args.runs} runs per row (row budget {args.row_budget:g} s); idle "
          f"threshold {args.idle_threshold:g} cores, max wait {args.max_wait:g} s; total wall {total:.0f} s")
    print(f"Load average (1 min) before {common.format_number(load_before, 2)}, after {common.format_number(load_after, 2)}; "
          "'other load' = cores busy with other processes during a row's timed runs")
    print("'s compute / s audio' = 250 / frames per s; 'f0 err' = median |argmax-decoded f0 - true f0| in cents")
    print()
    print(format_table(rows, markdown=args.markdown))
    if decode_rows:
        print()
        print(format_decode_table(decode_rows, markdown=args.markdown))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump({"date": started.isoformat(), "machine": common.machine_description(),
                       "code": common.code_description(), "argv": argv, "seconds": args.seconds,
                       "n_frames": n_frames, "batch_size": args.batch_size, "runs": args.runs,
                       "min_runs": args.min_runs, "row_budget_s": args.row_budget, "total_s": total,
                       "load_average_before": load_before, "load_average_after": load_after,
                       "results": results}, handle, indent=1)
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
