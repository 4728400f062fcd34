"""From one file's audio to training examples: features once per file, then windows.

Features (f0, its confidence, loudness, power) are computed once over the whole file at the
frame rate, frame i centred on time i / frame_rate, and then cut into windows of
`example_secs` at most `hop_secs` apart, spread so that the first window starts at the
start of the file and the last ends at its end: nothing is padded and nothing but a
fraction of a frame at the end is left out. Only a file shorter than one window is padded, with zeros, up to one window.
Windows whose peak is below a silence threshold are dropped.

A long file is prepared in blocks (`plan_blocks`), so that memory does not grow with its
length: each block owns the windows that start in its `block_secs` and is read with
`BLOCK_CONTEXT_SECS` of audio on either side, so its features match the whole file's:
resampling, CREPE's frames and the loudness see the same neighbours (equal to float
round-off). The Viterbi path is decoded per block: where CREPE is unsure (an onset's first
frames) two paths can be equally likely, and round-off in a longer sum can break the tie
the other way, so under 1% of frames differ, none where the confidence is above 0.8
(tests/prepare/test_blocks.py).
"""

import dataclasses

import math

import numpy as np
from keras import ops

from ddsp_core import spectral_ops
from ddsp_core.example_format import F0_TRACKER_SAMPLE_RATE
from ddsp_core.io.audio_io import peak_dbfs

# Samples (at 16 kHz) per frame of the power feature: DDSP-VST's frame_size, at any frame rate.
POWER_FRAME_SIZE = 1024
# Seconds of audio read on each side of a block beyond the windows it owns (`plan_blocks`): more than
# CREPE's and the loudness's half frames and the resampler's filter, and time for the Viterbi path to settle.
BLOCK_CONTEXT_SECS = 2


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
    loudness_db = spectral_ops.compute_loudness(audio_16k, F0_TRACKER_SAMPLE_RATE, frame_rate, use_tf=False)
    power_db = spectral_ops.compute_power_db(audio_16k, F0_TRACKER_SAMPLE_RATE, frame_rate, frame_size=POWER_FRAME_SIZE)
    features = {"f0_hz": f0_hz, "f0_confidence": f0_confidence, "loudness_db": np.asarray(loudness_db, np.float32),
                "power_db": np.asarray(ops.convert_to_numpy(power_db), np.float32)}
    lengths = {name: len(values) for name, values in features.items()}
    if len(set(lengths.values())) != 1:
        raise AssertionError(f"The features' frames must align, got lengths {lengths}.")
    return features


