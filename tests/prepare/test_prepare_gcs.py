"""The prepare job end to end with gs:// input and output, against a real GCS emulator.

Runs the CLI (`ddsp_prepare_tfrecord.main`) with Beam's local multi-process runner;
the workers reach the emulator through STORAGE_EMULATOR_HOST (see tests/gcs_emulator.py).
TensorFlow's gs:// client cannot talk to the emulator: every output is downloaded
through the fixture and parsed from local files.
"""

import collections
import io
import json
import math
import pathlib
import posixpath
import re

import numpy as np
import pytest

from ddsp_core.prepare import ddsp_prepare_tfrecord as cli
from ddsp_core.prepare import prepare_tfrecord_lib as lib

NOTES_DIR = pathlib.Path(__file__).resolve().parents[2] / "data" / "clarinet" / "notes"
TARGET_NOTES = (54, 62, 70, 78)  # MIDI; the nearest bundled note is used for each.
DYNAMIC_PREFERENCE = ("mf", "ff", "pp")
NUM_SHARDS = 2
SAMPLES, FRAMES = 2 * 16000, 2 * 250  # --example_secs=2 at 16 kHz and 250 frames/s.


def expected_windows(n_samples):
    """Windows the job cuts from a 16 kHz file: the first at the start, the last ending at the
    end of the audio (in whole 64-sample frames), at most 1 s (250 frames) apart. A ~3.02 s
    note gives 3: starting at 0 s, ~0.51 s and ~1.02 s."""
    last_start = (n_samples - SAMPLES) // 64  # In frames.
    return 1 + math.ceil(last_start / 250)


def bundled_notes():
    """{midi: [file names]} of the bundled notes (names are clarinet_mNNN_<dynamic>.flac)."""
    notes = collections.defaultdict(list)
    for path in sorted(NOTES_DIR.glob("*.flac")):
        match = re.fullmatch(r"clarinet_m(\d{3})_(\w+)\.flac", path.name)
        if match:
            notes[int(match.group(1))].append(path.name)
    return notes


def pick_notes():
    """{midi: file name}: one file near each TARGET_NOTES, loud dynamics first."""
    notes = bundled_notes()
    assert len(notes) >= len(TARGET_NOTES), f"too few bundled notes in {NOTES_DIR}"
    picked = {}
    for target in TARGET_NOTES:
        midi = min((m for m in notes if m not in picked), key=lambda m: abs(m - target))
        names = sorted(notes[midi], key=lambda n: next((i for i, d in enumerate(DYNAMIC_PREFERENCE)
                                                        if n.endswith(f"_{d}.flac")), len(DYNAMIC_PREFERENCE)))
        picked[midi] = names[0]
    assert all(abs(a - b) >= 2 for a in picked for b in picked if a != b), picked
    return picked


def corrupt_name(bucket, note_names):
    """A '.wav' name for the corrupt file that lands in train (the eval file must be a real note)."""
    for i in range(100):
        name = f"corrupt{i or ''}.wav"
        paths = [f"{bucket}/audio/{n}" for n in [*note_names, name]]
        if lib.assign_splits(paths, 0.25)[f"{bucket}/audio/{name}"] == lib.TRAIN:
            return name
    raise AssertionError("no corrupt file name lands in train")


def midi_to_hz(midi):
    return 440.0 * 2.0 ** ((midi - 69) / 12.0)


def shard_names(prefix, num_shards=NUM_SHARDS):
    return [f"{prefix}-{i:05d}-of-{num_shards:05d}" for i in range(num_shards)]


def split_shards(bucket, split):
    """The shards of `split`: NUM_SHARDS asked, but no more than the split's files (1 of the 5 is held out)."""
    return shard_names(f"{bucket}/tfrecords/{split}.tfrecord", NUM_SHARDS if split == "train" else 1)


def job_args(bucket, *extra):
    return [
        f"--input_audio_filepatterns={bucket}/audio/*",
        f"--output_tfrecord_path={bucket}/tfrecords/train.tfrecord",
        "--crepe_capacity=tiny",
        f"--num_shards={NUM_SHARDS}",
        "--eval_split_fraction=0.25",
        "--example_secs=2",
        "--hop_secs=1",
        "--num_workers=2",
        *extra,
    ]


def parse_shard(path):
    import tensorflow as tf

    description = {"audio": tf.io.FixedLenFeature([SAMPLES], tf.float32),
                   **{name: tf.io.FixedLenFeature([FRAMES], tf.float32)
                      for name in ("f0_hz", "f0_confidence", "loudness_db")}}
    examples = []
    for record in tf.data.TFRecordDataset(str(path)):
        parsed = tf.io.parse_single_example(record, description)
        examples.append({name: value.numpy() for name, value in parsed.items()})
    return examples


def snapshot(emulator, prefix):
    """{gs url: bytes} of every object under prefix."""
    return {url: emulator.download(url) for url in emulator.list(prefix)}


@pytest.fixture(scope="module")
def prepared(gcs_emulator, tmp_path_factory):
    """Uploads 4 notes and a corrupt file, runs the job once, downloads everything it wrote."""
    import soundfile

    bucket = gcs_emulator.create_bucket()
    notes = pick_notes()
    windows = {}
    for midi, name in notes.items():
        data = (NOTES_DIR / name).read_bytes()
        info = soundfile.info(io.BytesIO(data))
        assert info.samplerate == 16000 and 3.0 <= info.frames / 16000 < 4.0, (name, info)
        windows[midi] = expected_windows(info.frames)
        gcs_emulator.upload_bytes(data, f"{bucket}/audio/{name}")
    corrupt = corrupt_name(bucket, notes.values())
    gcs_emulator.upload_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
                              f"{bucket}/audio/{corrupt}")
    splits = lib.assign_splits([f"{bucket}/audio/{n}" for n in [*notes.values(), corrupt]], 0.25)

    status = cli.main(job_args(bucket))

    local = tmp_path_factory.mktemp("prepared")
    objects = snapshot(gcs_emulator, f"{bucket}/tfrecords/")
    for url, data in objects.items():
        (local / posixpath.basename(url)).write_bytes(data)
    return {"bucket": bucket, "status": status, "objects": objects, "local": local, "splits": splits,
            "notes": notes, "corrupt": corrupt, "windows": windows}


