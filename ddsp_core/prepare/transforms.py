"""The prepare job's stages as composite Beam transforms, I/O only at the two ends.

    ReadAudio:        (path, split)            -> AudioFile per block of the file, or a skip report
    ComputeFeatures:  AudioFile                -> AudioFile with features, or a skip report
    CutWindows:       AudioFile with features  -> (split, example) per window and an ok report, or a skip report
    ReportFiles:      the reports of each block -> one report per file
    WriteExamples:    examples and all reports -> TFRecord shards per split, then the manifest JSON

A file up to `block_secs` long (all but long takes) is one AudioFile: read, decoded and
featurized whole. A longer one is split into blocks (`examples.plan_blocks`) that travel as
separate elements, spread over the workers: each reads only its part of the file (with a
little context on each side), so a worker's memory does not grow with the file's length and
one long file keeps every worker busy and fills every shard.

`PrepareFiles` is the first three in a row, giving {'examples', 'reports'}, which
`WriteExamples` takes. Only `ReadAudio` reads (the files' bytes, through
`ddsp_core.io.storage`) and only `WriteExamples` writes (TFRecord shards per split,
then the manifest); the stages between are pure functions of their inputs.

Every file gives exactly one report (a dict with 'path', 'split', 'status', 'examples'):
'ok' with its example count from `CutWindows`, or 'skipped' with the reason from the stage
that gave up on it. Any error in one file is caught in its stage and only skips that file,
so one bad file never loses the others' examples. A block's error skips that block (its
report says which, and the file's report counts 'blocks_skipped'); a file whose every block
failed, or that gave no window, is skipped. Each file also gives one line on the
FILE_LOGGER logger, PROGRESS (when its windows are cut) or SKIPPED, for the log.

`RecordFinishedFiles` writes a small JSON record per report into a local folder as each file
is finished: a local run (`prepare_tfrecord_lib.run`) watches that folder for its progress,
since Beam's local runner gives its counters only once the whole job is done.

Counters (Beam Metrics, namespace 'prepare'), each counted by one stage:
    ReadAudio:       files_read (decoded and checked, or a long file's header read and
                     split in blocks), files_skipped (empty, unreadable, too short, silent,
                     or an error), blocks_read and blocks_skipped (of long files).
    ComputeFeatures: files_featurized, feature_frames (frames of all files, padding
                     included), features_failed (an error while computing them).
    CutWindows:      windows_cut (examples kept), windows_silent (dropped as silent),
                     files_without_windows (every window silent, or an error; a long
                     file's is counted by ReportFiles).
    WriteExamples:   examples_written_<split> (e.g. examples_written_train) per split.
Every file is counted once in files_read or files_skipped (`files_finished`).
"""

import dataclasses
import hashlib
import json
import logging
import os
import traceback

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from ddsp_core.example_format import F0_TRACKER_SAMPLE_RATE
from ddsp_core.io import storage
from ddsp_core.io import audio_io
from ddsp_core.prepare.examples import (blocks_of_file, compute_features, cut_examples, pad_to_one_window,
                                        to_tf_example, window_start_frames)

NAMESPACE = "prepare"  # Of the Metrics counters.
REPORTS = "reports"  # The tag of each stage's reports.
PROGRESS = "Prepared"  # Starts the log line of each file used (shown when verbose).
SKIPPED = "Skipping"  # Starts the warning of each file skipped (always shown).
FILE_LOGGER = "ddsp_core.prepare.prepare_tfrecord_lib.files"  # Their logger (its name as before).
RECORD_SUFFIX = ".json"  # Of the records RecordFinishedFiles writes.
RECORD_KEYS = ("path", "split", "status", "examples", "reason")  # What a record holds of a report.


