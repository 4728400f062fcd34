"""One trial of a hyperparameter search on a prepared dataset: train, eval, report the objective.

    python -m ddsp_core.steps.trial --dataset gs://B/.../dataset --search-space-json '{...}' \
        [--output-dir gs://B/tune/7] [--preset quick --num-steps N --batch-size N --seed N \
         --gin-file F --gin-param P --accelerator NVIDIA_L4] --learning_rate=0.001 ...

This is the container command of a Vertex AI hyperparameter tuning job's trials
(`pipelines/tuning_pipeline.py`): Vertex AI appends each parameter of the study as --ID=VALUE,
and reads the trial's objective from what the trial reports (`report_metric`). The values
become gin bindings through the search space (`search_space.parse_trial_values`), the same text
a local tune applies, after the preset's and the run's own bindings.

Outputs: the model (checkpoints, operative gin) in <output>/model, the eval's metrics and logs in
<output>/eval, and <output>/trial.json (the values, bindings and metrics). <output> is --output-dir,
else the parent of $AIP_MODEL_DIR, which Vertex AI sets for each trial to
<base output directory>/<trial id>/model.

Exit status: 0 done, 1 training or eval failed (said on stderr), 2 a bad command line.
"""

import argparse
import json
import logging
import os
import sys
import time

from ddsp_core.steps import search_space as search_space_lib
from ddsp_core.steps import steps as steps_lib
from ddsp_core.io import storage

# Where Vertex AI reads a trial's reported metrics from (the cloudml-hypertune library's file:
# JSON lines rewritten on each report), and the variables that move it and name the trial.
DEFAULT_METRIC_FILE = "/tmp/hypertune/output.metrics"
METRIC_FILE_ENV = "CLOUD_ML_HP_METRIC_FILE"
TRIAL_ID_ENV = "CLOUD_ML_TRIAL_ID"
MODEL_DIR_ENV = "AIP_MODEL_DIR"
TRIAL_RECORD = "trial.json"
# The reporting file keeps the last this many reports, as the library does.
_REPORTS_KEPT = 100


def report_metric(tag, value, step=0, environ=None):
    """Reports `value` of the metric `tag` at `step` the way Vertex AI reads a trial's objective.

    Writes what the cloudml-hypertune library writes (without needing it in the image): the file
    named by $CLOUD_ML_HP_METRIC_FILE (default /tmp/hypertune/output.metrics) holds one JSON
    object a line, keys sorted, values as strings except the timestamp:
    {"global_step": "600", "loudness_l1_db": "4.2", "timestamp": 1700000000.0, "trial": "3"}.
    Earlier reports in the file are kept (the last 100). Returns the file's path.
    """
    environ = os.environ if environ is None else environ
    path = environ.get(METRIC_FILE_ENV) or DEFAULT_METRIC_FILE
    folder = os.path.dirname(path)
    if folder:
        os.makedirs(folder, exist_ok=True)
    lines = []
    if os.path.exists(path):
        with open(path) as file:
            lines = [line for line in file.read().splitlines() if line.strip()]
    report = {"timestamp": time.time(), "trial": str(environ.get(TRIAL_ID_ENV, 0)), tag: str(float(value)),
              "global_step": str(int(step) if step else 0)}
    lines = [*lines, json.dumps(report, sort_keys=True)][-_REPORTS_KEPT:]
    with open(path, "w") as file:
        file.write("\n".join(lines) + "\n")
    return path


def output_dir_for(output_dir, environ=None):
    """The trial's output folder: `output_dir`, else the parent of $AIP_MODEL_DIR; ValueError if neither."""
    environ = os.environ if environ is None else environ
    if output_dir:
        return output_dir.rstrip("/")
    model_dir = (environ.get(MODEL_DIR_ENV) or "").rstrip("/")
    if not model_dir:
        raise ValueError("No output folder: give --output-dir (Vertex AI sets $AIP_MODEL_DIR for a tuning job's "
                         "trials when the job has a base output directory).")
    return model_dir.rsplit("/", 1)[0]


