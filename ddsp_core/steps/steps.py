"""The four steps of the clarinet pipeline as functions of folders (local paths or gs://).

    prepare(audio_pattern, dataset_dir)                     audio -> TFRecords + manifest
    train(dataset_dir, model_dir)                           -> checkpoints, operative gin, summaries/train
    evaluate(dataset_dir, model_dir, eval_dir)              -> metrics.json, summaries/eval
    sample(dataset_dir, model_dir, samples_dir)             -> WAV/PNG files, HTML pages, summaries/sample
    export(model_dir, export_dir)                           -> SavedModel, DDSP-VST .tflite, metadata.json

They call the same library functions as `ddsp_prepare_tfrecord` and `ddsp_run`, with the
settings of a preset (`presets.py`); the kfp components in `components/` are thin shells
over them. Each step only writes to its own output folder: inputs (a dataset, a model) are
read, never changed, so kfp can cache and reuse them.

`run_step` wraps a step for a pipeline: it prints progress lines, turns any failure into a
`StepError` naming the step and the cause, and, when its `StepSettings` give a status folder,
writes `<step>.json` there with the status, the cause and the outputs, for the runner's summary.
Those settings say how the step reports, not what it computes, so they are no parameter of the
components (kfp's cache key): the local runner hands them to the step processes as environment
variables, which `run_step`, the function each component calls, reads once
(`StepSettings.from_environ`) and passes down as arguments.
"""

import dataclasses
import json
import logging
import os
import sys
import time

from ddsp_core.example_format import ExampleFormat
from ddsp_core.steps import presets as presets_lib
from ddsp_core.io import storage

STEPS = ("prepare_tfrecord", "train", "eval", "sample", "export")
# The environment of the step processes `ddsp_pipeline run` starts (pipelines/local.py), read by
# StepSettings.from_environ: the folder for the steps' status records, and '1' for --verbose (log
# every training step and every prepared file).
STATUS_DIR_ENV = "DDSP_PIPELINE_STATUS_DIR"
VERBOSE_ENV = "DDSP_PIPELINE_VERBOSE"
TRAIN_PREFIX = "train.tfrecord"
EVAL_PREFIX = "eval.tfrecord"
MANIFEST = "train_manifest.json"
METRICS_FILE = "metrics.json"


class StepError(RuntimeError):
    """A pipeline step failed; `step` is its name and `cause` says why and what to do."""

    def __init__(self, step, cause):
        self.step = step
        self.cause = str(cause)
        super().__init__(f"step '{step}' failed: {self.cause}")


def split_commas(text):
    """'a,b , c' -> ['a', 'b', 'c'] (comma-separated patterns or options)."""
    return [item.strip() for item in str(text).split(",") if item.strip()]


# ---------------------------------------------------------------------------------------------
# prepare