@dataclasses.dataclass(frozen=True, eq=False)
class AudioFile:
    """One usable file between the stages.

    Attributes:
        path: The file (local or gs://).
        split: 'train' or 'eval'.
        facts: {'duration_secs', 'file_sample_rate', 'channels'} of the file as read.
        audio: [n_samples] float32 mono at example_format.sample_rate (after `ComputeFeatures`,
            zero-padded to at least one example).
        audio_16k: [n_samples_16k] the same at 16 kHz.
        features: None, or after `ComputeFeatures` the `compute_features` of audio_16k:
            {'f0_hz', 'f0_confidence', 'loudness_db', 'power_db'}, float32 [n_frames] each.
        block: None for a whole file; for a part of a long file, its `examples.Block` (audio
            and features then start at the block's first_second).
    """

    path: str
    split: str
    facts: dict
    audio: np.ndarray
    audio_16k: np.ndarray
    features: dict = None
    block: object = None

    def report(self, **values):
        report = {"path": self.path, "split": self.split, **self.facts, **values}
        if self.block is not None:
            report.update(block=self.block.index, blocks=self.block.count)
        return report

    def name(self):
        """The file's path, and which block of it."""
        return self.path if self.block is None else f"{self.path} (block {self.block.index + 1} of {self.block.count})"


def load_file(path, settings):
    """Reads and checks one file. Returns (audio at example_format.sample_rate, audio at 16 kHz, facts).

    Raises:
        audio_io.AudioFileError: with the reason the file cannot be used.
    """
    try:
        data = storage.read_bytes(path)
    except Exception as error:  # Local OSError, or a storage client error for gs://.
        raise audio_io.AudioFileError(f"cannot read the file ({audio_io.first_line(error)})") from None
    samples, file_rate = audio_io.decode(data, path)
    facts = {"duration_secs": round(samples.shape[0] / file_rate, 4), "file_sample_rate": file_rate,
             "channels": int(samples.shape[1])}
    if samples.shape[0] / file_rate < settings.min_audio_secs:
        raise audio_io.AudioFileError(f"too short ({samples.shape[0] / file_rate:.3f} s; min_audio_secs is "
                                      f"{settings.min_audio_secs} s)")
    mono = audio_io.to_mono(samples)
    peak = audio_io.peak_dbfs(mono)
    if peak < settings.silence_db:
        raise audio_io.AudioFileError(f"silent (peak {peak:.1f} dBFS is below silence_db {settings.silence_db} dBFS)")
    sample_rate = settings.example_format.sample_rate
    audio_16k = audio_io.resample(mono, file_rate, F0_TRACKER_SAMPLE_RATE)
    audio = audio_16k if sample_rate == F0_TRACKER_SAMPLE_RATE else audio_io.resample(mono, file_rate, sample_rate)
    return audio, audio_16k, facts


def load_block(path, block, file_rate, settings):
    """Reads one block of a long file at file_rate Hz: (audio at example_format.sample_rate, audio at
    16 kHz), both from the block's first_second to its stop_secs (the file's end at the latest).

    Raises:
        audio_io.AudioFileError: with the reason the block cannot be used.
    """
    try:
        with storage.open_read(path) as handle:
            start = block.first_second * file_rate
            stop = int(np.ceil(block.stop_secs * file_rate)) + 1
            mono = audio_io.to_mono(audio_io.read_part(handle, start, stop, path))
    except audio_io.AudioFileError:
        raise
    except Exception as error:  # Local OSError, or a storage client error for gs://.
        raise audio_io.AudioFileError(f"cannot read the file ({audio_io.first_line(error)})") from None
    sample_rate = settings.example_format.sample_rate
    audio_16k = audio_io.resample(mono, file_rate, F0_TRACKER_SAMPLE_RATE)
    audio = audio_16k if sample_rate == F0_TRACKER_SAMPLE_RATE else audio_io.resample(mono, file_rate, sample_rate)
    return audio, audio_16k


def features_of(audio, audio_16k, settings, pitch_tracker):
    """One file's audio, padded to at least one example, and its features.

    Args:
        audio: [n_samples] at example_format.sample_rate.
        audio_16k: [n_samples_16k] the same at 16 kHz.
        settings: PrepareSettings (its example_format, viterbi).
        pitch_tracker: A `ddsp_core.crepe.PitchTracker`.

    Returns:
        (audio, audio_16k, features): the audio zero-padded at the end to one example when
        shorter, and `compute_features` of audio_16k.
    """
    example_format = settings.example_format
    audio = pad_to_one_window(audio, example_format.sample_rate, example_format.example_secs)
    audio_16k = pad_to_one_window(audio_16k, F0_TRACKER_SAMPLE_RATE, example_format.example_secs)
    return audio, audio_16k, compute_features(audio_16k, example_format.frame_rate, pitch_tracker, settings.viterbi)


