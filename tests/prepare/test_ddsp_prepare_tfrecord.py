"""End-to-end tests of the ddsp_prepare_tfrecord command on real files: the bundled clarinet
notes, odd but valid files (8-bit, 96 kHz, 4 channels, OGG, short), and broken ones."""

import glob
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from ddsp_core.io import audio_io
from ddsp_core.prepare.ddsp_prepare_tfrecord import (EXIT_FAILED, EXIT_OK, EXIT_SKIPPED,
                                                                       EXIT_USAGE, main)

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
NOTES = sorted(glob.glob(os.path.join(REPO, "data", "clarinet", "notes", "*.flac")))
FEATURES = ("audio", "f0_hz", "f0_confidence", "loudness_db", "power_db")


def _midi(path):
    return int(re.search(r"_m(\d{3})_", os.path.basename(path)).group(1))


def _hz(midi):
    return 440.0 * 2 ** ((midi - 69) / 12)


def read_records(paths):
    """Parses TFRecord shards into a list of {feature: np.ndarray}."""
    import tensorflow as tf

    records = []
    for record in tf.data.TFRecordDataset(sorted(paths)).as_numpy_iterator():
        feature = tf.train.Example.FromString(record).features.feature
        records.append({name: np.array(feature[name].float_list.value, np.float32) for name in feature})
    return records


def _median_cents_off(example, pitches_hz):
    voiced = example["f0_confidence"] > 0.5
    if voiced.sum() < 50:
        return None
    f0 = np.median(example["f0_hz"][voiced])
    return min(abs(1200 * np.log2(f0 / p)) for p in pitches_hz)


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory):
    """Six bundled notes, five odd-but-valid files made from notes, and seven bad files."""
    folder = tmp_path_factory.mktemp("audio")
    chosen = NOTES[::8][:6]
    for path in chosen:
        (folder / os.path.basename(path)).write_bytes(open(path, "rb").read())
    note, rate = soundfile.read(NOTES[20], dtype="float32")  # ~3 s at 16 kHz
    pitches = {os.path.basename(p): _hz(_midi(p)) for p in chosen}
    valid = {
        "eight_bit.wav": (note, rate, "PCM_U8"),
        "hi_res_96k.wav": (np.stack([audio_io.resample(note, rate, 96000)] * 2, axis=1), 96000, "PCM_24"),
        "four_channels.wav": (np.stack([note * 0.5] * 4, axis=1), rate, "PCM_16"),
        "vorbis.ogg": (note, rate, "VORBIS"),
        "short_1500ms.wav": (note[:int(1.5 * rate)], rate, "PCM_16"),
    }
    for name, (samples, sample_rate, subtype) in valid.items():
        soundfile.write(str(folder / name), samples, sample_rate, subtype=subtype)
        pitches[name] = _hz(_midi(NOTES[20]))
    soundfile.write(str(folder / "zero_length.wav"), np.zeros([0], np.float32), 16000)
    soundfile.write(str(folder / "silent.wav"), np.zeros([2 * 16000], np.float32), 16000)
    soundfile.write(str(folder / "very_short.wav"), note[:int(0.2 * rate)], rate)
    (folder / "empty.wav").write_bytes(b"")
    (folder / "corrupt.flac").write_bytes(open(NOTES[0], "rb").read()[:200] + os.urandom(5000))
    (folder / "readme.txt").write_text("not audio\n")
    (folder / "truncated.wav").write_bytes(open(str(folder / "eight_bit.wav"), "rb").read()[:30])
    reasons = {"zero_length.wav": "zero-length", "silent.wav": "silent", "very_short.wav": "too short",
               "empty.wav": "empty file", "corrupt.flac": "", "readme.txt": "not a readable audio file",
               "truncated.wav": "not a readable audio file"}
    return folder, pitches, reasons


@pytest.fixture(scope="module")
def mixed_run(mixed_folder, tmp_path_factory):
    folder, pitches, reasons = mixed_folder
    out = tmp_path_factory.mktemp("tfrecords")
    status = main([f"--input_audio_filepatterns={folder}/*", f"--output_tfrecord_path={out}/train.tfrecord",
                   "--crepe_capacity=tiny", "--eval_split_fraction=0.2", "--num_shards=2", "--num_workers=2",
                   "--alsologtostderr"])
    manifest = json.loads((out / "train_manifest.json").read_text())
    return status, manifest, out, pitches, reasons


def test_mixed_run_exit_status_says_files_were_skipped(mixed_run):
    status, manifest, *_ = mixed_run
    assert status == EXIT_SKIPPED
    assert manifest["files_skipped"] == 7


def test_every_bad_file_is_listed_with_its_reason(mixed_run):
    _, manifest, _, pitches, reasons = mixed_run
    skipped = {os.path.basename(item["path"]): item["reason"] for item in manifest["skipped"]}
    assert set(skipped) == set(reasons)
    for name, reason in reasons.items():
        assert reason in skipped[name], (name, skipped[name])
    used = {os.path.basename(item["path"]) for item in manifest["files"]}
    assert used == set(pitches)  # Every good file, odd formats included, was used.
    assert manifest["files_matched"] == len(pitches) + len(reasons)


