"""Tests for examples: window placement, frame/sample alignment, silence, serialization."""

import numpy as np
import pytest

from ddsp_core.prepare import examples as examples_lib
from ddsp_core.example_format import ExampleFormat

SHAPE = ExampleFormat()  # 16 kHz, 250 frames/s, 4 s windows every 1 s: hop 64 samples.


@pytest.mark.parametrize("seconds, expected", [
    (4.0, [0]),
    (4.0 + 10 / 16000, [0]),  # 10 samples over: less than a frame, no extra window.
    (6.0, [0, 250, 500]),
    (5.5, [0, 188, 375]),  # Spread evenly: the last window ends where the audio ends.
    (7.25, [0, 203, 406, 609, 812]),
    (4.02, [0, 5]),  # 20 ms over one window: two windows 5 frames apart, nothing left out.
], ids=["one-window", "one-window-plus", "six", "five-and-a-half", "uneven", "just-over"])
def test_window_starts(seconds, expected):
    n_samples = int(round(seconds * 16000))
    starts = examples_lib.window_start_frames(n_samples, SHAPE)
    assert starts == expected
    # Every window lies inside the audio, and at most a frame's worth of samples is left uncovered.
    last_end = starts[-1] * 64 + SHAPE.n_samples
    assert last_end <= n_samples
    assert n_samples - last_end < 64
    assert all(0 < b - a <= SHAPE.hop_frames for a, b in zip(starts, starts[1:]))


def test_window_starts_needs_one_window():
    with pytest.raises(ValueError, match="shorter than one example"):
        examples_lib.window_start_frames(16000, SHAPE)


def test_pad_to_one_window_pads_only_short_audio():
    short = np.ones(1000, np.float32)
    padded = examples_lib.pad_to_one_window(short, 16000, 4.0)
    assert padded.shape == (64000,)
    assert padded[:1000].sum() == 1000 and not padded[1000:].any()
    long = np.ones(70000, np.float32)
    assert examples_lib.pad_to_one_window(long, 16000, 4.0).shape == (70000,)


@pytest.mark.parametrize("kwargs, message", [
    (dict(frame_rate=300), "must divide both"),
    (dict(example_secs=4.001), "whole number of frames"),
    (dict(hop_secs=0.001), "whole number of frames"),
    (dict(sample_rate=0), "must be a positive whole number"),
    (dict(sample_rate=22050), "at 22050 Hz use one of \\[50, 25, 10"),
], ids=["frame-rate", "example-secs", "hop-secs", "sample-rate", "samples"])
def test_example_shape_rejects_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ExampleFormat(**kwargs)


def test_example_shape_sizes():
    shape = ExampleFormat(sample_rate=48000, frame_rate=250, example_secs=4, hop_secs=1)
    assert (shape.n_samples, shape.n_samples_16k, shape.n_frames, shape.hop_frames, shape.frame_hop_16k) == \
        (192000, 64000, 1000, 250, 64)


def _indexed_features(n_frames):
    index = np.arange(n_frames, dtype=np.float32)
    return {"f0_hz": index, "f0_confidence": index + 0.5, "loudness_db": -index}