def examples_from_file(audio, audio_16k, settings, pitch_tracker):
    """One file's audio (at example_format.sample_rate and at 16 kHz) -> list of example dicts."""
    return cut_examples(*features_of(audio, audio_16k, settings, pitch_tracker), settings.example_format,
                        settings.silence_db)


class _FileStep(beam.DoFn):
    """One stage's work on one file; an error skips the file, never the job.

    `step(element)` returns the file's outputs (all computed before any is yielded, so a
    failure yields none of them). An error is logged (the SKIPPED line; an unexpected one
    with its traceback), counted in `skipped_counter` and reported (tagged REPORTS).
    """

    skipped_counter = ""

    def __init__(self, settings):
        self.settings = settings
        self.skipped = Metrics.counter(NAMESPACE, self.skipped_counter)

    def step(self, element):
        raise NotImplementedError

    def process(self, element):
        try:
            outputs = self.step(element)
        except Exception as error:
            yield beam.pvalue.TaggedOutput(REPORTS, _skip_report(element, error))
            self.skipped.inc()
            return
        yield from outputs


def _skip_report(element, error):
    """The report of a file skipped for `error` (called while handling it), and its SKIPPED line."""
    report = element.report() if isinstance(element, AudioFile) else {"path": element[0], "split": element[1]}
    name = element.name() if isinstance(element, AudioFile) else report["path"]
    logger = logging.getLogger(FILE_LOGGER)
    if isinstance(error, audio_io.AudioFileError):
        reason = str(error)
        logger.warning("%s %s: %s", SKIPPED, name, reason)
    else:  # A bug: say so, with the traceback in the log.
        reason = f"unexpected error: {type(error).__name__}: {error}"
        logger.error("%s %s after an unexpected error:\n%s", SKIPPED, name, traceback.format_exc())
    return {**report, "status": "skipped", "reason": reason, "examples": 0}


class _PlanBlocks(_FileStep):
    """(path, split) -> (path, split, None) for a file read whole, or (path, split, facts, Block) per
    block of a file longer than block_secs (its header read, not its samples)."""

    skipped_counter = "files_skipped"

    def __init__(self, settings):
        super().__init__(settings)
        self.files_read = Metrics.counter(NAMESPACE, "files_read")

    def step(self, element):
        path, split = element
        block_secs = self.settings.block_secs
        try:
            with storage.open_read(path) as handle:
                n_samples, file_rate, channels = audio_io.probe(handle)
        except Exception:  # Unreadable, missing...: reading it whole says why, in full.
            return [(path, split, None, None)]
        blocks = blocks_of_file(n_samples, file_rate, self.settings.example_format, block_secs)
        if not blocks:
            return [(path, split, None, None)]
        facts = {"duration_secs": round(n_samples / file_rate, 4), "file_sample_rate": file_rate, "channels": channels}
        self.files_read.inc()
        return [(path, split, facts, block) for block in blocks]


class _ReadFile(_FileStep):
    skipped_counter = "files_skipped"

    def __init__(self, settings):
        super().__init__(settings)
        self.files_read = Metrics.counter(NAMESPACE, "files_read")
        self.blocks_read = Metrics.counter(NAMESPACE, "blocks_read")
        self.blocks_skipped = Metrics.counter(NAMESPACE, "blocks_skipped")

    def process(self, element):
        path, split, facts, block = element
        if block is None:
            yield from super().process((path, split))
            return
        try:
            audio, audio_16k = load_block(path, block, facts["file_sample_rate"], self.settings)
        except Exception as error:
            self.blocks_skipped.inc()
            yield beam.pvalue.TaggedOutput(REPORTS, _skip_report(AudioFile(path, split, facts, None, None,
                                                                           block=block), error))
            return
        self.blocks_read.inc()
        yield AudioFile(path, split, facts, audio, audio_16k, block=block)

    def step(self, element):
        path, split = element
        audio, audio_16k, facts = load_file(path, self.settings)
        self.files_read.inc()
        return [AudioFile(path, split, facts, audio, audio_16k)]


