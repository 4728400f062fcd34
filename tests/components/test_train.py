"""components/train: the Model's files and the metadata the component sets on it."""

import json
import math
import os

import pytest

from ddsp_core.steps import steps
from tests.components.conftest import NUM_STEPS, call, output


def test_model_metadata_says_where_training_ended(trained):
    model = trained.model
    with open(os.path.join(model.path, "train_state.json")) as file:
        state = json.load(file)
    assert state["step"] == NUM_STEPS and state["status"] == "finished"
    losses = {key: value for key, value in model.metadata.items() if key.startswith("loss/")}
    assert model.metadata == {"step": NUM_STEPS, "status": "finished", "framework": "keras", "resumed_from_step": 0,
                              "checkpoint_dir": "", **losses}
    # The last step's losses, as train_state.json records them.
    assert losses == {f"loss/{name}": value for name, value in state["losses"].items()}
    assert set(losses) == {"loss/spectral_loss", "loss/total_loss"}
    assert all(isinstance(value, float) and math.isfinite(value) for value in losses.values())


def test_model_holds_the_checkpoint_and_the_operative_config(trained):
    model, dataset = trained.model, trained.dataset
    assert sorted(os.listdir(model.path)) == ["ckpt-2.weights.h5", "model_statistics.json", "operative_config-0.gin",
                                              "summaries", "train_state.json"]
    with open(os.path.join(model.path, "operative_config-0.gin")) as file:
        operative = file.read()
    # The step's, the dataset's (1 s examples), the preset's and the user's (the tiny model) bindings.
    for binding in ("train.num_steps = 2", "batch_size = 2", "n_samples = 16000", "learning_rate = 0.001",
                    "RnnFcDecoder.rnn_channels = 32"):
        assert binding in operative, binding
    assert f"'{dataset.path}/train.tfrecord*'" in operative  # TFRecordProvider.file_pattern, the train split.


def test_a_folder_that_is_not_a_dataset_fails_the_step(tmp_path):
    from kfp.dsl import Dataset, Model

    from components.train.component import train

    model = output(Model, tmp_path, "model")
    with pytest.raises(steps.StepError, match=r"^step 'train' failed: .* is not a prepared dataset: it has no "
                                              r"train_manifest\.json"):
        call(train, dataset=Dataset(name="dataset", uri=str(tmp_path)), model=model, num_steps=1)
    assert model.metadata == {}
    assert not os.path.exists(model.path)