def prepare(audio_pattern, dataset_dir, *, preset="quick", crepe_capacity="", beam_pipeline_options=(), num_workers=0,
            eval_audio_pattern="", dataset_uri="", pipeline_root="", worker_image="", environ=None, sample_rate=0,
            explicit_pipeline_root="", project_id=""):
    """Runs the prepare job (as `ddsp_prepare_tfrecord`) into `dataset_dir` (or `dataset_uri`).

    Args:
        audio_pattern: Glob(s) of audio files, comma-separated, local or gs://.
        dataset_dir: Output folder: train.tfrecord-* (and eval.tfrecord-*) shards and
            train_manifest.json. Earlier shards there are replaced.
        preset: Preset name (example format, eval split, CREPE size, shards).
        crepe_capacity: CREPE size; '' for the preset's.
        beam_pipeline_options: Beam options, a list with one option an item (a value may
            contain commas), e.g. ['--runner=DataflowRunner', '--max_num_workers=8']; empty
            for the local runner. A plain string is refused (`dataflow.check_options`).
        num_workers: Local runner's worker processes (0: as many as the process's CPU quota,
            affinity and memory limit allow; data_preparation/local_workers.py).
        eval_audio_pattern: Glob(s) of audio that all goes to the eval split (a held-out
            instrument); the preset's eval_split_fraction then is not applied. '' for none.
        dataset_uri: The URL of the same folder (a kfp artifact's gs:// URI, whose local path
            is dataset_dir): a remote runner's workers write there, and the manifest is read
            back from there (`dataflow.output_dir`). '' : dataset_dir is the URL.
        pipeline_root, worker_image, environ: For Dataflow, where its temp and staging
            folders go, the image its workers run, and the step's environment (a dict) that
            project and region are read from, when the options do not give them
            (`dataflow.complete_options`). Unused by other runners. pipeline_root is kfp's
            `{{$.pipeline_root}}`: left as that text (Kubeflow), explicit_pipeline_root (the
            pipeline's parameter) is used instead; with neither, Dataflow's temp folder goes to
            the Dataset's bucket, with a warning.
        project_id: For Dataflow, the project ID the pipeline passes (Vertex AI's placeholder),
            preferred over the environment's (where Vertex AI gives the project number).
        sample_rate: The examples' audio rate in Hz (any rate; CREPE runs at 16 kHz); 0 for
            the preset's (`Preset.with_sample_rate` picks the frame rate). Every later step
            reads it, with the rest of the example format, from the manifest.

    Returns:
        The manifest (dict).

    Raises:
        ValueError: bad options, a remote runner without a gs:// output, or a Dataflow job
            lacking project, region or temp location (the message names them).
    """
    from ddsp_core.steps import dataflow
    from ddsp_core.prepare import prepare_tfrecord_lib as lib

    preset = presets_lib.get_preset(preset, sample_rate)
    lib.tidy_beam_logging()
    patterns = split_commas(audio_pattern)
    if not patterns:
        raise ValueError("audio_pattern is empty: give a glob of audio files, e.g. 'data/clarinet/train/*.flac'.")
    eval_patterns = split_commas(eval_audio_pattern)
    options = dataflow.check_options(beam_pipeline_options)
    output_dir = dataflow.output_dir(options, dataset_uri or dataset_dir, dataset_dir)
    root = dataflow.effective_pipeline_root(pipeline_root, explicit_pipeline_root)
    options, derived = dataflow.complete_options(options, dict(environ or {}), pipeline_root=root,
                                                 worker_image=worker_image, output=output_dir, project_id=project_id)
    for name, source in derived.items():
        logging.info("Dataflow option --%s from %s.", name, source)
    if derived.get("temp_location") == "the Dataset's bucket":
        temp = next(item for item in options if item.startswith("--temp_location="))
        logging.warning("No gs:// pipeline root reached the step (kfp's: %r; the pipeline_root parameter: %r): "
                        "Dataflow's temp and staging folders go to the Dataset's bucket instead (%s). Submit with "
                        "--pipeline-root gs://BUCKET/PATH to keep them under the root.", str(pipeline_root),
                        str(explicit_pipeline_root), temp)
    missing = dataflow.missing_options(options)
    if missing:
        raise ValueError(f"The Dataflow job lacks {'; '.join(missing)}. Give them as Beam options, e.g. "
                         "--beam-option=--project=P --beam-option=--region=us-central1 "
                         "--beam-option=--temp_location=gs://BUCKET/tmp.")
    if output_dir != dataset_dir and not storage.is_url(dataset_dir):
        # The workers write to the URI; kfp's launcher still expects the artifact's local folder.
        os.makedirs(dataset_dir, exist_ok=True)
        logging.info("The prepare job runs on %s and writes to %s.", dataflow.runner(options), output_dir)
    settings = lib.PrepareSettings(
        input_audio_filepatterns=patterns,
        output_tfrecord_path=storage.join(output_dir, TRAIN_PREFIX),
        eval_tfrecord_path=storage.join(output_dir, EVAL_PREFIX),
        num_shards=preset.num_shards, example_format=preset.example_format,
        eval_split_fraction=0.0 if eval_patterns else preset.eval_split_fraction,
        eval_audio_filepatterns=eval_patterns,
        crepe_capacity=crepe_capacity or preset.crepe_capacity, crepe_precision="auto")
    logging.info("Examples: %s.", preset.example_format.describe())
    manifest = lib.run(settings, options, num_workers=num_workers, overwrite=True)
    for line in lib.summary_lines(manifest):
        logging.info(line)
    if manifest["examples_written"]["total"] == 0:
        reasons = "; ".join(f"{item['path']}: {item['reason']}" for item in manifest["skipped"][:5])
        raise ValueError(f"No example was written: all {manifest['files_matched']} files were skipped ({reasons}).")
    problem = eval_split_problem(manifest)
    if problem:  # Said here too, next to the skipped files; the train step refuses the dataset.
        logging.warning("%s The train step will refuse this dataset.", problem)
    return manifest


