"""Tests of the ddsp_run command: magenta's three commands (train, eval, sample) with `ddsp`
replaced by `ddsp_core`, on 4 s TFRecords of the bundled notes with the full solo model; and
bad command lines, each a clear message and an exit status (1 failed, 2 bad flags)."""

import os
import re

import numpy as np
import pytest
import soundfile

from ddsp_core import ddsp_run
from tests.training_runs import (
    SAMPLE_RATE,
    TINY_RUN_STEPS,
    all_finite,
    checkpoint_steps,
    clean_global_state,
    read_json,
    read_records,
    tiny_params,
    train_argv,
)
from tests.training.test_summaries import read_events

N_SAMPLES_4S = 4 * SAMPLE_RATE
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def magenta_commands(save_dir, file_pattern):
    """magenta ddsp's train, eval and sample commands (README), made small: 2 steps of batch 2."""
    data = f"--gin_param=TFRecordProvider.file_pattern='{file_pattern}'"
    train = ["--mode=train", "--alsologtostderr", f"--save_dir={save_dir}", "--gin_file=models/solo_instrument.gin",
             "--gin_file=datasets/tfrecord.gin", data, "--gin_param=batch_size=2",
             "--gin_param=train_util.train.num_steps=2", "--gin_param=train_util.train.steps_per_save=1",
             "--gin_param=train_util.train.steps_per_summary=1", "--gin_param=trainers.Trainer.checkpoints_to_keep=10",
             "--allow_memory_growth"]
    # Tiny CREPE for speed; its confidences on these notes stay below magenta's 0.85, so 0.5.
    crepe = ["--gin_param=F0LoudnessMetrics.crepe_capacity='tiny'",
             "--gin_param=F0LoudnessMetrics.min_f0_confidence=0.5"]
    evaluate = ["--mode=eval", "--alsologtostderr", f"--save_dir={save_dir}", "--gin_file=datasets/tfrecord.gin",
                "--gin_file=eval/basic_f0_ld.gin", data, *crepe, "--gin_param=evaluate.num_batches=1",
                "--gin_param=evaluate.batch_size=2", "--run_once"]
    sample = ["--mode=sample", "--alsologtostderr", f"--save_dir={save_dir}",
              f"--gin_file={save_dir}/operative_config-0.gin", "--gin_file=datasets/tfrecord.gin",
              "--gin_file=eval/basic_f0_ld.gin", data, *crepe, "--gin_param=sample.batch_size=2", "--run_once"]
    return {"train": train, "eval": evaluate, "sample": sample}


@pytest.fixture(scope="module")
def magenta_run(tfrecords_4s, tmp_path_factory):
    """save_dir after the three commands, and their exit statuses."""
    save_dir = tmp_path_factory.mktemp("magenta_run")
    statuses = {}
    for mode, argv in magenta_commands(save_dir, tfrecords_4s).items():
        with clean_global_state():
            statuses[mode] = ddsp_run.main(argv)
    return save_dir, statuses


def records(file_pattern, n):
    return read_records(file_pattern, n)


def test_magenta_train_command_writes_checkpoints_config_state_and_scalars(magenta_run):
    save_dir, statuses = magenta_run
    assert statuses["train"] == 0
    assert checkpoint_steps(save_dir) == [1, 2]
    config = (save_dir / "operative_config-0.gin").read_text()
    assert "RnnFcDecoder.rnn_channels = 512" in config and "Reverb.reverb_length = 48000" in config
    state = read_json(save_dir / "train_state.json")
    assert (state["step"], state["status"]) == (2, "finished") and all_finite(state["losses"].values())
    scalars = {(step, tag) for step, tag, plugin, _, _ in read_events(save_dir / "summaries" / "train")
               if plugin == "scalars"}
    assert scalars == {(step, tag) for step in (1, 2)
                       for tag in ("losses/spectral_loss", "losses/total_loss", "steps_per_sec", "learning_rate")}


def test_magenta_eval_command_writes_metrics_json_and_summaries(magenta_run):
    save_dir, statuses = magenta_run
    assert statuses["eval"] == 0
    record = read_json(save_dir / "metrics.json")
    assert record == read_json(save_dir / "eval" / "metrics-2.json")
    assert (record["step"], record["n_examples"]) == (2, 2)
    metrics = record["metrics"]
    assert metrics["n_confident_frames"] > 0
    assert all_finite(metrics[name] for name in ("spectral_loss", "loudness_l1_db", "f0_l1_cents", "f0_outlier_ratio"))
    assert metrics["spectral_loss"] > 0 and metrics["loudness_l1_db"] >= 0 and metrics["f0_l1_cents"] >= 0
    assert 0 <= metrics["f0_outlier_ratio"] <= 1
    scalars = {tag: float(value) for step, tag, plugin, _, value in read_events(save_dir / "summaries" / "eval")
               if plugin == "scalars" and step == 2}
    for name in ("spectral_loss", "loudness_l1_db", "f0_l1_cents", "f0_outlier_ratio"):
        assert scalars[f"metrics/{name}"] == pytest.approx(metrics[name], rel=1e-6)


