"""Evaluation and sampling of checkpoints: metrics (JSON + TensorBoard) and listenable pages.

`evaluate` and `sample` run on the newest checkpoint of save_dir. With run_once they
do it once and return (a pipeline step); otherwise they watch save_dir, handling each
new checkpoint, and return once training has ended and its last checkpoint is done.
"""

import datetime
import logging
import time

import gin
import keras
import numpy as np

from ddsp_core import progress
from ddsp_core.models import checkpoints
from ddsp_core.training import health, train_util, trainers
from ddsp_core.evaluation import samples
from ddsp_core.io import storage
from ddsp_core.models import TOTAL_LOSS
from ddsp_core.training.summaries import SummaryWriter

METRICS_FILE = "metrics.json"
EVAL_DIR = "eval"
EVAL_SUMMARY_DIR = "summaries/eval"
SAMPLE_SUMMARY_DIR = "summaries/sample"
# What the page and metrics.json say when the examples are the training data.
TRAINING_DATA_NOTE = ("Measured on training examples (the dataset has no held-out split): these figures show how "
                      "well the model fits its training notes, not how it sounds on notes it never heard.")


def split_note(split):
    """The note for examples of `split` ('train' gets TRAINING_DATA_NOTE; others None)."""
    return TRAINING_DATA_NOTE if split == "train" else None


class EvaluationError(RuntimeError):
    """Eval or sample cannot run (no checkpoint, no data); the message says what to do."""


def _to_numpy(tree):
    return {key: np.asarray(keras.ops.convert_to_numpy(value)) for key, value in tree.items()}


def load_model(data_provider, model=None):
    """The gin-configured model with its variables built (not yet restored)."""
    from ddsp_core.training import gin_configs
    from ddsp_core.models import get_model

    if model is None:
        gin_configs.bind_example_format(getattr(data_provider, "example_format", None))
        try:
            model = get_model()
        except RuntimeError as error:  # gin: "Required bindings for `get_model` not provided".
            raise EvaluationError(
                "No model is configured: evaluate a training run's save_dir (its operative_config-N.gin "
                "is loaded) or pass the model's gin file, e.g. --gin_file=models/solo_instrument.gin "
                f"({str(error).splitlines()[0]})") from None
    train_util.build_model(model, data_provider)
    return model


def restore_for_inference(model, path):
    """Loads a training checkpoint (weights + optimizer state) into a model for inference."""
    if getattr(model, "optimizer", None) is None:  # The checkpoint holds the optimizer's variables too.
        trainers.Trainer().compile(model)
    return checkpoints.restore(model, path)


def generate(model, batch):
    """Runs the model on a batch of features; returns its outputs as NumPy arrays."""
    return _to_numpy(model.predict_on_batch(batch))


class _CompiledSynthesis(keras.Model):
    """`model.synthesize` run by Keras' compiled predict step, as `generate` runs the model's call.

    `health.synth_parts` takes any object with `synthesize`; this one compiles it once
    (tf.function or jax.jit, one trace per batch shape) instead of running it op by op,
    about 4x faster on the TensorFlow backend. It reads the model's current weights.
    """

    def __init__(self, model):
        super().__init__(name=f"{model.name}_synthesis")
        self.synthesized = model

    def call(self, features, training=False):
        return self.synthesized.synthesize(features, training=False)

    def synthesize(self, features, training=False):
        return self.predict_on_batch(features)


def generator(model):
    """The function batch -> generated outputs (a dict of NumPy arrays) that eval and sample run.

    For a model whose processor group has a 'harmonic' synth (models/solo_instrument.gin),
    one run of the model (`health.synth_parts`) gives 'audio_synth' [batch, n_samples] and the
    synths' audio alone, 'harmonic_audio' and 'noise_audio' [batch, n_samples] (before the
    effects; zeros without a noise synth), float32. Other models give `generate`'s outputs.
    """
    names = getattr(getattr(model, "processor_group", None), "processor_names", ())
    if "harmonic" not in names or not hasattr(model, "synthesize"):
        return lambda batch: generate(model, batch)
    synthesis = _CompiledSynthesis(model)

    def run(batch):
        parts = health.synth_parts(synthesis, batch)
        return {key: parts[name].astype(np.float32) for key, name in
                (("audio_synth", "audio_synth"), ("harmonic_audio", "harmonic"), ("noise_audio", "noise"))}

    return run


