"""Tests for prepare_tfrecord_lib: the Beam transforms (TestPipeline), splits, paths, runner choice."""

import glob
import os
import tempfile

import apache_beam as beam
import numpy as np
import pytest
import soundfile
from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from ddsp_core.example_format import ExampleFormat
from ddsp_core.prepare import prepare_tfrecord_lib as lib
from ddsp_core.prepare import transforms

FORMAT_FIELDS = ("sample_rate", "frame_rate", "example_secs", "hop_secs", "centered")
NOTES = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "..", "data", "clarinet", "notes",
                                      "*.flac")))


def _settings(tmp_path, **overrides):
    """PrepareSettings for tmp_path; the ExampleFormat's fields may be given among the overrides."""
    values = dict(input_audio_filepatterns=[str(tmp_path / "*")], output_tfrecord_path=str(tmp_path / "out" /
                  "train.tfrecord"), crepe_capacity="tiny")
    example_format = {name: overrides.pop(name) for name in FORMAT_FIELDS if name in overrides}
    if example_format:
        values["example_format"] = ExampleFormat(**example_format)
    values.update(overrides)
    return lib.PrepareSettings(**values)


def test_prepare_files_reports_and_examples(tmp_path):
    good = NOTES[len(NOTES) // 2]
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"definitely not audio" * 50)
    settings = _settings(tmp_path, example_secs=2.0, hop_secs=1.0)
    n_seconds = soundfile.info(good).duration
    with BeamTestPipeline(runner=FnApiRunner()) as pipeline:
        outputs = (pipeline
                   | beam.Create([(good, "train"), (str(bad), "eval")])
                   | transforms.PrepareFiles(settings))
        summaries = outputs["reports"] | beam.Map(lambda r: (os.path.basename(r["path"]), r["status"],
                                                              r["examples"], r["reason"][:25] if "reason" in r
                                                              else None))
        # A ~3.02 s note in 2 s windows at most 1 s apart: 3 windows (0, 0.51, 1.02 s).
        assert_that(summaries, equal_to([(os.path.basename(good), "ok", 3, None),
                                         ("bad.wav", "skipped", 0, "not a readable audio file")]),
                    label="reports")
        lengths = outputs["examples"] | beam.Map(_lengths)
        assert_that(lengths, equal_to([("train", 32000, 500, 500, 500, 500)] * 3), label="examples")
    assert n_seconds > 2.0


def _lengths(item):
    split, example = item
    return (split,) + tuple(len(example[name]) for name in ("audio", "f0_hz", "f0_confidence", "loudness_db",
                                                            "power_db"))


def test_assign_splits_is_deterministic_and_sized():
    paths = [f"/data/note_{i:03d}.wav" for i in range(40)]
    splits = lib.assign_splits(paths, 0.1)
    assert sum(split == lib.EVAL for split in splits.values()) == 4
    assert lib.assign_splits(list(reversed(paths)), 0.1) == splits
    # The split depends on the file name, not its folder: moving the data keeps the split.
    moved = lib.assign_splits([p.replace("/data/", "gs://bucket/x/") for p in paths], 0.1)
    assert [moved[p.replace("/data/", "gs://bucket/x/")] for p in paths] == [splits[p] for p in paths]


@pytest.mark.parametrize("n_files, fraction, n_eval", [(1, 0.5, 0), (2, 0.01, 1), (10, 0.0, 0), (10, 0.99, 9)])
def test_assign_splits_edge_cases(n_files, fraction, n_eval):
    splits = lib.assign_splits([f"f{i}.wav" for i in range(n_files)], fraction)
    assert sum(split == lib.EVAL for split in splits.values()) == n_eval


@pytest.mark.parametrize("train, expected", [
    ("/d/train.tfrecord", "/d/eval.tfrecord"),
    ("gs://b/x/clarinet_train.tfrecord", "gs://b/x/clarinet_eval.tfrecord"),
    ("/d/notes.tfrecord", "/d/notes-eval.tfrecord"),
    ("notes", "notes-eval"),
])
def test_default_eval_path(train, expected):
    assert lib.default_eval_path(train) == expected


