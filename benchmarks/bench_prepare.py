"""Benchmark of the prepare job (`ddsp_prepare_tfrecord`): audio seconds prepared per wall second.

Runs `ddsp_core.training.data_preparation.ddsp_prepare_tfrecord.main([...])` with
`--overwrite --allow_skipped_files` into a temporary folder, for each CREPE capacity
(`--capacities`, default tiny and full) and local worker count (`--num_workers`, default 1
and 2), on the bundled clarinet notes (`data/clarinet/notes/*.flac`, or `--input`):

  - a "job" row per (capacity, workers): the matched files, or an evenly spaced subset of
    `--max_files` of them (default full:8, so the full-capacity rows take minutes, not an
    hour, on 2 CPU cores);
  - a "start-up" row per (capacity, workers): the same job on one file only, which is
    mostly fixed cost (Beam pipeline, worker processes, their imports, loading CREPE and
    compiling it) and little work.

Every run is a fresh process (`--_job`), so nothing is warm between runs; the files are
listed once at the start and the same list is given to every run, so a folder that
changes during the benchmark does not change the input. "job s" is the wall time of the
`main()` call (imports of ddsp_core, Keras and Beam in the process happen before it and
are in "process s"). Audio seconds come from the job's manifest (`audio_seconds`, the
files' own lengths, before the prepare job pads any file shorter than one 4 s example).
"audio s / wall s" divides them by "job s"; "steady" divides the audio beyond the start-up
row's by the job time beyond the start-up row's, the rate once the job is running, and
"fixed s" is where that straight line meets zero audio: the cost that does not grow with
the input (the start-up row itself also includes one file's work).
"cores" is the CPU time of the run's processes (worker processes included) per wall
second; "other load" is how many cores other processes kept busy during the run (from
/proc/stat). Runs go round-robin over the configurations, `--runs` times, each after
waiting (up to `--max-wait` s) for the machine to be idle; the table shows medians.

    python -m benchmarks.bench_prepare                     # ~15-25 min on 2 CPU cores
    python -m benchmarks.bench_prepare --capacities tiny --num_workers 1,2 --runs 1
    python -m benchmarks.bench_prepare --quick             # tiny, 1 worker, 4 files, 1 run
    python -m benchmarks.bench_prepare --smoke             # --quick on 1 file, no start-up rows
    python -m benchmarks.bench_prepare --markdown --json out/bench_prepare.json
"""

import argparse
import datetime
import glob
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks import common

ROOT = common.ROOT
DEFAULT_INPUT = os.path.join(ROOT, "data", "clarinet", "notes", "*.flac")
CAPACITIES = ("tiny", "small", "medium", "large", "full")
# From the issue text, not measured here: magenta ddsp's CREPE on CPU.
REFERENCE = ("Reference (not measured; from the issue text): magenta ddsp's CREPE on CPU takes ~35 s per second "
             "of audio, and it pads each file to 20 s, so a 3 s note costs ~700 s (~0.03 audio s / wall s at "
             "best, ~0.004 for 3 s notes).")


# --------------------------------------------------------------------------- child


def job(out_path, job_argv):
    """Runs the prepare job once in this process and writes timings and manifest facts to out_path."""
    start = time.perf_counter()
    from ddsp_core.training.data_preparation import (
        ddsp_prepare_tfrecord,
        prepare_tfrecord_lib,
    )

    import_s = time.perf_counter() - start
    start = time.perf_counter()
    status = ddsp_prepare_tfrecord.main(job_argv)
    job_s = time.perf_counter() - start
    result = {"status": status, "import_s": import_s, "job_s": job_s}
    output = next(arg.split("=", 1)[1] for arg in job_argv if arg.startswith("--output_tfrecord_path="))
    manifest_path = prepare_tfrecord_lib.manifest_path_for(output)
    if os.path.exists(manifest_path):
        with open(manifest_path) as handle:
            manifest = json.load(handle)
        result.update(audio_seconds=manifest["audio_seconds"], files_read=manifest["files_read"],
                      files_skipped=manifest["files_skipped"], examples=manifest["examples_written"]["total"])
    with open(out_path, "w") as handle:
        json.dump(result, handle)


# --------------------------------------------------------------------------- parent


