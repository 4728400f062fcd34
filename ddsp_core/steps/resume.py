"""Where a pipeline's training resumes: one checkpoint folder per set of training inputs.

kfp gives every run new artifact folders, and Kubeflow uploads a step's outputs only when
its pod exits: a run stopped in training (Ctrl-C, a preempted node, a later step's typo)
would leave nothing to resume from. So the train step trains in a stable folder under the
pipeline root, named by a digest of the pipeline parameters that decide what is trained:

    <pipeline_root>/checkpoints/<preset>-<digest>/   ckpt-N.weights.h5 (written as training goes),
                                                     train_state.json, operative_config-N.gin,
                                                     model_statistics.json, summaries/train/

and, when training is done, copies its result (the newest checkpoint and the rest) into the
step's model artifact (`publish`). A rerun with the same inputs finds the folder and resumes
at its newest checkpoint; `set_aside` moves it out of the way to start over (`--no-resume`),
keeping its files.
"""

import datetime
import hashlib
import json
import os

from ddsp_core.models import checkpoints
from ddsp_core.io import storage

FOLDER = "checkpoints"
# Parameters that do not change what is trained: where the prepare job runs, the pipeline root and
# service account the run is given, and this module's own.
NOT_IN_KEY = ("beam_pipeline_options", "checkpoint_dir", "restart_id", "pipeline_root", "service_account")
# Parameters that count only when set: at their 'not set' value they are left out, so that runs
# without them keep the folder they had before the parameter existed (and resume from it).
# seed: -1 (or None) lets training draw one.
ONLY_WHEN_SET = {"seed": (None, -1)}


def training_key(parameters):
    """A 16-hex-digit digest of the pipeline parameters that decide what the train step makes
    (audio and its fingerprint, preset, steps, batch, CREPE size, gin files and bindings, the
    seed when one is set); the contents of gin files given as local paths count too."""
    chosen = {name: value for name, value in sorted(parameters.items())
              if name not in NOT_IN_KEY and not (name in ONLY_WHEN_SET and value in ONLY_WHEN_SET[name])}
    digest = hashlib.sha256(json.dumps(chosen, sort_keys=True, default=str).encode())
    for path in parameters.get("gin_files") or ():
        if not storage.is_url(path) and os.path.isfile(path):
            with open(path, "rb") as file:
                digest.update(b"\0" + file.read())
    return digest.hexdigest()[:16]


def checkpoint_dir(pipeline_root, parameters):
    """The stable checkpoint folder of a run with these pipeline parameters."""
    preset = parameters.get("preset") or "quick"
    return storage.join(pipeline_root, FOLDER, f"{preset}-{training_key(parameters)}")


def describe(folder):
    """What a checkpoint folder holds, or None when it has no checkpoint:
    {'step', 'checkpoint', 'status', 'num_steps', 'updated'} (status and num_steps from its
    train_state.json: 'running' means the training that wrote it was stopped)."""
    found = checkpoints.latest(folder)
    if not found:
        return None
    state_path = storage.join(folder, checkpoints.TRAIN_STATE_FILE)
    state = storage.read_json(state_path) if storage.exists(state_path) else {}
    return {"step": found[0], "checkpoint": found[1], "status": state.get("status", "unknown"),
            "num_steps": state.get("num_steps"), "updated": state.get("updated")}


def resume_line(folder):
    """One line saying what training will reuse from `folder`."""
    found = describe(folder)
    if found is None:
        return f"train: no checkpoint yet in {folder}: training starts at step 0."
    if found["num_steps"] and found["step"] >= found["num_steps"]:
        return (f"train: {folder} holds finished training (step {found['step']}): it is reused, "
                "not trained again (--no-resume trains from step 0).")
    return (f"train: resumes at step {found['step']}{' of ' + str(found['num_steps']) if found['num_steps'] else ''} "
            f"from {found['checkpoint']} (saved {found['updated'] or 'earlier'}; --no-resume starts over).")


def set_aside(folder, tag=None):
    """Moves a checkpoint folder to '<folder>.set-aside-<tag>' (tag: the time, by default) so
    training starts over; returns the new path, or None when there was nothing to move."""
    if not storage.list_tree(folder):
        return None
    tag = tag or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    destination = f"{str(folder).rstrip('/')}.set-aside-{tag}"
    storage.move_folder(folder, destination)
    return destination


def publish(folder, model_dir):
    """Copies a finished training's result from its checkpoint folder into the model artifact:
    the newest checkpoint and every file that is not a checkpoint (train state, operative
    configs, model statistics, TensorBoard logs). Returns the relative paths copied.

    Raises:
        FileNotFoundError: the folder has no checkpoint.
    """
    newest = checkpoints.latest(folder)
    if newest is None:
        raise FileNotFoundError(f"No checkpoint (ckpt-N.weights.h5) in {folder} to publish into {model_dir}.")
    newest_name = str(newest[1]).rstrip("/").rsplit("/", 1)[-1]
    files = [relative for relative in storage.list_tree(folder)
             if checkpoints.step_of(relative) is None and ".tmp-" not in relative] + [newest_name]
    storage.copy_files(folder, model_dir, files)
    return files


def parameters_for_run(pipeline_root, parameters, resume=True, run_id=None):
    """The pipeline parameters that point this run's training at its checkpoint folder, and the
    line saying what it reuses: ({'checkpoint_dir': ...}, line) when resuming; with resume False
    the folder is set aside first and {'restart_id': run_id} added (a new value also makes
    kfp's cache see a new train task)."""
    folder = checkpoint_dir(pipeline_root, parameters)
    if resume:
        return {"checkpoint_dir": folder}, resume_line(folder)
    run_id = run_id or datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    moved = set_aside(folder, run_id)
    line = "train: starts at step 0 (--no-resume)" + (f"; the earlier checkpoints are kept in {moved}." if moved
                                                      else ".")
    return {"checkpoint_dir": folder, "restart_id": run_id}, line
