"""components/export: the export folder and the metadata the component copies onto it."""

import json
import os

import pytest

from ddsp_core.steps import steps
from tests.components.conftest import NUM_STEPS, call, files, output


def test_exported_metadata_is_from_metadata_json(exported):
    artifact, _ = exported
    with open(os.path.join(artifact.path, "metadata.json")) as file:
        metadata = json.load(file)
    assert metadata["checkpoint_step"] == NUM_STEPS
    assert artifact.metadata == {"sample_rate": 16000, "frame_rate": 250, "level_feature": "loudness_db",
                                 "checkpoint_step": 2, "tflite": 0, "version": metadata["version"],
                                 "export_time": metadata["export_time"]}


def test_export_holds_the_saved_model_and_the_model_folder(exported):
    artifact, _ = exported
    assert sorted(os.listdir(artifact.path)) == ["metadata.json", "model", "saved_model"]  # No .tflite: not vst.
    assert os.path.exists(os.path.join(artifact.path, "saved_model", "saved_model.pb"))
    assert sorted(os.listdir(os.path.join(artifact.path, "model"))) == [
        f"ckpt-{NUM_STEPS}.weights.h5", "model_statistics.json", "operative_config-0.gin"]


def test_the_steps_only_read_their_inputs(prepared, trained, evaluated, sampled, exported):
    """After eval, sample and export: the dataset and the model folders hold what prepare and train
    wrote, unchanged, and the input artifacts' metadata is as their producers left it."""
    assert files(prepared.path) == trained.dataset_files
    assert files(trained.model.path) == trained.model_files
    assert trained.dataset.metadata == prepared.metadata
    assert exported[1].metadata == trained.model.metadata


def test_a_model_without_a_checkpoint_fails_the_step(tmp_path):
    from kfp.dsl import Model

    from components.export.component import export

    (tmp_path / "model").mkdir()
    artifact = output(Model, tmp_path, "exported")
    with pytest.raises(steps.StepError, match=r"^step 'export' failed: .* has no checkpoint \(ckpt-N\.weights\.h5\): "
                                              r"it is not a trained model"):
        call(export, model=Model(name="model", uri=str(tmp_path / "model")), exported=artifact)
    assert artifact.metadata == {}
    assert not os.path.exists(artifact.path)
