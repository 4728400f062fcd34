"""The stable checkpoint folder a rerun resumes from (ddsp_core/steps/resume.py): its name
from the training inputs, what it says it holds, setting it aside, publishing its result into
the model artifact; local and on gs:// (the storage emulator)."""

import json

import pytest

from ddsp_core.steps import resume
from ddsp_core.io import storage

PARAMETERS = {"audio_pattern": "/data/*.flac", "eval_audio_pattern": "", "preset": "quick", "num_steps": 300,
              "batch_size": 0, "crepe_capacity": "", "gin_files": [], "gin_params": ["learning_rate=1e-3"],
              "audio_fingerprint": "abc"}


def _checkpoint_folder(folder, steps, status="interrupted", num_steps=300):
    """A folder as training leaves it: checkpoints, train state, gin, summaries."""
    for step in steps:
        storage.write_bytes(storage.join(folder, f"ckpt-{step}.weights.h5"), f"weights {step}".encode())
    storage.write_json(storage.join(folder, "train_state.json"),
                       {"step": steps[-1], "num_steps": num_steps, "status": status, "updated": "2026-12-01T00:00:00"})
    storage.write_bytes(storage.join(folder, "operative_config-0.gin"), b"learning_rate = 0.001\n")
    storage.write_bytes(storage.join(folder, "summaries", "train", "events.out.tfevents.1"), b"events")
    return folder


def test_the_key_follows_what_is_trained_and_nothing_else(tmp_path):
    key = resume.training_key(PARAMETERS)
    assert len(key) == 16 and key == resume.training_key(dict(PARAMETERS))
    for name, value in (("num_steps", 301), ("gin_params", ["learning_rate=3e-4"]), ("audio_fingerprint", "abd"),
                        ("preset", "full"), ("batch_size", 8)):
        assert resume.training_key({**PARAMETERS, name: value}) != key, name
    # Where the prepare job runs, and the resume parameters themselves, do not change it.
    same = {**PARAMETERS, "beam_pipeline_options": ["--runner=DataflowRunner"], "checkpoint_dir": "/x",
            "restart_id": "r"}
    assert resume.training_key(same) == key
    # A local gin file's contents count.
    gin_file = tmp_path / "mine.gin"
    gin_file.write_text("learning_rate = 0.001\n")
    with_file = {**PARAMETERS, "gin_files": [str(gin_file)]}
    before = resume.training_key(with_file)
    gin_file.write_text("learning_rate = 0.003\n")
    assert resume.training_key(with_file) != before
    assert resume.checkpoint_dir("/root", PARAMETERS) == f"/root/checkpoints/quick-{key}"


def test_a_seed_has_its_own_folder_and_no_seed_keeps_the_folder_it_had():
    # Pinned: the digest of PARAMETERS before the seed existed, so existing resume folders still resume.
    assert resume.training_key(PARAMETERS) == "3edf56b5c7ec9e29"
    for unset in (None, -1):
        assert resume.training_key({**PARAMETERS, "seed": unset}) == "3edf56b5c7ec9e29"
    keys = {seed: resume.training_key({**PARAMETERS, "seed": seed}) for seed in (0, 7, 8)}
    assert len(set(keys.values()) | {"3edf56b5c7ec9e29"}) == 4
    assert resume.checkpoint_dir("/root", {**PARAMETERS, "seed": 7}) == f"/root/checkpoints/quick-{keys[7]}"


def test_what_a_rerun_reuses_is_said(tmp_path):
    folder = str(tmp_path / "checkpoints" / "quick-1")
    assert resume.describe(folder) is None
    assert "training starts at step 0" in resume.resume_line(folder)
    _checkpoint_folder(folder, [100, 200])
    found = resume.describe(folder)
    assert found["step"] == 200 and found["status"] == "interrupted" and found["num_steps"] == 300
    assert found["checkpoint"].endswith("ckpt-200.weights.h5")
    assert "resumes at step 200 of 300" in resume.resume_line(folder)
    _checkpoint_folder(folder, [300], status="finished")
    assert "holds finished training (step 300)" in resume.resume_line(folder)


def test_publish_copies_the_newest_checkpoint_and_the_rest(tmp_path):
    folder = _checkpoint_folder(str(tmp_path / "stable"), [100, 200])
    storage.write_bytes(storage.join(folder, "ckpt-300.weights.h5.tmp-123"), b"half")  # A write cut short.
    model = tmp_path / "model"
    copied = resume.publish(folder, str(model))
    assert sorted(copied) == ["ckpt-200.weights.h5", "operative_config-0.gin", "summaries/train/events.out.tfevents.1",
                              "train_state.json"]
    assert (model / "ckpt-200.weights.h5").read_bytes() == b"weights 200"
    assert not (model / "ckpt-100.weights.h5").exists()
    with pytest.raises(FileNotFoundError, match="No checkpoint"):
        resume.publish(str(tmp_path / "empty"), str(model))


def test_set_aside_keeps_the_files_and_frees_the_name(tmp_path):
    folder = _checkpoint_folder(str(tmp_path / "quick-1"), [100])
    moved = resume.set_aside(folder, "20261201-000000")
    assert moved == f"{folder}.set-aside-20261201-000000"
    assert resume.describe(folder) is None
    assert resume.describe(moved)["step"] == 100
    assert resume.set_aside(folder, "again") is None  # Nothing left to move.


def test_on_object_storage(gcs_emulator, gcs_bucket):
    folder = _checkpoint_folder(f"{gcs_bucket}/runs/checkpoints/quick-1", [5, 10])
    assert resume.describe(folder)["step"] == 10
    model = f"{gcs_bucket}/runs/run-1/train/model"
    resume.publish(folder, model)
    assert storage.read_bytes(f"{model}/ckpt-10.weights.h5") == b"weights 10"
    assert storage.read_bytes(f"{model}/summaries/train/events.out.tfevents.1") == b"events"
    assert json.loads(storage.read_bytes(f"{model}/train_state.json"))["step"] == 10
    moved = resume.set_aside(folder, "t")
    assert resume.describe(folder) is None and resume.describe(moved)["step"] == 10