class ReadAudio(beam.PTransform):
    """(path, split) -> {'audio': an `AudioFile` per usable file or block, 'reports': a skip report per other}.

    Reads each file's bytes (the job's only input I/O), decodes them, mixes to mono and
    resamples to example_format.sample_rate and to 16 kHz with libsoxr. Empty, unreadable, too short
    (min_audio_secs) and silent (silence_db) files are skipped with the reason. A file longer
    than block_secs (+ two examples) is read in blocks (`examples.plan_blocks`), each its own
    element, spread over the workers; a silent block is not skipped (its windows are, later).
    """

    def __init__(self, settings):
        super().__init__()
        self.settings = settings

    def expand(self, files):
        planned = files | "PlanBlocks" >> beam.ParDo(_PlanBlocks(self.settings)).with_outputs(REPORTS, main="parts")
        outputs = (planned.parts
                   | "SpreadBlocksOverWorkers" >> beam.Reshuffle()
                   | "ReadAndDecode" >> beam.ParDo(_ReadFile(self.settings)).with_outputs(REPORTS, main="audio"))
        reports = (planned[REPORTS], outputs[REPORTS]) | "ReadReports" >> beam.Flatten()
        return {"audio": outputs.audio, REPORTS: reports}


class _Featurize(_FileStep):
    skipped_counter = "features_failed"

    def __init__(self, settings):
        super().__init__(settings)
        self.files_featurized = Metrics.counter(NAMESPACE, "files_featurized")
        self.feature_frames = Metrics.counter(NAMESPACE, "feature_frames")

    def setup(self):
        from ddsp_core import crepe
        from ddsp_core import accelerators

        if self.settings.allow_memory_growth:
            accelerators.allow_memory_growth()
        precision = self.settings.crepe_precision
        if precision == "auto":
            precision = accelerators.fast_precision()
        self.pitch_tracker = crepe.PitchTracker(self.settings.crepe_capacity, self.settings.crepe_batch_size,
                                                precision=precision)

    def step(self, file):
        if file.block is None:
            audio, audio_16k, features = features_of(file.audio, file.audio_16k, self.settings, self.pitch_tracker)
            self.files_featurized.inc()
        else:  # A block: longer than a window, never padded.
            audio, audio_16k = file.audio, file.audio_16k
            features = compute_features(audio_16k, self.settings.example_format.frame_rate, self.pitch_tracker,
                                        self.settings.viterbi)
        self.feature_frames.inc(len(features["f0_hz"]))
        return [dataclasses.replace(file, audio=audio, audio_16k=audio_16k, features=features)]


class ComputeFeatures(beam.PTransform):
    """AudioFile -> {'features': the AudioFile padded to one example with its features, 'reports': skip reports}.

    CREPE f0 and confidence, loudness and power, once per file at example_format.frame_rate
    (`examples.compute_features`). Each worker builds its CREPE PitchTracker once (`setup`).
    """

    def __init__(self, settings):
        super().__init__()
        self.settings = settings

    def expand(self, audio):
        outputs = audio | "Featurize" >> beam.ParDo(_Featurize(self.settings)).with_outputs(REPORTS, main="features")
        return {"features": outputs.features, REPORTS: outputs[REPORTS]}