def batches(data_provider, batch_size, num_batches):
    """Up to num_batches batches in file order (no shuffling), as dicts of NumPy arrays."""
    dataset = data_provider.get_batch(batch_size, shuffle=False, repeats=1, drop_remainder=False)
    found = [_to_numpy(batch) for batch in dataset.take(num_batches)]
    if not found:
        raise EvaluationError(f"The data ({getattr(data_provider, 'file_patterns', data_provider)}) holds no examples.")
    return found


def evaluate_checkpoint(model, data_provider, evaluator_classes, save_dir, step, batch_size, num_batches, split=None,
                        seed=None, guard_retries=None):
    """Metrics of the restored model over num_batches batches; written to JSON and TensorBoard.

    `split` ('train', 'eval' or None: unknown) is recorded with the metrics, and a note when
    they were measured on training examples, the training run's `seed` and the collapse guard's
    `guard_retries` (roll-backs during training), when known. The evaluators' tables (e.g. 'per_pitch', the
    rows by MIDI note) go into the record beside 'metrics', not to TensorBoard.
    """
    evaluators = [cls(data_provider.sample_rate, data_provider.frame_rate) for cls in evaluator_classes]
    n_examples = 0
    found = batches(data_provider, batch_size, num_batches)
    run = generator(model)
    with progress.Progress("eval", len(found), "batches") as shown:
        for batch in found:
            outputs = run(batch)
            losses = model.losses_dict(batch, outputs)
            for evaluator in evaluators:
                evaluator.update(batch, outputs, losses)
            n_examples += len(batch["audio"])
            shown.update(**({TOTAL_LOSS: losses[TOTAL_LOSS]} if TOTAL_LOSS in losses else {}))
    metrics = {}
    for evaluator in evaluators:
        metrics.update(evaluator.result())
    record = {
        "step": int(step), "n_examples": n_examples, "metrics": metrics,
        "time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    for evaluator in evaluators:
        record.update(evaluator.tables())
    if split is not None:
        record["split"] = split
    if seed is not None:
        record["seed"] = seed
    if guard_retries is not None:
        record["guard_retries"] = guard_retries
    if split_note(split):
        record["note"] = split_note(split)
        logging.warning(split_note(split))
    storage.write_json(storage.join(save_dir, METRICS_FILE), record)
    storage.write_json(storage.join(save_dir, EVAL_DIR, f"metrics-{int(step)}.json"), record)
    with SummaryWriter(storage.join(save_dir, EVAL_SUMMARY_DIR)) as writer:
        writer.scalars(step, {k: v for k, v in metrics.items() if v is not None}, prefix="metrics/")
    logging.info("step: %d  %s", step, "  ".join(f"{k}: {_fmt(v)}" for k, v in metrics.items()))
    return record


def sample_checkpoint(model, data_provider, evaluator_classes, save_dir, step, batch_size, split=None):
    """Writes original vs generated audio, plots and the HTML page for one batch (and TensorBoard).

    The page's per-pitch table (with F0LdEvaluator) is that of this batch's examples.
    """
    evaluators = [cls(data_provider.sample_rate, data_provider.frame_rate) for cls in evaluator_classes]
    batch = batches(data_provider, batch_size, 1)[0]
    outputs = generator(model)(batch)
    losses = model.losses_dict(batch, outputs)
    extras = {}
    for evaluator in evaluators:
        extras.update(evaluator.sample_extras(batch, outputs))
    with SummaryWriter(storage.join(save_dir, SAMPLE_SUMMARY_DIR)) as writer:
        paths = samples.write_samples(
            save_dir, step, batch, outputs["audio_synth"], data_provider.sample_rate, data_provider.frame_rate,
            metrics=losses, summary_writer=writer, max_examples=batch_size, title=f"Samples of {_run_name(save_dir)}",
            note=split_note(split), **extras)
    logging.info("step: %d  wrote %d WAV and %d PNG files; page: %s", step, len(paths["wav"]), len(paths["png"]),
                 paths["html"])
    return paths


def _run_name(save_dir):
    """The run folder's name: 'clarinet' for out/runs/clarinet or gs://b/runs/clarinet/."""
    return str(save_dir).rstrip("/").rsplit("/", 1)[-1]


def _fmt(value):
    return "None" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def evaluate_or_sample(mode, data_provider, evaluator_classes, save_dir, restore_dir=None, model=None,
                       batch_size=8, num_batches=4, ckpt_delay_secs=300, run_once=False, timeout_secs=None,
                       split=None):
    """Runs eval or sample on the newest checkpoint, once or each time a new one appears.

    Args:
        mode: 'eval' or 'sample'.
        restore_dir: Where the checkpoints are (default: save_dir).
        ckpt_delay_secs: Seconds between looks for a new checkpoint (watch mode).
        run_once: Handle the newest checkpoint and return.
        timeout_secs: In watch mode, give up after this long without a new checkpoint.
        split: Which data the examples are: 'eval' (held out), 'train' (the page and
            metrics.json say so) or None (not known).

    Returns:
        The results of the last checkpoint handled.
    """
    restore_dir = restore_dir or save_dir
    train_util.check_writable(save_dir)
    data_provider.list_files()
    if run_once and checkpoints.latest(restore_dir) is None:
        raise EvaluationError(f"No checkpoint (ckpt-N.weights.h5) in {restore_dir}: train first "
                              "(ddsp_run --mode=train), or point --restore_dir at a training run's save_dir.")
    model = load_model(data_provider, model)
    done, result, waited_since = set(), None, time.monotonic()
    while True:
        found = checkpoints.latest(restore_dir)
        if found is None and run_once:
            raise EvaluationError(f"No checkpoint (ckpt-N.weights.h5) in {restore_dir}: train first "
                                  "(ddsp_run --mode=train), or point --restore_dir at a training run's save_dir.")
        if found is not None and found[0] not in done:
            step, path = found
            restore_for_inference(model, path)
            logging.info("%s on %s (step %d)", mode, path, step)
            if mode == "eval":
                trained = train_util.read_train_state(restore_dir) or {}
                result = evaluate_checkpoint(model, data_provider, evaluator_classes, save_dir, step, batch_size,
                                             num_batches, split, seed=trained.get("seed"),
                                             guard_retries=trained.get("guard", {}).get("retries"))
            else:
                result = sample_checkpoint(model, data_provider, evaluator_classes, save_dir, step, batch_size, split)
            done.add(step)
            waited_since = time.monotonic()
        if run_once:
            return result
        state = train_util.read_train_state(restore_dir)
        newest = checkpoints.latest(restore_dir)
        if state and state.get("status") != "running" and (newest is None or newest[0] in done):
            logging.info("Training ended (%s at step %s) and its last checkpoint is done.", state["status"],
                         state["step"])
            return result
        if timeout_secs is not None and time.monotonic() - waited_since > timeout_secs:
            logging.info("No new checkpoint for %d s: stopping.", timeout_secs)
            return result
        logging.info("Waiting %d s for a new checkpoint in %s ...", ckpt_delay_secs, restore_dir)
        time.sleep(ckpt_delay_secs)


@gin.configurable
def evaluate(data_provider, evaluator_classes=(), save_dir="/tmp/ddsp", restore_dir=None, model=None,
             batch_size=8, num_batches=4, ckpt_delay_secs=300, run_once=False, timeout_secs=None, split=None):
    """Metrics of checkpoints: see `evaluate_or_sample`. Writes save_dir/metrics.json."""
    return evaluate_or_sample("eval", data_provider, evaluator_classes, save_dir, restore_dir, model, batch_size,
                              num_batches, ckpt_delay_secs, run_once, timeout_secs, split)


@gin.configurable
def sample(data_provider, evaluator_classes=(), save_dir="/tmp/ddsp", restore_dir=None, model=None,
           batch_size=4, ckpt_delay_secs=300, run_once=False, timeout_secs=None, split=None):
    """Audio, plots and an HTML page of checkpoints: see `evaluate_or_sample`. Writes save_dir/samples/."""
    return evaluate_or_sample("sample", data_provider, evaluator_classes, save_dir, restore_dir, model, batch_size,
                              1, ckpt_delay_secs, run_once, timeout_secs, split)
