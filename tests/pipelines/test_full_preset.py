"""`--preset full` end to end on the kfp local runner: four bundled notes, two training steps.

The preset's own settings and model (full CREPE, 4 s examples, 8 shards asked, a 10% eval
split, the solo-instrument model with its GRU of 512), only a batch of 2 for speed. Four
files make the smallest held-out split: 1 eval file, 1 eval example, which once went into
8 shards, 7 of them empty, and stopped eval and sample. About 4 minutes on 2 CPU cores, most
of it full CREPE: on the notes (prepare), the generated audio (eval, sample) and the flute
phrase of the sample page's transfer example.
"""

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
from pipelines import local
from tests.training_runs import NOTES_PATTERN


@pytest.fixture(scope="module")
def full_run(tmp_path_factory):
    notes = tmp_path_factory.mktemp("notes")
    for path in sorted(glob.glob(NOTES_PATTERN)):
        shutil.copy(path, notes)
    assert len(os.listdir(notes)) == 4
    root = tmp_path_factory.mktemp("pipeline_root")
    started = time.monotonic()
    result = local.run(audio=str(notes / "*.flac"), preset="full", pipeline_root=str(root), num_steps=2,
                       batch_size=2)
    seconds = time.monotonic() - started
    print(f"\nThe full preset ran in {seconds:.0f} s: "
          + ", ".join(f"{step} {record['seconds']:.0f} s" for step, record in result.steps.items()))
    return result


def test_every_step_is_done(full_run):
    assert set(full_run.steps) == set(steps.STEPS)
    assert all(record["status"] == "done" for record in full_run.steps.values()), full_run.steps


def test_the_one_eval_file_gives_one_example_in_one_shard(full_run):
    dataset = full_run.artifacts["dataset"]
    manifest = json.loads(pathlib.Path(dataset, steps.MANIFEST).read_text())
    settings = manifest["settings"]
    assert (settings["crepe_capacity"], manifest["example_format"]["example_secs"], settings["num_shards"]) == ("full", 4.0, 8)
    assert manifest["files_read"] == 4 and manifest["files_skipped"] == 0
    # round(0.1 * 4) = 0, but at least 1 file is held out; each ~3 s note is one 4 s example.
    assert manifest["examples_written"] == {"train": 3, "eval": 1, "total": 4}
    assert [os.path.basename(path) for path in glob.glob(os.path.join(dataset, "eval.tfrecord-*"))] == [
        "eval.tfrecord-00000-of-00001"]
    assert len(glob.glob(os.path.join(dataset, "train.tfrecord-*-of-00003"))) == 3  # 8 asked, 3 files.
    assert {split: output["num_shards"] for split, output in manifest["outputs"].items()} == {"train": 3, "eval": 1}


def test_the_preset_model_was_trained(full_run):
    model = full_run.artifacts["model"]
    assert os.path.exists(os.path.join(model, "ckpt-2.weights.h5"))
    operative = pathlib.Path(model, "operative_config-0.gin").read_text()
    for binding in ("RnnFcDecoder.rnn_channels = 512", "n_samples = 64000", "batch_size = 2", "train.num_steps = 2"):
        assert binding in operative, binding


def test_metrics_are_measured_on_the_held_out_example(full_run):
    record = json.loads(pathlib.Path(full_run.artifacts["metrics"]).read_text())
    assert record["step"] == 2 and record["split"] == "eval" and record["n_examples"] == 1
    assert "note" not in record  # Not measured on training examples.
    for name in ("spectral_loss", "loudness_l1_db", "f0_l1_cents", "f0_outlier_ratio"):
        assert math.isfinite(record["metrics"][name]), name


def test_the_sample_page_plays_the_held_out_example_at_4_s(full_run):
    step_dir = os.path.join(full_run.artifacts["samples"], "samples", "step_00000002")
    names = sorted(os.path.basename(path) for path in glob.glob(os.path.join(step_dir, "*.wav")))
    assert names == ["00_generated.wav", "00_original.wav", "90_melody.wav", "91_transfer.wav"]
    for name in ("00_original.wav", "00_generated.wav"):
        audio, rate = soundfile.read(os.path.join(step_dir, name))
        assert rate == 16000 and audio.shape == (64000,), name
    page = pathlib.Path(full_run.artifacts["page"]).read_text(encoding="utf-8")
    assert page.count('src="data:audio/wav;base64,') == 4
    assert "Measured on training examples" not in page


def test_export_holds_the_model(full_run):
    exported = full_run.artifacts["exported"]
    metadata = json.loads(pathlib.Path(exported, "metadata.json").read_text())
    assert metadata["sample_rate"] == 16000 and metadata["frame_rate"] == 250
    assert os.path.exists(os.path.join(exported, "saved_model", "saved_model.pb"))