def subset(files, count):
    """`count` files evenly spaced through the sorted list `files` (all of them if count is 0 or too big)."""
    if not count or count >= len(files):
        return list(files)
    return [files[(index * len(files)) // count] for index in range(count)]


def parse_max_files(text):
    """'8' -> {every capacity: 8}; 'full:8,tiny:20' -> {'full': 8, 'tiny': 20}; '0' or '' -> no limit."""
    limits = {}
    for item in [item.strip() for item in text.split(",") if item.strip()]:
        if ":" in item:
            capacity, count = item.split(":", 1)
            limits[capacity.strip()] = int(count)
        else:
            limits.update({capacity: int(item) for capacity in CAPACITIES})
    return limits


def run_once(config, args, workdir, index):
    """One prepare job in a fresh process. Returns the measurements of that run."""
    out_dir = os.path.join(workdir, f"{config['name']}-{index}")
    os.makedirs(out_dir)
    job_argv = [f"--input_audio_filepatterns={','.join(config['files'])}",
                f"--output_tfrecord_path={os.path.join(out_dir, 'train.tfrecord')}",
                f"--crepe_capacity={config['capacity']}", f"--num_workers={config['workers']}",
                "--overwrite", "--allow_skipped_files"]
    result_path = os.path.join(out_dir, "result.json")
    log_path = os.path.join(out_dir, "job.log")
    env = dict(os.environ, KERAS_BACKEND=args.backend,
               TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    command = [*common.module_command("benchmarks.bench_prepare"), "--_job", result_path, "--_job_argv", json.dumps(job_argv)]
    waited = common.wait_for_idle(args.idle_threshold, args.max_wait) if args.idle_threshold >= 0 else 0.0
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = common.busy_cpu_s()
    start = time.perf_counter()
    with open(log_path, "w") as log:
        completed = subprocess.run(command, check=False, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    other = None if busy is None else max(0.0, (common.busy_cpu_s() - busy) - cpu) / wall
    run = {"process_s": wall, "cpu_s": cpu, "other_load": other, "waited_s": waited,
           "returncode": completed.returncode}
    if os.path.exists(result_path):
        with open(result_path) as handle:
            run.update(json.load(handle))
    if completed.returncode != 0 or run.get("status") != 0 or "audio_seconds" not in run:
        with open(log_path) as handle:
            tail = handle.read().strip().splitlines()[-3:]
        run["error"] = f"exit {completed.returncode}, job status {run.get('status')}: " + " | ".join(tail)[-300:]
    print(f"[{config['name']} run {index + 1}] "
          + (f"{run['audio_seconds']:.1f} audio s in {run['job_s']:.1f} s (process {wall:.1f} s), "
             f"cpu {cpu:.0f} s, other load {common.format_number(other, 2)}, waited {waited:.0f} s"
             if "error" not in run else run["error"]), file=sys.stderr, flush=True)
    return run


def summarise(config, runs):
    row = {key: config[key] for key in ("name", "kind", "capacity", "workers")}
    row["n_files"] = len(config["files"])
    good = [run for run in runs if "error" not in run]
    if not good:
        row["error"] = runs[-1]["error"] if runs else "not run"
        return row

    def median(key):
        return statistics.median(run[key] for run in good)

    row.update(runs=len(good), failed_runs=len(runs) - len(good), audio_seconds=median("audio_seconds"),
               files_read=min(run["files_read"] for run in good), examples=median("examples"),
               job_s=median("job_s"), min_job_s=min(run["job_s"] for run in good),
               max_job_s=max(run["job_s"] for run in good), process_s=median("process_s"),
               import_s=median("import_s"), cores=statistics.median(run["cpu_s"] / run["process_s"] for run in good))
    loads = [run["other_load"] for run in good if run["other_load"] is not None]
    row["other_load"] = statistics.median(loads) if loads else None
    row["audio_s_per_wall_s"] = row["audio_seconds"] / row["job_s"]
    return row


def add_steady_rates(rows):
    startup = {(row["capacity"], row["workers"]): row for row in rows
               if row["kind"] == "start-up" and "error" not in row}
    for row in rows:
        base = startup.get((row["capacity"], row["workers"]))
        if (row["kind"] == "job" and "error" not in row and base and row["job_s"] > base["job_s"]
                and row["audio_seconds"] > base["audio_seconds"]):
            # A straight line through (audio s, job s) of the start-up and the job row.
            seconds_per_audio_s = (row["job_s"] - base["job_s"]) / (row["audio_seconds"] - base["audio_seconds"])
            row["steady_audio_s_per_wall_s"] = 1.0 / seconds_per_audio_s
            row["fixed_s"] = base["job_s"] - seconds_per_audio_s * base["audio_seconds"]


def format_table(rows, markdown=False):
    headers = ["run", "capacity", "workers", "files", "audio s", "examples", "job s (median)", "min s", "max s",
               "runs", "process s", "audio s / wall s", "steady audio s / wall s", "fixed s (est.)", "cores",
               "other load"]
    fmt = common.format_number
    lines = []
    for row in rows:
        head = [row["kind"], row["capacity"], str(row["workers"]), str(row["n_files"])]
        if "error" in row:
            lines.append(head + [f"ERROR {row['error']}"] + [""] * 11)
            continue
        lines.append(head + [fmt(row["audio_seconds"], 1), f"{row['examples']:g}", fmt(row["job_s"], 1),
                             fmt(row["min_job_s"], 1), fmt(row["max_job_s"], 1), str(row["runs"]),
                             fmt(row["process_s"], 1), fmt(row["audio_s_per_wall_s"], 2),
                             fmt(row.get("steady_audio_s_per_wall_s"), 2), fmt(row.get("fixed_s"), 1),
                             fmt(row["cores"], 2),
                             fmt(row["other_load"], 2)])
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(headers) - 2)) + "|"]
        return "\n".join(out + ["| " + " | ".join(cells) + " |" for cells in lines])
    widths = [max(len(header), *(len(cells[i]) for cells in lines)) if lines else len(header)
              for i, header in enumerate(headers)]

    def render(cells):
        return "  ".join(cell.rjust(widths[i]) if i >= 2 else cell.ljust(widths[i])
                         for i, cell in enumerate(cells)).rstrip()

    return "\n".join([render(headers), render(["-" * width for width in widths])] + [render(c) for c in lines])


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", default=DEFAULT_INPUT, help="glob of audio files (default: the clarinet notes)")
    parser.add_argument("--capacities", default=None, help="comma-separated CREPE capacities (default tiny,full)")
    parser.add_argument("--num_workers", default=None, help="comma-separated local worker counts (default 1,2)")
    parser.add_argument("--max_files", default=None,
                        help="files per job: N for every capacity, or CAPACITY:N,... (default full:8; 0: all)")
    parser.add_argument("--runs", type=int, default=None, help="runs per configuration (default 3)")
    parser.add_argument("--no-startup", action="store_true", help="skip the one-file start-up rows")
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax"),
                        help="KERAS_BACKEND of the job (default tensorflow)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny, 1 worker, 4 files, 1 run, no idle waits (unless given)")
    parser.add_argument("--smoke", action="store_true",
                        help="--quick on 1 file (unless --max_files), no start-up rows (run by tests/benchmarks)")
    common.add_common_flags(parser, max_wait=30.0)
    parser.add_argument("--_job", help=argparse.SUPPRESS)
    parser.add_argument("--_job_argv", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.quick, args.no_startup = True, True
        args.max_files = args.max_files if args.max_files is not None else "1"
    args.capacities = args.capacities or ("tiny" if args.quick else "tiny,full")
    args.num_workers = args.num_workers or ("1" if args.quick else "1,2")
    args.max_files = args.max_files if args.max_files is not None else ("4" if args.quick else "full:8")
    args.runs = args.runs or (1 if args.quick else 3)
    if args.quick:
        args.max_wait = 0.0
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args._job:
        job(args._job, json.loads(args._job_argv))
        return 0
    capacities = [name.strip() for name in args.capacities.split(",") if name.strip()]
    for name in capacities:
        if name not in CAPACITIES:
            raise SystemExit(f"unknown capacity {name!r}; choose from {','.join(CAPACITIES)}")
    workers = [int(text) for text in args.num_workers.split(",") if text.strip()]
    limits = parse_max_files(args.max_files)
    files = sorted(os.path.abspath(path) for path in glob.glob(args.input))
    if not files:
        raise SystemExit(f"--input {args.input!r} matches no file")

    configs = []
    for capacity in capacities:
        chosen = subset(files, limits.get(capacity, 0))
        for count in workers:
            if not args.no_startup:
                configs.append({"name": f"{capacity}-w{count}-startup", "kind": "start-up", "capacity": capacity,
                                "workers": count, "files": chosen[:1]})
            configs.append({"name": f"{capacity}-w{count}-job", "kind": "job", "capacity": capacity,
                            "workers": count, "files": chosen})

    started = datetime.datetime.now().astimezone()
    load_before = common.load_average()
    start = time.perf_counter()
    runs = {config["name"]: [] for config in configs}
    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as workdir:
        for index in range(args.runs):  # Round-robin, so slow drifts in load spread over all configurations.
            for config in configs:
                runs[config["name"]].append(run_once(config, args, workdir, index))
    total = time.perf_counter() - start
    load_after = common.load_average()
    rows = [summarise(config, runs[config["name"]]) for config in configs]
    add_steady_rates(rows)

    print()
    print(f"Prepare job benchmark (ddsp_prepare_tfrecord), {started:%Y-%m-%d %H:%M %Z}")
    print(f"Machine: {common.machine_description()}")
    print(f"Code: {common.code_description()}")
    print(f"Input: {args.input} ({len(files)} files when listed); KERAS_BACKEND={args.backend}; job flags "
          "--crepe_capacity C --num_workers W --overwrite --allow_skipped_files, other flags at their defaults "
          "(4 s examples, 1 s hop, 250 frames/s, Viterbi, crepe_batch_size 512)")
    print(f"Config: {args.runs} runs per row, round-robin, fresh process per run; max_files {args.max_files}; idle "
          f"threshold {args.idle_threshold:g} cores, max wait {args.max_wait:g} s; total wall {total:.0f} s")
    print(f"Load average (1 min) before {common.format_number(load_before, 2)}, after {common.format_number(load_after, 2)}")
    print("'job s' = wall time of main(); 'process s' adds interpreter start and imports; 'steady' = rate beyond "
          "the start-up row; 'fixed s' = job s extrapolated to no audio; 'cores' = CPU s / process s of the run's "
          "processes")
    print()
    print(format_table(rows, markdown=args.markdown))
    print()
    print(REFERENCE)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as handle:
            json.dump({"date": started.isoformat(), "machine": common.machine_description(),
                       "code": common.code_description(), "argv": argv, "input": args.input, "files": files,
                       "backend": args.backend, "total_s": total, "load_average_before": load_before,
                       "load_average_after": load_after, "rows": rows,
                       "runs": {name: values for name, values in runs.items()}}, handle, indent=1)
    return 1 if any("error" in row for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