def read_manifest(dataset_dir):
    """The prepare job's manifest in `dataset_dir`; ValueError saying what is wrong if absent."""
    path = storage.join(dataset_dir, MANIFEST)
    if not storage.exists(path):
        raise ValueError(f"{dataset_dir} is not a prepared dataset: it has no {MANIFEST}. Give the output of the "
                         "prepare_tfrecord step (or of ddsp_prepare_tfrecord with --output_tfrecord_path="
                         f"<folder>/{TRAIN_PREFIX}).")
    return storage.read_json(path)


def dataset_metadata(manifest):
    """Numbers of a manifest worth showing next to the Dataset artifact."""
    example_format = ExampleFormat.from_manifest(manifest)
    return {
        "files_read": manifest["files_read"], "files_skipped": manifest["files_skipped"],
        "train_examples": manifest["examples_written"].get("train", 0),
        "eval_examples": manifest["examples_written"].get("eval", 0),
        "audio_seconds": manifest["audio_seconds"], **example_format.to_dict(),
        "crepe_capacity": manifest["settings"]["crepe_capacity"],
    }


def _data_bindings(dataset_dir, split):
    """{gin key: value} that read `split` of the dataset. The data provider takes the example
    format from the dataset's manifest, and the model its rate and length from the provider
    (`gin_configs.bind_example_format`)."""
    prefix = TRAIN_PREFIX if split == "train" else EVAL_PREFIX
    return {"TFRecordProvider.file_pattern": storage.join(dataset_dir, prefix) + "*"}


def eval_split_problem(manifest):
    """What is wrong when the dataset was to hold out an eval split but holds no eval example
    (a message saying what to change), else None.

    A split was asked for when eval audio patterns were given, or eval_split_fraction > 0
    with 2 or more files matched; when the prepare step then skipped every held-out file,
    eval and sample would quietly measure training examples instead. One example is enough
    (eval and sample keep a last, smaller batch). Manifests without per-split file counts
    (older ones, hand-written ones) are judged by their settings.
    """
    settings = manifest.get("settings", {})
    n_eval = manifest.get("examples_written", {}).get("eval", 0)
    output = manifest.get("outputs", {}).get("eval", {})
    eval_patterns = list(settings.get("eval_audio_filepatterns") or [])
    fraction = float(settings.get("eval_split_fraction") or 0.0)
    n_matched = int(manifest.get("files_matched", 0))
    if "files" in output:
        held_out = int(output["files"])
    else:
        held_out = int(bool(eval_patterns) or (fraction > 0 and n_matched >= 2))
    if n_eval > 0 or held_out == 0:
        return None
    skipped = [item for item in manifest.get("skipped", []) if item.get("split", "eval") == "eval"]
    reasons = "; ".join(f"{item['path']}: {item['reason']}" for item in skipped[:3])
    if "files" not in output:
        held = "held out files for the eval split"
        them = "all of them"
    else:
        held = f"held out {held_out} file{'s' if held_out != 1 else ''} for the eval split"
        them = "it" if held_out == 1 else f"all {held_out}"
    if eval_patterns:
        how = f"the files matched by the eval audio pattern {', '.join(eval_patterns)}"
        change = ("Give held-out audio the prepare step can use with --eval-audio 'folder/*.wav' (files longer than "
                  "min_audio_secs, not silent), or leave --eval-audio out")
    else:
        how = f"eval_split_fraction {fraction:g} of {n_matched} files"
        change = ("Add usable files to --audio (longer than min_audio_secs, not silent), give held-out audio with "
                  "--eval-audio 'folder/*.wav', or use a preset without an eval split (--preset quick)")
    return (f"The dataset has 0 eval examples: the prepare step {held} ({how}) and skipped {them}"
            + (f" ({reasons})" if reasons else "") + ". Eval and sample would have nothing held out to measure. "
            f"{change}, then run the pipeline again.")


def check_eval_split(manifest):
    """ValueError (`eval_split_problem`'s message) when an eval split was asked for but has no example."""
    problem = eval_split_problem(manifest)
    if problem:
        raise ValueError(f"{problem} Training was not started.")


def _eval_split(manifest):
    """'eval' when the dataset has held-out examples, else 'train' (logged)."""
    if manifest["examples_written"].get("eval", 0) > 0:
        return "eval"
    logging.info("The dataset has no eval split: evaluating and sampling on the training examples.")
    return "train"


