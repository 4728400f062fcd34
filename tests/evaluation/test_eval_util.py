"""Tests of eval and sample (eval_util) through ddsp_run.main on a tiny trained run: metrics
checked against the model run directly, sample files read back, and watch mode ending by
itself when training has ended."""

import html
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from ddsp_core import ddsp_run
from ddsp_core.training import trainers
from ddsp_core.models import get_model
from tests.training_runs import (
    REPO,
    SAMPLE_RATE,
    TINY_RUN_STEPS,
    all_finite,
    checkpoint_steps,
    read_json,
    read_records,
    tiny_params,
    train_argv,
)
from tests.training.test_summaries import read_events

pytestmark = pytest.mark.usefixtures("clean_state")

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_main(argv, capfd):
    """ddsp_run.main(argv) -> (exit status, what it wrote to stderr, its log included)."""
    capfd.readouterr()
    status = ddsp_run.main(argv)
    return status, capfd.readouterr().err


def copy_run(run, tmp_path):
    save_dir = tmp_path / "run"
    shutil.copytree(run, save_dir)
    return save_dir


def data_params(file_pattern, *extra):
    """Only the data of a 1 s run: the model comes from the run's operative config."""
    return [f"TFRecordProvider.file_pattern='{file_pattern}'", "TFRecordProvider.example_secs=1", *extra]


def eval_argv(mode, save_dir, params, *flags):
    """The magenta eval/sample command line: dataset and evaluator gin files, no model."""
    return [f"--mode={mode}", f"--save_dir={save_dir}", "--gin_file=datasets/tfrecord.gin",
            "--gin_file=eval/basic_f0_ld.gin", "--gin_param=F0LoudnessMetrics.crepe_capacity='tiny'",
            *[f"--gin_param={param}" for param in params], *flags]


def records(file_pattern, n):
    """The first n records in file order, as a batch {feature: float32 [n, length]}."""
    rows = read_records(file_pattern, n)
    return {name: np.stack([row[name] for row in rows]) for name in rows[0]}


def test_eval_run_once_reports_the_spectral_loss_of_the_newest_checkpoint(tiny_run, tfrecords_1s, tmp_path, capfd):
    save_dir = copy_run(tiny_run[0], tmp_path)
    # The quick preset's confidence threshold: tiny CREPE is less sure of these notes than 0.85.
    params = data_params(tfrecords_1s, "evaluate.batch_size=2", "evaluate.num_batches=2",
                         "F0LoudnessMetrics.min_f0_confidence=0.5")

    status, log = run_main(eval_argv("eval", save_dir, params, "--run_once"), capfd)

    assert status == 0, log
    assert f"eval on {save_dir / f'ckpt-{TINY_RUN_STEPS}.weights.h5'} (step {TINY_RUN_STEPS})" in log
    record = read_json(save_dir / "metrics.json")
    assert record == read_json(save_dir / "eval" / f"metrics-{TINY_RUN_STEPS}.json")
    assert (record["step"], record["n_examples"]) == (TINY_RUN_STEPS, 4)
    trained = read_json(save_dir / "train_state.json")
    assert (record["seed"], record["guard_retries"]) == (trained["seed"], 0)  # The run's (drawn) seed; no roll-back.
    metrics = record["metrics"]
    assert {"spectral_loss", "total_loss", "loudness_l1_db", "f0_l1_cents", "f0_outlier_ratio"} <= set(metrics)
    assert all_finite([metrics["spectral_loss"], metrics["loudness_l1_db"]])
    progress = re.findall(r"^eval: .*$", log, re.MULTILINE)  # stderr is not a terminal: compact lines.
    assert progress[0] == "eval: 0/2 batches (0%), started"
    assert re.fullmatch(r"eval: 2/2 batches \(100%\), [\d.]+ batches/s, done in [\d.ms]+, total_loss \d+\.\d{4}",
                        progress[-1]), progress

    # The same number from the model run directly on the first 4 records (the run's gin is still parsed).
    model = get_model()
    batch = records(tfrecords_1s, 4)
    model(batch)
    trainers.Trainer().compile(model)  # The checkpoint holds Adam's variables too.
    model.load_weights(str(save_dir / f"ckpt-{TINY_RUN_STEPS}.weights.h5"))
    [spectral_loss] = model.loss_objs
    expected = np.mean([float(spectral_loss(batch["audio"][i:i + 2], model(
        {name: values[i:i + 2] for name, values in batch.items()})["audio_synth"])) for i in (0, 2)])
    assert metrics["spectral_loss"] == pytest.approx(expected, rel=1e-4)

    scalars = {(step, tag): float(value) for step, tag, plugin, _, value
               in read_events(save_dir / "summaries" / "eval") if plugin == "scalars"}
    assert scalars[(TINY_RUN_STEPS, "metrics/spectral_loss")] == pytest.approx(metrics["spectral_loss"], rel=1e-6)
    assert scalars[(TINY_RUN_STEPS, "metrics/loudness_l1_db")] == pytest.approx(metrics["loudness_l1_db"], rel=1e-6)

    # The table by input MIDI note (with the harmonic synth's share) and the register and stable-frame figures.
    rows = record["per_pitch"]
    assert rows and [row["midi"] for row in rows] == sorted(row["midi"] for row in rows)
    assert sum(row["n_frames"] for row in rows) == metrics["n_confident_frames"]
    assert all(0.0 <= row["harmonic_share"] <= 1.0 and row["loudness_l1_db"] >= 0.0 for row in rows), rows
    assert {"f0_l1_cents_stable", "f0_outlier_ratio_stable", "lowest_register_loudness_l1_db",
            "middle_register_loudness_l1_db", "lowest_register_harmonic_share", "f0_outliers_elsewhere"} <= set(metrics)
    assert metrics["lowest_register_midi"] == rows[0]["midi"]
    assert scalars[(TINY_RUN_STEPS, "metrics/lowest_register_loudness_l1_db")] == pytest.approx(
        metrics["lowest_register_loudness_l1_db"], rel=1e-6)


