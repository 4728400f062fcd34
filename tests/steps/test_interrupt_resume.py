"""The probe of issue 14, as a test: Ctrl-C a local `ddsp_pipeline run` during training after a
checkpoint; it stops within seconds, leaving no process behind and saying how to resume; a
second Ctrl-C ends a run at once; a rerun takes prepare from kfp's cache and resumes training
at the saved step."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

from ddsp_core.steps import resume, steps
from tests.interruptible import default_sigint
from tests.training_runs import NOTES_PATTERN, TINY_MODEL_PARAMS

NUM_STEPS = 60


def _command(root, *extra):
    params = [*TINY_MODEL_PARAMS, "train.steps_per_save=5"]
    return [sys.executable, "-m", "pipelines.cli", "run", "--audio", NOTES_PATTERN, "--pipeline-root", str(root),
            "--num-steps", str(NUM_STEPS), "--batch-size", "2", *[arg for p in params for arg in ("--gin-param", p)],
            *extra]


def _start(root):
    # A session of its own: the SIGINT goes to the runner only (as `kill -INT <pid>` does), and the
    # runner must pass it on to its steps itself.
    return subprocess.Popen(_command(root), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                            preexec_fn=default_sigint)


def _checkpoint_folder(root):
    folders = glob.glob(os.path.join(root, resume.FOLDER, "quick-*"))
    return folders[0] if len(folders) == 1 else None


def _train_state(root):
    folder = _checkpoint_folder(root)
    path = folder and os.path.join(folder, "train_state.json")
    if not path or not os.path.exists(path):
        return {}
    with open(path) as file:
        return json.load(file)


def _wait_for(condition, process, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            raise AssertionError(f"the run ended before {what}:\n{process.stdout.read()[-4000:]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _processes_of(root):
    """PIDs of live processes whose command line names the run's pipeline root (the steps'
    executors carry it in their executor input)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as file:
                command = file.read().decode(errors="replace")
            with open(f"/proc/{entry}/stat") as file:
                state = file.read().split(")")[-1].split()[0]
        except OSError:
            continue
        if str(root) in command and state != "Z":
            found.append(int(entry))
    return found


def _stop(process, signals, gap_s=0.2):
    sent = time.monotonic()
    for _ in range(signals):
        process.send_signal(signal.SIGINT)
        time.sleep(gap_s)
    try:
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    return output, time.monotonic() - sent


def test_ctrl_c_in_training_then_a_rerun_resumes(tmp_path):
    root = tmp_path / "root"

    # 1. Ctrl-C after the first checkpoint: the step saves one more and the run stops.
    run = _start(root)
    _wait_for(lambda: _train_state(root).get("checkpoint"), run, 300, "the first checkpoint")
    output, seconds = _stop(run, signals=1)
    assert run.returncode == 130, output[-4000:]
    assert seconds < 15, f"took {seconds:.1f} s to stop"
    assert "stopped by Ctrl-C during step 'train'" in output
    assert "Rerun the same command to go on" in output
    state = _train_state(root)
    stopped_at = state["step"]
    assert state["status"] == "interrupted" and 5 <= stopped_at < NUM_STEPS
    assert f"Training stopped by SIGINT at step {stopped_at}" in output
    assert not _processes_of(root), "a step process outlived the run"
    assert not glob.glob(os.path.join(_checkpoint_folder(root), "*.tmp-*"))

    # 2. Two Ctrl-C: it ends at once; the checkpoints already written stay.
    run = _start(root)
    _wait_for(lambda: _train_state(root).get("status") == "running", run, 300, "training to start again")
    output, seconds = _stop(run, signals=2)
    assert run.returncode == 130, output[-4000:]
    assert seconds < 10, f"took {seconds:.1f} s to end"
    assert not _processes_of(root), "a step process outlived the run"
    resumed_at = resume.describe(_checkpoint_folder(root))["step"]
    assert resumed_at >= stopped_at

    # 3. The rerun: prepare from the cache, training from the saved step to the end.
    done = subprocess.run(_command(root), capture_output=True, text=True, timeout=900,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert f"train: resumes at step {resumed_at} of {NUM_STEPS}" in output
    assert "prepare-tfrecord cache hit" in output
    assert f"Training from step {resumed_at} to {NUM_STEPS}" in output
    models = glob.glob(os.path.join(root, "ddsp-clarinet-*", "train", "model"))
    finished = [model for model in models if os.path.exists(os.path.join(model, f"ckpt-{NUM_STEPS}.weights.h5"))]
    assert len(finished) == 1, models
    with open(os.path.join(finished[0], "train_state.json")) as file:
        assert json.load(file)["status"] == "finished"
    statuses = glob.glob(os.path.join(root, ".status", "*", "eval.json"))
    assert statuses and json.load(open(statuses[-1]))["status"] == "done"
    assert steps.STEPS[-1] == "export"
