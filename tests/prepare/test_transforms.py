"""Tests for transforms: each stage of the prepare job on its own (TestPipeline + assert_that), and its counters."""

import json
import logging
import os

import apache_beam as beam
import numpy as np
import soundfile
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import BeamAssertException, assert_that, equal_to

from ddsp_core.example_format import ExampleFormat
from ddsp_core.prepare import prepare_tfrecord_lib as lib
from ddsp_core.prepare import transforms
from ddsp_core.prepare.transforms import AudioFile

SAMPLE_RATE = 16000
FRAME_HOP = 64  # Samples at 16 kHz per frame at 250 frames/s.


def _settings(tmp_path):
    """PrepareSettings for 1 s examples every second (16 kHz, 250 frames/s), CREPE 'tiny'."""
    return lib.PrepareSettings(input_audio_filepatterns=[str(tmp_path / "*")], crepe_capacity="tiny",
                               output_tfrecord_path=str(tmp_path / "out" / "train.tfrecord"),
                               example_format=ExampleFormat(SAMPLE_RATE, 250, example_secs=1.0, hop_secs=1.0))


def _tone(seconds, sample_rate=SAMPLE_RATE, hz=440.0, amplitude=0.5):
    """[n_samples] float32 sine."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _pipeline():
    return BeamTestPipeline(runner=FnApiRunner())


def _run(pipeline):
    result = pipeline.run()
    result.wait_until_finish()
    return result


def _counter(result, name):
    """The committed value of the 'prepare' counter `name`, summed over steps (0 when never counted)."""
    found = result.metrics().query(MetricsFilter().with_namespace(transforms.NAMESPACE).with_name(name))
    return sum(counter.committed for counter in found["counters"])


def _reason(report):
    return (os.path.basename(report["path"]), report["split"], report["status"], report["examples"],
            report.get("reason", "")[:20])


def test_read_audio_decodes_each_file_or_reports_why_not(tmp_path):
    stereo = np.stack([_tone(1.5, 44100), _tone(1.5, 44100, hz=220.0)], axis=1)  # [n_samples, 2]
    soundfile.write(tmp_path / "tone.flac", stereo, 44100)
    soundfile.write(tmp_path / "short.wav", _tone(0.2), SAMPLE_RATE)  # Under min_audio_secs (0.5 s).
    soundfile.write(tmp_path / "quiet.wav", _tone(1.0, amplitude=1e-4), SAMPLE_RATE, subtype="FLOAT")  # -80 dBFS
    (tmp_path / "bad.wav").write_bytes(b"not audio at all" * 40)
    files = [(str(tmp_path / name), split) for name, split in
             [("tone.flac", "train"), ("short.wav", "train"), ("quiet.wav", "eval"), ("bad.wav", "eval"),
              ("missing.wav", "train")]]

    pipeline = _pipeline()
    read = pipeline | beam.Create(files) | transforms.ReadAudio(_settings(tmp_path))
    assert_that(read["audio"] | "Summaries" >> beam.Map(
        lambda f: (os.path.basename(f.path), f.split, f.facts, f.audio.shape, f.audio is f.audio_16k)),
        equal_to([("tone.flac", "train", {"duration_secs": 1.5, "file_sample_rate": 44100, "channels": 2},
                   (24000,), True)]), label="audio")
    assert_that(read[transforms.REPORTS] | "Reasons" >> beam.Map(_reason),
                equal_to([("short.wav", "train", "skipped", 0, "too short (0.200 s; "),
                          ("quiet.wav", "eval", "skipped", 0, "silent (peak -80.0 d"),
                          ("bad.wav", "eval", "skipped", 0, "not a readable audio"),
                          ("missing.wav", "train", "skipped", 0, "cannot read the file")]), label="reports")
    result = _run(pipeline)

    assert (_counter(result, "files_read"), _counter(result, "files_skipped")) == (1, 4)


def _f0_summary(file):
    """(name, padded samples, frames, median f0 of the confident frames in cents from 440 Hz)."""
    f0_hz, confidence = file.features["f0_hz"], file.features["f0_confidence"]
    voiced = f0_hz[confidence > 0.5]
    cents = 1200 * np.log2(np.median(voiced) / 440.0) if voiced.size else np.inf
    return os.path.basename(file.path), file.audio.shape[0], {name: len(v) for name, v in file.features.items()}, cents


def _near_440(summaries):
    """Matcher: the tone's file, padded to one 1 s example (251 frames), its f0 within 30 cents of 440 Hz."""
    frames = {name: 251 for name in ("f0_hz", "f0_confidence", "loudness_db", "power_db")}
    [(name, n_samples, lengths, cents)] = summaries
    if (name, n_samples, lengths) != ("tone.wav", SAMPLE_RATE, frames) or not abs(cents) < 30:
        raise BeamAssertException(f"expected tone.wav padded to 16000 samples, {frames}, f0 within 30 cents of "
                                  f"440 Hz; got {summaries}")