def test_sample_reads_restore_dir_and_writes_pages_wavs_and_summaries_to_save_dir(tiny_run, tfrecords_1s, tmp_path,
                                                                                 capfd):
    run = tiny_run[0]
    before = sorted(os.listdir(run))
    save_dir = tmp_path / "samples_run"

    params = data_params(tfrecords_1s, "sample.batch_size=2", "F0LoudnessMetrics.min_f0_confidence=0.5")
    status, log = run_main(eval_argv("sample", save_dir, params,
                                     f"--restore_dir={run}", "--run_once"), capfd)

    assert status == 0, log
    assert sorted(os.listdir(run)) == before  # Nothing written into the training run.
    step_dir = save_dir / "samples" / f"step_{TINY_RUN_STEPS:08d}"
    names = {f"{i:02d}_{kind}" for i in range(2) for kind in ("original", "generated", "spectrogram", "waveform",
                                                                "f0")}
    assert {name.rsplit(".", 1)[0] for name in os.listdir(step_dir) if name != "index.html"} == names
    inputs = records(tfrecords_1s, 2)
    for i in range(2):
        original, rate = soundfile.read(step_dir / f"{i:02d}_original.wav", dtype="float32")
        generated, rate_gen = soundfile.read(step_dir / f"{i:02d}_generated.wav", dtype="float32")
        assert (rate, rate_gen) == (SAMPLE_RATE, SAMPLE_RATE)
        assert original.shape == generated.shape == (SAMPLE_RATE,)
        np.testing.assert_allclose(original, np.clip(inputs["audio"][i], -1, 1), atol=1.0 / 32000)
        assert np.all(np.isfinite(generated)) and np.abs(generated).max() > 0
        for kind in ("spectrogram", "waveform", "f0"):
            assert (step_dir / f"{i:02d}_{kind}.png").read_bytes().startswith(PNG_MAGIC)
    page = (step_dir / "index.html").read_text()
    linked = set(re.findall(r'src="([^"]+)"', page))
    assert linked == {html.escape(name) for name in os.listdir(step_dir) if name != "index.html"}
    assert '<table class="metrics per-pitch">' in page and "harmonic share" in page
    index = (save_dir / "samples" / "index.html").read_text()
    assert f'href="step_{TINY_RUN_STEPS:08d}/index.html"' in index
    progress = re.findall(r"^sample: .*$", log, re.MULTILINE)
    assert progress[0] == "sample: 0/2 examples (0%), started"
    assert re.fullmatch(r"sample: 2/2 examples \(100%\), [\d.]+ examples/s, done in [\d.ms]+", progress[-1]), progress

    events = read_events(save_dir / "summaries" / "sample")
    audio = {tag: value for step, tag, plugin, _, value in events if plugin == "audio" and step == TINY_RUN_STEPS}
    assert set(audio) == {"audio/original", "audio/generated"}
    assert all(len(clips) == 2 and clips[0][0].startswith(b"RIFF") for clips in audio.values())
    images = {tag for step, tag, plugin, _, _ in events if plugin == "images"}
    assert images == {f"{kind}/{i}" for kind in ("spectrogram", "waveform", "f0") for i in range(2)}


