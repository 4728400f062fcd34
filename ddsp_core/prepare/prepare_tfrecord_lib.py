"""The prepare job as Apache Beam transforms: audio files -> sharded TFRecords + manifest.

    (path, split) --PrepareFiles--> examples per split --WriteExamples--> shards per split
                               \\--> one report per file ------------> manifest JSON

`build_pipeline` composes the stages of `transforms` (PrepareFiles is ReadAudio,
ComputeFeatures and CutWindows): each file is read once (local path or gs://), decoded,
mixed to mono, resampled with libsoxr, checked (empty, unreadable, too short, silent files
are skipped with a reason), its features computed once, and cut into windows
(`examples.cut_examples`); a file longer than `block_secs` is read and featurized in
blocks, spread over the workers (`examples.plan_blocks`), so memory stays flat. The split (train or eval) is chosen per file before the job, so
no recording is in both.

`run` builds and runs the pipeline. With the default runner it uses Beam's in-process
FnApiRunner with as many worker processes as this process may use (`local_workers`: the
cgroup's CPU quota and memory limit, the CPU affinity, the cores): Beam 2.77's
DirectRunner would first try to download its 'prism' runner, which fails (slowly)
offline, and its multi-threading mode is not used because it lost a record in a trial.
Any other runner (Dataflow, Flink, Spark) is taken from the pipeline options as given.

A local run shows a `ddsp_core.progress.Progress` over the files (`_FileProgress`). Beam's
FnApiRunner runs the whole job inside `pipeline.run()` and gives its counters only in the
result it returns when the job is done, so they cannot be polled while it runs: instead each
file's report leaves a small JSON record in a temporary folder (`transforms.RecordFinishedFiles`)
that the progress watches, and at the end the job's counters (`transforms.files_finished`)
give the final count. Each file's log line (PROGRESS or SKIPPED, on the FILE_LOGGER logger)
reaches the main process through Beam's worker-log relay (`_WorkerLogFilter`, which keeps the
message of each relayed `LogEntry`), or directly with one worker; while a run shows its
progress, the PROGRESS lines are shown only when `progress.verbose()`.
"""

import contextlib
import dataclasses
import datetime
import functools
import hashlib
import logging
import os
import posixpath
import shutil
import tempfile
import threading

import apache_beam as beam

import ddsp_core
from ddsp_core import progress as progress_lib
from ddsp_core.io import storage
from ddsp_core.example_format import MANIFEST_KEY, ExampleFormat, manifest_path_for
from ddsp_core.prepare.transforms import (FILE_LOGGER, PROGRESS, RECORD_SUFFIX, REPORTS, SKIPPED,  # noqa: F401
                                          PrepareFiles, RecordFinishedFiles, WriteExamples, examples_from_file,
                                          files_finished, load_file)

TRAIN, EVAL = "train", "eval"
WORKER_LOGGER = "apache_beam.runners.portability.local_job_service"  # Relays the workers' log lines.
LOCAL_RUNNERS = ("directrunner", "direct", "fnapirunner")


