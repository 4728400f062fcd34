"""Long files prepared in blocks: the windows are the whole file's, the examples match it, and a
long file fills the shards (`examples.plan_blocks`, `transforms.load_block`, `transforms.file_report`)."""

import glob
import os

import numpy as np
import pytest
import soundfile

from ddsp_core import crepe
from ddsp_core.example_format import ExampleFormat
from ddsp_core.prepare import examples as examples_lib
from ddsp_core.prepare import prepare_tfrecord_lib as lib
from ddsp_core.prepare import transforms

FORMAT = ExampleFormat(16000, 250, example_secs=4.0, hop_secs=1.0)
NOTES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "data", "clarinet", "train", "*.flac")))


@pytest.mark.parametrize("seconds, block_secs", [(75.0, 20), (61.37, 7), (300.0, 60), (20.0, 30)])
def test_blocks_own_each_window_of_the_whole_file_once(seconds, block_secs):
    n_samples_16k = int(seconds * 16000)
    blocks = examples_lib.plan_blocks(n_samples_16k, FORMAT, block_secs)
    owned = [start for block in blocks for start in block.window_starts]
    assert owned == examples_lib.window_start_frames(n_samples_16k, FORMAT)
    for block in blocks:
        first_frame = block.first_frame(FORMAT)
        assert all(block.index * block_secs * 250 <= start < (block.index + 1) * block_secs * 250
                   for start in block.window_starts)
        # Context on both sides (or the file's own ends), and the last window inside the block's audio.
        assert block.window_starts[0] - first_frame >= min(block.window_starts[0], 2 * 250)
        last_end_secs = (block.window_starts[-1] * 64 + FORMAT.n_samples_16k) / 16000
        assert last_end_secs + min(2.0, seconds - last_end_secs) == pytest.approx(block.stop_secs)
    assert [block.index for block in blocks] == list(range(len(blocks)))
    assert {block.count for block in blocks} == {len(blocks)}


def test_short_files_are_read_whole():
    assert examples_lib.blocks_of_file(44100 * 64, 44100, FORMAT, 60) is None  # 64 s <= 60 + 2 x 4 s
    assert len(examples_lib.blocks_of_file(44100 * 69, 44100, FORMAT, 60)) == 2
    assert examples_lib.blocks_of_file(44100 * 3600, 44100, FORMAT, 0) is None  # block_secs 0: always whole


@pytest.fixture(scope="module")
def long_take(tmp_path_factory):
    """45 s of the bundled clarinet notes in a row, at 44.1 kHz stereo (a take as recorded)."""
    audio = np.concatenate([soundfile.read(path, dtype="float32")[0] for path in NOTES])[:16000 * 45]
    import soxr

    audio_44k = soxr.resample(audio, 16000, 44100).astype(np.float32)
    path = tmp_path_factory.mktemp("take") / "take.flac"
    soundfile.write(path, np.stack([audio_44k, 0.5 * audio_44k], axis=1), 44100, subtype="PCM_24")
    return str(path)


def test_blocks_give_the_whole_files_examples(long_take):
    settings = lib.PrepareSettings([long_take], "/unused/train.tfrecord", crepe_capacity="tiny", example_format=FORMAT,
                                   block_secs=10)
    tracker = crepe.PitchTracker("tiny")
    audio, audio_16k, _ = transforms.load_file(long_take, settings)
    whole = transforms.examples_from_file(audio, audio_16k, settings, tracker)
    blocks = examples_lib.plan_blocks(audio_16k.shape[0], FORMAT, 10)
    assert len(blocks) == 5
    parts = []
    for block in blocks:
        block_audio, block_16k = transforms.load_block(long_take, block, 44100, settings)
        assert block_16k.shape[0] <= 16000 * 18  # Its own part only: 2 s + 10 s of starts + a 4 s window + 2 s.
        features = examples_lib.compute_features(block_16k, FORMAT.frame_rate, tracker)
        parts += examples_lib.cut_examples(block_audio, block_16k, features, FORMAT, window_starts=block.window_starts,
                                           first_frame=block.first_frame(FORMAT))
    assert len(parts) == len(whole) == 42
    for name in ("audio", "loudness_db", "power_db", "f0_confidence"):
        largest = max(float(np.max(np.abs(w[name] - p[name]))) for w, p in zip(whole, parts))
        assert largest < 1e-4, (name, largest)  # Resampled with context: the same samples to float round-off.
    cents = np.concatenate([1200 * np.abs(np.log2(np.maximum(w["f0_hz"], 1.0) / np.maximum(p["f0_hz"], 1.0)))
                            for w, p in zip(whole, parts)])
    confident = np.concatenate([w["f0_confidence"] for w in whole]) > 0.8
    assert np.max(cents[confident]) < 1.0  # Viterbi per block: the same path where CREPE is sure;
    assert np.mean(cents > 1.0) < 0.01  # ties broken otherwise on a few unsure frames (onsets).


def test_a_long_file_fills_the_shards_and_reports_its_blocks(long_take, tmp_path):
    settings = lib.PrepareSettings([long_take], str(tmp_path / "out" / "train.tfrecord"), crepe_capacity="tiny",
                                   example_format=FORMAT, block_secs=10, num_shards=3)
    manifest = lib.run(settings, num_workers=1)

    [entry] = manifest["files"]
    assert (entry["examples"], entry["blocks"], entry["blocks_skipped"]) == (42, 5, 0)
    assert entry["duration_secs"] == pytest.approx(45.0, abs=1e-3)
    shards = manifest["outputs"]["train"]["shards"]
    assert len(shards) == 3 and manifest["outputs"]["train"]["num_shards"] == 3  # Not capped at one file.
    assert sum(1 for shard in shards if os.path.getsize(shard) > 0) >= 2


def _block_report(index, status, examples, reason=None):
    report = {"path": "take.wav", "split": "train", "duration_secs": 200.0, "status": status, "examples": examples,
              "block": index, "blocks": 3}
    return report if reason is None else {**report, "reason": reason}


@pytest.mark.parametrize("reports, expected", [
    ([_block_report(0, "ok", 50), _block_report(1, "ok", 60), _block_report(2, "ok", 30)], ("ok", 140, 0, None)),
    ([_block_report(2, "ok", 30), _block_report(0, "skipped", 0, "cannot decode samples"), _block_report(1, "ok", 5)],
     ("ok", 35, 1, None)),
    ([_block_report(1, "skipped", 0, "cannot read"), _block_report(0, "skipped", 0, "cannot decode")] * 1
     + [_block_report(2, "skipped", 0, "cannot read")], ("skipped", 0, 3, "every block failed; the first: cannot decode")),
    ([_block_report(0, "ok", 0), _block_report(1, "ok", 0), _block_report(2, "ok", 0)],
     ("skipped", 0, 0, "no window louder than silence_db -60.0 dBFS")),
], ids=["all-ok", "one-failed", "all-failed", "all-silent"])
def test_one_report_per_file_from_its_blocks(reports, expected):
    report = transforms.file_report(reports, -60.0)
    assert (report["status"], report["examples"], report["blocks_skipped"], report.get("reason")) == expected
    assert report["blocks"] == 3 and "block" not in report


def test_a_whole_files_report_is_its_own():
    report = {"path": "a.wav", "split": "eval", "status": "ok", "examples": 3}
    assert transforms.file_report([report], -60.0) is report