def test_eval_watch_mode_returns_once_training_has_finished(tiny_run, tfrecords_1s, tmp_path, capfd):
    save_dir = copy_run(tiny_run[0], tmp_path)
    params = data_params(tfrecords_1s, "evaluate.batch_size=2", "evaluate.num_batches=1",
                         "evaluate.ckpt_delay_secs=1")

    start = time.monotonic()
    status, log = run_main(eval_argv("eval", save_dir, params), capfd)

    assert status == 0, log
    assert time.monotonic() - start < 60
    assert f"Training ended (finished at step {TINY_RUN_STEPS})" in log
    assert read_json(save_dir / "metrics.json")["step"] == TINY_RUN_STEPS


def test_eval_watch_mode_follows_a_running_training_to_its_end(tfrecords_1s, tmp_path, capfd):
    save_dir = tmp_path / "run"
    num_steps = 60
    params = tiny_params(tfrecords_1s, f"train_util.train.num_steps={num_steps}", "train.steps_per_save=10",
                         "train.steps_per_summary=1000")
    command = [sys.executable, "-m", "ddsp_core.ddsp_run", *train_argv(save_dir, params)]
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    with open(tmp_path / "train.log", "wb") as log_file:
        training = subprocess.Popen(command, cwd=REPO, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            while not checkpoint_steps(save_dir):  # The operative config is there once a checkpoint is.
                assert training.poll() is None, (tmp_path / "train.log").read_text()
                assert time.monotonic() < deadline, "no checkpoint after 180 s"
                time.sleep(0.05)
            eval_params = data_params(tfrecords_1s, "evaluate.batch_size=2", "evaluate.num_batches=1",
                                      "evaluate.ckpt_delay_secs=1", "evaluate.timeout_secs=120")
            status, log = run_main(eval_argv("eval", save_dir, eval_params), capfd)
            assert training.wait(timeout=120) == 0, (tmp_path / "train.log").read_text()
        finally:
            training.kill()
            training.wait()

    assert status == 0, log
    assert f"Training ended (finished at step {num_steps})" in log
    assert read_json(save_dir / "metrics.json")["step"] == num_steps
    evaluated = sorted(int(re.search(r"(\d+)", name).group(1)) for name in os.listdir(save_dir / "eval"))
    assert evaluated[-1] == num_steps and all(step % 10 == 0 for step in evaluated)


def test_eval_watch_mode_returns_once_training_has_diverged(tiny_run, tfrecords_1s, tmp_path, capfd):
    save_dir = copy_run(tiny_run[0], tmp_path)
    diverging = [*tiny_run[1], "learning_rate=1e30", "Trainer.grad_clip_norm=None", "train_util.train.num_steps=50",
                 "train.steps_per_save=100"]
    status, log = run_main(train_argv(save_dir, diverging), capfd)
    assert status == 1 and read_json(save_dir / "train_state.json")["status"] == "diverged", log

    params = data_params(tfrecords_1s, "evaluate.batch_size=2", "evaluate.num_batches=1",
                         "evaluate.ckpt_delay_secs=1", "evaluate.timeout_secs=4")
    status, log = run_main(eval_argv("eval", save_dir, params), capfd)

    assert status == 0, log
    assert read_json(save_dir / "metrics.json")["step"] == TINY_RUN_STEPS
    assert "Training ended (diverged" in log, log