@dataclasses.dataclass
class PrepareSettings:
    """Everything the prepare job needs; recorded in the manifest.

    Attributes:
        input_audio_filepatterns: Globs of audio files (local or gs://).
        output_tfrecord_path: Train shards are written as `<path>-SSSSS-of-NNNNN`.
        eval_tfrecord_path: Eval shards, when there is an eval split (default: the
            train path with 'train' replaced by 'eval', or '-eval' added to its stem).
        eval_audio_filepatterns: Globs of audio files that all go to the eval split (a
            held-out instrument, say); never mixed with the training files: a file matched
            by both is an error.
        num_shards: Shards per split, at most one per file of the split (`shards_for`);
            0 lets the runner decide.
        example_format: The examples' rates and lengths, an `ExampleFormat`
            (ddsp_core/example_format.py); recorded in the manifest for every later step.
        eval_split_fraction: Fraction of the input_audio_filepatterns files (not windows)
            held out for eval.
        viterbi: Viterbi decoding of CREPE's f0.
        crepe_capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
        crepe_batch_size: CREPE frames per forward pass.
        crepe_precision: 'float32', 'bfloat16' (~3x faster on CPUs with AMX or
            AVX512-BF16 and on GPUs; slower elsewhere), or 'auto' (bfloat16 where it
            is fast, decided on each worker).
        min_audio_secs: Files shorter than this are skipped; longer ones shorter than
            one example are zero-padded to one example.
        silence_db: Files, and windows, whose peak is below this (dBFS) are skipped.
        allow_memory_growth: Let GPU memory grow as needed instead of taking it all.
        block_secs: A file longer than this (plus two examples) is prepared in blocks of this
            many seconds (`examples.plan_blocks`), spread over the workers, so memory stays
            flat in a file's length; 0 reads every file whole.
    """

    input_audio_filepatterns: list
    output_tfrecord_path: str
    eval_tfrecord_path: str = ""
    num_shards: int = 0
    example_format: ExampleFormat = ExampleFormat()
    eval_split_fraction: float = 0.0
    viterbi: bool = True
    crepe_capacity: str = "full"
    crepe_batch_size: int = 512
    crepe_precision: str = "float32"
    min_audio_secs: float = 0.5
    silence_db: float = -60.0
    allow_memory_growth: bool = False
    eval_audio_filepatterns: list = dataclasses.field(default_factory=list)
    block_secs: int = 60

    def __post_init__(self):
        from ddsp_core import crepe

        if isinstance(self.input_audio_filepatterns, str):
            self.input_audio_filepatterns = [self.input_audio_filepatterns]
        if isinstance(self.eval_audio_filepatterns, str):
            self.eval_audio_filepatterns = [self.eval_audio_filepatterns]
        self.eval_audio_filepatterns = list(self.eval_audio_filepatterns)
        if not self.input_audio_filepatterns:
            raise ValueError("input_audio_filepatterns is empty: give at least one glob of audio files.")
        if not self.output_tfrecord_path:
            raise ValueError("output_tfrecord_path is empty: give where to write the TFRecords.")
        if not isinstance(self.example_format, ExampleFormat):
            raise ValueError(f"example_format must be an ExampleFormat, got {self.example_format!r}.")
        crepe.check_capacity(self.crepe_capacity)
        if self.crepe_precision != "auto":
            crepe.check_precision(self.crepe_precision)
        if not 0.0 <= self.eval_split_fraction < 1.0:
            raise ValueError(f"eval_split_fraction must be in [0, 1), got {self.eval_split_fraction}.")
        if self.num_shards < 0:
            raise ValueError(f"num_shards must be >= 0 (0: the runner decides), got {self.num_shards}.")
        if self.block_secs < 0 or int(self.block_secs) != self.block_secs:
            raise ValueError(f"block_secs must be a whole number of seconds >= 0 (0: files whole), got "
                             f"{self.block_secs!r}.")
        if self.min_audio_secs < 0:
            raise ValueError(f"min_audio_secs must be >= 0, got {self.min_audio_secs}.")
        if self.has_eval_split and not self.eval_tfrecord_path:
            self.eval_tfrecord_path = default_eval_path(self.output_tfrecord_path)

    @property
    def has_eval_split(self):
        return bool(self.eval_split_fraction or self.eval_audio_filepatterns)

    @property
    def manifest_path(self):
        return manifest_path_for(self.output_tfrecord_path)

    def output_paths(self):
        """{split: TFRecord path prefix} of the splits this job writes."""
        paths = {TRAIN: self.output_tfrecord_path}
        if self.has_eval_split:
            paths[EVAL] = self.eval_tfrecord_path
        return paths


def default_eval_path(train_path):
    """'.../train.tfrecord' -> '.../eval.tfrecord'; '.../notes.tfrecord' -> '.../notes-eval.tfrecord'."""
    folder, name = posixpath.split(train_path)
    if "train" in name:
        head, _, tail = name.rpartition("train")
        name = f"{head}eval{tail}"
    else:
        stem, extension = posixpath.splitext(name)
        name = f"{stem}-eval{extension}"
    return posixpath.join(folder, name) if folder else name