def test_odd_formats_are_read_with_their_facts(mixed_run):
    _, manifest, *_ = mixed_run
    files = {os.path.basename(item["path"]): item for item in manifest["files"]}
    assert files["hi_res_96k.wav"]["file_sample_rate"] == 96000
    assert files["hi_res_96k.wav"]["channels"] == 2
    assert files["four_channels.wav"]["channels"] == 4
    assert files["short_1500ms.wav"]["examples"] == 1  # Padded up to one window, once.
    assert files["short_1500ms.wav"]["duration_secs"] == pytest.approx(1.5, abs=1e-3)


def test_shards_hold_what_the_manifest_counts(mixed_run):
    _, manifest, out, *_ = mixed_run
    train_shards = sorted(glob.glob(f"{out}/train.tfrecord-*"))
    eval_shards = sorted(glob.glob(f"{out}/eval.tfrecord-*"))
    assert [os.path.basename(p) for p in train_shards] == ["train.tfrecord-00000-of-00002",
                                                             "train.tfrecord-00001-of-00002"]
    assert len(eval_shards) == 2
    assert manifest["outputs"]["train"]["shards"] == train_shards
    counts = manifest["examples_written"]
    assert len(read_records(train_shards)) == counts["train"]
    assert len(read_records(eval_shards)) == counts["eval"]
    assert counts["eval"] >= 1 and counts["total"] == counts["train"] + counts["eval"]
    per_file = {item["split"]: 0 for item in manifest["files"]}
    for item in manifest["files"]:
        per_file[item["split"]] += item["examples"]
    assert per_file == {"train": counts["train"], "eval": counts["eval"]}
    # Splits are chosen among the 18 matched files before reading: round(0.2 * 18) = 4
    # held out, some of which may be bad files.
    assert 1 <= sum(item["split"] == "eval" for item in manifest["files"]) <= 4


def test_examples_have_the_right_lengths_pitch_and_no_silent_padding(mixed_run):
    _, manifest, out, pitches, _ = mixed_run
    records = read_records(glob.glob(f"{out}/*.tfrecord-*"))
    assert records
    for record in records:
        assert set(record) == set(FEATURES)
        assert [record[name].size for name in FEATURES] == [64000, 1000, 1000, 1000, 1000]
        assert np.abs(record["audio"]).max() > 1e-2  # Not silent.
        # Notes are ~3 s long and 4 s windows pad them to one window; never more than that.
        assert np.mean(np.abs(record["audio"]) < 1e-6) < 0.65
        cents = _median_cents_off(record, list(pitches.values()))
        assert cents is not None and cents < 30.0
    assert manifest["features"] == {"audio": 64000, "f0_hz": 1000, "f0_confidence": 1000, "loudness_db": 1000,
                                    "power_db": 1000}


def test_power_db_is_the_power_of_the_example_audio(mixed_run):
    """power_db (computed over the whole file, then cut) equals compute_power_db of the example's
    own audio, except in the frames within half a 1024-sample frame of the window's ends (8
    frames at hop 64), where the file's neighbouring audio differs from the window's padding."""
    from ddsp_core import spectral_ops

    _, _, out, _, _ = mixed_run
    records = read_records(glob.glob(f"{out}/*.tfrecord-*"))
    for record in records:
        expected = np.asarray(spectral_ops.compute_power_db(record["audio"], 16000, 250, frame_size=1024))
        assert expected.shape == (1001,)  # 'center': 1 + 64000 // 64; the example keeps the first 1000.
        np.testing.assert_allclose(record["power_db"][8:-8], expected[8:1000 - 8], atol=1e-3)
        assert record["power_db"].min() >= -80.0 and record["power_db"].max() <= 0.0


def test_second_run_refuses_to_mix_with_existing_shards(mixed_run, mixed_folder, capsys):
    _, _, out, *_ = mixed_run
    before = {path: os.path.getmtime(path) for path in glob.glob(f"{out}/*")}
    status = main([f"--input_audio_filepatterns={mixed_folder[0]}/*.flac",
                   f"--output_tfrecord_path={out}/train.tfrecord", "--crepe_capacity=tiny"])
    assert status == EXIT_FAILED
    assert "--overwrite" in capsys.readouterr().err
    assert {path: os.path.getmtime(path) for path in glob.glob(f"{out}/*")} == before


def test_pattern_matching_nothing_is_a_clear_error(tmp_path, capsys):
    status = main([f"--input_audio_filepatterns={tmp_path}/nothing/*.wav",
                   f"--output_tfrecord_path={tmp_path}/out/train.tfrecord"])
    assert status == EXIT_FAILED
    error = capsys.readouterr().err
    assert "No files match" in error and f"{tmp_path}/nothing/*.wav" in error