def test_magenta_sample_command_writes_wavs_plots_pages_and_summaries(magenta_run, tfrecords_4s):
    save_dir, statuses = magenta_run
    assert statuses["sample"] == 0
    step_dir = save_dir / "samples" / "step_00000002"
    originals = records(tfrecords_4s, 2)
    for i in range(2):
        for kind in ("original", "generated"):
            audio, rate = soundfile.read(step_dir / f"{i:02d}_{kind}.wav", dtype="float32")
            assert (rate, audio.shape) == (SAMPLE_RATE, (N_SAMPLES_4S,))
            assert np.all(np.isfinite(audio)) and np.abs(audio).max() > 0
            if kind == "original":
                np.testing.assert_allclose(audio, np.clip(originals[i]["audio"], -1, 1), atol=1.0 / 32000)
        for kind in ("spectrogram", "waveform", "f0"):
            assert (step_dir / f"{i:02d}_{kind}.png").read_bytes().startswith(PNG_MAGIC)
    assert not os.path.exists(step_dir / "02_original.wav")
    page = (step_dir / "index.html").read_text()
    assert {"00_original.wav", "01_generated.wav", "01_f0.png"} <= set(re.findall(r'src="([^"]+)"', page))
    assert 'href="step_00000002/index.html"' in (save_dir / "samples" / "index.html").read_text()

    events = read_events(save_dir / "summaries" / "sample")
    audio_tags = {tag for step, tag, plugin, _, _ in events if plugin == "audio" and step == 2}
    image_tags = {tag for step, tag, plugin, _, _ in events if plugin == "images" and step == 2}
    assert audio_tags == {"audio/original", "audio/generated"}
    assert {"spectrogram/0", "waveform/1", "f0/1"} <= image_tags


# Bad command lines: each must end with an exit status and a message, never a traceback.

def run_main(argv, capfd):
    capfd.readouterr()
    status = ddsp_run.main(argv)
    err = capfd.readouterr().err
    assert "Traceback" not in err
    return status, err


def error_line(err):
    """The 'ddsp_run: error...' line(s) of stderr."""
    return "\n".join(line for line in err.splitlines() if line.startswith("ddsp_run: error"))


@pytest.mark.usefixtures("clean_state")
def test_pattern_matching_nothing_fails_naming_it(tmp_path, capfd):
    pattern = str(tmp_path / "nowhere" / "train.tfrecord*")
    status, err = run_main(train_argv(tmp_path / "run", tiny_params(pattern)), capfd)
    assert status == 1
    assert pattern in error_line(err) and "No TFRecord file matches" in error_line(err)
    assert checkpoint_steps(tmp_path / "run") == []


@pytest.mark.usefixtures("clean_state")
def test_empty_pattern_fails(tmp_path, capfd):
    status, err = run_main(train_argv(tmp_path / "run", tiny_params("")), capfd)
    assert status == 1
    assert "file_pattern" in error_line(err)


@pytest.mark.usefixtures("clean_state")
def test_gin_typo_in_a_configurable_name_is_a_usage_error_naming_it(tfrecords_1s, tmp_path, capfd):
    status, err = run_main(train_argv(tmp_path / "run", tiny_params(tfrecords_1s, "RnnFcDecodr.rnn_channels=3")),
                           capfd)
    assert status == 2
    assert "RnnFcDecodr.rnn_channels=3" in error_line(err) and "No configurable matching" in error_line(err)
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.usefixtures("clean_state")
def test_gin_typo_in_a_parameter_name_is_a_usage_error_naming_it(tfrecords_1s, tmp_path, capfd):
    status, err = run_main(train_argv(tmp_path / "run", tiny_params(tfrecords_1s, "RnnFcDecoder.rnn_chanels=3")),
                           capfd)
    assert "rnn_chanels" in error_line(err)
    assert status == 2
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.usefixtures("clean_state")
def test_missing_gin_file_is_a_usage_error_naming_it(tfrecords_1s, tmp_path, capfd):
    argv = [*train_argv(tmp_path / "run", tiny_params(tfrecords_1s)), "--gin_file=models/no_such_model.gin"]
    status, err = run_main(argv, capfd)
    assert status == 2
    assert "models/no_such_model.gin" in error_line(err) and "not found" in error_line(err)


