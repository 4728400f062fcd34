"""The prepare component on a runner other than the local one writes to the Dataset's gs:// URI,
not to its local path, and reads the manifest back from there (against the GCS emulator).

Dataflow cannot run here; Beam's BundleBasedDirectRunner stands in for it: it runs in this
process, but is not one of the local runners the prepare job runs itself
(prepare_tfrecord_lib.LOCAL_RUNNERS), so the step treats it as remote, as it does Dataflow.
The artifact is a kfp Dataset whose URI is on the emulator and whose local path (on Vertex AI
the /gcs/... FUSE mount, which Dataflow's workers lack) is a plain folder that must stay empty.
"""

import json
import pathlib
import posixpath

import pytest
from kfp.dsl import Dataset

from components.prepare_tfrecord.component import prepare_tfrecord
from ddsp_core.steps import steps

NOTES_DIR = pathlib.Path(__file__).resolve().parents[2] / "data" / "clarinet" / "notes"
NOTES = ("clarinet_m055_ff.flac", "clarinet_m063_mf.flac", "clarinet_m070_ff.flac")
REMOTE_STAND_IN = "--runner=BundleBasedDirectRunner"


class _MountedDataset(Dataset):
    """A Dataset whose local path is given, as kfp's launcher gives /gcs/<bucket>/... for a gs:// URI."""

    def __init__(self, uri, local_path):
        super().__init__(name="dataset", uri=uri)
        self._local_path = str(local_path)

    @property
    def path(self):
        return self._local_path


def _count_tfrecords(data):
    """Records in TFRecord bytes (length-prefixed frames: 8-byte length, 4-byte CRC, data, 4-byte CRC)."""
    count, offset = 0, 0
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + 8], "little")
        offset += 8 + 4 + length + 4
        count += 1
    assert offset == len(data)
    return count


@pytest.fixture(scope="module")
def prepared(gcs_emulator, tmp_path_factory):
    bucket = gcs_emulator.create_bucket()
    for name in NOTES:
        gcs_emulator.upload_file(str(NOTES_DIR / name), f"{bucket}/audio/{name}")
    uri = f"{bucket}/root/123/ddsp-clarinet-run/prepare-tfrecord_1/dataset"
    mount = tmp_path_factory.mktemp("gcs") / "dataset"  # What /gcs/<bucket>/... would be on Vertex AI.
    dataset = _MountedDataset(uri, mount)
    prepare_tfrecord(audio_pattern=f"{bucket}/audio/*.flac", dataset=dataset, crepe_capacity="tiny",
                     beam_pipeline_options=[REMOTE_STAND_IN],
                     pipeline_root=f"{bucket}/root", worker_image="ddsp-pipeline:0.1.0-dataflow")
    objects = {url: gcs_emulator.download(url) for url in gcs_emulator.list(f"{bucket}/root/")}
    return {"bucket": bucket, "uri": uri, "mount": mount, "dataset": dataset, "objects": objects}


def test_shards_and_manifest_are_written_to_the_uri(prepared):
    uri = prepared["uri"]
    manifest_url = f"{uri}/{steps.MANIFEST}"
    assert manifest_url in prepared["objects"]
    shards = sorted(url for url in prepared["objects"] if url != manifest_url)
    assert shards == [f"{uri}/train.tfrecord-0000{i}-of-00002" for i in range(2)]
    manifest = json.loads(prepared["objects"][manifest_url])
    assert manifest["outputs"]["train"]["shards"] == shards
    assert manifest["files_read"] == len(NOTES) and manifest["files_skipped"] == 0
    assert sorted(posixpath.basename(item["path"]) for item in manifest["files"]) == sorted(NOTES)
    records = sum(_count_tfrecords(prepared["objects"][url]) for url in shards)
    assert records == manifest["examples_written"]["train"] == manifest["examples_written"]["total"] > 0


def test_the_local_path_exists_for_kfps_launcher_and_holds_nothing(prepared):
    assert prepared["mount"].is_dir()
    assert list(prepared["mount"].iterdir()) == []


def test_the_artifact_metadata_comes_from_the_manifest_read_back(prepared):
    manifest = json.loads(prepared["objects"][f"{prepared['uri']}/{steps.MANIFEST}"])
    metadata = prepared["dataset"].metadata
    assert metadata["files_read"] == len(NOTES)
    assert metadata["train_examples"] == manifest["examples_written"]["train"]
    assert metadata["eval_examples"] == 0
