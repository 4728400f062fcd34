"""Runs the clarinet pipeline on this machine with kfp's local runner (`ddsp_pipeline run`).

Each step runs as a subprocess in the current Python environment (kfp.local's
SubprocessRunner), with kfp's local cache on: a rerun with the same inputs reuses the
outputs of the steps that already succeeded, so a failed run resumes at the failed step.
Artifacts land under the pipeline root:

    <pipeline_root>/ddsp-clarinet-<time>/<task>/<artifact>   (dataset, model, metrics, ...)
    <pipeline_root>/.kfp_cache/                              (kfp's cache entries)
    <pipeline_root>/.status/<run>/<step>.json                (each step's status and cause)
"""

import dataclasses
import glob
import json
import logging
import os
import shlex
import shutil
import sys
import sysconfig
import time
import uuid
import warnings

from ddsp_core.steps import presets as presets_lib
from ddsp_core.steps import steps as steps_lib

from components.image import BUNDLED_AUDIO_IN_IMAGE, BUNDLED_EVAL_AUDIO_IN_IMAGE
from pipelines.fingerprint import FingerprintError, audio_fingerprint  # Also local.audio_fingerprint.

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The bundled clarinet material: the checkout's, or the image's copy where the project is installed.
# Training set (FluidR3_GM) and validation set (another soundfont's clarinet, never trained on).
BUNDLED_AUDIO = os.path.join(REPO_DIR, "data", "clarinet", "train", "*.flac")
BUNDLED_EVAL_AUDIO = os.path.join(REPO_DIR, "data", "clarinet", "validation", "*.flac")
if not glob.glob(BUNDLED_AUDIO):
    BUNDLED_AUDIO, BUNDLED_EVAL_AUDIO = BUNDLED_AUDIO_IN_IMAGE, BUNDLED_EVAL_AUDIO_IN_IMAGE


def default_eval_audio(audio):
    """The held-out audio that goes with `audio`: the bundled validation set for the bundled
    training set, else '' (the preset's split of the user's own files)."""
    return BUNDLED_EVAL_AUDIO if audio == BUNDLED_AUDIO else ""
DEFAULT_PIPELINE_ROOT = os.path.join("out", "pipeline")


class PipelineRunError(RuntimeError):
    """The run could not start (exit_status 2: bad input), or a step failed (exit_status 1);
    the message names the step and the cause."""

    def __init__(self, message, exit_status=2):
        super().__init__(message)
        self.exit_status = exit_status


@dataclasses.dataclass
class RunResult:
    """Where a finished run's artifacts are."""

    run_name: str
    pipeline_root: str
    artifacts: dict  # name -> local path
    metrics: dict
    steps: dict  # step -> status record (absent for steps reused from the cache)
    checkpoint_dir: str = ""  # Where training's checkpoints stay between runs (resume.py).
    seed: int = None  # The seed the train step used (its train_state.json); None when it does not say.

    @property
    def tensorboard_logdir(self):
        """The folder holding every TensorBoard log of the run (train, eval, sample)."""
        folders = [self.artifacts[name] for name in ("model", "eval_logs", "samples") if name in self.artifacts]
        return os.path.commonpath(folders) if folders else self.pipeline_root


def resolve_audio(pattern, allow_empty=False):
    """Local globs -> absolute globs (steps run in other folders); gs:// unchanged.

    Raises:
        PipelineRunError: a local glob matches no file (naming it, and the bundled set), or
            the pattern is empty and allow_empty is False.
    """
    resolved = []
    for part in steps_lib.split_commas(pattern):
        if "://" in part:
            resolved.append(part)
            continue
        part = os.path.abspath(os.path.expanduser(part))
        if not any(os.path.isfile(path) for path in glob.glob(part, recursive=True)):
            raise PipelineRunError(
                f"step 'prepare_tfrecord' cannot start: the audio pattern {part!r} matches no file. Check the "
                f"path and quote the glob (--audio 'folder/*.wav'); the bundled set is {BUNDLED_AUDIO!r}.")
        resolved.append(part)
    if not resolved and not allow_empty:
        raise PipelineRunError("step 'prepare_tfrecord' cannot start: the audio pattern is empty.")
    return ",".join(resolved)