def test_manifest_is_not_matched_by_the_shard_glob():
    manifest = lib.manifest_path_for("gs://b/tfrecords/train.tfrecord")
    assert manifest == "gs://b/tfrecords/train_manifest.json"
    assert not manifest.startswith("gs://b/tfrecords/train.tfrecord")


@pytest.mark.parametrize("overrides, message", [
    (dict(input_audio_filepatterns=[]), "input_audio_filepatterns is empty"),
    (dict(output_tfrecord_path=""), "output_tfrecord_path is empty"),
    (dict(eval_split_fraction=1.0), "eval_split_fraction"),
    (dict(num_shards=-1), "num_shards"),
    (dict(crepe_capacity="huge"), "Unknown CREPE capacity"),
    (dict(crepe_precision="float16"), "Unknown CREPE precision"),
    (dict(frame_rate=300), "must divide both"),
    (dict(example_format={"sample_rate": 48000}), "must be an ExampleFormat"),
])
def test_settings_reject_bad_values(tmp_path, overrides, message):
    with pytest.raises(ValueError, match=message):
        _settings(tmp_path, **overrides)


def test_local_runner_is_multi_processing_fn_api_runner():
    pipeline = lib.pipeline_for(["--runner=DirectRunner"], num_workers=3)
    assert isinstance(pipeline.runner, FnApiRunner)
    direct = pipeline.options.view_as(DirectOptions)
    assert (direct.direct_running_mode, direct.direct_num_workers) == ("multi_processing", 3)
    # multi_threading is refused (it lost a record in a trial), the worker count kept.
    pipeline = lib.pipeline_for(["--direct_running_mode=multi_threading", "--direct_num_workers=2"])
    direct = pipeline.options.view_as(DirectOptions)
    assert (direct.direct_running_mode, direct.direct_num_workers) == ("multi_processing", 2)
    assert lib.pipeline_for([], num_workers=1).options.view_as(DirectOptions).direct_running_mode == "in_memory"


def test_remote_runner_options_pass_through():
    pipeline = lib.pipeline_for(["--runner=FlinkRunner", "--flink_master=localhost:8081", "--parallelism=4"])
    assert not isinstance(pipeline.runner, FnApiRunner)
    assert pipeline.options.get_all_options()["flink_master"] == "localhost:8081"
    assert pipeline.options.get_all_options()["parallelism"] == 4


def test_make_manifest_counts(tmp_path):
    settings = _settings(tmp_path, eval_split_fraction=0.5)
    reports = [
        {"path": "/a/1.wav", "split": "train", "status": "ok", "examples": 3, "duration_secs": 6.0,
         "file_sample_rate": 44100, "channels": 2},
        {"path": "/a/2.wav", "split": "eval", "status": "ok", "examples": 1, "duration_secs": 2.5,
         "file_sample_rate": 16000, "channels": 1},
        {"path": "/a/3.wav", "split": "train", "status": "skipped", "examples": 0, "reason": "empty file (0 bytes)"},
    ]
    manifest = lib.make_manifest(reports, settings, {"/a/1.wav": 10, "/a/2.wav": 20, "/a/3.wav": 0},
                                 {"train": ["t-0"], "eval": ["e-0"]})
    assert manifest["examples_written"] == {"train": 3, "eval": 1, "total": 4}
    assert (manifest["files_matched"], manifest["files_read"], manifest["files_skipped"]) == (3, 2, 1)
    assert manifest["audio_seconds"] == 8.5
    assert manifest["skipped"] == [{"path": "/a/3.wav", "split": "train", "reason": "empty file (0 bytes)"}]
    assert manifest["features"] == {"audio": 64000, "f0_hz": 1000, "f0_confidence": 1000, "loudness_db": 1000,
                                    "power_db": 1000}
    assert manifest["settings"]["crepe_capacity"] == "tiny"
    assert manifest["outputs"]["eval"]["shards"] == ["e-0"]
    # Files assigned to each split (the skipped one too), and the shards that makes (num_shards 0: the runner's).
    assert {split: output["files"] for split, output in manifest["outputs"].items()} == {"train": 2, "eval": 1}
    assert manifest["outputs"]["eval"]["num_shards"] == 0
    assert np.sum([f["bytes"] for f in manifest["files"]]) == 30


