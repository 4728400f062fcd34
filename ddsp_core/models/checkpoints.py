"""Checkpoints: the model's weights and the optimizer's state, in Keras' backend-neutral HDF5.

A checkpoint is one file, `<dir>/ckpt-<step>.weights.h5`, written with
`model.save_weights`: it holds every variable of the model and of its optimizer
(Adam's moments and its iteration count, which is the training step). The format does
not depend on the Keras backend, so a checkpoint written under TensorFlow loads under
JAX and back. Files are written to a local temporary file first and then copied, so
`<dir>` may be a local folder or gs://.

With an exponential moving average of the weights (`Trainer.ema_momentum`), the file's model
weights are the average (what eval, sample, ddsp_play and ddsp_export use, unchanged) and the
raw weights sit in the optimizer's average slot; `restore(..., training=True)` swaps them back.
"""

import contextlib
import logging
import os
import re
import tempfile
import warnings

from ddsp_core.io import storage

PREFIX = "ckpt-"
# Written beside the checkpoints by training: the step, the newest checkpoint, and the status
# ('running' while training, or after a training that was killed; 'finished', 'interrupted', ...).
TRAIN_STATE_FILE = "train_state.json"
SUFFIX = ".weights.h5"
_STEP = re.compile(re.escape(PREFIX) + r"(\d+)" + re.escape(SUFFIX) + "$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be restored into this model."""


def path_for(directory, step):
    """The checkpoint file of `step` in `directory`."""
    return storage.join(directory, f"{PREFIX}{int(step)}{SUFFIX}")


def step_of(path):
    """The training step in a checkpoint's file name, or None if it is not one."""
    match = _STEP.search(str(path))
    return int(match.group(1)) if match else None


def list_checkpoints(directory):
    """[(step, path)] of the checkpoints in `directory`, oldest first."""
    found = []
    for path in storage.list_glob(storage.join(directory, f"{PREFIX}*{SUFFIX}")):
        step = step_of(path)
        if step is not None:
            found.append((step, path))
    return sorted(found)


def latest(directory_or_file):
    """(step, path) of the newest checkpoint, or None.

    Accepts a folder (the newest `ckpt-N.weights.h5` in it) or a checkpoint file.
    """
    if step_of(directory_or_file) is not None:
        if not storage.exists(directory_or_file):
            raise FileNotFoundError(f"Checkpoint {directory_or_file} does not exist.")
        return step_of(directory_or_file), directory_or_file
    found = list_checkpoints(directory_or_file)
    return found[-1] if found else None


def save(model, directory, step, keep=5):
    """Writes the model's (and its optimizer's) variables; keeps the newest `keep` checkpoints.

    Returns the checkpoint's path.
    """
    path = path_for(directory, step)
    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, os.path.basename(path))
        with averaged_weights(model):
            model.save_weights(local)
        with open(local, "rb") as handle:
            storage.write_bytes(path, handle.read())
    if keep:
        others = [p for _, p in list_checkpoints(directory) if p != path]
        storage.delete(others[:max(0, len(others) - (int(keep) - 1))])
    return path


def _average_pairs(model):
    """[(trainable variable, its moving average)] when the model's optimizer keeps an EMA of the
    weights (`Trainer.ema_momentum`), else []."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None or not getattr(optimizer, "use_ema", False) or not optimizer.built:
        return []
    averages = getattr(optimizer, "_model_variables_moving_average", None)
    if averages is None:
        raise CheckpointError("This Keras version keeps the optimizer's weight average elsewhere than "
                              "_model_variables_moving_average: checkpoints.py must follow it (or set "
                              "Trainer.ema_momentum = None).")
    return [(variable, average) for variable, average in zip(optimizer._trainable_variables, averages)
            if average is not None]


def swap_average(model):
    """Exchanges the model's trainable weights with the optimizer's moving average of them (a no-op
    without an EMA). Checkpoints store the average as the model's weights and the raw weights in
    the average's slot; training swaps them back after restoring (`restore(..., training=True)`)."""
    import keras

    for variable, average in _average_pairs(model):
        raw = keras.ops.convert_to_numpy(variable)
        variable.assign(average)
        average.assign(raw)


@contextlib.contextmanager
def averaged_weights(model):
    """While in it, the model's trainable weights are the EMA of them (when it keeps one)."""
    swap_average(model)
    try:
        yield model
    finally:
        swap_average(model)


def restore(model, path, training=False):
    """Loads a checkpoint file into a built model (and its built optimizer).

    The model's weights are then those that eval and export use: the moving average when the
    run kept one. training=True hands training its raw weights back (and the average to the
    optimizer), to resume.

    Raises:
        CheckpointError: the checkpoint was written by a model of another shape.
    """
    with tempfile.TemporaryDirectory() as scratch:
        local = os.path.join(scratch, os.path.basename(str(path)))
        with open(local, "wb") as handle:
            handle.write(storage.read_bytes(path))
        problems = structure_mismatches(model, local, os.path.join(scratch, "model.weights.h5"))
        if problems:
            raise CheckpointError(
                f"Checkpoint {path} does not fit this model ({len(problems)} difference(s), e.g. "
                f"{'; '.join(problems[:3])}). It was written by a model with another configuration. Restore it "
                "with the gin config it was trained with (its save_dir's operative_config-N.gin), or train from "
                "scratch in a new --save_dir.")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.load_weights(local)
            # Keras only warns when stored layers or variables are left over or missing.
            skipped = [str(w.message) for w in caught if "loading" in str(w.message).lower()
                       or "mismatch" in str(w.message).lower()]
            if skipped:
                raise ValueError(skipped[0].strip().splitlines()[0])
        except (ValueError, KeyError) as error:
            raise CheckpointError(
                f"Checkpoint {path} does not fit this model: {_first_line(error)} It was probably written "
                "by a model with another configuration. Restore it with the gin config it was trained with "
                "(its save_dir's operative_config-0.gin), or train from scratch in a new --save_dir."
            ) from None
    if training:
        swap_average(model)
    logging.info("Restored %s", path)
    return step_of(path)


def _variables(h5_path):
    """{variable path in the file: shape} of a Keras .weights.h5 file."""
    import h5py

    found = {}
    with h5py.File(h5_path, "r") as handle:
        handle.visititems(lambda name, item: found.__setitem__(name, item.shape)
                          if isinstance(item, h5py.Dataset) else None)
    return found


def structure_mismatches(model, checkpoint_path, scratch_path):
    """Differences between the variables in a checkpoint and those of `model` (and its
    optimizer, if built), as readable strings; [] when they match. Nothing is loaded."""
    model.save_weights(scratch_path)
    expected, stored = _variables(scratch_path), _variables(checkpoint_path)
    with_optimizer = any(name.startswith("optimizer/") for name in expected)
    if not with_optimizer:  # Inference: the optimizer's state in the file is not needed.
        stored = {name: shape for name, shape in stored.items() if not name.startswith("optimizer/")}
    problems = [f"{name}: checkpoint {list(stored[name])}, model {list(shape)}"
                for name, shape in expected.items() if name in stored and stored[name] != shape]
    problems += [f"{name} is missing from the checkpoint" for name in expected if name not in stored]
    problems += [f"{name} is in the checkpoint but not in the model" for name in stored if name not in expected]
    return problems


def _first_line(error):
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__).rstrip(".") + "."