def assign_splits(paths, eval_split_fraction):
    """{path: 'train' | 'eval'}: round(fraction * n) files (at least 1 when fraction > 0 and
    there are 2 or more files) go to eval, chosen by a hash of the file name, so the same
    files are held out on every run."""
    n_eval = 0
    if eval_split_fraction > 0 and len(paths) >= 2:
        n_eval = min(len(paths) - 1, max(1, int(round(eval_split_fraction * len(paths)))))
    by_hash = sorted(paths, key=lambda path: hashlib.sha1(posixpath.basename(path).encode()).hexdigest())
    held_out = set(by_hash[:n_eval])
    return {path: EVAL if path in held_out else TRAIN for path in paths}


def shards_for(num_shards, n_files):
    """Shards to write for a split of `n_files` files (counting each block of a long file as a
    file: `parts_of`): num_shards, capped at n_files.

    Each file the split uses gives at least one example, so a split never has more shards
    than examples (skipped files aside): 1 held-out file gives 1 eval shard, not 7 empty
    ones and a full one. Beam still deals records to shards in no fixed way, so a shard can
    be empty (the readers take empty shards). A split without files gets one (empty) shard;
    0 (the runner decides) stays 0.
    """
    return 0 if num_shards == 0 else max(1, min(num_shards, n_files))


# A file of fewer bytes than this per second of block_secs (32 kbit/s: below any usable audio
# encoding) cannot be longer than block_secs, so `parts_of` does not read its header.
_MIN_BYTES_PER_SECOND = 4000


def parts_of(files, settings):
    """{path: how many elements the job makes of it}: 1, or a long file's blocks (`examples.plan_blocks`,
    from its header). Only files large enough to be longer than block_secs are opened.

    Args:
        files: [(path, size_in_bytes)].
        settings: PrepareSettings (block_secs, example_format).
    """
    from ddsp_core.io import audio_io
    from ddsp_core.prepare import examples

    parts = {}
    for path, size in files:
        parts[path] = 1
        if not settings.block_secs or (size or 0) < _MIN_BYTES_PER_SECOND * settings.block_secs:
            continue
        try:
            with storage.open_read(path) as handle:
                n_samples, file_rate, _ = audio_io.probe(handle)
        except Exception:  # Unreadable: the job says why.
            continue
        blocks = examples.blocks_of_file(n_samples, file_rate, settings.example_format, settings.block_secs)
        parts[path] = len(blocks) if blocks else 1
    return parts


def build_pipeline(pipeline, settings, files, eval_files=(), records_dir=None, parts=None):
    """Adds the prepare job to `pipeline`.

    Args:
        pipeline: A beam.Pipeline.
        settings: PrepareSettings.
        files: [(path, size_in_bytes)] to read (split by settings.eval_split_fraction).
        eval_files: [(path, size_in_bytes)] that all go to the eval split.
        records_dir: None, or a local folder where each file, once finished, leaves a
            record (`transforms.RecordFinishedFiles`); for local runners only.
        parts: None, or `parts_of` the files (a long file's blocks count as files when
            capping the shards: `shards_for`).
    """
    splits = assign_splits([path for path, _ in files], settings.eval_split_fraction)
    splits.update({path: EVAL for path, _ in eval_files})
    sizes = {**dict(files), **dict(eval_files)}
    parts = {path: (parts or {}).get(path, 1) for path in splits}
    outputs = {split: (path, shards_for(settings.num_shards, sum(parts[p] for p, s in splits.items() if s == split)))
               for split, path in settings.output_paths().items()}
    prepared = (pipeline
                | "ListFiles" >> beam.Create(sorted(splits.items()))
                | "SpreadFilesOverWorkers" >> beam.Reshuffle()
                | "PrepareFiles" >> PrepareFiles(settings))
    if records_dir is not None:
        _ = prepared[REPORTS] | "RecordFinishedFiles" >> RecordFinishedFiles(records_dir)
    _ = prepared | "WriteExamples" >> WriteExamples(outputs, settings.manifest_path,
                                                    functools.partial(make_manifest, settings=settings, sizes=sizes,
                                                                      parts=parts))


