"""The GCS emulator fixture works with google-cloud-storage and Apache Beam."""

import collections
import os
import socket

import pytest

from tests.gcs_emulator import GcsEmulator, GcsEmulatorError, port_is_open


def test_upload_list_download_roundtrip(gcs_emulator, gcs_bucket, tmp_path):
    local = tmp_path / "b.bin"
    local.write_bytes(b"\x00\x01file-bytes")
    gcs_emulator.upload_bytes(b"hello", f"{gcs_bucket}/dir/a.txt")
    gcs_emulator.upload_file(local, f"{gcs_bucket}/dir/sub/b.bin")
    gcs_emulator.upload_bytes(b"other", f"{gcs_bucket}/elsewhere.txt")

    assert gcs_emulator.list(f"{gcs_bucket}/dir/") == [
        f"{gcs_bucket}/dir/a.txt",
        f"{gcs_bucket}/dir/sub/b.bin",
    ]
    assert gcs_emulator.download(f"{gcs_bucket}/dir/a.txt") == b"hello"
    assert gcs_emulator.download(f"{gcs_bucket}/dir/sub/b.bin") == local.read_bytes()
    # Environment seen by google-cloud-storage / Beam and by child processes.
    assert os.environ["STORAGE_EMULATOR_HOST"] == gcs_emulator.url


def test_fresh_bucket_per_test_is_empty(gcs_emulator, gcs_bucket):
    assert gcs_emulator.list(f"{gcs_bucket}/") == []


def test_beam_filesystems_match_open_create(gcs_emulator, gcs_bucket):
    from apache_beam.io.filesystems import FileSystems

    sizes = {"x.flac": 5, "y.flac": 7, "sub/z.flac": 3}
    for name, size in sizes.items():
        gcs_emulator.upload_bytes(b"a" * size, f"{gcs_bucket}/audio/{name}")
    gcs_emulator.upload_bytes(b"not audio", f"{gcs_bucket}/audio/notes.txt")

    (result,) = FileSystems.match([f"{gcs_bucket}/audio/*.flac"])
    assert {m.path: m.size_in_bytes for m in result.metadata_list} == {
        f"{gcs_bucket}/audio/x.flac": 5,
        f"{gcs_bucket}/audio/y.flac": 7,
    }
    (recursive,) = FileSystems.match([f"{gcs_bucket}/audio/**.flac"])
    assert len(recursive.metadata_list) == 3

    with FileSystems.open(f"{gcs_bucket}/audio/y.flac") as f:
        assert f.read() == b"a" * 7
    out = FileSystems.create(f"{gcs_bucket}/written/w.bin")
    out.write(b"written by beam")
    out.close()
    assert gcs_emulator.download(f"{gcs_bucket}/written/w.bin") == b"written by beam"


def test_beam_multiprocessing_pipeline_writes_tfrecord_shards(
    gcs_emulator, gcs_bucket, tmp_path
):
    import apache_beam as beam
    import tensorflow as tf
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    records = [b"record-%03d" % i for i in range(40)]
    prefix = f"{gcs_bucket}/out/train.tfrecord"
    options = PipelineOptions(
        ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    )
    with beam.Pipeline(runner=FnApiRunner(), options=options) as p:
        _ = (
            p
            | beam.Create(records)
            | beam.io.WriteToTFRecord(prefix, num_shards=3)
        )

    shards = gcs_emulator.list(f"{gcs_bucket}/out/")
    assert shards == [f"{prefix}-0000{i}-of-00003" for i in range(3)]
    # No beam-temp-* directories left behind in the bucket.
    assert gcs_emulator.list(f"{gcs_bucket}/") == shards

    read_back = []
    for i, url in enumerate(shards):
        local = gcs_emulator.download_to(url, str(tmp_path / f"shard{i}.tfrecord"))
        read_back += [r.numpy() for r in tf.data.TFRecordDataset(local)]
    assert collections.Counter(read_back) == collections.Counter(records)


def test_emulator_stops_and_restores_environment():
    before = os.environ.get("STORAGE_EMULATOR_HOST")
    with GcsEmulator() as emu:
        port = emu.port
        proc = emu._proc
        assert port_is_open(port)
        bucket = emu.create_bucket("stop-test")
        emu.upload_bytes(b"x", f"{bucket}/f")
        assert emu.list(f"{bucket}/") == [f"{bucket}/f"]
    assert proc.poll() is not None  # subprocess gone
    assert not port_is_open(port)
    assert os.environ.get("STORAGE_EMULATOR_HOST") == before


def test_start_failure_reports_emulator_output():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        emu = GcsEmulator(port=busy.getsockname()[1], startup_timeout=60)
        with pytest.raises(GcsEmulatorError, match="Address already in use"):
            emu.start()
    assert not emu.running