def run_trial(dataset_dir, output_dir, space, values, preset="quick", num_steps=0, batch_size=0, gin_files=(),
              gin_params=(), seed=-1, accelerator="", environ=None):
    """Trains and evaluates one trial; reports its objective; returns its record (trial.json).

    values: {parameter id: value} of the trial; their bindings come after gin_params.

    Raises:
        ValueError: the eval's metrics lack the objective (the message lists those it has);
        whatever training or eval raises.
    """
    bindings = space.bindings(values)
    model_dir, eval_dir = storage.join(output_dir, "model"), storage.join(output_dir, "eval")
    logging.info("Trial: %s", "; ".join(bindings))
    trained = steps_lib.train(dataset_dir, model_dir, preset=preset, num_steps=num_steps, batch_size=batch_size,
                              gin_files=gin_files, gin_params=[*gin_params, *bindings], accelerator=accelerator,
                              seed=seed)
    if not trained.get("chief", True):
        return {}
    evaluated = steps_lib.evaluate(dataset_dir, model_dir, eval_dir, preset=preset, gin_files=gin_files,
                                   gin_params=[*gin_params, *bindings])
    metrics = evaluated["metrics"]
    objective = metrics.get(space.metric)
    if objective is None:
        raise ValueError(f"The eval step measured no {space.metric!r} (the search space's objective): it measured "
                         f"{', '.join(sorted(name for name, value in metrics.items() if value is not None))}.")
    report_metric(space.metric, objective, evaluated.get("step", 0), environ)
    record = {"values": values, "bindings": bindings, "objective": {space.metric: objective}, "metrics": metrics,
              "step": evaluated.get("step"), "model": model_dir, "eval": eval_dir,
              "trial": str((os.environ if environ is None else environ).get(TRIAL_ID_ENV, ""))}
    storage.write_bytes(storage.join(output_dir, TRIAL_RECORD), json.dumps(record, indent=1).encode("utf-8"))
    logging.info("Trial done: %s = %.4g (reported for the tuning job).", space.metric, objective)
    return record


TRIAL_COMMAND = ["python", "-m", "ddsp_core.steps.trial"]


def trial_arguments(dataset_uri, space, preset="quick", num_steps=0, batch_size=0, gin_files=(), gin_params=(),
                    seed=-1, accelerator=""):
    """The trial container's arguments before Vertex AI appends the parameters (--ID=VALUE)."""
    arguments = ["--dataset", dataset_uri, "--search-space-json", space.to_json(), "--preset", preset,
                 "--num-steps", str(int(num_steps)), "--batch-size", str(int(batch_size)), "--seed", str(int(seed)),
                 "--accelerator", accelerator or ""]
    for path in gin_files:
        arguments += ["--gin-file", path]
    for param in gin_params:
        arguments += ["--gin-param", param]
    return arguments


def worker_pool_specs(image, machine_type, arguments, accelerator_type="", accelerator_count=1):
    """A tuning job's trial_job_spec.worker_pool_specs (Vertex AI's WorkerPoolSpec as a dict): one
    machine running TRIAL_COMMAND with `arguments` in `image`, with its GPUs if any."""
    machine_spec = {"machine_type": machine_type}
    if accelerator_type:
        machine_spec.update(accelerator_type=accelerator_type, accelerator_count=int(accelerator_count))
    return [{"machine_spec": machine_spec, "replica_count": 1,
             "container_spec": {"image_uri": image, "command": list(TRIAL_COMMAND), "args": list(arguments),
                                "env": [{"name": "KERAS_BACKEND", "value": "tensorflow"}]}}]


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m ddsp_core.steps.trial", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="The prepare step's dataset folder (local or gs://).")
    parser.add_argument("--search-space-json", required=True,
                        help="The search space (search_space.SearchSpace.to_json()): the parameters' bindings and "
                             "the objective.")
    parser.add_argument("--output-dir", default="",
                        help="Where the trial's model, eval and trial.json go (default: the parent of "
                             "$AIP_MODEL_DIR).")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--num-steps", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=0)
    parser.add_argument("--seed", type=int, default=-1)
    parser.add_argument("--gin-file", action="append", default=[])
    parser.add_argument("--gin-param", action="append", default=[])
    parser.add_argument("--accelerator", default="",
                        help="The GPU the trial's machine was given ('' for none): one not visible stops the trial.")
    return parser


def main(argv=None):
    """Runs one trial from the command line (Vertex AI's --ID=VALUE included); returns the exit status."""
    from ddsp_core.command_line import setup_logging

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args, rest = parser.parse_known_args(argv)
        space = search_space_lib.from_json(args.search_space_json)
        values, unknown = search_space_lib.parse_trial_values(space, rest)
        if unknown:
            raise ValueError(f"unknown arguments {' '.join(unknown)}: the search space's parameters are "
                             f"{', '.join('--' + parameter.id for parameter in space.parameters)}.")
        output_dir = output_dir_for(args.output_dir)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    except ValueError as error:  # SearchSpaceError too.
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    setup_logging("info")
    try:
        run_trial(args.dataset, output_dir, space, values, preset=args.preset, num_steps=args.num_steps,
                  batch_size=args.batch_size, gin_files=args.gin_file, gin_params=args.gin_param, seed=args.seed,
                  accelerator=args.accelerator)
    except Exception as error:  # One line saying why, for the trial's log.
        logging.debug("Details:", exc_info=True)
        print(f"{parser.prog}: the trial failed: {steps_lib._cause(error)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