def test_compute_features_tracks_a_tone_and_skips_a_broken_file(tmp_path):
    facts = {"duration_secs": 0.9, "file_sample_rate": SAMPLE_RATE, "channels": 1}
    tone = _tone(0.9)  # Shorter than one example: padded to 1 s first.
    files = [AudioFile(str(tmp_path / "tone.wav"), "train", facts, tone, tone),
             AudioFile(str(tmp_path / "broken.wav"), "eval", facts, tone, None)]  # No 16 kHz audio: an error.

    pipeline = _pipeline()
    featurized = pipeline | beam.Create(files) | transforms.ComputeFeatures(_settings(tmp_path))
    assert_that(featurized["features"] | "F0" >> beam.Map(_f0_summary), _near_440, label="features")
    assert_that(featurized[transforms.REPORTS] | "Reasons" >> beam.Map(_reason),
                equal_to([("broken.wav", "eval", "skipped", 0, "unexpected error: At")]), label="reports")
    result = _run(pipeline)

    assert _counter(result, "files_featurized") == 1
    assert _counter(result, "feature_frames") == 251  # 1 + 16000 // 64
    assert _counter(result, "features_failed") == 1


def _indexed_file(name, audio):
    """An AudioFile whose features hold their frame index (so a window's first value is its start frame)."""
    index = np.arange(1 + audio.shape[0] // FRAME_HOP, dtype=np.float32)
    features = {"f0_hz": index, "f0_confidence": index, "loudness_db": -index, "power_db": -index}
    facts = {"duration_secs": audio.shape[0] / SAMPLE_RATE, "file_sample_rate": SAMPLE_RATE, "channels": 1}
    return AudioFile(name, "train", facts, audio, audio, features)


def test_cut_windows_drops_silent_windows_and_reports_each_file(tmp_path, caplog):
    # Tone, silence, tone: 1 s windows every second start at frames 0, 250, 500; the middle one is silent.
    gapped = np.concatenate([_tone(1.0), np.zeros(SAMPLE_RATE, np.float32), _tone(1.0)])
    files = [_indexed_file("gapped.wav", gapped), _indexed_file("silent.wav", np.zeros(SAMPLE_RATE, np.float32))]
    caplog.set_level(logging.INFO, logger=transforms.FILE_LOGGER)

    pipeline = _pipeline()
    cut = pipeline | beam.Create(files) | transforms.CutWindows(_settings(tmp_path))
    assert_that(cut["examples"] | "Starts" >> beam.Map(lambda item: (item[0], float(item[1]["f0_hz"][0]),
                                                                      item[1]["audio"].shape)),
                equal_to([("train", 0.0, (SAMPLE_RATE,)), ("train", 500.0, (SAMPLE_RATE,))]), label="examples")
    assert_that(cut[transforms.REPORTS] | "Reasons" >> beam.Map(_reason),
                equal_to([("gapped.wav", "train", "ok", 2, ""),
                          ("silent.wav", "train", "skipped", 0, "no window louder tha")]), label="reports")
    result = _run(pipeline)

    assert _counter(result, "windows_cut") == 2
    assert _counter(result, "windows_silent") == 2  # The gap, and the silent file's one window.
    assert _counter(result, "files_without_windows") == 1
    lines = [record.getMessage() for record in caplog.records if record.name == transforms.FILE_LOGGER]
    assert lines == ["Prepared gapped.wav: 2 train examples from 3.0 s of audio",
                     "Skipping silent.wav: no window louder than silence_db -60.0 dBFS"]


def _counting_manifest(reports, shards):
    return {"files": sorted(report["path"] for report in reports), "shards": shards}


def _tfrecords(path):
    """The records of a TFRecord file (frames: 8-byte length, 4-byte CRC, data, 4-byte CRC)."""
    data, records, offset = open(path, "rb").read(), [], 0
    while offset < len(data):
        length = int.from_bytes(data[offset:offset + 8], "little")
        records.append(data[offset + 12:offset + 12 + length])
        offset += 12 + length + 4
    return records


def test_write_examples_writes_shards_per_split_and_the_manifest(tmp_path):
    import tensorflow as tf

    examples = [(split, {"audio": np.full(4, value, np.float32), "f0_hz": np.full(2, 100 * value, np.float32)})
                for split, value in [("train", 1), ("train", 2), ("train", 3), ("eval", 4)]]
    reports = [{"path": "a.wav", "split": "train", "status": "ok", "examples": 3},
               {"path": "b.wav", "split": "eval", "status": "ok", "examples": 1}]
    out = tmp_path / "out"
    outputs = {"train": (str(out / "train.tfrecord"), 2), "eval": (str(out / "eval.tfrecord"), 1)}
    shards = {"train": [str(out / f"train.tfrecord-0000{i}-of-00002") for i in range(2)],
              "eval": [str(out / "eval.tfrecord-00000-of-00001")]}
    expected_manifest = {"files": ["a.wav", "b.wav"], "shards": shards}

    pipeline = _pipeline()
    written = ({"examples": pipeline | "Examples" >> beam.Create(examples),
                "reports": pipeline | "Reports" >> beam.Create(reports)}
               | transforms.WriteExamples(outputs, str(out / "manifest.json"), _counting_manifest))
    assert_that(written, equal_to([expected_manifest]))
    result = _run(pipeline)

    assert json.loads((out / "manifest.json").read_text()) == expected_manifest
    values = {split: sorted(tuple(tf.train.Example.FromString(record).features.feature["audio"].float_list.value)
                            for path in paths for record in _tfrecords(path))
              for split, paths in shards.items()}
    assert values == {"train": [(1.0,) * 4, (2.0,) * 4, (3.0,) * 4], "eval": [(4.0,) * 4]}
    assert (_counter(result, "examples_written_train"), _counter(result, "examples_written_eval")) == (3, 1)


def test_record_finished_files_leaves_one_json_line_per_file(tmp_path):
    reports = [{"path": "/a/gapped.wav", "split": "train", "status": "ok", "examples": 2, "duration_secs": 3.0},
               {"path": "gs://b/silent.wav", "split": "eval", "status": "skipped", "examples": 0,
                "reason": "silent (peak -90.0 dBFS is below silence_db -60.0 dBFS)"},
               {"path": "/a/gapped.wav", "split": "train", "status": "ok", "examples": 2}]  # Redone: one record.
    pipeline = _pipeline()
    _ = pipeline | beam.Create(reports) | transforms.RecordFinishedFiles(str(tmp_path))
    _run(pipeline)

    names = sorted(os.listdir(tmp_path))
    assert len(names) == 2 and all(name.endswith(transforms.RECORD_SUFFIX) for name in names)
    records = []
    for name in names:
        lines = (tmp_path / name).read_text().splitlines()
        assert len(lines) == 1
        records.append(json.loads(lines[0]))
    assert sorted(records, key=lambda record: record["path"]) == [
        {"path": "/a/gapped.wav", "split": "train", "status": "ok", "examples": 2, "reason": None},
        {"path": "gs://b/silent.wav", "split": "eval", "status": "skipped", "examples": 0,
         "reason": "silent (peak -90.0 dBFS is below silence_db -60.0 dBFS)"}]