def check_pipeline_root(pipeline_root):
    """Creates the pipeline root and proves it writable; PipelineRunError saying what to do if not."""
    root = os.path.abspath(os.path.expanduser(pipeline_root))
    probe = os.path.join(root, f".write_test_{uuid.uuid4().hex}")
    try:
        os.makedirs(root, exist_ok=True)
        with open(probe, "w") as file:
            file.write("ok")
        os.remove(probe)
    except OSError as error:
        raise PipelineRunError(
            f"The pipeline root {root} is not writable ({error.strerror or error}): no step was run. Give a folder "
            "you can write to with --pipeline-root.") from None
    return root


def pipeline_arguments(audio, preset="quick", num_steps=0, batch_size=0, crepe_capacity="", gin_files=(),
                       gin_params=(), beam_options=(), fingerprint="", eval_audio="", sample_rate=0, seed=None):
    """The pipeline's parameter values for a run, checking the preset name first.

    seed: the training's seed, passed only when given (None or -1: the pipeline's default, a seed
        drawn at train time), so that runs without one keep their cache key and resume folder.

    beam_options: Beam options for the prepare job, one a string (a value may contain commas);
        passed as the list `beam_pipeline_options` only when given (else the pipeline's default,
        the local runner). A string is the old comma-separated form, split at every comma.
    """
    presets_lib.get_preset(preset, sample_rate)
    arguments = {"audio_pattern": audio, "eval_audio_pattern": eval_audio, "preset": preset,
                 "num_steps": int(num_steps),
                 "batch_size": int(batch_size), "crepe_capacity": crepe_capacity or "",
                 "gin_files": list(gin_files), "gin_params": list(gin_params),
                 "audio_fingerprint": fingerprint}
    if sample_rate:  # Only when given: runs at the preset's rate keep their cache key and resume folder.
        arguments["sample_rate"] = int(sample_rate)
    if seed is not None and int(seed) != -1:
        arguments["seed"] = int(seed)
    if isinstance(beam_options, str):
        beam_options = steps_lib.split_commas(beam_options)
    if beam_options:
        arguments["beam_pipeline_options"] = list(beam_options)
    return arguments