class _Cut(_FileStep):
    skipped_counter = "files_without_windows"

    def __init__(self, settings):
        super().__init__(settings)
        self.windows_cut = Metrics.counter(NAMESPACE, "windows_cut")
        self.windows_silent = Metrics.counter(NAMESPACE, "windows_silent")

    def step(self, file):
        example_format, silence_db = self.settings.example_format, self.settings.silence_db
        if file.block is None:
            starts, first_frame = window_start_frames(file.audio_16k.shape[0], example_format), 0
        else:
            starts, first_frame = file.block.window_starts, file.block.first_frame(example_format)
            n_frames = len(file.features["f0_hz"])
            if starts[-1] - first_frame + example_format.n_frames > n_frames:
                raise audio_io.AudioFileError(
                    f"the file ends before its header says ({n_frames} frames from second {file.block.first_second}, "
                    f"{starts[-1] - first_frame + example_format.n_frames} needed); re-encode it (e.g. to FLAC)")
        examples = cut_examples(file.audio, file.audio_16k, file.features, example_format, silence_db,
                                window_starts=starts, first_frame=first_frame)
        self.windows_silent.inc(len(starts) - len(examples))
        if not examples and file.block is None:
            raise audio_io.AudioFileError(f"no window louder than silence_db {silence_db} dBFS")
        self.windows_cut.inc(len(examples))
        if file.block is None:
            logging.getLogger(FILE_LOGGER).info("%s %s: %d %s examples from %.1f s of audio", PROGRESS, file.path,
                                                len(examples), file.split, file.facts["duration_secs"])
        report = file.report(status="ok", examples=len(examples))
        return [(file.split, example) for example in examples] + [beam.pvalue.TaggedOutput(REPORTS, report)]


class CutWindows(beam.PTransform):
    """AudioFile with features -> {'examples': (split, example dict) per window, 'reports': one per file}.

    Windows as `examples.cut_examples` places them; silent ones (peak below silence_db) are
    dropped, and a file with no other window is skipped. A used file's report is 'ok' with
    its example count, and its PROGRESS line is logged.
    """

    def __init__(self, settings):
        super().__init__()
        self.settings = settings

    def expand(self, files):
        outputs = files | "Cut" >> beam.ParDo(_Cut(self.settings)).with_outputs(REPORTS, main="examples")
        return {"examples": outputs.examples, REPORTS: outputs[REPORTS]}


class PrepareFiles(beam.PTransform):
    """(path, split) -> {'examples': (split, example dict), 'reports': exactly one per file}.

    ReadAudio, ComputeFeatures and CutWindows in a row, their reports together.
    """

    def __init__(self, settings):
        super().__init__()
        self.settings = settings

    def expand(self, files):
        read = files | "ReadAudio" >> ReadAudio(self.settings)
        featurized = read["audio"] | "ComputeFeatures" >> ComputeFeatures(self.settings)
        cut = featurized["features"] | "CutWindows" >> CutWindows(self.settings)
        reports = ((read[REPORTS], featurized[REPORTS], cut[REPORTS]) | "AllReports" >> beam.Flatten()
                   | "ReportFiles" >> ReportFiles(self.settings))
        return {"examples": cut["examples"], REPORTS: reports}


def file_report(reports, silence_db):
    """The one report of a file, from its reports: a whole file's own, or its blocks'.

    A long file is 'ok' when some block gave examples (their sum; 'blocks' and
    'blocks_skipped' say how many blocks there were and how many failed), else 'skipped'
    with the first failed block's reason, or for want of a window louder than silence_db.
    """
    reports = sorted(reports, key=lambda report: report.get("block", -1))
    if len(reports) == 1 and "block" not in reports[0]:
        return reports[0]
    failed = [report for report in reports if report["status"] != "ok"]
    examples = sum(report["examples"] for report in reports)
    report = {key: value for key, value in reports[0].items() if key not in ("block", "reason")}
    report.update(examples=examples, blocks=reports[0]["blocks"], blocks_skipped=len(failed), status="ok")
    if len(failed) == len(reports):
        report.update(status="skipped", reason=f"every block failed; the first: {failed[0]['reason']}")
    elif examples == 0:
        report.update(status="skipped", reason=f"no window louder than silence_db {silence_db} dBFS")
    return report