def window_start_frames(n_samples_16k, example_format):
    """First frame of each example window of a file.

    The windows cover the whole file without running past its end: the first starts at
    the start, the last ends at the end (rounded down to a frame, so under one frame of
    audio may be left out), and the others are spread evenly between, at most
    `hop_frames` apart. When the file is a whole number of hops longer than a window,
    the starts are exactly 0, hop, 2 hop, ...; otherwise the spacing shrinks a little
    rather than adding a near-duplicate last window or padding with silence.

    Args:
        n_samples_16k: The file's length at 16 kHz (at least one window long).
        example_format: An `ExampleFormat` (ddsp_core/example_format.py).

    Returns:
        A list of frame indices, increasing.
    """
    last_start = (n_samples_16k - example_format.n_samples_16k) // example_format.frame_hop_16k
    if last_start < 0:
        raise ValueError(f"{n_samples_16k} samples is shorter than one example ({example_format.n_samples_16k}); "
                         "pad first.")
    n_windows = 1 + -(-last_start // example_format.hop_frames)  # 1 + ceil(last_start / hop)
    if n_windows == 1:
        return [0]
    return [int(round(index * last_start / (n_windows - 1))) for index in range(n_windows)]


@dataclasses.dataclass(frozen=True)
class Block:
    """One part of a long file, prepared on its own (see `plan_blocks`).

    Attributes:
        index: 0, 1, ... in time order.
        count: Blocks of the file.
        window_starts: First frames (of the whole file) of the windows this block owns.
        first_second: Where the block's audio starts, in whole seconds from the file's start
            (so sample first_second * rate is exact at every rate, and frame
            first_second * frame_rate is the block's frame 0).
        stop_secs: Where the block's audio ends (the file's end at the latest), seconds.
        n_samples_16k: The whole file's length at 16 kHz.
    """

    index: int
    count: int
    window_starts: tuple
    first_second: int
    stop_secs: float
    n_samples_16k: int

    def first_frame(self, example_format):
        return self.first_second * example_format.frame_rate


def plan_blocks(n_samples_16k, example_format, block_secs, context_secs=BLOCK_CONTEXT_SECS):
    """The blocks a file of `n_samples_16k` samples at 16 kHz is prepared in.

    Windows are placed on the whole file (`window_start_frames`); block b owns those that
    start in [b, b + 1) x block_secs, and reads from context_secs before that to
    context_secs after its last window's end (within the file).

    Args:
        n_samples_16k: The file's length at 16 kHz (at least one window).
        example_format: An `ExampleFormat`.
        block_secs: Seconds of window starts per block (a whole number >= 1).
        context_secs: Whole seconds read on each side.

    Returns:
        A list of `Block`s with at least one window each, in time order.
    """
    if int(block_secs) != block_secs or block_secs < 1:
        raise ValueError(f"block_secs must be a whole number of seconds >= 1, got {block_secs!r}.")
    block_frames = int(block_secs) * example_format.frame_rate
    owned = {}
    for start in window_start_frames(n_samples_16k, example_format):
        owned.setdefault(start // block_frames, []).append(start)
    file_secs = n_samples_16k / F0_TRACKER_SAMPLE_RATE
    blocks = []
    for index, (number, starts) in enumerate(sorted(owned.items())):
        first_second = max(0, number * int(block_secs) - int(context_secs))
        last_end_secs = (starts[-1] * example_format.frame_hop_16k + example_format.n_samples_16k) / F0_TRACKER_SAMPLE_RATE
        blocks.append(Block(index, len(owned), tuple(starts), first_second,
                            min(file_secs, last_end_secs + context_secs), int(n_samples_16k)))
    return blocks


def blocks_of_file(n_samples, file_rate, example_format, block_secs):
    """`plan_blocks` of a file of n_samples at file_rate, or None when it is read whole: block_secs is
    0, or the file is at most block_secs plus two examples long."""
    from ddsp_core.io.audio_io import resampled_length

    if not block_secs or n_samples / file_rate <= block_secs + 2 * example_format.example_secs:
        return None
    return plan_blocks(resampled_length(n_samples, file_rate, F0_TRACKER_SAMPLE_RATE), example_format, block_secs)


def pad_to_one_window(audio, sample_rate, example_secs):
    """Zero-pads `audio` [n_samples] at the end up to one example, if it is shorter."""
    n_needed = int(math.ceil(example_secs * sample_rate))
    return np.pad(audio, (0, max(0, n_needed - audio.shape[0])))


def cut_examples(audio, audio_16k, features, example_format, silence_db=-60.0, window_starts=None, first_frame=0):
    """Cuts a file's audio and features (or a block's) into examples.

    Args:
        audio: [n_samples] at example_format.sample_rate, at least one example long.
        audio_16k: The same at 16 kHz.
        features: `compute_features` of audio_16k.
        example_format: An `ExampleFormat` (ddsp_core/example_format.py).
        silence_db: Windows whose 16 kHz peak is below this (dBFS) are dropped.
        window_starts: First frames of the windows to cut (default: `window_start_frames` of
            the audio, i.e. a whole file).
        first_frame: The frame of the file at which the arrays start (a block's
            `Block.first_frame`); window_starts count from the file's start.

    Returns:
        A list of dicts with float32 arrays: 'audio' [n_samples], each feature of
        `features` [n_frames], and 'audio_16k' [n_samples_16k] when
        sample_rate is not 16000.
    """
    examples = []
    if window_starts is None:
        window_starts = window_start_frames(audio_16k.shape[0], example_format)
    for start in (int(start) - first_frame for start in window_starts):
        start_16k = start * example_format.frame_hop_16k
        window_16k = audio_16k[start_16k:start_16k + example_format.n_samples_16k]
        if peak_dbfs(window_16k) < silence_db:
            continue
        example = {name: values[start:start + example_format.n_frames] for name, values in features.items()}
        if not example_format.has_audio_16k:
            example["audio"] = window_16k
        else:
            start_sample = start * example_format.hop_size
            window = audio[start_sample:start_sample + example_format.n_samples]
            example["audio"] = np.pad(window, (0, example_format.n_samples - window.shape[0]))  # < 1 sample of rounding
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
