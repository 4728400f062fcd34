"""The training loop: data -> model -> Keras `fit`, with logs, summaries and checkpoints.

`train()` is what `ddsp_run --mode=train` calls. It builds the model under the
distribution scope, resumes from the newest checkpoint in save_dir (or restore_dir),
writes the operative gin config, and runs `fit` with callbacks that show progress (a
bar with rate, ETA and loss, or a line now and then; a line per step with verbose),
write TensorBoard scalars every `steps_per_summary` steps, save a checkpoint every
`steps_per_save` steps, stop early below `early_stop_loss_value`, and stop with an
error if the loss stops being finite (keeping the last good checkpoint).

On several machines (`distribution.Distribution.is_chief`), every task trains and saves as
the chief does (reading a sync-on-read variable of a multi-worker strategy is a collective op
that all tasks must join), but only the chief writes into save_dir; the others write into a
scratch folder deleted at the end.
"""

import contextlib
import datetime
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid

import gin
import keras
import numpy as np

from ddsp_core import progress as progress_lib
from ddsp_core import accelerators
from ddsp_core.models import checkpoints
from ddsp_core.training import gin_configs, health, seeding, train_lock
from ddsp_core.io import storage
from ddsp_core.models import model_statistics as model_statistics_lib
from ddsp_core.models import TOTAL_LOSS, count_trainable_parameters
from ddsp_core.training.summaries import SummaryWriter

TRAIN_STATE_FILE = checkpoints.TRAIN_STATE_FILE
TRAIN_SUMMARY_DIR = "summaries/train"


