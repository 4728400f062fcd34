"""Training data: batches of examples read from the TFRecords written by the prepare job.

Each record is a serialized `tf.train.Example` holding one window of `example_secs`
seconds, with float features:

    audio          [n_samples]   waveform at sample_rate, n_samples = example_secs * sample_rate
    f0_hz          [n_frames]    fundamental frequency in Hz, n_frames = example_secs * frame_rate
    f0_confidence  [n_frames]    f0 tracker confidence in [0, 1]
    loudness_db    [n_frames]    A-weighted loudness in dB
    power_db       [n_frames]    frame power (mean square) in dB, DDSP-VST's level feature;
                                 optional: read when the records have it
    audio_16k      [example_secs * 16 kHz]  only when sample_rate is not 16 kHz (the f0 tracker's input)

With `centered=True` the frames are centred on their hop (frame i at i / frame_rate
seconds, both ends included), which adds one frame. Datasets prepared before `power_db`
was added lack it; they are still read, without it (a model that needs it says so: re-run
the prepare job). This is I/O code: it uses tf.data directly and needs TensorFlow whatever
the Keras backend.
"""

import dataclasses

import gin
import tensorflow as tf

from ddsp_core import example_format as example_format_lib
from ddsp_core.core import checks
from ddsp_core.io import storage

# Frame-rate features every record has.
REQUIRED_FRAME_FEATURES = ("f0_hz", "f0_confidence", "loudness_db")
# Examples held by the shuffle buffer; about 4 GiB of 4 s examples at 16 kHz.
DEFAULT_SHUFFLE_BUFFER_SIZE = 10000
# Shards read at once when shuffling.
DEFAULT_CYCLE_LENGTH = 40
# Frame-rate features read when the first record has them (older datasets lack them).
OPTIONAL_FRAME_FEATURES = ("power_db",)
_PREPARE_HINT = (
    "Check the path, or write the TFRecords first with the prepare job (ddsp_prepare_tfrecord)."
)


def _resolve_format(file_pattern, **given):
    """(ExampleFormat, manifest path or None) of the TFRecords of `file_pattern`.

    The prepare job's manifest next to the records gives the format; arguments that are not
    None must agree with it. Without a manifest (records of other tools), the arguments given
    and magenta's defaults for the rest (4 s, 16 kHz, 250 frames/s, not centred).
    """
    given = {name: value for name, value in given.items() if value is not None}
    recorded, path = example_format_lib.read_for_tfrecords(file_pattern, storage.read_json, storage.exists)
    if recorded is None:
        return dataclasses.replace(example_format_lib.ExampleFormat(), **given), None
    conflicts = [f"{name} = {value!r} (the manifest: {getattr(recorded, name)!r})" for name, value in given.items()
                 if value != getattr(recorded, name)]
    if conflicts:
        raise ValueError(f"TFRecordProvider's {'; '.join(conflicts)} disagree with the dataset's manifest {path}, "
                         f"which says {recorded.describe()}. Remove those bindings: the manifest's format is used.")
    return recorded, path


def _split_patterns(file_pattern):
    """A pattern, comma-separated patterns or a list of them -> list of non-empty patterns."""
    if isinstance(file_pattern, (str, bytes)):
        parts = [file_pattern]
    elif isinstance(file_pattern, (list, tuple)) and all(isinstance(p, (str, bytes)) for p in file_pattern):
        parts = list(file_pattern)
    else:
        raise ValueError(
            f"file_pattern must be a string or a list of strings, got {file_pattern!r}."
        )
    parts = [p.decode() if isinstance(p, bytes) else p for p in parts]
    patterns = [p.strip() for part in parts for p in part.split(",") if p.strip()]
    if not patterns:
        raise ValueError(f"file_pattern names no file, got {file_pattern!r}.")
    return patterns