@pytest.mark.parametrize("num_shards, n_files, expected", [
    (8, 1, 1), (8, 3, 3), (2, 5, 2), (8, 0, 1), (0, 3, 0), (1, 1, 1),
], ids=["one_file", "fewer_files", "more_files", "no_file", "runner_decides", "one_and_one"])
def test_shards_are_capped_at_the_files_of_the_split(num_shards, n_files, expected):
    assert lib.shards_for(num_shards, n_files) == expected


def test_no_split_gets_more_shards_than_files(tmp_path):
    """The full preset's bug: 8 shards asked, 1 eval file -> 7 empty eval shards. Now one per file."""
    audio = tmp_path / "audio"
    audio.mkdir()
    for path in NOTES[:3]:
        (audio / os.path.basename(path)).write_bytes(open(path, "rb").read())
    out = tmp_path / "out"
    settings = lib.PrepareSettings(input_audio_filepatterns=[str(audio / "*.flac")],
                                   output_tfrecord_path=str(out / "train.tfrecord"), crepe_capacity="tiny",
                                   num_shards=8, eval_split_fraction=0.1)
    manifest = lib.run(settings, num_workers=1)
    assert sorted(os.path.basename(p) for p in glob.glob(str(out / "eval.tfrecord-*"))) == [
        "eval.tfrecord-00000-of-00001"]
    assert len(glob.glob(str(out / "train.tfrecord-*-of-00002"))) == 2
    assert len(glob.glob(str(out / "*.tfrecord-*"))) == 3
    assert manifest["examples_written"] == {"train": 2, "eval": 1, "total": 3}  # One 4 s example per ~3 s note.
    outputs = manifest["outputs"]
    assert (outputs["eval"]["files"], outputs["eval"]["num_shards"], len(outputs["eval"]["shards"])) == (1, 1, 1)
    assert (outputs["train"]["files"], outputs["train"]["num_shards"], len(outputs["train"]["shards"])) == (2, 2, 2)
    assert "  eval: 1 shards at " in "\n".join(lib.summary_lines(manifest))
    assert "(num_shards 8, capped at one per file)" in "\n".join(lib.summary_lines(manifest))


@pytest.mark.parametrize("level, entry, kept", [
    (30, 'severity: WARN message: "Skipping /a/b.wav: empty file (0 bytes)" log_location: "x.py:1"',
     "Skipping /a/b.wav: empty file (0 bytes)"),
    (20, 'severity: INFO message: "Prepared /a/c.wav: 2 train examples" thread: "MainThread"',
     "Prepared /a/c.wav: 2 train examples"),
    (20, 'severity: INFO message: "SDK Harness waiting for in-flight requests to complete"', None),
    (30, 'severity: WARN message: "No semi_persistent_directory found:  User registered objects"', None),
    (30, 'severity: WARN message: "quote \\"inside\\" it"', 'quote "inside" it'),
], ids=["warning", "progress", "chatter", "noise", "escaped"])
def test_worker_log_lines_are_shortened_to_their_message(level, entry, kept):
    import logging

    record = logging.LogRecord("apache_beam.runners.portability.local_job_service", level, "f", 1, "Worker: %s",
                               (entry,), None)
    passed = lib._WorkerLogFilter().filter(record)
    assert passed == (kept is not None)
    if kept is not None:
        assert record.getMessage() == f"worker: {kept}"