class TrainingError(RuntimeError):
    """Training cannot go on (bad settings, a diverged loss); the message says what to do."""


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C (SIGINT) or SIGTERM after saving a checkpoint.

    A KeyboardInterrupt, so that callers that know nothing of it still stop; `step` and
    `checkpoint` say where a rerun with the same save_dir resumes.
    """

    def __init__(self, step, checkpoint, signal_name="SIGINT"):
        self.step = step
        self.checkpoint = checkpoint
        self.signal_name = signal_name
        super().__init__(f"Training stopped by {signal_name} at step {step}; checkpoint {checkpoint} is saved. "
                         "Rerun the same command to resume from it.")


def check_writable(save_dir):
    """Raises TrainingError unless files can be written in save_dir (local or gs://)."""
    probe = storage.join(save_dir, f".write_test-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        storage.write_bytes(probe, b"ok")
        storage.delete([probe])
    except Exception as error:  # OSError locally, a client error on object storage.
        raise TrainingError(
            f"Cannot write to save_dir {save_dir}: {type(error).__name__}: {error}. "
            "Choose a folder (or bucket) you can write to with --save_dir."
        ) from None


def dummy_features(data_provider, batch_size=1):
    """A batch of zeros shaped like the provider's examples, to build a model's variables."""
    spec = data_provider.get_dataset(shuffle=False).element_spec  # {name: TensorSpec([n, ...])}
    return {name: np.zeros((batch_size, *tensor_spec.shape), tensor_spec.dtype.as_numpy_dtype)
            for name, tensor_spec in spec.items()}


def build_model(model, data_provider):
    """Creates the model's variables with one call on zeros; checks the output length.

    Raises:
        TrainingError: the synthesizer's n_samples differs from the examples' length.
    """
    features = dummy_features(data_provider)
    outputs = model(features, training=False)
    n_synth, n_audio = outputs["audio_synth"].shape[-1], features["audio"].shape[-1]
    if n_synth != n_audio:
        raise TrainingError(
            f"The model makes {n_synth} samples per example but the data has {n_audio} "
            f"(example_secs x sample_rate). Make the synths' n_samples (e.g. Harmonic.n_samples, "
            f"FilteredNoise.n_samples) equal to {n_audio}, or change TFRecordProvider.example_secs."
        )
    return model


def write_operative_config(save_dir, step):
    """Writes gin's operative config (every binding used so far) as operative_config-<step>.gin."""
    path = storage.join(save_dir, f"operative_config-{int(step)}.gin")
    storage.write_bytes(path, gin.operative_config_str().encode("utf-8"))
    return path


def write_train_state(save_dir, **state):
    state["updated"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    storage.write_json(storage.join(save_dir, TRAIN_STATE_FILE), state)


def read_train_state(save_dir):
    """The train state written by `train` ({'step', 'num_steps', 'status', ...}), or None."""
    path = storage.join(save_dir, TRAIN_STATE_FILE)
    return storage.read_json(path) if storage.exists(path) else None


def restore_latest(model, save_dir, restore_dir=None):
    """Restores the newest checkpoint of save_dir, else of restore_dir; returns its step or 0."""
    for directory in dict.fromkeys(d for d in (save_dir, restore_dir) if d):
        found = checkpoints.latest(directory)
        if found:
            checkpoints.restore(model, found[1], training=True)
            step = int(keras.ops.convert_to_numpy(model.optimizer.iterations))
            logging.info("Resuming from %s at step %d.", found[1], step)
            return step
    return 0


def write_model_statistics(save_dir, data_provider, seed=None):
    """Writes the training data's statistics (model_statistics.py) into save_dir, once, with the
    run's seed."""
    if storage.exists(storage.join(save_dir, model_statistics_lib.STATISTICS_FILE)):
        return
    started = time.perf_counter()
    try:
        statistics = model_statistics_lib.from_provider(data_provider, gin_config=gin.operative_config_str())
        statistics["seed"] = seed
    except (model_statistics_lib.StatisticsError, KeyError, AttributeError) as error:
        logging.warning("No model statistics written (%s: %s): ddsp_play and ddsp_export will need them.",
                        type(error).__name__, error)
        return
    path = model_statistics_lib.write(save_dir, statistics)
    logging.info("Wrote %s (%d examples, %.1f s).", path, statistics["n_examples"], time.perf_counter() - started)


class TrainLoopCallback(keras.callbacks.Callback):
    """Progress, periodic summaries and checkpoints, early stop and the NaN guard.

    Progress is a bar (terminal) or a line now and then (pipe) over the steps with the
    total_loss (`progress_shown`); when verbose, magenta's per-step line
    `step: N  spectral_loss: x  total_loss: y  (0.52 s/step)` and a steps/sec line every
    steps_per_summary steps instead.

    The global step is counted here (start_step + batches done) rather than read
    from the model, so that on JAX the model state is only synced when saving.
    """

    def __init__(self, trainer, save_dir, start_step, num_steps, steps_per_summary, steps_per_save,
                 loss_names, early_stop_loss_value=None, summary_writer=None, verbose=None, seed=None,
                 guard=None, probe=None):
        super().__init__()
        self.seed = seed
        self.guard = guard if guard is not None and guard.enabled and probe is not None else None
        self.probe = probe
        self.check_from = self.guard.first_checked_step(trainer.warmup_steps) if self.guard else None
        self.health = {}  # The last figures measured (health.FIGURES), with their 'step'.
        self.healthy = None  # (step, model variables, optimizer variables) of the last healthy probe.
        self.collapse = None  # The reasons of a collapse found at this step, until it is handled.
        self.unhealthy = None  # The figures of the last probe when they looked like a collapse.
        self.guard_events = []  # One record per roll-back.
        self.trainer = trainer
        self.save_dir = save_dir
        self.step = start_step
        self.num_steps = num_steps
        self.steps_per_summary = steps_per_summary
        self.steps_per_save = steps_per_save
        self.loss_names = list(loss_names)
        self.early_stop_loss_value = early_stop_loss_value
        self.summary_writer = summary_writer
        self.verbose = progress_lib.verbose() if verbose is None else verbose
        self._progress = None
        self.status = "running"
        self.stop_requested = None  # The name of the signal asking to stop after this step, if any.
        self.diverged_at = None
        self.written = []  # Checkpoints this run wrote, oldest first.
        self.last_checkpoint = None
        self.last_losses = {}
        self._sums = {}
        self._count = 0
        self._interval_start = None
        self._step_start = None

    @contextlib.contextmanager
    def progress_shown(self):
        """While in it, a Progress over the steps (start_step to num_steps, total_loss in view),
        unless verbose: then the per-step lines show the progress."""
        if self.verbose:
            yield
            return
        with progress_lib.Progress("train", self.num_steps, "steps", initial=self.step) as shown:
            self._progress = shown
            try:
                yield
            finally:
                self._progress = None

    def on_train_batch_begin(self, batch, logs=None):
        now = time.perf_counter()
        self._step_start = now
        if self._interval_start is None:
            self._interval_start = now

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        losses = {name: float(np.asarray(logs[name])) for name in self.loss_names if name in logs}
        if self.verbose:
            seconds = time.perf_counter() - self._step_start
            line = "  ".join([f"step: {self.step}"] + [f"{name}: {value:.4f}" for name, value in losses.items()])
            logging.info("%s  (%.2f s/step)", line, seconds)
        elif self._progress is not None:
            shown = {TOTAL_LOSS: losses[TOTAL_LOSS]} if TOTAL_LOSS in losses else dict(losses)
            if self.health:
                shown["harmonic_share"] = self.health["harmonic_share"]
            self._progress.update(**shown)
        if not all(math.isfinite(value) for value in losses.values()):
            self._diverged()
            return
        if self.guard is not None and self.step % self.guard.every_steps == 0 and self._check_health():
            return
        self.last_losses = losses
        for name, value in losses.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._count += 1
        if self.step % self.steps_per_summary == 0:
            self._write_summary()
        if self.step % self.steps_per_save == 0 or self.step >= self.num_steps:
            self.save()
            if self.status == "diverged":  # The weights to save were not finite.
                return
        if self.early_stop_loss_value is not None and losses.get(TOTAL_LOSS, math.inf) < self.early_stop_loss_value:
            logging.info("total_loss %.4f < early_stop_loss_value %s: stopping at step %d.",
                         losses[TOTAL_LOSS], self.early_stop_loss_value, self.step)
            self.status = "early_stopped"
            self.save()
            self.model.stop_training = True
        elif self.stop_requested and self.status == "running" and self.step < self.num_steps:
            self.status = "interrupted"
            self.save()
            self.model.stop_training = True

    def _check_health(self):
        """Measures the probe; keeps a copy of a healthy state; on a collapse (from check_from on)
        stops training for the roll-back and returns True."""
        figures = health.measure(self.model, self.probe)
        self.health = {"step": self.step, **figures}
        if self.summary_writer is not None:
            self.summary_writer.scalars(self.step, {name: figures[name] for name in health.FIGURES}, prefix="health/")
        reasons = self.guard.criteria.reasons(figures)
        line = "  ".join(f"{name}: {figures[name]:.3g}" for name in health.FIGURES)
        if self.verbose:
            logging.info("step: %d  health: %s", self.step, line)
        previous, self.unhealthy = self.unhealthy, (figures if reasons else None)
        if not reasons:
            self.keep_healthy(self.model)
            return False
        if self.step < self.check_from:
            logging.info("step %d: the health figures look like a collapse (%s), but steps before %d are not judged.",
                         self.step, "; ".join(reasons), self.check_from)
            return False
        if previous is None:
            logging.info("step %d: the health figures look like a collapse (%s); judged again at step %d.",
                         self.step, "; ".join(reasons), self.step + self.guard.every_steps)
            return False
        rise = figures["loud_amplitude_db"] - previous["loud_amplitude_db"]
        if rise >= self.guard.recovery_db:
            logging.info("step %d: %s, but the harmonic amplitude rose %.0f dB since the last probe: recovering.",
                         self.step, "; ".join(reasons), rise)
            return False
        logging.warning("step %d: harmonic collapse: %s (%s).", self.step, "; ".join(reasons), line)
        self.collapse = reasons
        self.status = "collapsed"
        self.model.stop_training = True
        return True

    def keep_healthy(self, model):
        """Keeps an in-memory copy of the model's and optimizer's variables as the state to roll back to."""
        self.healthy = (self.step, [np.array(keras.ops.convert_to_numpy(v)) for v in model.variables],
                        [np.array(keras.ops.convert_to_numpy(v)) for v in model.optimizer.variables])

    def roll_back(self):
        """Restores the last healthy state (the start when none was measured yet); returns its step.
        Checkpoints this run wrote after it are deleted (they hold the collapsed model)."""
        step, model_values, optimizer_values = self.healthy
        for variable, value in zip(self.model.variables, model_values):
            variable.assign(value)
        for variable, value in zip(self.model.optimizer.variables, optimizer_values):
            variable.assign(value)
        later = [path for path in self.written if checkpoints.step_of(path) > step]
        storage.delete(later)
        self.written = [path for path in self.written if path not in later]
        self.last_checkpoint = self.written[-1] if self.written else None
        if self._progress is not None:
            self._progress.update(n=step - self.step)
        self.step = step
        self._sums, self._count, self._interval_start = {}, 0, None
        self.collapse = self.unhealthy = None
        self.status = "running"
        return step

    def state(self):
        """What train_state.json says of the seed, health and guard besides the step and status."""
        return {"seed": self.seed, "health": self.health,
                "guard": {"retries": len(self.guard_events), "events": self.guard_events}}

    def _write_summary(self):
        elapsed = time.perf_counter() - self._interval_start
        steps_per_sec = self._count / elapsed if elapsed > 0 else 0.0
        means = {name: total / self._count for name, total in self._sums.items()}
        if self.verbose:
            logging.info("step: %d  %.3f steps/sec  mean over %d steps: %s", self.step, steps_per_sec, self._count,
                         "  ".join(f"{name}: {value:.4f}" for name, value in means.items()))
        if self.summary_writer is not None:
            self.summary_writer.scalars(self.step, means, prefix="losses/")
            self.summary_writer.scalars(self.step, {
                "steps_per_sec": steps_per_sec,
                "learning_rate": self.trainer.learning_rate_at(self.step),
            })
            self.summary_writer.flush()
        self._sums, self._count, self._interval_start = {}, 0, None

    def _diverged(self):
        self.status = "diverged"
        self.diverged_at = self.step
        self.model.stop_training = True

    def discard_unverified(self):
        """After a divergence at step k, deletes this run's checkpoints from step k - 1 on.

        The loss logged at step k is computed with the weights saved at step k - 1,
        so a non-finite loss at step k condemns that checkpoint too.
        """
        bad = [path for path in self.written if checkpoints.step_of(path) >= self.diverged_at - 1]
        storage.delete(bad)
        for path in bad:
            logging.info("Deleted %s: its weights gave a non-finite loss.", path)
        self.written = [path for path in self.written if path not in bad]

    def save(self):
        if self.last_checkpoint and checkpoints.step_of(self.last_checkpoint) == self.step:
            return
        if not all(np.isfinite(keras.ops.convert_to_numpy(v)).all() for v in self.model.trainable_weights):
            self._diverged()
            self.diverged_at += 1  # These weights are step + 1's input: keep checkpoint `step - 1`.
            return
        self.last_checkpoint = checkpoints.save(self.model, self.save_dir, self.step,
                                                keep=self.trainer.checkpoints_to_keep)
        self.written.append(self.last_checkpoint)
        logging.info("Saved %s", self.last_checkpoint)
        write_train_state(self.save_dir, step=self.step, num_steps=self.num_steps, status=self.status,
                          checkpoint=self.last_checkpoint, losses=self.last_losses, **self.state())


@gin.configurable
def train(data_provider, trainer, model=None, distribution=None, batch_size=32, num_steps=1000000,
          steps_per_summary=300, steps_per_save=300, save_dir="/tmp/ddsp", restore_dir=None,
          early_stop_loss_value=None, augmentation=None, model_statistics=True, seed=None, health_guard=None,
          probe_file_pattern=None, callbacks=()):
    """Trains a model; returns the last step and its losses.

    Args:
        data_provider: A `DataProvider` (e.g. TFRecordProvider).
        trainer: A `trainers.Trainer` (optimizer, clipping, checkpoints kept, jit).
        model: The model, or None for the one bound in gin (get_model.model). Built
            here, inside the distribution scope, when None.
        distribution: A `distribution.Distribution`, or None for get_distribution().
        batch_size: Examples per step, over all devices.
        num_steps: Train until the optimizer has taken this many steps in total
            (a resumed run counts the steps already taken).
        steps_per_summary: TensorBoard scalars every this many steps.
        steps_per_save: A checkpoint every this many steps (and at the end).
        save_dir: Checkpoints, operative config and summaries go here (local or gs://).
        restore_dir: Where to look for a checkpoint to start from when save_dir has
            none (fine-tuning); None: only save_dir.
        early_stop_loss_value: Stop once total_loss falls below this.
        augmentation: None, or a callable mapping a batch (dict of tensors) to an
            augmented one, e.g. `augmentation.GainAugmentation()`; training batches only.
        model_statistics: Write save_dir/model_statistics.json (the training data's level
            and pitch distribution, rates and gin config; what `ddsp_play` and `ddsp_export`
            need) before the first step, unless it is there already.
        seed: The run's seed, an integer in [0, 2**31): it seeds the initial weights, the
            data's order, the augmentation and the noise synth (`seeding.py` derives each;
            it overrides TFRecordProvider.seed and GainAugmentation.seed). None: the seed a
            resumed run recorded, else a drawn one; either way it is logged and recorded in
            train_state.json and model_statistics.json, so any run can be repeated.
        health_guard: A `health.HealthGuard` (None: HealthGuard(), as gin binds it): health
            figures on a probe batch every few steps, and roll-backs on a collapse.
        probe_file_pattern: TFRecords whose examples make the probe batch (the held-out
            split, when the dataset has one); None: the training data's (in file order,
            without augmentation).
        callbacks: More Keras callbacks for `fit` (after the training loop's own).

    Returns:
        {'step': int, 'status': 'finished'|'early_stopped', 'losses': {name: float},
        'start_step': the step it resumed from (0 for a fresh start), 'chief': whether this
        process wrote save_dir's files (False only on a multi-worker run's other tasks),
        'seed': the run's seed, 'health': the last health figures, 'guard': {'retries',
        'events'}}.

    Raises:
        TrainingError: save_dir not writable, a data/model mismatch, the loss became NaN, or
            the model collapsed more often than the health guard retries.
        train_lock.LockHeld: another run is training in save_dir (its host, pid and start
            are in the message and in save_dir/train.lock).
        TrainingInterrupted: a SIGINT or SIGTERM stopped training after saving a checkpoint
            (a second one raises a plain KeyboardInterrupt at once).
    """
    from ddsp_core.training import distribution as distribution_lib

    for name, value in (("batch_size", batch_size), ("num_steps", num_steps),
                        ("steps_per_summary", steps_per_summary), ("steps_per_save", steps_per_save)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise TrainingError(f"train.{name} must be a positive integer, got {value!r}.")
    try:
        seeding.check_seed(seed, "train.seed")
    except ValueError as error:
        raise TrainingError(str(error)) from None
    health_guard = health.HealthGuard() if health_guard is None else health_guard
    distribution = distribution or distribution_lib.get_distribution()
    if distribution.is_chief:
        check_writable(save_dir)  # Its clear message first: the lock below would fail with a bare OSError.
    # One run at a time in a save_dir (a resume folder): the second says who holds it and stops. Only the
    # chief takes it; the other tasks of a multi-worker run share save_dir.
    lock = train_lock.held(save_dir) if distribution.is_chief else contextlib.nullcontext()
    with lock, _write_dir(save_dir, distribution.is_chief) as write_dir:
        result = _train(data_provider, trainer, model, distribution, batch_size, num_steps, steps_per_summary,
                        steps_per_save, save_dir, write_dir, restore_dir, early_stop_loss_value, augmentation,
                        model_statistics=model_statistics and distribution.is_chief, seed=seed,
                        guard=health_guard, probe_file_pattern=probe_file_pattern, callbacks=callbacks)
    return {**result, "chief": distribution.is_chief}


@contextlib.contextmanager
def _write_dir(save_dir, is_chief):
    """Where this process writes: save_dir on the chief (every single-process run); on the other
    tasks of a multi-worker run, a scratch folder deleted afterwards. Those tasks save as the
    chief does, TensorFlow's pattern for multi-worker saving: reading a sync-on-read variable
    is a collective op that every task must join. (The checkpoints of this project's models
    hold only mirrored variables, read locally, so today the scratch copies cost only time.)"""
    if is_chief:
        yield save_dir
        return
    scratch = tempfile.mkdtemp(prefix="ddsp-train-worker-")
    logging.info("Not the chief: this task's checkpoints, summaries and train state go to the scratch folder %s "
                 "(deleted at the end); it resumes from the checkpoints in %s.", scratch, save_dir)
    try:
        yield scratch
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _train(data_provider, trainer, model, distribution, batch_size, num_steps, steps_per_summary, steps_per_save,
           save_dir, write_dir, restore_dir, early_stop_loss_value, augmentation, model_statistics, seed, guard,
           probe_file_pattern, callbacks):
    """`train` with checkpoints read from save_dir (and restore_dir) and every file written
    into write_dir: save_dir itself, except on a multi-worker run's other tasks."""
    from ddsp_core.models import get_model

    check_writable(write_dir)
    distribution.check_batch_size(batch_size)
    data_provider.list_files()  # A clear error now if the pattern matches nothing.
    previous = read_train_state(save_dir) if checkpoints.latest(save_dir) else None
    seed, _ = seeding.resolve(seed, (previous or {}).get("seed"))

    seeding.seed_weights(seed)
    with distribution.scope():
        if model is None:
            gin_configs.bind_example_format(getattr(data_provider, "example_format", None))
            model = get_model()
        build_model(model, data_provider)
        trainer.compile(model, total_steps=num_steps)
    seeding.seed_noise(model, seed)
    logging.info("Model: %s, %s trainable parameters.", model.name, f"{count_trainable_parameters(model):,}")
    model.summary(print_fn=lambda line, *args, **kwargs: logging.info(line))

    start_step = restore_latest(model, save_dir, restore_dir)  # Also the noise state of a resumed run.
    config_path = write_operative_config(write_dir, start_step)
    logging.info("Wrote %s", config_path)
    if model_statistics:
        write_model_statistics(write_dir, data_provider, seed)
    if start_step >= num_steps:
        logging.info("Already at step %d >= num_steps %d: nothing to train.", start_step, num_steps)
        return {"step": start_step, "status": "finished", "losses": {}, "start_step": start_step, "seed": seed,
                "health": (previous or {}).get("health", {}), "guard": (previous or {}).get("guard", {})}

    probe = _probe(guard, data_provider, probe_file_pattern, trainer.warmup_steps, model)
    loss_names = [name for name in model.loss_trackers]
    with SummaryWriter(storage.join(write_dir, TRAIN_SUMMARY_DIR)) as writer:
        loop = TrainLoopCallback(trainer, write_dir, start_step, num_steps, steps_per_summary, steps_per_save,
                                 loss_names, early_stop_loss_value=early_stop_loss_value, summary_writer=writer,
                                 seed=seed, guard=guard, probe=probe)
        if loop.guard is not None:
            loop.keep_healthy(model)
        write_train_state(write_dir, step=start_step, num_steps=num_steps, status="running",
                          checkpoint=checkpoints.latest(save_dir) and checkpoints.latest(save_dir)[1], **loop.state())
        logging.info("%s.", accelerators.training_devices().line)
        logging.info("Training from step %d to %d, batch size %d (%s backend, jit_compile=%s).",
                     start_step, num_steps, batch_size, keras.backend.backend(), trainer.jit_compile)
        attempt = 0
        with _stop_on_signals(loop), loop.progress_shown():
            while True:
                seeding.seed_data(data_provider, augmentation, seed, attempt)
                dataset = _training_dataset(data_provider, augmentation, batch_size, distribution)
                model.fit(dataset, epochs=1, steps_per_epoch=num_steps - loop.step, verbose=0, shuffle=False,
                          callbacks=[loop, *callbacks])
                if loop.status != "collapsed":
                    break
                attempt += 1
                _recover(loop, model, trainer, guard, seed, attempt, num_steps)
    if loop.status == "running":
        loop.status = "finished"
        loop.save()
    if loop.status == "diverged":
        loop.discard_unverified()
        kept = checkpoints.latest(write_dir)
        write_train_state(write_dir, step=kept[0] if kept else 0, num_steps=num_steps, status="diverged",
                          checkpoint=kept[1] if kept else None, diverged_at_step=loop.diverged_at, **loop.state())
        raise TrainingError(
            f"The loss stopped being finite at step {loop.diverged_at}; training stopped without saving that "
            f"state. The last good checkpoint is {kept[1] if kept else '(none yet)'}. Lower the learning rate "
            "(--gin_param='learning_rate=...') or the gradient clip (Trainer.grad_clip_norm), or check the "
            "data for NaN/inf values; rerunning resumes from that checkpoint."
        )
    write_train_state(write_dir, step=loop.step, num_steps=num_steps, status=loop.status,
                      checkpoint=loop.last_checkpoint, losses=loop.last_losses, **loop.state())
    if loop.status == "interrupted":
        logging.warning("Stopped by %s at step %d of %d; saved %s. Rerun with the same save_dir to resume.",
                        loop.stop_requested, loop.step, num_steps, loop.last_checkpoint)
        raise TrainingInterrupted(loop.step, loop.last_checkpoint, loop.stop_requested)
    return {"step": loop.step, "status": loop.status, "losses": loop.last_losses, "start_step": start_step,
            **loop.state()}


def _training_dataset(data_provider, augmentation, batch_size, distribution):
    """Shuffled, repeated, augmented batches, split among the replicas."""
    dataset = data_provider.get_batch(batch_size, shuffle=True, repeats=-1)
    if augmentation is not None:
        # One batch at a time: a seeded random op in a parallel map hands its draws to the batches in
        # whatever order the threads run, so a seeded run would not repeat (and a gain is cheap).
        dataset = dataset.map(augmentation)
    # Several machines: each global batch (batch_size examples) is split among all replicas.
    return distribution.shard(dataset)


def _probe(guard, data_provider, probe_file_pattern, warmup_steps=0, model=None):
    """The health probe batch (None when the guard is off, or the model has no harmonic synth to watch)."""
    if guard is None or not guard.enabled:
        return None
    names = getattr(getattr(model, "processor_group", None), "processor_names", ())
    if model is not None and ("harmonic" not in names or not hasattr(model, "synthesize")):
        logging.info("No health probe: the model has no harmonic synth named 'harmonic' (processors: %s).",
                     ", ".join(names) or "none")
        return None
    source = data_provider
    if probe_file_pattern:
        from ddsp_core.training.data import TFRecordProvider

        source = TFRecordProvider(file_pattern=probe_file_pattern)
    probe = health.probe_batch(source, guard.probe_examples)
    logging.info("Health probe: %d examples of %s, every %d steps; collapses judged from step %d on.",
                 len(probe["audio"]), "the held-out data" if probe_file_pattern else "the training data",
                 guard.every_steps, guard.first_checked_step(warmup_steps))
    return probe


def _recover(loop, model, trainer, guard, seed, attempt, num_steps):
    """After a collapse: roll back and lower the learning rate, or fail when no retry is left."""
    found_at, reasons = loop.step, loop.collapse
    event = {"step": found_at, "reasons": reasons, "health": dict(loop.health), "attempt": attempt}
    if attempt > guard.max_retries:
        loop.guard_events.append({**event, "rolled_back_to": None})
        kept = checkpoints.latest(loop.save_dir)
        write_train_state(loop.save_dir, step=loop.step, num_steps=num_steps, status="collapsed",
                          checkpoint=kept[1] if kept else None, **loop.state())
        raise TrainingError(
            f"The model collapsed at step {found_at} ({'; '.join(reasons)}) after {guard.max_retries} roll-back(s) "
            "with new seeds and lower learning rates: training stopped. Try another --seed, a lower learning rate "
            "(--gin_param='learning_rate=...') or a longer warm-up (Trainer.warmup_steps); the health figures are "
            "in train_state.json and TensorBoard (health/*).")
    step = loop.roll_back()
    trainer.lower_learning_rate(model, guard.lr_factor)
    seeding.seed_noise(model, seed, attempt)
    loop.guard_events.append({**event, "rolled_back_to": step, "learning_rate_scale": trainer.lr_scale})
    message = (f"Collapse at step {found_at} ({'; '.join(reasons)}): rolled back to step {step}, retry {attempt} of "
               f"{guard.max_retries} with new data and noise seeds and the learning rate x{trainer.lr_scale:g}.")
    logging.warning("%s", message)
    write_train_state(loop.save_dir, step=step, num_steps=num_steps, status="running",
                      checkpoint=loop.last_checkpoint, **loop.state())
    if loop.summary_writer is not None:
        loop.summary_writer.scalars(found_at, {"guard/retries": attempt}, prefix="")
        loop.summary_writer.flush()


@contextlib.contextmanager
def _stop_on_signals(loop):
    """While training, the first SIGINT (Ctrl-C) or SIGTERM (a preempted or stopped container)
    asks `loop` to save a checkpoint and stop after the current step; a second one stops at
    once (KeyboardInterrupt), keeping the checkpoints already written. Only the main thread
    can handle signals: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        name = signal.Signals(signum).name
        if loop.stop_requested:
            logging.warning("%s again: stopping now, without saving step %d.", name, loop.step)
            raise KeyboardInterrupt
        loop.stop_requested = name
        logging.warning("%s: saving a checkpoint after step %d and stopping (again to stop at once).", name,
                        loop.step + 1)

    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {number: signal.signal(number, request_stop) for number in handled}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