def _parse_gin(preset, step_bindings, base_files, gin_files, gin_params, operative_config_dir=None):
    """parse_gin with the shipped files, the preset's gin params and the step's bindings (a dict,
    through gin's API) before the user's gin files and params, which so override them."""
    from ddsp_core.training.gin_configs import parse_gin

    parse_gin(list(gin_files), list(gin_params), operative_config_dir=operative_config_dir, base_files=base_files,
              base_params=preset.gin_params, base_bindings=step_bindings)


# ---------------------------------------------------------------------------------------------
# train, eval, sample


def train_gin_files(preset):
    """The shipped gin files the train step parses, in order: the preset's model, the dataset, the
    preset's own files. `preset` is a `presets.Preset`."""
    return [preset.model_gin, "datasets/tfrecord.gin", *preset.gin_files]


def preset_for_dataset(manifest, preset):
    """The preset (a name) at the dataset's audio rate; ValueError unless the dataset was prepared
    at that preset's frame rate, or when the preset's model cannot take the rate (vst)."""
    example_format = ExampleFormat.from_manifest(manifest)
    preset = presets_lib.get_preset(preset, example_format.sample_rate)
    frame_rate = preset.example_format.frame_rate
    if example_format.frame_rate != frame_rate:
        raise ValueError(f"The dataset was prepared at {example_format.frame_rate} frames/s, but the '{preset.name}' "
                         f"preset trains at {frame_rate} frames/s at {example_format.sample_rate} Hz: prepare it "
                         f"with the '{preset.name}' preset (or ddsp_prepare_tfrecord --frame_rate={frame_rate}).")
    return preset


def train(dataset_dir, model_dir, *, preset="quick", num_steps=0, batch_size=0, gin_files=(), gin_params=(),
          checkpoint_dir="", accelerator="", seed=-1):
    """Trains the preset's model (as `ddsp_run --mode=train`) on the dataset's train split.

    Args:
        dataset_dir: A prepare step's output folder, prepared at the preset's frame rate.
        model_dir: Output folder: ckpt-N.weights.h5, operative_config-N.gin, summaries/train.
            A checkpoint already there is resumed.
        preset: Preset name (model, steps, batch, learning rate).
        num_steps, batch_size: Override the preset's when > 0.
        gin_files, gin_params: Applied after the model's and the preset's bindings.
        checkpoint_dir: '' to train in model_dir; else a folder that outlives the run
            (`resume.checkpoint_dir`): training writes its checkpoints there as it goes and
            resumes from the newest one there, and model_dir gets a copy of the result.
        accelerator: The accelerator the pipeline requested for this step ('' for none,
            'NVIDIA_L4', 'nvidia.com/gpu', ...): a GPU that the backend does not see stops
            the step before it reads data (`accelerators.check_requested_accelerator`).
        seed: Seeds the whole training (weights, data order, augmentation, noise): bound as
            `train.seed` after gin_params, so it wins over a train.seed binding there. -1 (or
            None): not set, so train.seed of gin_params if any, else the resumed run's, else
            one drawn by training (logged, and recorded in train_state.json).

    Returns:
        train_util.train's result: {'step', 'status', 'losses', 'start_step'}.

    Raises:
        accelerators.AcceleratorError: a GPU was requested and none is visible.
        train_util.TrainingInterrupted: Ctrl-C or SIGTERM stopped training after a checkpoint.
    """
    from ddsp_core import accelerators
    from ddsp_core.models import checkpoints
    from ddsp_core.training import gin_configs, train_util

    accelerators.check_requested_accelerator(accelerator)  # train() logs the devices it trains on.
    logging.info("Accelerator requested: %s.", repr(accelerator) if accelerator else "none")
    manifest = read_manifest(dataset_dir)
    preset = preset_for_dataset(manifest, preset)
    check_eval_split(manifest)
    bindings = {**_data_bindings(dataset_dir, "train"),
                "%batch_size": int(batch_size) or preset.batch_size,
                "train.num_steps": int(num_steps) or preset.num_steps,
                "train.steps_per_save": preset.steps_per_save,
                "train.steps_per_summary": preset.steps_per_summary}
    if manifest["examples_written"].get("eval", 0) > 0:  # The health probe measures held-out examples.
        bindings["train.probe_file_pattern"] = _data_bindings(dataset_dir, "eval")["TFRecordProvider.file_pattern"]
    save_dir = checkpoint_dir or model_dir
    resume = checkpoints.latest(save_dir) is not None
    if checkpoint_dir:
        from ddsp_core.steps import resume as resume_lib

        logging.info("%s", resume_lib.resume_line(checkpoint_dir))
    _parse_gin(preset, bindings, train_gin_files(preset), gin_files, gin_params,
               operative_config_dir=save_dir if resume else None)
    if seed is not None and int(seed) != -1:
        gin_configs.bind_train_seed(int(seed))
    result = train_util.train(save_dir=save_dir)
    # On several machines (a Vertex AI custom job with replicas) only the chief writes files.
    if checkpoint_dir and result.get("chief", True):
        copied = resume_lib.publish(checkpoint_dir, model_dir)
        logging.info("Copied %d files of %s into the model artifact %s.", len(copied), checkpoint_dir, model_dir)
    return result