def make_manifest(reports, settings, sizes, shards, parts=None):
    """The manifest: what was read, written and skipped, and the settings used (`parts`: see
    `build_pipeline`)."""
    reports = sorted(reports, key=lambda report: report["path"])
    used = [r for r in reports if r["status"] == "ok"]
    skipped = [{"path": r["path"], "split": r["split"], "reason": r["reason"]} for r in reports if r["status"] != "ok"]
    examples = {split: sum(r["examples"] for r in used if r["split"] == split) for split in settings.output_paths()}
    files_per_split = {split: sum(r["split"] == split for r in reports) for split in settings.output_paths()}
    parts_per_split = {split: sum((parts or {}).get(r["path"], 1) for r in reports if r["split"] == split)
                       for split in settings.output_paths()}
    features = settings.example_format.feature_lengths()
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "ddsp_core_version": ddsp_core.__version__,
        "files_matched": len(reports),
        "files_read": len(used),
        "files_skipped": len(skipped),
        "examples_written": {**examples, "total": sum(examples.values())},
        "audio_seconds": round(sum(r["duration_secs"] for r in used), 3),
        "skipped": skipped,
        # Per split: the files assigned to it (skipped ones too) and the shards written (num_shards capped
        # at the files: `shards_for`).
        "outputs": {split: {"path": path, "files": files_per_split[split],
                            "num_shards": shards_for(settings.num_shards, parts_per_split[split]),
                            "shards": shards.get(split, [])}
                    for split, path in settings.output_paths().items()},
        MANIFEST_KEY: settings.example_format.to_dict(),
        "features": features,
        "settings": dataclasses.asdict(settings),
        "files": [{key: r.get(key) for key in ("path", "split", "examples", "duration_secs", "file_sample_rate",
                                              "channels")} | {"bytes": sizes.get(r["path"])}
                  | ({"blocks": r["blocks"], "blocks_skipped": r["blocks_skipped"]} if "blocks" in r else {})
                  for r in used],
    }


def existing_outputs(settings):
    """Files an earlier run left at this job's output paths (shards and manifest)."""
    patterns = [f"{path}-*-of-*" for path in settings.output_paths().values()]
    found = []
    for pattern in patterns:
        try:
            found += [path for path, _ in storage.match([pattern])]
        except FileNotFoundError:
            pass
    if storage.exists(settings.manifest_path):
        found.append(settings.manifest_path)
    return found


def pipeline_for(pipeline_args, num_workers=0):
    """A beam.Pipeline for `pipeline_args` (a list like ['--runner=DataflowRunner', ...]).

    Without a runner, or with DirectRunner, the job runs in-process with Beam's
    FnApiRunner and `num_workers` worker processes (0: --direct_num_workers when given, else
    as many as this process may use, `local_workers.local_worker_count`, logged with why).
    """
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions

    options = PipelineOptions(list(pipeline_args))
    runner = options.view_as(StandardOptions).runner
    if runner is not None and runner.lower() not in LOCAL_RUNNERS:
        return beam.Pipeline(options=options)
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    direct = options.view_as(DirectOptions)
    workers_given = any(arg.startswith("--direct_num_workers") for arg in pipeline_args)
    workers = num_workers or (direct.direct_num_workers if workers_given else 0)
    if not workers:
        from ddsp_core.prepare import local_workers

        counted = local_workers.local_worker_count()
        logging.info("The local Beam runner starts %s.", counted)
        workers = counted.count
    if direct.direct_running_mode == "multi_threading":
        logging.warning("direct_running_mode=multi_threading is not used (it lost records in a trial here); "
                        "running with multi_processing instead.")
    direct.direct_running_mode = "multi_processing" if workers > 1 else "in_memory"
    direct.direct_num_workers = workers
    options.view_as(StandardOptions).runner = None
    return beam.Pipeline(runner=FnApiRunner(), options=options)


