"""`ddsp_pipeline run` end to end on the real kfp local runner: four bundled notes, tiny CREPE,
a tiny model trained for two steps. Checks every artifact the README promises, kfp's cache
on a rerun, and what a failed step leaves behind."""

import glob
import json
import math
import os
import pathlib
import shutil
import time

import pytest
import soundfile

from ddsp_core.steps import steps
from pipelines import cli, local
from tests.training_runs import NOTES_PATTERN, TINY_MODEL_PARAMS
from tests.training.test_tensorboard_server import get_json, tensorboard_server

# The tiny model, with a TensorBoard summary at every step (the quick preset writes one every 50).
RUN_PARAMS = (*TINY_MODEL_PARAMS, "train.steps_per_summary=1")
TINY_RUN = ["--num-steps", "2", "--batch-size", "2", *[arg for param in RUN_PARAMS for arg in ("--gin-param", param)]]


@pytest.fixture(scope="module")
def notes(tmp_path_factory):
    """A folder with four bundled notes (the run's audio; copied so the test can change them)."""
    folder = tmp_path_factory.mktemp("notes")
    for path in sorted(glob.glob(NOTES_PATTERN)):
        shutil.copy(path, folder)
    return folder


@pytest.fixture(scope="module")
def first_run(notes, tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline_root")
    result = local.run(audio=str(notes / "*.flac"), pipeline_root=str(root), num_steps=2, batch_size=2,
                       gin_params=RUN_PARAMS, seed=SEED)
    return root, result


SEED = 7


def test_run_leaves_every_artifact(first_run):
    root, result = first_run
    artifacts = result.artifacts
    assert set(artifacts) == {"dataset", "model", "metrics", "eval_logs", "page", "samples", "exported"}
    assert all(path.startswith(str(root)) for path in artifacts.values())
    assert set(result.steps) == set(steps.STEPS)
    assert all(record["status"] == "done" for record in result.steps.values())

    # Dataset: shards and the manifest (quick preset: 1 s examples, hop 0.5 s, from 4 notes of ~3 s).
    manifest = json.loads(pathlib.Path(os.path.join(artifacts["dataset"], steps.MANIFEST)).read_text())
    assert manifest["files_read"] == 4 and manifest["files_skipped"] == 0
    assert manifest["example_format"]["example_secs"] == 1.0 and manifest["settings"]["crepe_capacity"] == "tiny"
    assert manifest["examples_written"]["train"] >= 16
    assert len(glob.glob(os.path.join(artifacts["dataset"], "train.tfrecord-*-of-00002"))) == 2

    # Model: the checkpoint of step 2, the operative gin (with the preset's and the user's bindings), TB logs.
    model = artifacts["model"]
    assert os.path.exists(os.path.join(model, "ckpt-2.weights.h5"))
    operative = pathlib.Path(os.path.join(model, "operative_config-0.gin")).read_text()
    assert "RnnFcDecoder.rnn_channels = 32" in operative and "learning_rate = 0.001" in operative
    assert glob.glob(os.path.join(model, "summaries", "train", "events.out.tfevents.*"))
    statistics = json.loads(pathlib.Path(os.path.join(model, "model_statistics.json")).read_text())
    assert statistics["frame_rate"] == 250 and statistics["level_features"]["loudness_db"]["note_quantiles"]

    # Export: the SavedModel, metadata and the model/ folder ddsp_play reads (no .tflite: not a vst model).
    exported = artifacts["exported"]
    metadata = json.loads(pathlib.Path(os.path.join(exported, "metadata.json")).read_text())
    assert metadata["sample_rate"] == 16000 and metadata["frame_rate"] == 250
    assert os.path.exists(os.path.join(exported, "saved_model", "saved_model.pb"))
    assert os.path.exists(os.path.join(exported, "model", "ckpt-2.weights.h5"))

    # Metrics: the kfp Metrics artifact holds the JSON record, with finite numbers.
    record = json.loads(pathlib.Path(artifacts["metrics"]).read_text())
    assert record["step"] == 2
    for name in ("spectral_loss", "loudness_l1_db", "f0_l1_cents", "f0_outlier_ratio"):
        assert math.isfinite(record["metrics"][name]), name
    assert result.metrics == record["metrics"]
    # No held-out audio and the quick preset splits nothing off: measured on training data, and said so.
    assert record["split"] == "train" and "training examples" in record["note"]
    assert glob.glob(os.path.join(artifacts["eval_logs"], "summaries", "eval", "events.out.tfevents.*"))

    # Samples: WAV files at 16 kHz of 1 s, PNGs, and a self-contained page that plays them.
    wavs = sorted(glob.glob(os.path.join(artifacts["samples"], "samples", "step_00000002", "*.wav")))
    # The quick preset's six examples, original and generated, and the two listening examples.
    assert len(wavs) == 2 * 6 + 2 and wavs[-2:] == [os.path.join(os.path.dirname(wavs[0]), name)
                                                    for name in ("90_melody.wav", "91_transfer.wav")]
    audio, rate = soundfile.read(wavs[0])
    assert rate == 16000 and audio.shape == (16000,)
    assert len(glob.glob(os.path.join(artifacts["samples"], "samples", "step_00000002", "*.png"))) == 3 * 6 + 2
    page = pathlib.Path(artifacts["page"]).read_text(encoding="utf-8")
    assert page.count('src="data:audio/wav;base64,') == 14 and page.count('src="data:image/png;base64,') == 20
    assert "Play the instrument" in page and "The built-in melody, played from MIDI" in page
    assert "Measured on training examples" in page
    assert glob.glob(os.path.join(artifacts["samples"], "summaries", "sample", "events.out.tfevents.*"))

    # One TensorBoard folder holds the train, eval and sample logs.
    logdir = result.tensorboard_logdir
    assert all(path.startswith(logdir) for path in (model, artifacts["eval_logs"], artifacts["samples"]))
    lines = local.summary_lines(result)
    assert f"View the training curves: {local.console_command('tensorboard')} --logdir {logdir}" in lines


def test_tensorboard_command_shows_train_eval_and_sample(first_run, tmp_path):
    """The printed `tensorboard --logdir` folder, served by a real TensorBoard, has all three runs."""
    _, result = first_run
    logdir = result.tensorboard_logdir
    runs = {os.path.relpath(os.path.join(result.artifacts[name], "summaries", kind), logdir)
            for name, kind in (("model", "train"), ("eval_logs", "eval"), ("samples", "sample"))}
    train_run = os.path.relpath(os.path.join(result.artifacts["model"], "summaries", "train"), logdir)
    eval_run = os.path.relpath(os.path.join(result.artifacts["eval_logs"], "summaries", "eval"), logdir)
    with tensorboard_server(logdir, runs, tmp_path / "tensorboard.log") as base_url:
        for _ in range(60):  # The runs are listed before all their events are read.
            tags = get_json(base_url, "/data/plugin/scalars/tags")
            if train_run in tags and eval_run in tags:
                break
            time.sleep(0.5)
        assert "losses/total_loss" in tags[train_run]
        assert "metrics/f0_l1_cents" in tags[eval_run]


def test_rerun_reuses_every_step_from_the_cache(first_run, notes):
    root, result = first_run
    again = local.run(audio=str(notes / "*.flac"), pipeline_root=str(root), num_steps=2, batch_size=2,
                      gin_params=RUN_PARAMS, seed=SEED)
    assert again.steps == {}, "no step should have run again"
    assert again.artifacts == result.artifacts


def test_failed_step_is_named_and_earlier_outputs_are_kept(first_run, notes, capsys):
    root, result = first_run
    # A misspelt gin binding fails the train step; prepare's output is reused from the cache.
    status = cli.main(["run", "--audio", str(notes / "*.flac"), "--pipeline-root", str(root), *TINY_RUN,
                       "--gin-param", "RnnFcDecoder.rnn_chanels=8"])
    err = capsys.readouterr().err
    assert status == 1
    assert "step 'train' failed:" in err and "rnn_chanels" in err
    assert result.artifacts["dataset"] in err, "the kept outputs are listed"
    assert os.path.exists(os.path.join(result.artifacts["dataset"], steps.MANIFEST))


def test_changed_audio_invalidates_the_cached_prepare_step(first_run, notes):
    root, _ = first_run
    before = local.audio_fingerprint(str(notes / "*.flac"))
    os.remove(sorted(glob.glob(str(notes / "*.flac")))[-1])
    assert local.audio_fingerprint(str(notes / "*.flac")) != before


def test_the_same_seed_in_a_new_pipeline_root_gives_the_same_metrics(first_run, notes, tmp_path):
    """Nothing cached, nothing resumed: every step runs again, and the seed makes it the same run,
    within float round-off (TensorFlow's multi-threaded CPU kernels sum in no fixed order: losses
    differ by ~1e-5 between processes). The f0 metrics are left out: after two steps the model
    makes noise, in which CREPE's pitch jumps at the slightest change."""
    _, result = first_run
    same_notes = tmp_path / "notes"  # The four notes of the first run (a test above removes one from `notes`).
    same_notes.mkdir()
    for path in sorted(glob.glob(NOTES_PATTERN)):
        shutil.copy(path, same_notes)
    again = local.run(audio=str(same_notes / "*.flac"), pipeline_root=str(tmp_path / "root"), num_steps=2,
                      batch_size=2, gin_params=RUN_PARAMS, seed=SEED)
    assert set(again.steps) == set(steps.STEPS), "every step ran"
    assert again.seed == result.seed == SEED
    for name in ("spectral_loss", "total_loss", "loudness_l1_db"):  # (No quiet or silent frames in these notes.)
        assert again.metrics[name] == pytest.approx(result.metrics[name], rel=1e-3), name