def run(audio=BUNDLED_AUDIO, preset="quick", pipeline_root=DEFAULT_PIPELINE_ROOT, num_steps=0, batch_size=0,
        crepe_capacity="", gin_files=(), gin_params=(), beam_options=(), use_cache=True, verbose=False,
        eval_audio=None, resume=True, output=None, sample_rate=0, seed=None):
    """Runs the whole pipeline locally; returns a RunResult.

    sample_rate: the examples' and the model's audio rate in Hz; 0 for the preset's.
    seed: seeds the whole training (a different seed: a different resume folder and cache key);
        None: training draws one. RunResult.seed says which seed training used.
    eval_audio: audio held out for eval and sample (all of it in the eval split); None: the
    bundled validation clarinet when `audio` is the bundled training set, else none ('').
    beam_options: the prepare job's Beam options, a list with one option a string (default:
        the local runner); see pipeline_arguments.
    resume: train in the stable checkpoint folder of these inputs (resume.py) and go on from
        its newest checkpoint; False sets that folder aside and trains from step 0.
    verbose: the steps log every training step and every prepared file, and kfp's executor
        input is shown.
    output: where the steps' output is relayed (default: stdout); on a terminal the steps draw
        progress bars, elsewhere they write a compact line now and then.

    Raises:
        PipelineRunError: bad input (no audio, unknown preset, unwritable root), or a step
            failed: the message names the step and its cause; earlier steps' outputs are
            kept, and a rerun reuses them from kfp's cache. exit_status 130: stopped by
            Ctrl-C (the message says where training stopped and how to resume).
    """
    from ddsp_core.steps import resume as resume_lib

    from pipelines.step_processes import StepProcesses

    try:
        presets_lib.get_preset(preset, sample_rate)
    except ValueError as error:
        raise PipelineRunError(str(error)) from None
    root = check_pipeline_root(pipeline_root)
    eval_audio = resolve_audio(default_eval_audio(audio) if eval_audio is None else eval_audio, allow_empty=True)
    audio = resolve_audio(audio)
    try:
        fingerprint = audio_fingerprint(",".join(filter(None, [audio, eval_audio])))
    except FingerprintError as error:
        raise PipelineRunError(f"step 'prepare_tfrecord' cannot start: {error.cause}") from None
    arguments = pipeline_arguments(audio, preset, num_steps, batch_size, crepe_capacity,
                                   [_absolute_if_local(path) for path in gin_files], gin_params, beam_options,
                                   fingerprint, eval_audio, sample_rate, seed)
    run_name = time.strftime("%Y%m%d-%H%M%S")
    resume_parameters, line = resume_lib.parameters_for_run(root, arguments, resume=resume, run_id=run_name)
    arguments.update(resume_parameters)
    checkpoint_dir = resume_parameters["checkpoint_dir"]
    print(line, file=sys.stderr, flush=True)
    status_dir = os.path.join(root, ".status", run_name)
    processes = StepProcesses(output=output, show_executor_input=verbose,
                              env={steps_lib.STATUS_DIR_ENV: status_dir, steps_lib.VERBOSE_ENV: "1" if verbose else ""})

    from kfp import local

    from pipelines.clarinet import PipelineSettings, make_pipeline

    # Here every step runs in this Python environment: no image, no GPU request.
    clarinet_pipeline = make_pipeline(PipelineSettings(accelerator="", project_id=""))  # kfp.local knows no Vertex placeholder.

    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=root, raise_on_error=True,
               enable_caching=use_cache)
    try:
        with processes.running(), warnings.catch_warnings():
            # Expected here, and said once in the docs: resources and the image are the cloud's business;
            # locally every step runs in this Python environment.
            warnings.filterwarnings("ignore", message=".*have no effect in the current local runner.*")
            warnings.filterwarnings("ignore", message=".*custom or non-Python base image.*")
            task = clarinet_pipeline(**arguments)
    except Exception as error:  # kfp says which task failed; the status files say why.
        if processes.signals:
            raise PipelineRunError(_interrupted_message(status_dir, checkpoint_dir), exit_status=130) from None
        raise PipelineRunError(_failure_message(status_dir, error), exit_status=1) from None
    artifacts = {name: output.path for name, output in task.outputs.items()}
    return RunResult(run_name=run_name, pipeline_root=root, artifacts=artifacts,
                     metrics=_read_metrics(artifacts.get("metrics")), steps=read_statuses(status_dir),
                     checkpoint_dir=checkpoint_dir, seed=train_seed(artifacts.get("model")))


def _interrupted_message(status_dir, checkpoint_dir):
    """Where a run stopped by Ctrl-C stopped, what is kept, and how to go on."""
    from ddsp_core.steps import resume as resume_lib

    statuses = read_statuses(status_dir)
    unfinished = [record for record in statuses.values() if record.get("status") != "done"]
    where = f"during step '{unfinished[0]['step']}'" if unfinished else "between steps"
    lines = [f"stopped by Ctrl-C {where}."]
    if unfinished and unfinished[0].get("cause"):
        lines.append(unfinished[0]["cause"])
    found = resume_lib.describe(checkpoint_dir)
    if found:
        lines.append(f"Training is kept in {checkpoint_dir} (step {found['step']}).")
    done = [record["step"] for record in statuses.values() if record.get("status") == "done"]
    if done:
        lines.append(f"Steps done ({', '.join(done)}) are reused from kfp's cache by a rerun.")
    lines.append("Rerun the same command to go on from there (--no-resume to train from step 0).")
    return "\n".join(lines)


def _absolute_if_local(path):
    """A gin file given by path is made absolute (steps run elsewhere); names on the gin path stay."""
    return os.path.abspath(path) if os.path.exists(path) else path


def read_statuses(status_dir):
    """{step: status record} written by the steps of one run."""
    found = {}
    for step in steps_lib.STEPS:
        path = os.path.join(status_dir, f"{step}.json")
        if os.path.exists(path):
            with open(path) as file:
                found[step] = json.load(file)
    return found