@pytest.mark.usefixtures("clean_state")
def test_unwritable_save_dir_fails_naming_it(tfrecords_1s, tmp_path, capfd):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder\n")
    save_dir = blocker / "run"  # Under a regular file: not creatable, even by root.
    status, err = run_main(train_argv(save_dir, tiny_params(tfrecords_1s)), capfd)
    assert status == 1
    assert f"Cannot write to save_dir {save_dir}" in error_line(err)


@pytest.mark.usefixtures("clean_state")
@pytest.mark.parametrize("mode", ["eval", "sample"])
def test_eval_and_sample_on_an_empty_save_dir_say_train_first(mode, tfrecords_1s, tmp_path, capfd):
    argv = [f"--mode={mode}", f"--save_dir={tmp_path}", "--gin_file=models/solo_instrument.gin",
            "--gin_file=datasets/tfrecord.gin", *[f"--gin_param={p}" for p in tiny_params(tfrecords_1s)],
            "--run_once"]
    status, err = run_main(argv, capfd)
    assert status == 1
    assert "No checkpoint" in error_line(err) and "train first" in error_line(err)


@pytest.mark.usefixtures("clean_state")
def test_magenta_eval_command_on_an_empty_save_dir_says_train_first(tfrecords_4s, tmp_path, capfd):
    argv = magenta_commands(tmp_path, tfrecords_4s)["eval"]
    status, err = run_main(argv, capfd)
    assert status == 1
    assert "train first" in error_line(err)


@pytest.mark.usefixtures("clean_state")
def test_checkpoint_of_another_model_size_does_not_fit(tiny_run, tfrecords_1s, tmp_path, capfd):
    run, params = tiny_run
    argv = ["--mode=eval", f"--save_dir={tmp_path}", f"--restore_dir={run}", "--gin_file=datasets/tfrecord.gin",
            *[f"--gin_param={p}" for p in [*params, "RnnFcDecoder.rnn_channels=64", "evaluate.num_batches=1"]],
            "--run_once"]
    status, err = run_main(argv, capfd)
    assert status == 1
    assert f"Checkpoint {run}/ckpt-{TINY_RUN_STEPS}.weights.h5 does not fit this model" in error_line(err)
    assert not os.path.exists(tmp_path / "metrics.json")


@pytest.mark.usefixtures("clean_state")
@pytest.mark.parametrize("flags, expected", [
    (["--seed=7"], 7),
    (["--seed=7", "--gin_param=train.seed=3"], 7),  # --seed wins over the binding.
    (["--gin_param=train.seed=3"], 3),  # magenta's way.
    (["--gin_param=train_util.train.seed=0"], 0),
    ([], None),  # Neither: train() draws one.
])
def test_seed_flag_binds_train_seed(flags, expected, tmp_path, monkeypatch):
    """(ddsp_run.run is replaced by one that reads gin's train.seed: no training here.)"""
    import gin

    seen = []

    def run(args):
        try:
            seen.append(gin.query_parameter("train.seed"))
        except ValueError:  # Not bound.
            seen.append(None)

    monkeypatch.setattr(ddsp_run, "run", run)
    argv = ["--mode=train", f"--save_dir={tmp_path}", "--gin_file=models/solo_instrument.gin", *flags]
    assert ddsp_run.main(argv) == 0
    assert seen == [expected]


@pytest.mark.usefixtures("clean_state")
def test_a_save_dir_another_run_trains_into_fails_naming_it(tmp_path, monkeypatch, capfd):
    """(ddsp_run.run is replaced by one that trains inside the folder's lock: no training here.)"""
    from ddsp_core.training import train_lock

    def run(args):
        with train_lock.held(args.save_dir):
            pass

    monkeypatch.setattr(ddsp_run, "run", run)
    with train_lock.held(str(tmp_path)) as path:
        status, err = run_main(["--mode=train", f"--save_dir={tmp_path}", "--gin_file=models/solo_instrument.gin"],
                               capfd)
    assert status == 1
    assert f"ddsp_run: error (train): {tmp_path} is in use by another training run" in error_line(err)
    assert f"pid {os.getpid()} on host" in error_line(err) and f"delete {path}" in error_line(err)


@pytest.mark.usefixtures("clean_state")
@pytest.mark.parametrize("argv, expected", [
    (["--mode=fit"], "invalid choice: 'fit'"),
    (["--early_stop_loss_value=low"], "invalid float value"),
    (["--seed=-1"], "argument --seed: N must be a whole number from 0 to 2147483647"),
    (["--seed=seven"], "argument --seed: invalid whole number: 'seven'"),
])
def test_bad_flags_exit_2(argv, expected, capfd):
    status, err = run_main(argv, capfd)
    assert status == 2
    assert expected in err