@pytest.mark.parametrize("flags, message", [
    (["--frame_rate=300"], "must divide both"),
    (["--crepe_capacity=huge"], "invalid choice"),
    (["--eval_split_fraction=1.5"], "eval_split_fraction"),
])
def test_bad_flags_exit_with_usage_status(tmp_path, capsys, flags, message):
    status = main([f"--input_audio_filepatterns={tmp_path}/*.wav", f"--output_tfrecord_path={tmp_path}/t"] + flags)
    assert status == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_all_files_skipped_is_a_failure(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"")
    soundfile.write(str(tmp_path / "b.wav"), np.zeros(16000, np.float32), 16000)
    status = main([f"--input_audio_filepatterns={tmp_path}/*.wav", f"--output_tfrecord_path={tmp_path}/o/t",
                   "--crepe_capacity=tiny", "--num_workers=1", "--allow_skipped_files"])
    assert status == EXIT_FAILED


def test_the_magenta_command_on_the_bundled_notes(tmp_path):
    """The issue's command, with ddsp -> ddsp_core, run as `python -m` (tiny CREPE for speed)."""
    output = tmp_path / "tfrecords" / "train.tfrecord"
    command = [sys.executable, "-m", "ddsp_core.prepare.ddsp_prepare_tfrecord",
               f"--input_audio_filepatterns={REPO}/data/clarinet/notes/*flac",
               f"--output_tfrecord_path={output}", "--num_shards=4", "--alsologtostderr", "--allow_memory_growth",
               "--crepe_capacity=tiny"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900)
    assert result.returncode == EXIT_OK, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "tfrecords" / "train_manifest.json").read_text())
    assert manifest["files_read"] == len(NOTES) and manifest["files_skipped"] == 0
    shards = sorted(glob.glob(f"{output}-*"))
    assert len(shards) == 4
    records = read_records(shards)
    # Every bundled note is ~3 s: one 4 s example each.
    assert len(records) == manifest["examples_written"]["total"] == len(NOTES)
    assert manifest["audio_seconds"] == pytest.approx(sum(soundfile.info(p).duration for p in NOTES), abs=0.01)
    pitches = [_hz(_midi(p)) for p in NOTES]
    within = [_median_cents_off(r, pitches) for r in records]
    assert all(c is not None and c < 30.0 for c in within), within
    assert "Read %d of %d files" % (len(NOTES), len(NOTES)) in result.stderr


def test_absl_style_boolean_flags_parse():
    from ddsp_core.prepare.ddsp_prepare_tfrecord import make_parser

    required = ["--input_audio_filepatterns=a/*.wav,b/*.flac", "--output_tfrecord_path=o/t"]
    args = make_parser().parse_args(required + ["--center", "--noviterbi", "--alsologtostderr",
                                                "--input_audio_filepatterns=c/*.ogg"])
    assert (args.center, args.viterbi, args.overwrite) == (True, False, False)
    assert [p for group in args.input_audio_filepatterns for p in group] == ["a/*.wav", "b/*.flac", "c/*.ogg"]
    args = make_parser().parse_args(required + ["--viterbi=false", "--center=true", "--window_secs=2"])
    assert (args.viterbi, args.center, args.example_secs) == (False, True, 2.0)


def test_eval_audio_files_all_go_to_the_eval_split(tmp_path):
    """--eval_audio_filepatterns: a held-out set (here two notes) is only in eval.tfrecord-*."""
    train_dir, eval_dir = tmp_path / "train_audio", tmp_path / "eval_audio"
    for folder, notes in ((train_dir, NOTES[:2]), (eval_dir, NOTES[10:12])):
        folder.mkdir()
        for path in notes:
            (folder / os.path.basename(path)).write_bytes(open(path, "rb").read())
    out = tmp_path / "out"
    status = main([f"--input_audio_filepatterns={train_dir}/*.flac", f"--eval_audio_filepatterns={eval_dir}/*.flac",
                   f"--output_tfrecord_path={out}/train.tfrecord", "--crepe_capacity=tiny", "--num_shards=1",
                   "--num_workers=1"])
    assert status == EXIT_OK
    manifest = json.loads((out / "train_manifest.json").read_text())
    splits = {os.path.basename(item["path"]): item["split"] for item in manifest["files"]}
    assert splits == {**{os.path.basename(p): "train" for p in NOTES[:2]},
                      **{os.path.basename(p): "eval" for p in NOTES[10:12]}}
    eval_records = read_records(glob.glob(f"{out}/eval.tfrecord-*"))
    assert len(eval_records) == manifest["examples_written"]["eval"] == 2
    eval_pitches = [_hz(_midi(p)) for p in NOTES[10:12]]
    assert all(_median_cents_off(record, eval_pitches) < 20 for record in eval_records)


def test_a_file_in_both_train_and_eval_patterns_is_refused(tmp_path):
    status = main([f"--input_audio_filepatterns={NOTES[0]}", f"--eval_audio_filepatterns={NOTES[0]}",
                   f"--output_tfrecord_path={tmp_path}/train.tfrecord", "--crepe_capacity=tiny"])
    assert status == EXIT_USAGE
    assert not glob.glob(f"{tmp_path}/*.tfrecord-*")
