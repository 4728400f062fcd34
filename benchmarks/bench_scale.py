"""How the pipeline's cost grows with the material: prepare, one epoch of the input pipeline, eval.

Material (made once under --out/material from the bundled training clarinet,
data/clarinet/train/*.flac, 16 kHz, looped):

  files-N    N minutes as many files (the bundled files copied in turn under new names, the
             last one cut), as a user's folder of takes;
  single-N   N minutes in one FLAC (the material end to end, looped), as one long take;
             written a chunk at a time, so making it needs no memory either.

Stages, each its own process (so its peak memory is its own), in order per (material, capacity):

  prepare    `ddsp_prepare_tfrecord` (4 s examples every 4 s, so audio in = audio in the examples;
             --crepe_precision auto; --num_shards 8; the local Beam runner with as many workers
             as cores). Memory is sampled every 0.2 s over the process tree: the runner (the
             command's own process), the largest worker, and all together.
  input      one epoch of `TFRecordProvider(...).get_batch(16, shuffle=True, repeats=1)`, the
             training input pipeline, every batch materialised.
  eval       `steps.evaluate` (what `ddsp_pipeline`'s eval step runs) over every example of the
             prepared set, quick preset, with --model (default: a run of benchmarks.seeds, else a
             1-step model trained here); eval's CREPE is the capacity of the row.

Columns: wall s; audio s / wall s (the material's seconds over the stage's wall time);
peak memory (MB) of the runner, the largest worker and the sum; the output's size. "growth"
compares each row with the 1-minute row of the same stage and capacity: time ratio / audio
ratio (1.0 is linear) and memory ratio.

    python -m benchmarks.bench_scale                         # all of it: ~30-40 min on 2 cores
    python -m benchmarks.bench_scale --materials files-1,single-60 --capacities tiny --stages prepare
    python -m benchmarks.bench_scale --smoke                 # 15 s of audio, tiny, every stage
"""

import argparse
import datetime
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from benchmarks import common

ROOT = common.ROOT
MATERIAL = os.path.join(ROOT, "data", "clarinet", "train", "*.flac")
DEFAULT_OUT = os.path.join(ROOT, "out", "bench", "scale")
SEEDS_MODEL = os.path.join(ROOT, "out", "bench", "seeds", "runs", "after-seed1", "model")
DEFAULT_MATERIALS = "files-1,files-10,files-60,single-1,single-60"
# (stage, capacity) rows skipped on the biggest materials by default: full CREPE on an hour of audio is an hour here.
DEFAULT_SKIP = {("prepare", "full", 60), ("eval", "full", 10), ("eval", "full", 60)}
EXAMPLE_SECS = 4.0
BATCH = 16


# --------------------------------------------------------------------------- material


def _material_chunks(seconds):
    """The bundled material end to end, looped, as float32 chunks totalling `seconds` at 16 kHz."""
    import soundfile

    files = sorted(glob.glob(MATERIAL))
    left = int(round(seconds * 16000))
    while left > 0:
        for path in files:
            audio, rate = soundfile.read(path, dtype="float32")
            if rate != 16000:
                raise SystemExit(f"bench_scale: {path} is {rate} Hz; the material is expected at 16 kHz.")
            chunk = audio[:left]
            left -= chunk.shape[0]
            yield chunk
            if left <= 0:
                return


def make_material(name, folder):
    """Writes material `name` ('files-N' or 'single-N', N minutes, may be fractional) into folder (once)."""
    import soundfile

    kind, minutes = name.split("-", 1)
    seconds = float(minutes) * 60
    done = os.path.join(folder, ".done")
    if os.path.exists(done):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    if kind == "single":
        with soundfile.SoundFile(os.path.join(folder, "take.flac"), "w", 16000, 1, "PCM_16") as take:
            for chunk in _material_chunks(seconds):
                take.write(chunk)
    elif kind == "files":
        for index, chunk in enumerate(_material_chunks(seconds)):
            soundfile.write(os.path.join(folder, f"note_{index:05d}.flac"), chunk, 16000, subtype="PCM_16")
    else:
        raise SystemExit(f"bench_scale: material {name!r} is neither files-N nor single-N.")
    open(done, "w").close()
    return folder