class DataProvider:
    """Base class: a tf.data.Dataset of examples (dicts of tensors), batched for training.

    Subclasses implement `get_dataset`; `get_batch` adds shuffling, repetition,
    batching and prefetching.

    Args:
        sample_rate: Audio sample rate in Hz.
        frame_rate: Feature frame rate (f0, loudness) in frames per second.
        shuffle_buffer_size: Examples held in the shuffle buffer when shuffling.
        seed: Integer seed for the file and example shuffles, or None (different order
            every run). With a seed, the order is the same every run.
    """

    def __init__(self, sample_rate, frame_rate, shuffle_buffer_size=DEFAULT_SHUFFLE_BUFFER_SIZE, seed=None):
        checks.check_positive_int("sample_rate", sample_rate)
        checks.check_positive("frame_rate", frame_rate)
        checks.check_positive_int("shuffle_buffer_size", shuffle_buffer_size)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be an integer or None, got {seed!r}.")
        self.sample_rate = int(sample_rate)
        self.frame_rate = frame_rate
        self.shuffle_buffer_size = int(shuffle_buffer_size)
        self.seed = seed

    def list_files(self):
        """The files the examples come from ([] for providers that read no files)."""
        return []

    def get_dataset(self, shuffle=True):
        """A tf.data.Dataset of single (unbatched) examples.

        Args:
            shuffle: Whether to shuffle the order of the sources (e.g. files).
        """
        raise NotImplementedError(f"{type(self).__name__} must implement get_dataset().")

    def get_batch(self, batch_size, shuffle=True, repeats=-1, drop_remainder=True):
        """A tf.data.Dataset of batches: each feature gets a leading [batch_size] axis.

        Args:
            batch_size: Examples per batch.
            shuffle: Shuffle the examples (through a buffer of `shuffle_buffer_size`),
                reshuffled every pass.
            repeats: Passes over the data; -1 repeats forever.
            drop_remainder: Drop the last, smaller batch, so that every batch has a
                static batch size.

        Returns:
            Dataset of dicts, e.g. {'audio': [batch_size, n_samples], ...}.
        """
        checks.check_positive_int("batch_size", batch_size)
        if isinstance(repeats, bool) or not isinstance(repeats, int) or (repeats < 1 and repeats != -1):
            raise ValueError(f"repeats must be a positive integer, or -1 to repeat forever, got {repeats!r}.")
        dataset = self.get_dataset(shuffle=shuffle)
        if shuffle:
            dataset = dataset.shuffle(self.shuffle_buffer_size, seed=self.seed, reshuffle_each_iteration=True)
        dataset = dataset.repeat(None if repeats == -1 else repeats)
        dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
        return dataset.prefetch(tf.data.AUTOTUNE)