def test_exit_status_reports_the_skipped_file(prepared):
    assert prepared["status"] == cli.EXIT_SKIPPED


def test_outputs_in_bucket(prepared):
    bucket = prepared["bucket"]
    train = split_shards(bucket, "train")
    evals = split_shards(bucket, "eval")
    manifest = lib.manifest_path_for(f"{bucket}/tfrecords/train.tfrecord")
    assert manifest == f"{bucket}/tfrecords/train_manifest.json"
    # Exactly the shards and the manifest: no beam-temp-* leftovers.
    assert sorted(prepared["objects"]) == sorted([*train, *evals, manifest])


def test_manifest(prepared):
    bucket = prepared["bucket"]
    manifest = json.loads(prepared["objects"][f"{bucket}/tfrecords/train_manifest.json"])
    assert manifest["files_matched"] == 5
    assert manifest["files_read"] == 4
    assert manifest["files_skipped"] == 1
    (skipped,) = manifest["skipped"]
    assert skipped["path"] == f"{bucket}/audio/{prepared['corrupt']}"
    assert isinstance(skipped["reason"], str) and skipped["reason"].strip()
    assert "unexpected error" not in skipped["reason"]  # A decode failure, not a bug.
    assert sorted(f["path"] for f in manifest["files"]) == sorted(f"{bucket}/audio/{n}" for n in prepared["notes"].values())
    assert manifest["outputs"]["train"]["shards"] == split_shards(bucket, "train")
    assert manifest["outputs"]["eval"]["shards"] == split_shards(bucket, "eval")

    # Counts match the records actually in the shards.
    counts = {split: sum(len(parse_shard(prepared["local"] / posixpath.basename(url)))
                         for url in manifest["outputs"][split]["shards"])
              for split in ("train", "eval")}
    assert manifest["examples_written"] == {**counts, "total": counts["train"] + counts["eval"]}
    expected = {split: sum(n for midi, n in prepared["windows"].items()
                           if prepared["splits"][f"{bucket}/audio/{prepared['notes'][midi]}"] == split)
                for split in ("train", "eval")}
    assert counts == expected
    assert counts["eval"] > 0 and counts["train"] > counts["eval"]


def test_examples_shapes_pitch_and_level(prepared):
    bucket = prepared["bucket"]
    notes_hz = {midi: midi_to_hz(midi) for midi in prepared["notes"]}
    expected = {}
    for midi, name in prepared["notes"].items():
        split = prepared["splits"][f"{bucket}/audio/{name}"]
        expected.setdefault(split, collections.Counter())[midi] += prepared["windows"][midi]

    for split in ("train", "eval"):
        found = collections.Counter()
        for url in split_shards(bucket, split):
            for example in parse_shard(prepared["local"] / posixpath.basename(url)):
                assert example["audio"].shape == (SAMPLES,)
                for name in ("f0_hz", "f0_confidence", "loudness_db"):
                    assert example[name].shape == (FRAMES,)
                    assert np.all(np.isfinite(example[name])), name
                assert np.max(np.abs(example["audio"])) > 1e-3, "silent example"
                median_hz = float(np.median(example["f0_hz"]))
                cents = {m: abs(1200.0 * np.log2(median_hz / hz)) for m, hz in notes_hz.items()}
                nearest = min(cents, key=cents.get)
                assert cents[nearest] < 50.0, f"{split}: f0 median {median_hz:.1f} Hz is no uploaded note"
                found[nearest] += 1
        # Each note's windows are in its file's split (no file in both).
        assert found == expected[split], split


def test_rerun_refuses_without_overwrite_then_overwrites(prepared, gcs_emulator):
    bucket = prepared["bucket"]
    before = snapshot(gcs_emulator, f"{bucket}/tfrecords/")
    assert before == prepared["objects"]

    assert cli.main(job_args(bucket)) == cli.EXIT_FAILED
    assert snapshot(gcs_emulator, f"{bucket}/tfrecords/") == before  # First run's outputs untouched.

    assert cli.main(job_args(bucket, "--overwrite", "--allow_skipped_files")) == cli.EXIT_OK
    after = snapshot(gcs_emulator, f"{bucket}/tfrecords/")
    assert sorted(after) == sorted(before)
    manifest = json.loads(after[f"{bucket}/tfrecords/train_manifest.json"])
    assert manifest["files_read"] == 4 and manifest["files_skipped"] == 1
    assert manifest["examples_written"]["total"] == sum(prepared["windows"].values())


def test_pattern_matching_nothing_on_gcs(gcs_emulator, gcs_bucket, capsys):
    gcs_emulator.upload_bytes(b"not matched", f"{gcs_bucket}/audio/other.txt")
    pattern = f"{gcs_bucket}/nothing/*.wav"
    status = cli.main([f"--input_audio_filepatterns={pattern}",
                       f"--output_tfrecord_path={gcs_bucket}/tfrecords/train.tfrecord",
                       "--crepe_capacity=tiny"])
    assert status == cli.EXIT_FAILED
    assert pattern in capsys.readouterr().err
    assert gcs_emulator.list(f"{gcs_bucket}/tfrecords/") == []