# --------------------------------------------------------------------------- memory of a process tree


def _rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def _children(pid):
    """Child processes of every thread of `pid` (Beam's runner starts its workers from other threads)."""
    found = []
    for path in glob.glob(f"/proc/{pid}/task/*/children"):
        try:
            with open(path) as handle:
                found += [int(child) for child in handle.read().split()]
        except OSError:
            pass
    return found


class TreeMemory:
    """Samples the RSS of a process and its descendants every `interval` s: peak of the process
    itself ('runner'), of its largest descendant ('worker') and of their sum ('total'), in MB."""

    def __init__(self, pid, interval=0.2):
        self.pid, self.interval = pid, interval
        self.peaks = {"runner": 0.0, "worker": 0.0, "total": 0.0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            runner = _rss_mb(self.pid)
            descendants, stack = [], _children(self.pid)
            while stack:
                child = stack.pop()
                descendants.append(child)
                stack += _children(child)
            workers = [_rss_mb(child) for child in descendants]
            self.peaks["runner"] = max(self.peaks["runner"], runner)
            self.peaks["worker"] = max([self.peaks["worker"], *workers])
            self.peaks["total"] = max(self.peaks["total"], runner + sum(workers))
            self._stop.wait(self.interval)

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()


def run_stage(command, log_path):
    """Runs `command` (from the repository root) with its memory sampled; returns (wall s, peaks, exit code)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    start = time.perf_counter()
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        with TreeMemory(process.pid) as memory:
            code = process.wait()
    return time.perf_counter() - start, memory.peaks, code


def _manifest(dataset):
    from ddsp_core.example_format import manifest_path_for

    return manifest_path_for(os.path.join(dataset, "train.tfrecord"))


def _folder_mb(folder):
    return sum(os.path.getsize(path) for path in glob.glob(os.path.join(folder, "*")) if os.path.isfile(path)) / 1e6


# --------------------------------------------------------------------------- the stages' children


def input_epoch(dataset, result_path):
    """One epoch of the training input pipeline over `dataset`; writes {'examples', 'batches'}."""
    from ddsp_core.training.data import TFRecordProvider

    provider = TFRecordProvider(file_pattern=os.path.join(dataset, "train.tfrecord*"))
    examples = batches = 0
    for batch in provider.get_batch(BATCH, shuffle=True, repeats=1, drop_remainder=False):
        examples += int(batch["audio"].shape[0])
        batches += 1
    with open(result_path, "w") as handle:
        json.dump({"examples": examples, "batches": batches}, handle)


def evaluate(dataset, model, capacity, folder, result_path):
    """`steps.evaluate` over every example of `dataset`; writes the metrics record."""
    from ddsp_core.steps import steps

    with open(_manifest(dataset)) as handle:
        examples = json.load(handle)["examples_written"]["total"]
    record = steps.evaluate(dataset, model, folder, preset="quick",
                            gin_params=[f"evaluate.num_batches = {-(-examples // 8)}",
                                        f"F0LoudnessMetrics.crepe_capacity = '{capacity}'"])
    with open(result_path, "w") as handle:
        json.dump({"n_examples": record["n_examples"], "metrics": record["metrics"]}, handle)


def train_tiny_model(dataset, folder):
    """A model of the quick preset after one step (eval's cost does not depend on its weights)."""
    from ddsp_core.steps import steps

    steps.train(dataset, folder, preset="quick", num_steps=1)


def _child(*args):
    return common.module_command("benchmarks.bench_scale", "--_child", *args)


# --------------------------------------------------------------------------- parent


def one_row(stage, material, capacity, args, paths):
    """Runs one stage on one material; returns its row (or None when skipped)."""
    minutes = float(material.split("-", 1)[1])
    audio_s = minutes * 60
    name = f"{material}-{capacity}"
    dataset = os.path.join(args.out, "datasets", name)
    log = os.path.join(args.out, "logs", f"{stage}-{name}.log")
    result = os.path.join(args.out, "logs", f"{stage}-{name}.json")
    if stage == "prepare":
        shutil.rmtree(dataset, ignore_errors=True)
        command = [sys.executable, "-m", "ddsp_core.prepare.ddsp_prepare_tfrecord",
                   f"--input_audio_filepatterns={paths[material]}/*.flac",
                   f"--output_tfrecord_path={dataset}/train.tfrecord", f"--crepe_capacity={capacity}",
                   "--crepe_precision=auto", f"--example_secs={EXAMPLE_SECS}", f"--hop_secs={EXAMPLE_SECS}",
                   "--num_shards=8", "--overwrite", "--allow_skipped_files"]
    elif stage == "input":
        command = _child("input", dataset, result)
    else:
        command = _child("eval", dataset, args.model, capacity, os.path.join(args.out, "eval", name), result)
    if stage != "prepare" and not os.path.exists(_manifest(dataset)):
        print(f"[{stage} {name}] skipped: no dataset (prepare it first)", file=sys.stderr)
        return None
    if args.idle_threshold >= 0:
        common.wait_for_idle(args.idle_threshold, args.max_wait)
    load_before = common.load_average()
    wall, peaks, code = run_stage(command, log)
    row = {"stage": stage, "material": material, "capacity": capacity, "minutes": minutes, "wall_s": wall,
           "audio_per_s": audio_s / wall, "runner_mb": peaks["runner"], "worker_mb": peaks["worker"],
           "total_mb": peaks["total"], "exit": code, "load_before": load_before}
    if stage == "prepare":
        row["output_mb"] = _folder_mb(dataset)
        manifest = _manifest(dataset)
        if os.path.exists(manifest):
            with open(manifest) as handle:
                facts = json.load(handle)
            row.update(examples=facts["examples_written"]["total"],
                       shards=len(facts["outputs"]["train"]["shards"]),
                       nonempty_shards=sum(os.path.getsize(path) > 0 for path in facts["outputs"]["train"]["shards"]))
    elif os.path.exists(result):
        with open(result) as handle:
            row.update(json.load(handle))
    print(f"[{stage} {name}] {wall:.1f} s, {row['audio_per_s']:.1f} audio s/s, runner {peaks['runner']:.0f} MB, "
          f"largest worker {peaks['worker']:.0f} MB, total {peaks['total']:.0f} MB, exit {code}", file=sys.stderr,
          flush=True)
    if code != 0:
        with open(log) as handle:
            print("  " + "\n  ".join(handle.read().strip().splitlines()[-5:]), file=sys.stderr)
    return row


def add_growth(rows):
    """Each row's time and memory against the 1-minute row of the same stage, capacity and kind of material."""
    for row in rows:
        kind = row["material"].split("-")[0]
        base = next((other for other in rows if other["stage"] == row["stage"] and other["capacity"] == row["capacity"]
                     and other["material"].split("-")[0] == kind and other["minutes"] == min(
                         r["minutes"] for r in rows if r["stage"] == row["stage"] and r["capacity"] == row["capacity"]
                         and r["material"].split("-")[0] == kind)), None)
        if base is None or base is row:
            row["time_growth"] = row["memory_growth"] = None
            continue
        row["time_growth"] = (row["wall_s"] / base["wall_s"]) / (row["minutes"] / base["minutes"])
        row["memory_growth"] = row["total_mb"] / base["total_mb"]


def format_table(rows, markdown=False):
    header = ["stage", "material", "CREPE", "wall s", "audio s / wall s", "runner MB", "largest worker MB",
              "total MB", "output MB", "shards (non-empty)", "time / audio vs smallest", "memory vs smallest"]
    lines = []
    for row in rows:
        shards = f"{row['shards']} ({row['nonempty_shards']})" if "shards" in row else "-"
        lines.append([row["stage"], row["material"], row["capacity"], f"{row['wall_s']:.1f}",
                      f"{row['audio_per_s']:.1f}", f"{row['runner_mb']:.0f}", f"{row['worker_mb']:.0f}",
                      f"{row['total_mb']:.0f}", common.format_number(row.get("output_mb"), 1), shards,
                      common.format_number(row.get("time_growth"), 2) + ("x" if row.get("time_growth") else ""),
                      common.format_number(row.get("memory_growth"), 2) + ("x" if row.get("memory_growth") else "")])
    if markdown:
        out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    widths = [max(len(str(item)) for item in column) for column in zip(header, *lines)]
    return "\n".join("  ".join(str(item).ljust(width) for item, width in zip(line, widths)) for line in [header, *lines])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_child":
        what, rest = argv[1], argv[2:]
        {"input": input_epoch, "eval": evaluate, "train": train_tiny_model}[what](*rest)
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--materials", default=DEFAULT_MATERIALS, help="Comma-separated files-N / single-N (minutes).")
    parser.add_argument("--capacities", default="tiny,full", help="CREPE capacities, comma-separated.")
    parser.add_argument("--stages", default="prepare,input,eval", help="Comma-separated: prepare, input, eval.")
    parser.add_argument("--all", action="store_true", help="Also the rows skipped by default: " + ", ".join(
        f"{stage} {capacity} on {minutes} min" for stage, capacity, minutes in sorted(DEFAULT_SKIP)))
    parser.add_argument("--model", default="", help="Model for eval (a run's model folder); default: "
                        "out/bench/seeds/runs/after-seed1/model if there, else a 1-step model trained here.")
    parser.add_argument("--out", default="", help=f"Material, datasets and logs (default {DEFAULT_OUT}; --smoke: a "
                        "temporary folder, removed).")
    parser.add_argument("--smoke", action="store_true", help="files-0.25 and single-0.25, tiny, every stage.")
    common.add_common_flags(parser, max_wait=30)
    args = parser.parse_args(argv)
    temporary = None
    if args.smoke:
        args.materials, args.capacities, args.idle_threshold = "files-0.25,single-0.25", "tiny", -1
        temporary = args.out = args.out or tempfile.mkdtemp(prefix="bench_scale_smoke_")
    args.out = os.path.abspath(args.out or DEFAULT_OUT)
    for folder in ("logs", "eval", "datasets"):
        os.makedirs(os.path.join(args.out, folder), exist_ok=True)
    materials = [name.strip() for name in args.materials.split(",") if name.strip()]
    capacities = [name.strip() for name in args.capacities.split(",") if name.strip()]
    stages = [name.strip() for name in args.stages.split(",") if name.strip()]
    started = datetime.datetime.now(datetime.timezone.utc)
    paths = {name: make_material(name, os.path.join(args.out, "material", name)) for name in materials}
    if "eval" in stages and not args.model:
        args.model = SEEDS_MODEL if os.path.isdir(SEEDS_MODEL) and not args.smoke else ""
    rows = []
    try:
        for capacity in capacities:
            for material in materials:
                minutes = float(material.split("-", 1)[1])
                for stage in stages:
                    if not args.all and (stage, capacity, minutes) in DEFAULT_SKIP:
                        continue
                    if stage == "eval" and not args.model:
                        args.model = os.path.join(args.out, "model")
                        subprocess.run(_child("train", os.path.join(args.out, "datasets", f"{material}-{capacity}"),
                                              args.model), cwd=ROOT, check=True, capture_output=True)
                    row = one_row(stage, material, capacity, args, paths)
                    if row is not None:
                        rows.append(row)
    finally:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
    add_growth(rows)
    print(f"Scale: {', '.join(materials)}; CREPE {', '.join(capacities)}; stages {', '.join(stages)}; "
          f"{started:%Y-%m-%d %H:%M} UTC")
    print(f"Machine: {common.machine_description()}; {common.code_description()}")
    print(format_table(rows, markdown=args.markdown))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"started": started.isoformat(), "rows": rows}, handle, indent=1)
    failed = [row for row in rows if row["exit"] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