def _eval_bindings(dataset_dir, manifest, preset):
    split = _eval_split(manifest)
    return {**_data_bindings(dataset_dir, split),
            "evaluate.split": split,
            "sample.split": split,
            "F0LoudnessMetrics.crepe_capacity": preset.eval_crepe_capacity,
            "F0LoudnessMetrics.crepe_frame_rate": preset.eval_crepe_frame_rate or None,
            "evaluate.num_batches": preset.eval_batches,
            "sample.batch_size": preset.sample_examples}


def evaluate(dataset_dir, model_dir, eval_dir, *, preset="quick", gin_files=(), gin_params=()):
    """Metrics of the model's newest checkpoint (as `ddsp_run --mode=eval --run_once`).

    Writes eval_dir/metrics.json, eval_dir/eval/metrics-<step>.json and summaries/eval;
    model_dir is only read. Returns the record: {'step', 'n_examples', 'metrics', 'time'}.
    """
    from ddsp_core.evaluation import eval_util

    manifest = read_manifest(dataset_dir)
    preset = preset_for_dataset(manifest, preset)
    _parse_gin(preset, _eval_bindings(dataset_dir, manifest, preset), ["datasets/tfrecord.gin", "eval/basic_f0_ld.gin"],
               gin_files, gin_params, operative_config_dir=model_dir)
    return eval_util.evaluate(save_dir=eval_dir, restore_dir=model_dir, run_once=True)


def sample(dataset_dir, model_dir, samples_dir, *, preset="quick", gin_files=(), gin_params=(),
           listening_examples=True):
    """Original vs generated audio of the newest checkpoint (as `ddsp_run --mode=sample --run_once`).

    With listening_examples, the page also plays the instrument: the built-in melody from MIDI
    and a flute phrase transferred to it (ddsp_core/playing/listening.py).

    Writes samples_dir/samples/step_N/{NN_original.wav, NN_generated.wav, NN_*.png,
    index.html}, samples_dir/samples/index.html and summaries/sample. Returns
    {'html', 'index', 'wav', 'png', 'step_dir'}.
    """
    from ddsp_core.evaluation import eval_util

    manifest = read_manifest(dataset_dir)
    preset = preset_for_dataset(manifest, preset)
    _parse_gin(preset, _eval_bindings(dataset_dir, manifest, preset), ["datasets/tfrecord.gin", "eval/basic_f0_ld.gin"],
               gin_files, gin_params, operative_config_dir=model_dir)
    paths = eval_util.sample(save_dir=samples_dir, restore_dir=model_dir, run_once=True)
    paths["step_dir"] = paths["html"].rsplit("/", 1)[0]
    if listening_examples:
        from ddsp_core.playing import listening

        examples = listening.write_listening_examples(model_dir, paths["step_dir"],
                                                      crepe_capacity=preset.eval_crepe_capacity)
        listening.add_to_page(paths["step_dir"], examples)
        paths["listening"] = [storage.join(paths["step_dir"], f"{name}.wav") for name, _, _ in examples]
    return paths


def export(model_dir, export_dir):
    """Exports the newest checkpoint (as `ddsp_export --model_path=model_dir --save_dir=export_dir`).

    Writes the SavedModel (serving signature f0 + level -> audio), metadata.json, the model/
    folder `ddsp_play` reads and, for a model trained with the vst preset, the DDSP-VST
    plugin's .tflite. Returns metadata.json's contents.

    Raises:
        ValueError: the model cannot be exported (ddsp_export's message says why).
    """
    from ddsp_core.export import ddsp_export

    ddsp_export.export(model_path=model_dir, save_dir=export_dir, overwrite=True)
    return storage.read_json(storage.join(export_dir, "metadata.json"))