def test_cut_examples_aligns_frames_with_samples():
    # Audio holds its own sample index / 1e6 (non-silent), features their frame index:
    # frame j of an example must be frame (start + j) of the file, and its audio sample
    # j * 64 must be file sample (start + j) * 64.
    n_samples = int(5.5 * 16000)
    audio = (np.arange(n_samples) / 1e6 + 0.01).astype(np.float32)
    features = _indexed_features(1 + n_samples // 64)
    cut = examples_lib.cut_examples(audio, audio, features, SHAPE)
    assert len(cut) == 3
    for example, start in zip(cut, [0, 188, 375]):
        assert set(example) == {"audio", "f0_hz", "f0_confidence", "loudness_db"}
        assert example["audio"].shape == (64000,) and example["f0_hz"].shape == (1000,)
        np.testing.assert_array_equal(example["f0_hz"], np.arange(start, start + 1000))
        np.testing.assert_allclose(example["audio"][::64], (np.arange(start, start + 1000) * 64) / 1e6 + 0.01,
                                   rtol=1e-6)
        assert example["loudness_db"][0] == -start


def test_cut_examples_drops_silent_windows():
    # 8 s: 3 s of tone, then 5 s of digital silence. Windows starting at 0, 1, 2 s hear
    # the tone (peak 0.5); those starting at 3 and 4 s hear only silence and are dropped.
    t = np.arange(8 * 16000) / 16000
    audio = np.where(t < 3.0, 0.5 * np.sin(2 * np.pi * 440 * t), 0.0).astype(np.float32)
    features = _indexed_features(1 + audio.shape[0] // 64)
    cut = examples_lib.cut_examples(audio, audio, features, SHAPE, silence_db=-60.0)
    assert [example["f0_hz"][0] for example in cut] == [0, 250, 500]


def test_cut_examples_at_48khz_adds_audio_16k():
    shape = ExampleFormat(sample_rate=48000)
    seconds = 5.0
    t48 = np.arange(int(seconds * 48000)) / 48000
    t16 = np.arange(int(seconds * 16000)) / 16000
    audio = np.sin(2 * np.pi * 3 * t48).astype(np.float32)  # a 3 Hz "ramp" tells where we are
    audio_16k = np.sin(2 * np.pi * 3 * t16).astype(np.float32)
    cut = examples_lib.cut_examples(audio, audio_16k, _indexed_features(1 + audio_16k.shape[0] // 64), shape)
    assert len(cut) == 2
    for example in cut:
        assert example["audio"].shape == (192000,) and example["audio_16k"].shape == (64000,)
        np.testing.assert_allclose(example["audio"][::3], example["audio_16k"], atol=1e-6)


def test_to_tf_example_round_trip():
    import tensorflow as tf

    example = {"audio": np.linspace(-1, 1, 64000, dtype=np.float32), "f0_hz": np.full(1000, 440.0, np.float32)}
    parsed = tf.train.Example.FromString(examples_lib.to_tf_example(example))
    values = parsed.features.feature
    np.testing.assert_array_equal(np.array(values["audio"].float_list.value, np.float32), example["audio"])
    np.testing.assert_array_equal(np.array(values["f0_hz"].float_list.value, np.float32), example["f0_hz"])


def test_to_tf_example_parses_with_tensorflow_and_matches_its_serializer():
    import tensorflow as tf

    example = {"f0_hz": np.array([440.0, 441.5, 0.0], np.float32), "audio": np.arange(300, dtype=np.float32) / 7,
               "loudness_db": np.zeros(0, np.float32)}
    serialized = examples_lib.to_tf_example(example)
    spec = {"audio": tf.io.FixedLenFeature([300], tf.float32), "f0_hz": tf.io.FixedLenFeature([3], tf.float32),
            "loudness_db": tf.io.FixedLenFeature([0], tf.float32)}
    parsed = tf.io.parse_single_example(serialized, spec)
    for name, values in example.items():
        np.testing.assert_array_equal(parsed[name].numpy(), values)
    # Byte-identical to TensorFlow's own encoding of the same Example (keys sorted).
    reference = tf.train.Example(features=tf.train.Features(feature={
        name: tf.train.Feature(float_list=tf.train.FloatList(value=example[name])) for name in sorted(example)}))
    assert tf.train.Example.FromString(serialized) == reference


def test_to_tf_example_needs_no_tensorflow():
    import subprocess
    import sys

    code = ("import sys; sys.modules['tensorflow'] = None\n"
            "import numpy as np\n"
            "from ddsp_core.prepare.examples import to_tf_example\n"
            "assert len(to_tf_example({'a': np.ones(4, np.float32)})) > 16\n"
            "print('ok')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**__import__("os").environ, "KERAS_BACKEND": "jax"})
    assert result.stdout.strip() == "ok", result.stderr[-2000:]


def test_centered_examples_keep_the_frame_at_their_end_time():
    shape = ExampleFormat(centered=True)
    assert shape.n_frames == 1001
    n_samples = int(5.5 * 16000)
    audio = np.full(n_samples, 0.1, np.float32)
    features = _indexed_features(1 + n_samples // 64)
    cut = examples_lib.cut_examples(audio, audio, features, shape)
    # The last window ends exactly at the last frame of the file; its end frame exists.
    assert [example["f0_hz"].shape for example in cut] == [(1001,)] * 3
    assert cut[-1]["f0_hz"][-1] == features["f0_hz"][-1] == n_samples // 64
    assert cut[0]["audio"].shape == (64000,)