def run(settings, pipeline_args=(), num_workers=0, overwrite=False):
    """Runs the prepare job to completion and returns its manifest (a dict).

    Raises:
        FileNotFoundError: a pattern matches no file.
        FileExistsError: outputs of an earlier run are there and overwrite is False.
    """
    files = storage.match(settings.input_audio_filepatterns)
    eval_files = storage.match(settings.eval_audio_filepatterns) if settings.eval_audio_filepatterns else []
    both = sorted(set(dict(files)) & set(dict(eval_files)))
    if both:
        raise ValueError(f"{len(both)} files are matched by both the training and the eval audio patterns, e.g. "
                         f"{both[0]}: a held-out set must not be trained on. Make the patterns disjoint.")
    leftovers = existing_outputs(settings)
    if leftovers:
        if not overwrite:
            raise FileExistsError(
                f"{len(leftovers)} files from an earlier run are at the output path, e.g. {leftovers[0]}. "
                "New shards would mix with them. Pass --overwrite to delete them first, or choose another "
                "--output_tfrecord_path.")
        logging.info("Deleting %d files of an earlier run (--overwrite).", len(leftovers))
        storage.delete(leftovers)
    logging.info("Preparing %d files from %s", len(files), ", ".join(settings.input_audio_filepatterns))
    if eval_files:
        logging.info("... and %d held-out eval files from %s", len(eval_files),
                     ", ".join(settings.eval_audio_filepatterns))
    pipeline = pipeline_for(pipeline_args, num_workers)
    with _progress_of(pipeline, len(files) + len(eval_files)) as progress:
        build_pipeline(pipeline, settings, files, eval_files, records_dir=progress and progress.records_dir,
                       parts=parts_of(files + eval_files, settings))
        result = pipeline.run()
        result.wait_until_finish()
        if progress is not None:
            progress.finish(result)
    return storage.read_json(settings.manifest_path)


class _FileProgress:
    """While a local job runs: a Progress over its files (`shown`), advanced as each file's
    record appears in `records_dir` (a temporary folder, deleted at the end), and brought to
    the job's counters by `finish`. Also keeps the files' PROGRESS lines out of the log unless
    verbose (`_QuietFileLines`, `_WorkerLogFilter.quiet`).

    Args:
        n_files: Files the job was given.
        poll_s: Seconds between two looks at the folder.
    """

    def __init__(self, n_files, poll_s=0.2):
        self.n_files = n_files
        self.poll_s = poll_s
        self.records_dir = None
        self.shown = None
        self._seen = set()
        self._stop = threading.Event()
        self._watcher = None
        self._quiet = _QuietFileLines()
        self._levels = []

    def __enter__(self):
        self.records_dir = tempfile.mkdtemp(prefix="ddsp-prepare-files-")
        loggers = [logging.getLogger(FILE_LOGGER), logging.getLogger(WORKER_LOGGER)]
        self._levels = [(logger, logger.level) for logger in loggers]
        for logger in loggers:  # The lines are INFO: make sure they are made.
            if not logger.isEnabledFor(logging.INFO):
                logger.setLevel(logging.INFO)
        loggers[0].addFilter(self._quiet)
        _worker_log_filter(loggers[1]).quiet = True
        self.shown = progress_lib.Progress("prepare", self.n_files, "files").__enter__()
        self._watcher = threading.Thread(target=self._watch, name="prepare-progress", daemon=True)
        self._watcher.start()
        return self

    def _watch(self):
        while not self._stop.wait(self.poll_s):
            self._count_new_records()

    def _count_new_records(self):
        """update(1) per record not seen before, in name order."""
        try:
            names = sorted(name for name in os.listdir(self.records_dir) if name.endswith(RECORD_SUFFIX))
        except FileNotFoundError:
            return
        for name in names:
            if name not in self._seen:
                self._seen.add(name)
                self.shown.update()

    def finish(self, result):
        """After the job: counts the records not yet seen, then as many more as the job's counters
        say it finished (files_read + files_skipped) beyond them."""
        self._stop_watching()
        self._count_new_records()
        self.shown.update(max(0, files_finished(result) - self.shown.done))

    def _stop_watching(self):
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join()
            self._watcher = None

    def __exit__(self, *exc_info):
        self._stop_watching()
        _worker_log_filter(logging.getLogger(WORKER_LOGGER)).quiet = False
        logging.getLogger(FILE_LOGGER).removeFilter(self._quiet)
        for logger, level in self._levels:
            logger.setLevel(level)
        self.shown.__exit__(*exc_info)
        shutil.rmtree(self.records_dir, ignore_errors=True)


