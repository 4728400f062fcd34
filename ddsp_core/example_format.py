"""The example format: the one definition of every rate and length of a dataset's examples.

The prepare job cuts audio into examples of this format and records it in the dataset's
manifest (`<prefix>_manifest.json`, key 'example_format'); everything after it reads it
from there: the data provider (`TFRecordProvider`), the model's synthesizers and reverb
(the `sample_rate` and `n_samples` gin macros, bound by `gin_configs.bind_example_format`),
the loss, eval, sample, play and export (through the model statistics, which copy it).

An example holds, per feature:

    audio          [n_samples]      the waveform at sample_rate (any rate: 16, 22.05, 44.1, 48 kHz)
    audio_16k      [n_samples_16k]  the same at 16 kHz, only when sample_rate is not 16 kHz
                                    (CREPE's input: the f0 tracker always runs at 16 kHz)
    f0_hz, f0_confidence, loudness_db, power_db   [n_frames]  at frame_rate, frame i at
                                    time i / frame_rate (computed from the 16 kHz audio)

Two whole-number hops tie the rates together: a frame is `hop_size` audio samples (the
synthesizers upsample frame controls by it) and `frame_hop_16k` samples at 16 kHz (the
features' hop). So frame_rate must divide both sample_rate and 16000: 250 frames/s for 16
and 48 kHz, 50 for 22.05 kHz, 100 for 44.1 kHz (`frame_rates_for`).

The defaults are magenta ddsp's (16 kHz, 250 frames/s, 4 s examples every 1 s, not centred).
"""

import dataclasses
import math
import posixpath

from ddsp_core.crepe import SAMPLE_RATE as F0_TRACKER_SAMPLE_RATE

# Features at frame rate, in the order the prepare job computes them.
FRAME_FEATURES = ("f0_hz", "f0_confidence", "loudness_db", "power_db")
# The manifest's key for the format, and the file name it is written under.
MANIFEST_KEY = "example_format"
MANIFEST_SUFFIX = "_manifest.json"
# Tolerance when checking that seconds x rate is a whole number.
_TOLERANCE = 1e-6


class ExampleFormatError(ValueError):
    """Rates and lengths that do not fit together, or a manifest without a readable format."""


def frame_rates_for(sample_rate, at_most=250):
    """Frame rates (descending, <= at_most) that divide both sample_rate and 16000 Hz."""
    common = math.gcd(int(sample_rate), F0_TRACKER_SAMPLE_RATE)
    return [rate for rate in range(min(common, at_most), 0, -1) if common % rate == 0]


def _whole(name, seconds, rate, unit):
    value = seconds * rate
    if abs(value - round(value)) > _TOLERANCE:
        raise ExampleFormatError(f"{name} = {seconds!r} s x {rate!r}/s = {value!r} must be a whole number of {unit}.")
    return int(round(value))


