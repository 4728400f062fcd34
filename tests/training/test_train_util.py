"""Tests of the training loop (train_util.train) through ddsp_run.main on real TFRecords of the
bundled clarinet notes: the loss goes down, a killed run resumes, a NaN loss stops training
with the last good checkpoint kept, extreme inputs stay finite, early stop."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from ddsp_core import ddsp_run
from ddsp_core.training import data, train_util, trainers
from ddsp_core.prepare.examples import to_tf_example
from tests.training_runs import (
    REPO,
    TINY_RUN_STEPS,
    all_finite,
    checkpoint_steps,
    read_json,
    read_records,
    step_loss_params,
    step_losses,
    tiny_params,
    train_argv,
)
from tests.training.test_summaries import read_events

pytestmark = pytest.mark.usefixtures("clean_state")

N_SAMPLES_1S, N_FRAMES_1S = 16000, 250


def run_main(argv, capfd, verbose=True):
    """ddsp_run.main(argv) -> (exit status, what it wrote to stderr, its log included). With
    verbose (--verbose), the log has magenta's line per step; the tests read the steps' losses
    from a `step_loss_file` record (`step_loss_params`), not from those lines."""
    capfd.readouterr()
    status = ddsp_run.main([*argv, "--verbose"] if verbose else argv)
    return status, capfd.readouterr().err


def write_tfrecords(path, examples):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for example in examples:
            writer.write(to_tf_example(example))
    return str(path)


def first_examples(file_pattern, n):
    return read_records(file_pattern, n)


def test_short_training_run_lowers_the_loss_and_writes_scalars(tfrecords_1s, tmp_path, capfd):
    save_dir = tmp_path / "run"
    steps = tmp_path / "steps.jsonl"
    params = tiny_params(tfrecords_1s, "learning_rate=3e-3", "train_util.train.num_steps=40",
                         "train.steps_per_save=100", "train.steps_per_summary=10", *step_loss_params(steps))

    status, log = run_main(train_argv(save_dir, params), capfd)

    assert status == 0, log
    losses = step_losses(steps)  # Each step's losses as fit gave them to the loop (a callback's record).
    assert [step for step, _ in losses] == list(range(1, 41))
    assert re.findall(r"^.*step: (\d+)  [\d.]+ steps/sec  mean over 10 steps: spectral_loss: ", log, re.MULTILINE) \
        == ["10", "20", "30", "40"]
    assert not re.search(r"^train: \d+/", log, re.MULTILINE)  # No progress lines besides.
    totals = np.array([loss for _, loss in losses])
    assert np.all(np.isfinite(totals))
    assert totals[-5:].mean() < 0.8 * totals[:5].mean(), totals
    assert checkpoint_steps(save_dir) == [40]  # Only the final one: steps_per_save > num_steps.
    state = read_json(save_dir / "train_state.json")
    assert (state["step"], state["status"]) == (40, "finished")
    assert state["checkpoint"].endswith("ckpt-40.weights.h5")

    # TensorBoard: every 10 steps the mean of the losses of those 10 steps.
    scalars = {(step, tag): float(value) for step, tag, plugin, _, value
               in read_events(save_dir / "summaries" / "train") if plugin == "scalars"}
    steps = sorted({step for step, _ in scalars})
    assert steps == [10, 20, 30, 40]
    for step in steps:
        logged = totals[step - 10:step]
        assert scalars[(step, "losses/total_loss")] == pytest.approx(logged.mean(), abs=1e-3)
        assert scalars[(step, "losses/spectral_loss")] == pytest.approx(logged.mean(), abs=1e-3)
        assert scalars[(step, "steps_per_sec")] > 0
        assert scalars[(step, "learning_rate")] == pytest.approx(3e-3 * 0.98 ** (step / 10000), rel=1e-5)


def test_killed_run_resumes_at_its_newest_checkpoint(tfrecords_1s, tmp_path, capfd):
    save_dir = tmp_path / "run"
    params = tiny_params(tfrecords_1s, "train.steps_per_save=3", "train.steps_per_summary=1000")
    command = [sys.executable, "-m", "ddsp_core.ddsp_run",
               *train_argv(save_dir, [*params, "train_util.train.num_steps=100000"])]
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    with open(tmp_path / "killed.log", "wb") as log_file:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while not (save_dir / "ckpt-6.weights.h5").exists():
                assert process.poll() is None, (tmp_path / "killed.log").read_text()
                assert time.monotonic() < deadline, "no ckpt-6 after 180 s"
                time.sleep(0.05)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
    assert process.returncode == -signal.SIGKILL
    saved = checkpoint_steps(save_dir)
    newest = saved[-1]
    assert newest >= 6 and all(step % 3 == 0 for step in saved), saved
    assert read_json(save_dir / "train_state.json")["status"] == "running"

    steps = tmp_path / "steps.jsonl"
    status, log = run_main(train_argv(save_dir, [*params, f"train_util.train.num_steps={newest + 2}",
                                                 *step_loss_params(steps)]), capfd)

    assert status == 0, log
    assert f"Resuming from {save_dir / f'ckpt-{newest}.weights.h5'} at step {newest}." in log
    assert [step for step, _ in step_losses(steps)] == [newest + 1, newest + 2]
    assert checkpoint_steps(save_dir)[-1] == newest + 2
    assert (save_dir / f"operative_config-{newest}.gin").exists()
    assert (save_dir / "operative_config-0.gin").exists()
    state = read_json(save_dir / "train_state.json")
    assert (state["step"], state["status"]) == (newest + 2, "finished")


def train_then_diverge(save_dir, file_pattern, capfd, steps_per_save_after):
    """Trains 3 good steps (ckpt-3), then resumes with a learning rate of 1e30 and no clipping, its
    steps' losses recorded in save_dir's sibling diverging_steps.jsonl (`step_losses`)."""
    params = tiny_params(file_pattern, "train.steps_per_summary=1000")
    status, log = run_main(train_argv(save_dir, [*params, "train_util.train.num_steps=3",
                                                 "train.steps_per_save=3"]), capfd)
    assert status == 0, log
    assert checkpoint_steps(save_dir) == [3]
    diverging = [*params, "learning_rate=1e30", "Trainer.grad_clip_norm=None", "train_util.train.num_steps=50",
                 f"train.steps_per_save={steps_per_save_after}",
                 *step_loss_params(save_dir.parent / "diverging_steps.jsonl")]
    return run_main(train_argv(save_dir, diverging), capfd)


def test_nan_loss_stops_with_exit_1_and_keeps_the_last_good_checkpoint(tfrecords_1s, tmp_path, capfd):
    save_dir = tmp_path / "run"

    status, log = train_then_diverge(save_dir, tfrecords_1s, capfd, steps_per_save_after=100)

    assert status == 1, log
    losses = step_losses(tmp_path / "diverging_steps.jsonl")
    assert losses[0][0] == 4 and not np.isfinite(losses[-1][1]), losses
    diverged_at = losses[-1][0]
    good = str(save_dir / "ckpt-3.weights.h5")
    assert "ddsp_run: error (train)" in log
    assert f"The last good checkpoint is {good}" in log
    assert f"stopped being finite at step {diverged_at}" in log
    assert checkpoint_steps(save_dir) == [3]  # Still there, and nothing newer.
    state = read_json(save_dir / "train_state.json")
    assert (state["status"], state["checkpoint"]) == ("diverged", good)


def test_checkpoint_named_after_nan_resumes_to_a_finite_loss(tfrecords_1s, tmp_path, capfd):
    save_dir = tmp_path / "run"
    status, log = train_then_diverge(save_dir, tfrecords_1s, capfd, steps_per_save_after=1)
    assert status == 1, log

    # As the message says: rerun with a lower learning rate and it resumes from the named checkpoint.
    named = checkpoint_steps(save_dir)[-1]
    assert f"The last good checkpoint is {save_dir / f'ckpt-{named}.weights.h5'}" in log
    steps = tmp_path / "steps.jsonl"
    params = tiny_params(tfrecords_1s, "learning_rate=1e-3", "Trainer.grad_clip_norm=3.0",
                         f"train_util.train.num_steps={named + 2}", "train.steps_per_save=100",
                         *step_loss_params(steps))
    status, log = run_main(train_argv(save_dir, params), capfd)

    assert status == 0, log
    assert all_finite(loss for _, loss in step_losses(steps))


def extreme_examples(file_pattern, kind):
    """Four 1 s examples: all silent (zeros, -80 dB, f0 0) or real notes 1000x too loud (+60 dB)."""
    if kind == "silent":
        return [{"audio": np.zeros(N_SAMPLES_1S), "f0_hz": np.zeros(N_FRAMES_1S),
                 "f0_confidence": np.zeros(N_FRAMES_1S), "loudness_db": np.full(N_FRAMES_1S, -80.0)}] * 4
    return [{**example, "audio": example["audio"] * 1000.0, "loudness_db": example["loudness_db"] + 60.0}
            for example in first_examples(file_pattern, 4)]


@pytest.mark.parametrize("kind", ["silent", "loud"])
def test_extreme_inputs_keep_losses_finite(kind, tfrecords_1s, tmp_path, capfd):
    records = write_tfrecords(tmp_path / "extreme.tfrecord", extreme_examples(tfrecords_1s, kind))
    save_dir = tmp_path / "run"
    steps = tmp_path / "steps.jsonl"
    params = tiny_params(records, "learning_rate=1e-3", "train_util.train.num_steps=5", "train.steps_per_save=5",
                         "train.steps_per_summary=5", *step_loss_params(steps))

    status, log = run_main(train_argv(save_dir, params), capfd)

    assert status == 0, log
    losses = step_losses(steps)
    assert [step for step, _ in losses] == [1, 2, 3, 4, 5]
    assert all_finite(loss for _, loss in losses), losses
    state = read_json(save_dir / "train_state.json")
    assert state["status"] == "finished" and all_finite(state["losses"].values())


def test_early_stop_loss_value_stops_after_the_first_step(tfrecords_1s, tmp_path, capfd):
    save_dir = tmp_path / "run"
    steps = tmp_path / "steps.jsonl"
    params = tiny_params(tfrecords_1s, "train_util.train.num_steps=50", "train.steps_per_save=100",
                         *step_loss_params(steps))

    status, log = run_main(train_argv(save_dir, params, "--early_stop_loss_value=1e9"), capfd)

    assert status == 0, log
    assert [step for step, _ in step_losses(steps)] == [1]
    assert "stopping at step 1" in log
    assert checkpoint_steps(save_dir) == [1]
    state = read_json(save_dir / "train_state.json")
    assert (state["step"], state["status"]) == (1, "early_stopped")
    assert state["checkpoint"].endswith("ckpt-1.weights.h5")


class ConstantProvider(data.DataProvider):
    """A provider with only the documented interface (get_dataset): one fixed 1 s example."""

    def __init__(self, example):
        super().__init__(sample_rate=16000, frame_rate=250)
        self.example = {name: np.asarray(values, np.float32) for name, values in example.items()}

    def get_dataset(self, shuffle=True):
        return tf.data.Dataset.from_tensors(self.example)


def test_train_accepts_any_data_provider(tfrecords_1s, tmp_path):
    ddsp_run.parse_gin(["models/solo_instrument.gin"], tiny_params(tfrecords_1s))
    provider = ConstantProvider(extreme_examples(tfrecords_1s, "silent")[0])

    result = train_util.train(provider, trainers.Trainer(), batch_size=2, num_steps=2, save_dir=str(tmp_path))

    assert result["step"] == 2 and all_finite(result["losses"].values())


def test_without_verbose_progress_lines_replace_the_step_lines(tiny_run, tmp_path, capfd):
    save_dir = tmp_path / "run"
    shutil.copytree(tiny_run[0], save_dir)
    params = [*tiny_run[1], f"train_util.train.num_steps={TINY_RUN_STEPS + 2}"]

    status, log = run_main(train_argv(save_dir, params), capfd, verbose=False)

    assert status == 0, log
    per_step_lines = re.findall(r"^.*step: \d+  spectral_loss: ", log, re.MULTILINE)  # What --verbose would log.
    assert per_step_lines == [] and "steps/sec" not in log and "\r" not in log  # stderr is not a terminal.
    lines = re.findall(r"^train: .*$", log, re.MULTILINE)
    assert lines[0] == f"train: {TINY_RUN_STEPS}/{TINY_RUN_STEPS + 2} steps (66%), started", lines
    total_loss = read_json(save_dir / "train_state.json")["losses"]["total_loss"]
    final = (rf"train: {TINY_RUN_STEPS + 2}/{TINY_RUN_STEPS + 2} steps \(100%\), [\d.]+ steps/s, done in [\d.ms]+, "
             rf"total_loss {total_loss:.4f}")
    assert re.fullmatch(final, lines[-1]), lines
    assert len(lines) == 2  # Well under the 30 s between two lines.
    assert checkpoint_steps(save_dir)[-1] == TINY_RUN_STEPS + 2