@contextlib.contextmanager
def _progress_of(pipeline, n_files):
    """A `_FileProgress` over the files of a local job (FnApiRunner); None for remote runners
    (Dataflow ...), whose workers cannot reach a local folder."""
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    if not isinstance(pipeline.runner, FnApiRunner):
        yield None
        return
    with _FileProgress(n_files) as progress:
        yield progress


def _shows_file_line(message, level):
    """Whether a file's log line is shown while a run shows its progress: SKIPPED warnings and
    other lines always, PROGRESS lines only when verbose."""
    return level >= logging.WARNING or not message.startswith(PROGRESS) or progress_lib.verbose()


class _QuietFileLines(logging.Filter):
    """On FILE_LOGGER while a run shows its progress (lines of an in-process worker): see `_shows_file_line`."""

    def filter(self, record):
        return _shows_file_line(record.getMessage(), record.levelno)


class _WorkerLogFilter(logging.Filter):
    """Beam's local runner logs each worker message as 'Worker: <whole LogEntry proto as text>'.

    This keeps only the entry's message (read back into a `LogEntry` with protobuf's text
    format), and of the INFO lines only our per-file PROGRESS lines, dropping the workers'
    start/stop chatter and a harmless warning every worker prints at start. While a run shows
    its progress (`quiet`), the PROGRESS lines too are shown only when verbose.
    """

    _NOISE = ("semi_persistent_directory",)

    def __init__(self):
        super().__init__()
        self.quiet = False

    def filter(self, record):
        if record.msg != "Worker: %s" or not record.args:
            return True
        message = _log_entry_message(str(record.args[0]))
        shown = _shows_file_line(message, record.levelno) if self.quiet else True
        if record.levelno < logging.WARNING and not (message.startswith(PROGRESS) and shown):
            return False
        if any(noise in message for noise in self._NOISE):
            return False
        record.msg, record.args = "worker: %s", (message,)
        return True


def _log_entry_message(text):
    """The message of a worker's LogEntry given as protobuf text (newlines made spaces, as Beam's
    relay does), or the text itself when it does not read as one."""
    from apache_beam.portability.api import beam_fn_api_pb2
    from google.protobuf import text_format

    try:
        return text_format.Parse(text, beam_fn_api_pb2.LogEntry(), allow_unknown_field=True).message
    except text_format.ParseError:
        return text


def tidy_beam_logging():
    """Beam's own INFO lines off, worker messages shortened to their text (for the CLI and steps)."""
    logging.getLogger("apache_beam").setLevel(logging.WARNING)
    worker_logger = logging.getLogger(WORKER_LOGGER)
    worker_logger.setLevel(logging.INFO)  # The filter passes only the progress lines of INFO.
    _worker_log_filter(worker_logger)


def _worker_log_filter(worker_logger):
    """The logger's `_WorkerLogFilter`, added if it has none."""
    for log_filter in worker_logger.filters:
        if isinstance(log_filter, _WorkerLogFilter):
            return log_filter
    log_filter = _WorkerLogFilter()
    worker_logger.addFilter(log_filter)
    return log_filter


def summary_lines(manifest):
    """A few human-readable lines about a manifest, for the log."""
    examples = manifest["examples_written"]
    lines = [f"Read {manifest['files_read']} of {manifest['files_matched']} files "
             f"({manifest['audio_seconds']:.1f} s of audio); wrote "
             + ", ".join(f"{count} {split}" for split, count in examples.items() if split != "total")
             + " examples."]
    asked = manifest["settings"]["num_shards"]
    for split, output in manifest["outputs"].items():
        capped = f" (num_shards {asked}, capped at one per file)" if 0 < len(output["shards"]) < asked else ""
        lines.append(f"  {split}: {len(output['shards'])} shards at {output['path']}-*{capped}")
    if manifest["skipped"]:
        lines.append(f"Skipped {manifest['files_skipped']} files:")
        lines += [f"  {item['path']}: {item['reason']}" for item in manifest["skipped"]]
    return lines