def test_48khz_centered_examples_carry_audio_16k(tmp_path):
    settings = _settings(tmp_path, sample_rate=48000, centered=True)
    note = NOTES[0]  # ~3 s: one 4 s example, padded
    with BeamTestPipeline(runner=FnApiRunner()) as pipeline:
        outputs = (pipeline
                   | beam.Create([(note, "train")])
                   | transforms.PrepareFiles(settings))
        assert_that(outputs["examples"] | beam.Map(_all_lengths),
                    equal_to([{"audio": 192000, "audio_16k": 64000, "f0_hz": 1001, "f0_confidence": 1001,
                               "loudness_db": 1001, "power_db": 1001}]))
    manifest = lib.make_manifest([], settings, {}, {})
    assert manifest["features"] == {"audio": 192000, "f0_hz": 1001, "f0_confidence": 1001, "loudness_db": 1001,
                                    "power_db": 1001, "audio_16k": 64000}


def _all_lengths(item):
    return {name: len(values) for name, values in item[1].items()}


def _worker_record(level, entry):
    import logging

    return logging.LogRecord(lib.WORKER_LOGGER, level, "f", 1, "Worker: %s", (entry,), None)


@pytest.mark.parametrize("verbose", [False, True], ids=["quiet", "verbose"])
def test_relayed_file_lines_show_only_when_verbose_while_a_run_shows_its_progress(verbose):
    from ddsp_core import progress

    relay = lib._WorkerLogFilter()
    relay.quiet = True  # As while `run` shows its progress.
    progress.set_verbose(verbose)
    try:
        passed = [relay.filter(_worker_record(level, f'severity: {severity} message: "{message}"'))
                  for level, severity, message in [
                      (30, "WARN", "Skipping /a/b.wav: empty file (0 bytes)"),
                      (20, "INFO", "Prepared /a/c.wav: 2 train examples from 3.0 s of audio"),
                      (20, "INFO", "SDK Harness waiting for in-flight requests to complete"),
                  ]]
    finally:
        progress.set_verbose(False)
    assert passed == [True, verbose, False]  # The skip always, the file's line when verbose, no chatter.


def test_a_relayed_message_is_read_whole_from_its_log_entry():
    """Beam relays str(LogEntry) with its newlines made spaces; the message comes back whole:
    escaped quotes, a traceback's newlines and non-ASCII text."""
    from apache_beam.portability.api import beam_fn_api_pb2

    message = 'Skipping /a/çà.wav after an unexpected error:\nTraceback "here"\n  line 2'
    entry = beam_fn_api_pb2.LogEntry(severity=beam_fn_api_pb2.LogEntry.Severity.ERROR, message=message,
                                     log_location="transforms.py:164", thread="MainThread")
    entry.timestamp.seconds = 1700000000
    record = _worker_record(40, str(entry).replace("\n", " "))
    assert lib._WorkerLogFilter().filter(record)
    assert record.getMessage() == f"worker: {message}"


class _Counters:
    """A stand-in PipelineResult whose metrics() answers a query with the given counters."""

    def __init__(self, **counters):
        from apache_beam.metrics.execution import MetricKey, MetricResult
        from apache_beam.metrics.metricbase import MetricName

        self.results = [MetricResult(MetricKey(f"step_{name}", MetricName(transforms.NAMESPACE, name)), value, value)
                        for name, value in counters.items()]

    def metrics(self):
        results = self.results

        class Answer:
            def query(self, metric_filter):
                assert metric_filter.namespaces == {transforms.NAMESPACE}
                return {"counters": results, "distributions": [], "gauges": []}

        return Answer()


