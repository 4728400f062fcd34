"""From one file's audio to training examples: features once per file, then windows.

Features (f0, its confidence, loudness, power) are computed once over the whole file at the
frame rate, frame i centred on time i / frame_rate, and then cut into windows of
`example_secs` at most `hop_secs` apart, spread so that the first window starts at the
start of the file and the last ends at its end: nothing is padded and nothing but a
fraction of a frame at the end is left out. Only a file shorter than one window is padded, with zeros, up to one window.
Windows whose peak is below a silence threshold are dropped.
"""

import dataclasses
import math

import numpy as np
from keras import ops

from ddsp_core import spectral_ops
from ddsp_core.crepe import SAMPLE_RATE as CREPE_SAMPLE_RATE
from ddsp_core.training.data_preparation.audio_io import peak_dbfs

# Samples (at 16 kHz) per frame of the power feature: DDSP-VST's frame_size, at any frame rate.
POWER_FRAME_SIZE = 1024


@dataclasses.dataclass(frozen=True)
class ExampleShape:
    """Sizes of one example.

    Attributes:
        sample_rate: Rate of the `audio` feature, in Hz.
        frame_rate: Feature frames per second.
        example_secs: Length of an example, in seconds.
        hop_secs: Time between the starts of consecutive examples of a file, in seconds.
        centered: Also keep the frame at the example's end time, so an example has
            example_secs * frame_rate + 1 frames (as magenta's `--center`; read them with
            `TFRecordProvider(centered=True)`).
    """

    sample_rate: int = 16000
    frame_rate: int = 250
    example_secs: float = 4.0
    hop_secs: float = 1.0
    centered: bool = False

    def __post_init__(self):
        for name in ("sample_rate", "frame_rate", "example_secs", "hop_secs"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        if CREPE_SAMPLE_RATE % self.frame_rate:
            raise ValueError(f"frame_rate {self.frame_rate} must divide {CREPE_SAMPLE_RATE} (features are "
                             "computed at 16 kHz with a whole-sample hop): use e.g. 250, 200, 100 or 50.")
        for name in ("example_secs", "hop_secs"):
            frames = getattr(self, name) * self.frame_rate
            if not float(frames).is_integer():
                raise ValueError(f"{name} * frame_rate = {frames} must be a whole number of frames.")
        if not float(self.example_secs * self.sample_rate).is_integer():
            raise ValueError(f"example_secs * sample_rate = {self.example_secs * self.sample_rate} "
                             "must be a whole number of samples.")

    @property
    def n_samples(self):
        """Samples of `audio` per example."""
        return int(self.example_secs * self.sample_rate)

    @property
    def n_samples_16k(self):
        return int(self.example_secs * CREPE_SAMPLE_RATE)

    @property
    def n_frames(self):
        """Feature frames per example."""
        return int(self.example_secs * self.frame_rate) + int(self.centered)

    def feature_lengths(self):
        """{feature name: values per example} of the examples written with this shape."""
        lengths = {"audio": self.n_samples, "f0_hz": self.n_frames, "f0_confidence": self.n_frames,
                   "loudness_db": self.n_frames, "power_db": self.n_frames}
        if self.sample_rate != CREPE_SAMPLE_RATE:
            lengths["audio_16k"] = self.n_samples_16k
        return lengths

    @property
    def hop_frames(self):
        return int(self.hop_secs * self.frame_rate)

    @property
    def frame_hop_16k(self):
        """Samples at 16 kHz between frames."""
        return CREPE_SAMPLE_RATE // self.frame_rate


def compute_features(audio_16k, frame_rate, pitch_tracker, viterbi=True):
    """f0, confidence, loudness and power of a whole file, frame-aligned.

    Every feature has 'center' framing at the same hop (frame i centred on time
    i / frame_rate), so frame i of each describes the same instant.

    Args:
        audio_16k: [n_samples] at 16 kHz.
        frame_rate: Frames per second (must divide 16000).
        pitch_tracker: A `ddsp_core.crepe.PitchTracker`.
        viterbi: Viterbi decoding of f0.

    Returns:
        {'f0_hz' (Hz), 'f0_confidence' ([0, 1]), 'loudness_db' (A-weighted, dB,
        `compute_loudness`), 'power_db' (mean square of POWER_FRAME_SIZE-sample frames, dB,
        `compute_power_db`)}: float32 [1 + n_samples // hop] each.
    """
    f0_hz, f0_confidence = spectral_ops.compute_f0(audio_16k, frame_rate, viterbi=viterbi,
                                                   pitch_tracker=pitch_tracker)
    loudness_db = spectral_ops.compute_loudness(audio_16k, CREPE_SAMPLE_RATE, frame_rate, use_tf=False)
    power_db = spectral_ops.compute_power_db(audio_16k, CREPE_SAMPLE_RATE, frame_rate, frame_size=POWER_FRAME_SIZE)
    features = {"f0_hz": f0_hz, "f0_confidence": f0_confidence, "loudness_db": np.asarray(loudness_db, np.float32),
                "power_db": np.asarray(ops.convert_to_numpy(power_db), np.float32)}
    lengths = {name: len(values) for name, values in features.items()}
    if len(set(lengths.values())) != 1:
        raise AssertionError(f"The features' frames must align, got lengths {lengths}.")
    return features


def window_start_frames(n_samples_16k, shape):
    """First frame of each example window of a file.

    The windows cover the whole file without running past its end: the first starts at
    the start, the last ends at the end (rounded down to a frame, so under one frame of
    audio may be left out), and the others are spread evenly between, at most
    `hop_frames` apart. When the file is a whole number of hops longer than a window,
    the starts are exactly 0, hop, 2 hop, ...; otherwise the spacing shrinks a little
    rather than adding a near-duplicate last window or padding with silence.

    Args:
        n_samples_16k: The file's length at 16 kHz (at least one window long).
        shape: An `ExampleShape`.

    Returns:
        A list of frame indices, increasing.
    """
    last_start = (n_samples_16k - shape.n_samples_16k) // shape.frame_hop_16k
    if last_start < 0:
        raise ValueError(f"{n_samples_16k} samples is shorter than one example ({shape.n_samples_16k}); pad first.")
    n_windows = 1 + -(-last_start // shape.hop_frames)  # 1 + ceil(last_start / hop)
    if n_windows == 1:
        return [0]
    return [int(round(index * last_start / (n_windows - 1))) for index in range(n_windows)]


def pad_to_one_window(audio, sample_rate, example_secs):
    """Zero-pads `audio` [n_samples] at the end up to one example, if it is shorter."""
    n_needed = int(math.ceil(example_secs * sample_rate))
    return np.pad(audio, (0, max(0, n_needed - audio.shape[0])))


def cut_examples(audio, audio_16k, features, shape, silence_db=-60.0):
    """Cuts a file's audio and features into examples.

    Args:
        audio: [n_samples] at shape.sample_rate, at least one example long.
        audio_16k: The same at 16 kHz.
        features: `compute_features` of audio_16k.
        shape: An `ExampleShape`.
        silence_db: Windows whose 16 kHz peak is below this (dBFS) are dropped.

    Returns:
        A list of dicts with float32 arrays: 'audio' [n_samples], each feature of
        `features` [n_frames], and 'audio_16k' [n_samples_16k] when
        sample_rate is not 16000.
    """
    examples = []
    for start in window_start_frames(audio_16k.shape[0], shape):
        start_16k = start * shape.frame_hop_16k
        window_16k = audio_16k[start_16k:start_16k + shape.n_samples_16k]
        if peak_dbfs(window_16k) < silence_db:
            continue
        example = {name: values[start:start + shape.n_frames] for name, values in features.items()}
        if shape.sample_rate == CREPE_SAMPLE_RATE:
            example["audio"] = window_16k
        else:
            start_sample = int(round(start * shape.sample_rate / shape.frame_rate))
            window = audio[start_sample:start_sample + shape.n_samples]
            example["audio"] = np.pad(window, (0, shape.n_samples - window.shape[0]))  # < 1 sample of rounding
            example["audio_16k"] = window_16k
        examples.append({name: np.asarray(values, np.float32) for name, values in example.items()})
    return examples


def to_tf_example(example):
    """A dict of 1-D float arrays -> serialized tf.train.Example bytes.

    Encoded directly in the protocol buffer wire format (Example > Features > map of
    Feature > FloatList, packed little-endian float32), so the prepare job needs no
    TensorFlow: it also runs where only JAX is installed. `tf.train.Example.FromString`
    and `tf.io.parse_single_example` read the result (see the tests).
    """
    entries = []
    for name in sorted(example):
        values = np.ascontiguousarray(example[name], dtype="<f4").reshape(-1).tobytes()
        float_list = _field(1, values)  # FloatList.value, packed
        feature = _field(2, float_list)  # Feature.float_list
        entries.append(_field(1, _field(1, name.encode("utf-8")) + _field(2, feature)))  # map entry
    return _field(1, b"".join(entries))  # Example.features


def _field(number, payload):
    """A length-delimited protobuf field: tag, varint length, bytes."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)