@dataclasses.dataclass(frozen=True)
class ExampleFormat:
    """Rates and lengths of a dataset's examples (see the module docstring).

    Attributes:
        sample_rate: Rate of the `audio` feature and of the model's output, in Hz.
        frame_rate: Feature (and model control) frames per second.
        example_secs: Length of an example, in seconds.
        hop_secs: Time between the starts of consecutive examples of a file, in seconds
            (the prepare job's; readers do not use it).
        centered: Also keep the frame at the example's end time, so an example has
            example_secs * frame_rate + 1 frames (magenta's `--center`).
    """

    sample_rate: int = 16000
    frame_rate: int = 250
    example_secs: float = 4.0
    hop_secs: float = 1.0
    centered: bool = False

    def __post_init__(self):
        for name in ("sample_rate", "frame_rate"):
            value = getattr(self, name)
            if isinstance(value, bool) or not float(value).is_integer() or value <= 0:
                raise ExampleFormatError(f"{name} must be a positive whole number, got {value!r}.")
            object.__setattr__(self, name, int(value))
        for name in ("example_secs", "hop_secs"):
            if not getattr(self, name) > 0:
                raise ExampleFormatError(f"{name} must be positive, got {getattr(self, name)!r}.")
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "centered", bool(self.centered))
        if F0_TRACKER_SAMPLE_RATE % self.frame_rate or self.sample_rate % self.frame_rate:
            raise ExampleFormatError(
                f"frame_rate {self.frame_rate} must divide both the sample rate {self.sample_rate} Hz (the "
                f"synthesizers' hop) and {F0_TRACKER_SAMPLE_RATE} Hz (the f0 tracker's hop); at "
                f"{self.sample_rate} Hz use one of {frame_rates_for(self.sample_rate)[:6]}.")
        for name in ("example_secs", "hop_secs"):
            _whole(f"{name} x frame_rate", getattr(self, name), self.frame_rate, "frames")

    # Lengths.
    @property
    def n_samples(self):
        """Samples of `audio` per example."""
        return _whole("example_secs x sample_rate", self.example_secs, self.sample_rate, "samples")

    @property
    def n_samples_16k(self):
        """Samples of the 16 kHz audio (the f0 tracker's input) per example."""
        return _whole("example_secs x 16 kHz", self.example_secs, F0_TRACKER_SAMPLE_RATE, "samples")

    @property
    def n_frames(self):
        """Feature frames per example."""
        return _whole("example_secs x frame_rate", self.example_secs, self.frame_rate, "frames") + int(self.centered)

    @property
    def hop_size(self):
        """Audio samples per frame (at sample_rate)."""
        return self.sample_rate // self.frame_rate

    @property
    def frame_hop_16k(self):
        """Samples at 16 kHz between frames."""
        return F0_TRACKER_SAMPLE_RATE // self.frame_rate

    @property
    def hop_frames(self):
        """Frames between the starts of consecutive examples of a file."""
        return _whole("hop_secs x frame_rate", self.hop_secs, self.frame_rate, "frames")

    @property
    def has_audio_16k(self):
        """Whether examples carry `audio_16k` (the audio is not at 16 kHz)."""
        return self.sample_rate != F0_TRACKER_SAMPLE_RATE

    def feature_lengths(self, frame_features=FRAME_FEATURES):
        """{feature name: float values per example} of the examples of this format."""
        lengths = {"audio": self.n_samples, **{name: self.n_frames for name in frame_features}}
        if self.has_audio_16k:
            lengths["audio_16k"] = self.n_samples_16k
        return lengths

    # Descriptions.
    def describe(self):
        """A short human-readable line, e.g. '48000 Hz, 250 frames/s, 1 s examples every 0.5 s'."""
        centred = ", centred frames" if self.centered else ""
        return (f"{self.sample_rate} Hz, {self.frame_rate} frames/s, {self.example_secs:g} s examples every "
                f"{self.hop_secs:g} s{centred}")

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values, source="the format"):
        """An ExampleFormat from `to_dict`'s dict (or the flat settings of older manifests)."""
        fields = {field.name for field in dataclasses.fields(cls)}
        given = {name: values[name] for name in fields if name in values}
        if "center" in values and "centered" not in given:  # PrepareSettings' name before 0.2.
            given["centered"] = values["center"]
        missing = sorted({"sample_rate", "frame_rate", "example_secs"} - set(given))
        if missing:
            raise ExampleFormatError(f"{source} lacks {', '.join(missing)}: it does not describe an example format.")
        return cls(**given)

    @classmethod
    def from_manifest(cls, manifest, source="the manifest"):
        """The format a prepare job recorded in its manifest (a dict); older manifests kept
        it among their 'settings'."""
        if MANIFEST_KEY in manifest:
            return cls.from_dict(manifest[MANIFEST_KEY], f"{source}'s '{MANIFEST_KEY}'")
        return cls.from_dict(manifest.get("settings", {}), f"{source}'s 'settings'")


def manifest_path_for(tfrecord_path):
    """'.../train.tfrecord' -> '.../train_manifest.json' (not matched by the glob 'train.tfrecord*')."""
    folder, name = posixpath.split(tfrecord_path)
    stem = name[:-len(".tfrecord")] if name.endswith(".tfrecord") else name
    return posixpath.join(folder, f"{stem}{MANIFEST_SUFFIX}") if folder else f"{stem}{MANIFEST_SUFFIX}"


def manifest_candidates(file_pattern):
    """Manifest paths that may describe the TFRecords of `file_pattern` (one pattern), most
    likely first: the prepare job's name for the pattern's prefix, then for the train split
    of an eval prefix ('eval' -> 'train', or a '-eval' suffix dropped)."""
    folder, name = posixpath.split(file_pattern)
    name = name.rstrip("*?")
    if ".tfrecord" in name:  # 'train.tfrecord-00000-of-00002' and 'train.tfrecord*' -> 'train.tfrecord'.
        name = name[:name.index(".tfrecord") + len(".tfrecord")]
    elif "-of-" in name:  # One shard of another name, in full: its prefix is before '-SSSSS-of-NNNNN'.
        name = name.rsplit("-", 3)[0]
    names = [name]
    if "eval" in name:
        head, _, tail = name.rpartition("eval")
        names.append(f"{head}train{tail}")
        stem, extension = posixpath.splitext(name)
        if stem.endswith("-eval"):
            names.append(stem[:-len("-eval")] + extension)
    return [manifest_path_for(posixpath.join(folder, item) if folder else item) for item in names]


def read_for_tfrecords(file_pattern, read_json, exists):
    """(format, manifest path) of the dataset whose TFRecords `file_pattern` matches, or
    (None, None) when no manifest is found next to them (records written by other tools).

    Args:
        file_pattern: One glob of TFRecord files (local or a URL).
        read_json, exists: The storage functions (path -> parsed JSON, path -> bool).

    Raises:
        ExampleFormatError: a manifest is there but holds no readable format.
    """
    for path in manifest_candidates(file_pattern):
        if exists(path):
            try:
                manifest = read_json(path)
            except ValueError as error:
                raise ExampleFormatError(f"{path} is not valid JSON ({error}); rewrite it with the prepare job.")
            return ExampleFormat.from_manifest(manifest, path), path
    return None, None