class _ReportFile(beam.DoFn):
    def __init__(self, settings):
        self.settings = settings
        self.without_windows = Metrics.counter(NAMESPACE, "files_without_windows")

    def process(self, keyed):
        path, reports = keyed
        reports = list(reports)
        report = file_report(reports, self.settings.silence_db)
        if report is not reports[0]:  # A long file's blocks: its lines are written here.
            logger = logging.getLogger(FILE_LOGGER)
            if report["status"] == "ok":
                lines = f", {report['blocks_skipped']} of its {report['blocks']} blocks skipped" \
                    if report["blocks_skipped"] else f" in {report['blocks']} blocks"
                logger.info("%s %s: %d %s examples from %.1f s of audio%s", PROGRESS, path, report["examples"],
                            report["split"], report["duration_secs"], lines)
            else:
                if report["reason"].startswith("no window"):
                    self.without_windows.inc()
                logger.warning("%s %s: %s", SKIPPED, path, report["reason"])
        yield report


class ReportFiles(beam.PTransform):
    """Reports of files and blocks -> one report per file (`file_report`)."""

    def __init__(self, settings):
        super().__init__()
        self.settings = settings

    def expand(self, reports):
        return (reports
                | "ByFile" >> beam.Map(lambda report: (report["path"], report))
                | "GroupByFile" >> beam.GroupByKey()
                | "OneReportPerFile" >> beam.ParDo(_ReportFile(self.settings)))


class _WriteParts(beam.DoFn):
    """(split, example dict) of one split -> part files, written as the examples come: `n_parts`
    per bundle, examples dealt round-robin over them (from a random one, so the parts stay
    even). Yields (paths, counts) per bundle once its parts are closed, for `_assemble_shards`.

    Nothing of a split is held in memory, and no grouping step is needed: Beam's
    WriteToTFRecord with a fixed num_shards groups every record by shard first, which a local
    runner holds in its own memory (1.3 GB more for an hour of audio).
    """

    def __init__(self, split, parts_folder, n_parts):
        self.split, self.parts_folder, self.n_parts = split, parts_folder, n_parts
        self.written = Metrics.counter(NAMESPACE, f"examples_written_{split}")

    def start_bundle(self):
        self._handles, self._paths, self._counts, self._next = None, [], [], 0

    def _open(self):
        import random
        import uuid

        name = f"{self.split}-{uuid.uuid4().hex}"
        self._paths = [storage.join(self.parts_folder, f"{name}-{index}") for index in range(self.n_parts)]
        self._handles = [storage.open_write(path) for path in self._paths]
        self._counts = [0] * self.n_parts
        self._next = random.randrange(self.n_parts)

    def process(self, item):
        from apache_beam.io.tfrecordio import _TFRecordUtil  # The framing Beam's TFRecord reader and TF read.

        split, example = item
        if split != self.split:
            return
        if self._handles is None:
            self._open()
        _TFRecordUtil.write_record(self._handles[self._next], to_tf_example(example))
        self._counts[self._next] += 1
        self._next = (self._next + 1) % self.n_parts
        self.written.inc()

    def finish_bundle(self):
        from apache_beam.transforms.window import GlobalWindows

        if self._handles is None:
            return
        for handle in self._handles:
            handle.close()
        yield GlobalWindows.windowed_value((self._paths, self._counts))
        self._handles = None


def _assemble_shards(parts, prefix, num_shards, parts_folder):
    """The parts of one split -> its shards `<prefix>-SSSSS-of-NNNNN`; returns their paths.

    With num_shards N, shard i is part i of every bundle, one after another (TFRecord files
    can be joined end to end), copied a chunk at a time; with 0, each part is a shard. A
    split without examples gets max(N, 1) empty shards. Each shard is written whole
    (`storage.open_write`); then the parts folder goes, with anything a retried bundle left in it.
    """
    import shutil

    parts = sorted(parts)
    if num_shards:
        groups = [[paths[index] for paths, _ in parts] for index in range(num_shards)]
    else:
        groups = [[path] for paths, _ in parts for path in paths] or [[]]
    shards = [f"{prefix}-{index:05d}-of-{len(groups):05d}" for index in range(len(groups))]
    for shard, group in zip(shards, groups):
        with storage.open_write(shard) as out:
            for path in group:
                with storage.open_read(path) as part:
                    shutil.copyfileobj(part, out, 1 << 22)
    storage.remove_tree(parts_folder)
    return shards


