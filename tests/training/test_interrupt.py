"""Ctrl-C in training: a `ddsp_run --mode=train` process interrupted by SIGINT saves a
checkpoint, says how to resume, and a rerun goes on from that step to the end."""

import glob
import os
import signal
import subprocess
import sys
import time

from tests.interruptible import default_sigint
from tests.training_runs import checkpoint_steps, read_json, tiny_params, train_argv

NUM_STEPS = 400  # Far more than the test lets it train before the SIGINT.


def _ddsp_run(argv):
    return subprocess.Popen([sys.executable, "-m", "ddsp_core.ddsp_run", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
                            preexec_fn=default_sigint)


def _wait_for(condition, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _interrupted(save_dir, params, signals):
    """Starts training, sends `signals` SIGINTs after its first checkpoint; returns
    (exit status, output, seconds from the first signal to the end)."""
    process = _ddsp_run(train_argv(save_dir, params))
    try:
        _wait_for(lambda: checkpoint_steps(save_dir) or process.poll() is not None, 120, "the first checkpoint")
        sent = time.monotonic()
        for _ in range(signals):  # Back to back: the second lands while the first is handled, or just after.
            process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    return process.returncode, output, time.monotonic() - sent


def test_sigint_saves_a_checkpoint_and_a_rerun_resumes_there(tfrecords_1s, tmp_path):
    save_dir = tmp_path / "run"
    params = [*tiny_params(tfrecords_1s), f"train_util.train.num_steps={NUM_STEPS}", "train.steps_per_save=5"]
    status, output, stop_seconds = _interrupted(save_dir, params, signals=1)
    assert status == 130, output[-3000:]
    assert stop_seconds < 10, f"took {stop_seconds:.1f} s to stop"

    # The step it stopped at was saved, the state says so, and the message says how to go on.
    state = read_json(save_dir / "train_state.json")
    stopped_at = state["step"]
    assert state["status"] == "interrupted"
    assert 5 <= stopped_at < NUM_STEPS
    assert checkpoint_steps(save_dir)[-1] == stopped_at
    assert state["checkpoint"].endswith(f"ckpt-{stopped_at}.weights.h5")
    assert f"stopped by SIGINT at step {stopped_at}" in output
    assert "Rerun the same command to resume" in output
    assert not glob.glob(str(save_dir / "*.tmp-*")), "a half-written file was left"

    # The rerun resumes at that step (the optimizer's count too) and trains to the end.
    rerun_params = [*params[:-2], f"train_util.train.num_steps={stopped_at + 3}", "train.steps_per_save=5"]
    rerun = _ddsp_run(train_argv(save_dir, rerun_params))
    output, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, output[-3000:]
    assert f"Training from step {stopped_at} to {stopped_at + 3}" in output
    state = read_json(save_dir / "train_state.json")
    assert state["status"] == "finished" and state["step"] == stopped_at + 3
    assert checkpoint_steps(save_dir)[-1] == stopped_at + 3


def test_a_second_sigint_stops_at_once_keeping_the_checkpoints(tfrecords_1s, tmp_path):
    save_dir = tmp_path / "run"
    params = [*tiny_params(tfrecords_1s), f"train_util.train.num_steps={NUM_STEPS}", "train.steps_per_save=5"]
    status, output, _ = _interrupted(save_dir, params, signals=2)
    assert status == 130, output[-3000:]
    assert checkpoint_steps(save_dir), "the checkpoints written before were deleted"
    assert not glob.glob(str(save_dir / "*.tmp-*")), "a half-written file was left"