def _failure_message(status_dir, error):
    """'step X failed: cause', and the outputs of earlier steps that are kept."""
    statuses = read_statuses(status_dir)
    failed = [record for record in statuses.values() if record.get("status") != "done"]
    if failed:
        record = failed[0]
        message = f"step '{record['step']}' failed: {record.get('cause', 'it stopped without a reason')}"
    else:
        record = {}
        message = f"the pipeline failed: {error}"
        logging.debug("kfp error", exc_info=True)
    # The failed step's inputs (possibly reused from the cache) and the outputs of steps that ran.
    kept = dict(record.get("inputs", {}))
    for done in statuses.values():
        if done.get("status") == "done":
            kept.update(done.get("outputs", {}))
    if kept:
        message += "\nOutputs of the steps that succeeded are kept (a rerun reuses them from the cache):\n"
        message += "\n".join(f"  {name}: {path}" for name, path in kept.items())
    return message


def train_seed(model_dir):
    """The seed recorded in a model artifact's train_state.json, or None (no such file, or one
    written before training recorded its seed)."""
    from ddsp_core.models.checkpoints import TRAIN_STATE_FILE

    try:
        with open(os.path.join(model_dir, TRAIN_STATE_FILE)) as file:
            seed = json.load(file).get("seed")
    except (OSError, TypeError, ValueError, AttributeError):
        return None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _read_metrics(path):
    if not path or not os.path.exists(path):
        return {}
    try:
        with open(path) as file:
            return json.load(file).get("metrics", {})
    except (OSError, ValueError):
        return {}


def console_command(name):
    """How to start this environment's console script `name` in a shell in the current folder.

    The script's path next to the running Python, relative when under the current folder
    (`.venv/bin/tensorboard` for `make run`, whose user has no .venv/bin on PATH), else absolute;
    the bare name when only PATH has it; None when it is not installed.
    """
    for folder in (sysconfig.get_path("scripts"), os.path.dirname(sys.executable)):
        path = os.path.join(folder, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            relative = os.path.relpath(path)
            if relative.startswith(os.pardir):
                return shlex.quote(path)
            return shlex.quote(relative if os.sep in relative else os.path.join(os.curdir, relative))
    return name if shutil.which(name) else None


def summary_lines(result):
    """What the run made and how to look at it, for the terminal."""
    artifacts = result.artifacts
    lines = ["", f"The clarinet pipeline finished (run {result.run_name}). Artifacts:"]
    described = [
        ("dataset", "TFRecords and manifest", ""),
        ("model", "checkpoints, operative gin, TensorBoard logs", ""),
        ("metrics", "metrics (JSON)", ""),
        ("samples", "WAV and PNG files", "samples/"),
        ("page", "listen to the samples (self-contained HTML)", ""),
        ("exported", "export: SavedModel, metadata, model/ for ddsp_play", ""),
    ]
    for name, what, suffix in described:
        if name in artifacts:
            lines.append(f"  {what:46s} {os.path.join(artifacts[name], suffix) if suffix else artifacts[name]}")
    if result.checkpoint_dir:
        lines.append(f"  {'checkpoints kept for a rerun (resume)':46s} {result.checkpoint_dir}")
    for step in steps_lib.STEPS:
        record = result.steps.get(step)
        state = "reused from the cache" if record is None else (
            f"done in {record['seconds']:.0f} s" if record.get("status") == "done" else record.get("status"))
        lines.append(f"  step {step:18s}{state}")
    if result.seed is not None:
        lines.append(f"  training seed: {result.seed} (--seed {result.seed} trains with it again)")
    if result.metrics:
        lines.append("  metrics: " + "  ".join(f"{name}={value:.4g}" for name, value in result.metrics.items()
                                               if isinstance(value, (int, float))))
    tensorboard = console_command("tensorboard")
    if tensorboard:
        lines.append(f"View the training curves: {tensorboard} --logdir {shlex.quote(result.tensorboard_logdir)}")
    else:
        lines.append(f"View the training curves: TensorBoard is not installed here (pip install tensorboard), "
                     f"then tensorboard --logdir {shlex.quote(result.tensorboard_logdir)}")
    pages = sorted(glob.glob(os.path.join(artifacts.get("samples", ""), "samples", "step_*", "index.html")))
    if pages:
        lines.append(f"Open the sample page:     file://{pages[-1]}")
    if "exported" in artifacts:
        play = console_command("ddsp_play") or "ddsp_play"
        lines.append(f"Play it:                  {play} --model {shlex.quote(artifacts['exported'])} --output melody.wav")
    return lines