class WriteExamples(beam.PTransform):
    """{'examples': (split, example dict), 'reports'} -> TFRecord shards per split, then the manifest.

    The job's only output I/O. Each worker writes its examples into part files as they come
    (`_WriteParts`, in `<prefix>-parts-<id>/` next to the shards), and once all are written
    one step joins them into the shards (`_assemble_shards`): memory does not grow with the
    dataset. Returns a PCollection of the one manifest written.

    Args:
        outputs: {split: (TFRecord path prefix, num_shards)}; shards are written as
            `<prefix>-SSSSS-of-NNNNN` (num_shards 0: one per bundle of the runner).
        manifest_path: Where the manifest JSON goes (local or gs://).
        make_manifest: (reports, shards={split: [shard paths]}) -> the manifest dict.
    """

    def __init__(self, outputs, manifest_path, make_manifest):
        super().__init__()
        self.outputs = outputs
        self.manifest_path = manifest_path
        self.make_manifest = make_manifest

    def expand(self, inputs):
        import uuid

        shards = {}
        job = uuid.uuid4().hex[:12]
        for split, (path, num_shards) in self.outputs.items():
            parts_folder = f"{path}-parts-{job}"
            shards[split] = (inputs["examples"]
                             | f"WriteParts_{split}" >> beam.ParDo(_WriteParts(split, parts_folder, num_shards or 1))
                             | f"AllParts_{split}" >> beam.combiners.ToList()
                             | f"Shards_{split}" >> beam.FlatMap(_assemble_shards, path, num_shards, parts_folder))
        return (inputs[REPORTS]
                | "CollectReports" >> beam.combiners.ToList()
                | "WriteManifest" >> beam.Map(_write_manifest, self.manifest_path, self.make_manifest,
                                              **{f"{split}_shards": beam.pvalue.AsList(paths)
                                                 for split, paths in shards.items()}))


def _write_manifest(reports, manifest_path, make_manifest, **shards):
    manifest = make_manifest(reports, shards={name[:-len("_shards")]: sorted(paths) for name, paths in shards.items()})
    storage.write_json(manifest_path, manifest)
    return manifest


def files_finished(result):
    """Files a finished job has dealt with (used or skipped), from its Beam counters.

    Args:
        result: The job's `PipelineResult` (after `wait_until_finish`).

    Returns:
        files_read + files_skipped of the 'prepare' namespace: `ReadAudio` counts every file
        in one of the two.
    """
    from apache_beam.metrics.metric import MetricsFilter

    totals = {}
    for counter in result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]:
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + (counter.result or 0)
    return totals.get("files_read", 0) + totals.get("files_skipped", 0)


class _RecordFinished(beam.DoFn):
    """A report -> `<folder>/<sha1 of its path>.json`, one JSON line; written whole (a temporary
    name, then renamed), so a reader of the folder never sees half a record."""

    def __init__(self, folder):
        self.folder = folder

    def process(self, report):
        name = hashlib.sha1(report["path"].encode("utf-8")).hexdigest()
        path = os.path.join(self.folder, name + RECORD_SUFFIX)
        temporary = os.path.join(self.folder, f".{name}.{os.getpid()}.tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(json.dumps({key: report.get(key) for key in RECORD_KEYS}) + "\n")
        os.replace(temporary, path)


class RecordFinishedFiles(beam.PTransform):
    """Reports -> one record per file in `folder` (a local folder that exists), as each is finished.

    A record is `<sha1 of the file's path>.json`, holding one JSON line: the report's
    RECORD_KEYS ('path', 'split', 'status' 'ok' or 'skipped', 'examples', 'reason' or null).
    A file redone by a retried bundle rewrites its own record, so the folder holds one per
    file. For local runs only: the workers and the reader share the folder.
    """

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def expand(self, reports):
        return reports | "WriteRecord" >> beam.ParDo(_RecordFinished(self.folder))