@gin.register
class TFRecordProvider(DataProvider):
    """Examples from TFRecord files of serialized `tf.train.Example` (see module docstring).

    In gin:

        TFRecordProvider.file_pattern = 'gs://bucket/data/train.tfrecord*'
        train_data = @TFRecordProvider()

    Args:
        file_pattern: A glob pattern, several separated by commas, or a list of them;
            local paths or gs://. Every pattern must match at least one file.
        example_secs: Length of an example in seconds.
        sample_rate: Audio sample rate in Hz.
        frame_rate: Feature frame rate in frames per second.
        centered: Whether the features have one extra frame (frames centred on hops).
            These four are the dataset's `ExampleFormat` (ddsp_core/example_format.py):
            None (the default) takes each from the prepare job's manifest next to the
            records (`<prefix>_manifest.json`), and without one from magenta's defaults
            (4 s, 16000 Hz, 250 frames/s, not centred); a value given must agree with the
            manifest. `example_format` holds the result.
        shuffle_buffer_size: See `DataProvider`.
        seed: See `DataProvider`.
        cycle_length: Shards read in parallel when shuffling.
    """

    def __init__(self, file_pattern=None, example_secs=None, sample_rate=None, frame_rate=None, centered=None,
                 shuffle_buffer_size=DEFAULT_SHUFFLE_BUFFER_SIZE, seed=None, cycle_length=DEFAULT_CYCLE_LENGTH):
        if file_pattern is None:
            raise ValueError(
                "TFRecordProvider needs file_pattern, e.g. 'data/train.tfrecord*' "
                "(in gin: TFRecordProvider.file_pattern = ...)."
            )
        checks.check_positive_int("cycle_length", cycle_length)
        self.file_patterns = _split_patterns(file_pattern)
        self.example_format, self.manifest_path = _resolve_format(
            self.file_patterns[0], example_secs=example_secs, sample_rate=sample_rate, frame_rate=frame_rate,
            centered=centered)
        super().__init__(self.example_format.sample_rate, self.example_format.frame_rate,
                         shuffle_buffer_size=shuffle_buffer_size, seed=seed)
        self.example_secs = self.example_format.example_secs
        self.centered = self.example_format.centered
        self.cycle_length = int(cycle_length)
        self._checked = False
        self._optional_found = ()  # OPTIONAL_FRAME_FEATURES in the first record (check_first_record).

    @property
    def n_samples(self):
        """Audio samples per example: example_secs * sample_rate."""
        return self.example_format.n_samples

    @property
    def n_frames(self):
        """Feature frames per example: example_secs * frame_rate, + 1 when centered."""
        return self.example_format.n_frames

    @property
    def required_lengths(self):
        """{feature name: number of float values} that every record must have."""
        return self.example_format.feature_lengths(REQUIRED_FRAME_FEATURES)

    @property
    def lengths(self):
        """{feature name: expected number of float values per record} of the features read:
        the required ones, and the optional ones (OPTIONAL_FRAME_FEATURES) that the first
        record has, once `check_first_record` (or `get_dataset`) has read it."""
        return {**self.required_lengths, **{name: self.n_frames for name in self._optional_found}}

    @property
    def features_dict(self):
        """The record format, {name: tf.io.FixedLenFeature}, for tf.io.parse_single_example
        (optional features only after `check_first_record`)."""
        return {name: tf.io.FixedLenFeature([length], dtype=tf.float32) for name, length in self.lengths.items()}

    def _settings(self):
        """The settings that fix the lengths, for error messages."""
        source = f"the manifest {self.manifest_path}" if self.manifest_path else "no manifest found: gin's or defaults"
        return (f"example_secs={self.example_secs}, sample_rate={self.sample_rate}, "
                f"frame_rate={self.frame_rate}, centered={self.centered}; {source}")

    def _expected(self):
        return ", ".join(f"{name} [{length}]" for name, length in self.lengths.items())

    def list_files(self):
        """The files matched by the patterns: sorted, without duplicates.

        Raises:
            ValueError: If a pattern matches no file.
        """
        files = set()
        for pattern in self.file_patterns:
            matches = tf.io.gfile.glob(pattern)
            if not matches:
                raise ValueError(f"No TFRecord file matches file_pattern {pattern!r}. {_PREPARE_HINT}")
            files.update(matches)
        return sorted(files)

    def _first_record(self):
        """(path, serialized record) of the first record of the first non-empty file.

        Empty files are skipped: a sharded writer (Beam's WriteToTFRecord) can leave a shard
        empty, with fewer records than shards or by how it deals records to shards.

        Raises:
            ValueError: If no file matches, or every matched file is empty.
        """
        files = self.list_files()
        for path in files:
            record = next(iter(tf.data.TFRecordDataset(path).take(1)), None)
            if record is not None:
                return path, record
        patterns = ", ".join(repr(pattern) for pattern in self.file_patterns)
        raise ValueError(
            f"Every TFRecord file matched by {patterns} is empty ({len(files)} empty files, e.g. {files[0]!r}): "
            f"there is no example to read. {_PREPARE_HINT} If the prepare job wrote them, its manifest "
            "(*_manifest.json next to them) lists the audio files it skipped and why."
        )

    def check_first_record(self):
        """Reads the first record (of the first non-empty file) and checks its features' lengths.

        The optional features (OPTIONAL_FRAME_FEATURES) it has are read from then on, from
        every record. Empty files are valid (empty shards) and hold no record to check.

        Raises:
            ValueError: If no file matches, every file is empty, or a feature is missing
                (an optional one may be), not float, or of the wrong length for these
                settings.
        """
        first_file, record = self._first_record()
        example = tf.train.Example.FromString(record.numpy())
        optional_found = tuple(name for name in OPTIONAL_FRAME_FEATURES if name in example.features.feature)
        expected = {**self.required_lengths, **{name: self.n_frames for name in optional_found}}
        problems = []
        for name, length in expected.items():
            if name not in example.features.feature:
                problems.append(f"'{name}' is missing")
                continue
            feature = example.features.feature[name]
            if feature.WhichOneof("kind") != "float_list":
                problems.append(f"'{name}' is {feature.WhichOneof('kind')}, not float_list")
            elif len(feature.float_list.value) != length:
                problems.append(f"'{name}' has {len(feature.float_list.value)} values, expected {length}")
        self._optional_found = optional_found
        if problems:
            raise ValueError(
                f"The first record of {first_file!r} does not match the expected features "
                f"{self._expected()} (from {self._settings()}): {'; '.join(problems)}. "
                "Set example_secs, sample_rate, frame_rate and centered to the values the "
                "TFRecords were prepared with (or keep the prepare job's manifest next to them)."
            )
        self._checked = True

    def _parse(self, record):
        """Serialized tf.train.Example -> {name: float32 [length]}.

        Every length is checked, so a record of other settings fails with a message
        naming them, not with the parser's.
        """
        spec = {name: tf.io.FixedLenSequenceFeature([], tf.float32, allow_missing=True) for name in self.lengths}
        parsed = tf.io.parse_single_example(record, spec)
        features = {}
        for name, length in self.lengths.items():
            value = parsed[name]
            # An optional feature is read because the first record has it; one without it mixes in older data.
            hint = " (as the first record has; re-run the prepare job on all the data)" \
                if name in OPTIONAL_FRAME_FEATURES else ""
            check = tf.debugging.Assert(
                tf.equal(tf.size(value), length),
                [f"TFRecord feature {name} must have {length} values{hint} ({self._settings()}); got", tf.size(value)],
            )
            with tf.control_dependencies([check]):
                features[name] = tf.ensure_shape(tf.identity(value), [length])
        return features

    def get_dataset(self, shuffle=True):
        """A tf.data.Dataset of single examples, {name: float32 [length]}.

        The first call checks the first record (`check_first_record`).

        Args:
            shuffle: True: shards in random order, `cycle_length` of them read in
                parallel and interleaved (for training). False: shards in sorted order,
                one after another, records in file order (for evaluation).
        """
        files = self.list_files()
        if not self._checked:
            self.check_first_record()
        # Without a seed the order is random anyway: let parallel reads finish out of order.
        deterministic = not shuffle or self.seed is not None
        dataset = tf.data.Dataset.from_tensor_slices(files)
        if shuffle:
            dataset = dataset.shuffle(len(files), seed=self.seed, reshuffle_each_iteration=True)
            dataset = dataset.interleave(
                tf.data.TFRecordDataset, cycle_length=min(self.cycle_length, len(files)),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic,
            )
        else:
            dataset = dataset.flat_map(tf.data.TFRecordDataset)
        return dataset.map(self._parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