def test_the_progress_counts_each_files_record_and_ends_at_the_jobs_counters(tmp_path):
    import io
    import json
    import time

    from ddsp_core import progress

    updates = []
    stream = io.StringIO()

    class RecordedProgress(progress.Progress):
        def update(self, n=1, **values):
            updates.append(n)
            super().update(n, **values)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lib.progress_lib, "Progress", lambda *args, **kwargs: RecordedProgress(*args, stream=stream,
                                                                                              **kwargs))
        with lib._FileProgress(4, poll_s=0.01) as watched:
            folder = watched.records_dir
            for name in ("a", "b"):  # Two records, as the workers leave them, and a half-written one.
                with open(os.path.join(folder, name + transforms.RECORD_SUFFIX), "w") as handle:
                    handle.write(json.dumps({"path": name, "status": "ok"}) + "\n")
            (tmp_path / "ignored").write_text("")
            open(os.path.join(folder, ".c.123.tmp"), "w").close()
            deadline = time.monotonic() + 10
            while watched.shown.done < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert watched.shown.done == 2
            watched.finish(_Counters(files_read=3, files_skipped=1, windows_cut=40))
            assert watched.shown.done == 4
    assert updates == [1, 1, 2]  # A record each, then the two the counters know of and no record showed.
    assert not os.path.exists(folder)  # Deleted at the end.
    assert stream.getvalue().splitlines()[-1].startswith("prepare: 4/4 files (100%)")


def test_files_finished_are_those_read_and_those_skipped_while_reading():
    assert transforms.files_finished(_Counters(files_read=5, files_skipped=2, files_featurized=5,
                                               files_without_windows=1, features_failed=0)) == 7
    assert transforms.files_finished(_Counters()) == 0


def test_the_local_runner_gives_its_counters_only_when_the_job_is_done():
    """Why the progress watches the workers' records: FnApiRunner runs the whole job inside
    pipeline.run(), whose result comes back DONE, with the counters."""
    from apache_beam.metrics import Metrics
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.runners.runner import PipelineState

    def counted(value):
        Metrics.counter(transforms.NAMESPACE, "files_read").inc()
        return value

    pipeline = beam.Pipeline(runner=FnApiRunner())
    _ = pipeline | beam.Create([1, 2, 3]) | beam.Map(counted)
    result = pipeline.run()
    assert result.state == PipelineState.DONE  # Before wait_until_finish: nothing left to poll.
    counters = result.metrics().query(MetricsFilter().with_namespace(transforms.NAMESPACE))["counters"]
    assert [counter.result for counter in counters] == [3]
    assert transforms.files_finished(result) == 3


def test_one_worker_counts_each_file_in_process_without_its_line(tmp_path, capfd, caplog, monkeypatch):
    import logging
    import re
    import shutil

    from ddsp_core import progress

    updates = []

    class RecordedProgress(progress.Progress):
        def update(self, n=1, **values):
            updates.append(n)
            super().update(n, **values)

    monkeypatch.setattr(lib.progress_lib, "Progress", RecordedProgress)
    folders, mkdtemp = [], tempfile.mkdtemp
    monkeypatch.setattr(lib.tempfile, "mkdtemp", lambda **kwargs: folders.append(mkdtemp(**kwargs)) or folders[-1])
    audio = tmp_path / "audio"
    audio.mkdir()
    for path in NOTES[:2]:
        shutil.copy(path, audio)
    settings = lib.PrepareSettings(input_audio_filepatterns=[str(audio / "*.flac")],
                                   example_format=ExampleFormat(example_secs=1.0),
                                   output_tfrecord_path=str(tmp_path / "out" / "train.tfrecord"), crepe_capacity="tiny")
    caplog.set_level(logging.INFO)
    capfd.readouterr()

    manifest = lib.run(settings, num_workers=1)

    assert manifest["files_read"] == 2
    assert updates == [1, 1, 0]  # One per file's record (written in this process), none left for the counters.
    lines = [line for line in capfd.readouterr().err.splitlines() if line.startswith("prepare: ")]
    assert lines[0] == "prepare: 0/2 files (0%), started"
    assert re.fullmatch(r"prepare: 2/2 files \(100%\), [\d.]+ files/s, done in [\d.ms]+", lines[-1]), lines
    assert not [record for record in caplog.records if record.getMessage().startswith(lib.PROGRESS)]
    assert not logging.getLogger(lib.FILE_LOGGER).filters  # Taken off after the job.
    records = [folder for folder in folders if os.path.basename(folder).startswith("ddsp-prepare-files-")]
    assert len(records) == 1 and not os.path.exists(records[0])  # The folder of the files' records is deleted.