# ---------------------------------------------------------------------------------------------
# progress and status for a pipeline run


@dataclasses.dataclass(frozen=True)
class StepSettings:
    """How a pipeline step reports, as the runner asks (never part of kfp's cache key).

    Attributes:
        status_dir: A local folder for the step's status record (<step>.json); '' for none.
        verbose: Log a line per training step and per prepared file besides the progress
            (`progress.verbose_as`).
    """

    status_dir: str = ""
    verbose: bool = False

    @classmethod
    def from_environ(cls, environ):
        """The settings the runner gave a step process in its environment (a mapping such as
        os.environ): STATUS_DIR_ENV, and VERBOSE_ENV '1' for verbose."""
        return cls(status_dir=environ.get(STATUS_DIR_ENV, ""), verbose=environ.get(VERBOSE_ENV) == "1")


def _write_status(folder, step, **record):
    """Writes folder/<step>.json (atomically); nothing when folder is ''."""
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{step}.json")
    with open(path + ".tmp", "w") as file:
        json.dump({"step": step, **record}, file, indent=1, default=str)
    os.replace(path + ".tmp", path)


def run_step(step, function, *, outputs=None, inputs=None, settings=None, **kwargs):
    """Runs one step with progress lines and a status record; returns the step's result.

    Args:
        step: One of STEPS.
        function: The step function (`prepare`, `train`, ...), called with **kwargs.
        outputs: {name: path} of the step's output artifacts, for the status record.
        inputs: {name: path} of its input artifacts (earlier steps' outputs), likewise.
        settings: `StepSettings`; None (a component's call): read from the process's
            environment, here and nowhere else.

    Raises:
        StepError: whatever went wrong, with the step's name and the cause.
        SystemExit(130): Ctrl-C (KeyboardInterrupt) stopped the step; its status is 'interrupted'.
    """
    from ddsp_core import progress
    from ddsp_core.command_line import setup_logging

    if settings is None:
        settings = StepSettings.from_environ(os.environ)
    if logging.getLogger().handlers:  # kfp's executor logs to stdout already: no second copy.
        logging.getLogger().setLevel(logging.INFO)
    else:
        setup_logging("info")
    number = STEPS.index(step) + 1
    print(f"==> step {number}/{len(STEPS)}: {step}", file=sys.stderr, flush=True)
    started = time.monotonic()
    paths = {"outputs": outputs or {}, "inputs": inputs or {}}

    def status(**record):
        _write_status(settings.status_dir, step, **record, **paths)

    status(status="running")
    try:
        with progress.verbose_as(settings.verbose):
            result = function(**kwargs)
    except KeyboardInterrupt as stopped:  # Ctrl-C (or SIGTERM in train): a status, then exit status 130.
        cause = str(stopped) or ("stopped by Ctrl-C before it finished: its output is incomplete, and a rerun "
                                 "makes it again")
        status(status="interrupted", cause=cause, seconds=round(time.monotonic() - started, 1))
        print(f"<== step {number}/{len(STEPS)}: {step} STOPPED: {cause}", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    except Exception as error:  # Every failure becomes one message naming the step.
        logging.debug("Details:", exc_info=True)
        cause = _cause(error)
        status(status="failed", cause=cause, seconds=round(time.monotonic() - started, 1))
        print(f"<== step {number}/{len(STEPS)}: {step} FAILED: {cause}", file=sys.stderr, flush=True)
        raise StepError(step, cause) from error
    seconds = round(time.monotonic() - started, 1)
    status(status="done", seconds=seconds)
    print(f"<== step {number}/{len(STEPS)}: {step} done in {seconds:.0f} s", file=sys.stderr, flush=True)
    return result


def _cause(error):
    """A one-paragraph reason: the error's message without gin's call-context lines
    (`gin_configs.without_gin_context`), after the error's type unless it is a ValueError,
    RuntimeError or OSError (whose messages say what is wrong)."""
    from ddsp_core.training.gin_configs import without_gin_context

    text = without_gin_context(error) or type(error).__name__
    return text if isinstance(error, (ValueError, RuntimeError, OSError)) else f"{type(error).__name__}: {text}"
