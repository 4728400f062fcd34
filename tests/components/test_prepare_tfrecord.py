"""components/prepare_tfrecord: the Dataset's files and the metadata the component sets on it."""

import glob
import json
import os

import pytest

from ddsp_core.steps import steps
from tests.components.conftest import FINGERPRINT, TRAIN_NOTE, call, output


def read_manifest(dataset):
    with open(os.path.join(dataset.path, steps.MANIFEST)) as file:
        return json.load(file)


def test_dataset_metadata_is_the_manifests_numbers(prepared):
    manifest = read_manifest(prepared)
    # One ~3.02 s note a split; 1 s examples every 0.5 s: 6 each (the last one padded).
    assert manifest["examples_written"] == {"train": 6, "eval": 6, "total": 12}
    assert prepared.metadata == {
        "files_read": 2, "files_skipped": 0, "train_examples": 6, "eval_examples": 6,
        "audio_seconds": manifest["audio_seconds"], "example_secs": 1.0, "sample_rate": 16000, "frame_rate": 250,
        "hop_secs": 0.5, "centered": False, "crepe_capacity": "tiny", "audio_fingerprint": FINGERPRINT,
    }
    assert prepared.metadata["audio_seconds"] == pytest.approx(2 * 3.018, abs=0.01)


def test_dataset_holds_the_shards_and_the_manifest(prepared):
    names = sorted(os.listdir(prepared.path))
    # The quick preset asks for 2 shards; one file a split makes one each.
    assert names == ["eval.tfrecord-00000-of-00001", "train.tfrecord-00000-of-00001", steps.MANIFEST]
    manifest = read_manifest(prepared)
    assert [(item["split"], os.path.basename(item["path"])) for item in manifest["files"]] == [
        ("train", os.path.basename(TRAIN_NOTE)), ("eval", "clarinet_m051_mf.flac")]


def test_no_audio_fails_the_step_and_sets_no_metadata(tmp_path):
    from kfp.dsl import Dataset

    from components.prepare_tfrecord.component import prepare_tfrecord

    dataset = output(Dataset, tmp_path, "dataset")
    message = r"^step 'prepare_tfrecord' failed: No files match '.*/nothing/\*\.flac'"
    with pytest.raises(steps.StepError, match=message) as error:
        call(prepare_tfrecord, audio_pattern=str(tmp_path / "nothing" / "*.flac"), dataset=dataset)
    assert isinstance(error.value.__cause__, FileNotFoundError)
    assert dataset.metadata == {}
    assert not glob.glob(str(tmp_path / "dataset" / "*.tfrecord-*"))
