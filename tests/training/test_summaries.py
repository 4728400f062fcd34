"""Tests for ddsp_core.training.summaries: event files written, then read back record by record."""

import glob
import io
import os

import numpy as np
import pytest
import soundfile
import tensorflow as tf

from ddsp_core.training import summaries

SAMPLE_RATE = 16000


def read_events(log_dir):
    """[(step, tag, plugin name, plugin content, value as ndarray)] of every summary under log_dir."""
    records = []
    for path in sorted(glob.glob(os.path.join(str(log_dir), "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data
                records.append((event.step, value.tag, plugin.plugin_name, plugin.content,
                                tf.make_ndarray(value.tensor)))
    return records


def png_bytes(height, width):
    """A PNG of a horizontal ramp, shape [height, width, 3]."""
    ramp = np.tile(np.linspace(0, 255, width, dtype=np.uint8)[np.newaxis, :, np.newaxis], [height, 1, 3])
    return tf.io.encode_png(ramp).numpy()


def test_scalars_have_prefixed_tags_steps_and_values(tmp_path):
    with summaries.SummaryWriter(tmp_path) as writer:
        writer.scalars(1, {"total_loss": 2.5, "spectral_loss": np.float32(1.25)}, prefix="losses/")
        writer.scalars(2**40, {"total_loss": 0.5}, prefix="losses/")
        writer.scalars(3, {"learning_rate": 1e-3})
    records = [(step, tag, plugin, float(value)) for step, tag, plugin, _, value in read_events(tmp_path)]
    assert records == [
        (1, "losses/total_loss", "scalars", 2.5),
        (1, "losses/spectral_loss", "scalars", 1.25),
        (2**40, "losses/total_loss", "scalars", 0.5),  # The step survives as int64.
        (3, "learning_rate", "scalars", pytest.approx(1e-3)),
    ]


def test_audio_keeps_max_outputs_clips_as_wav_clipped_and_nan_free(tmp_path):
    n_samples = 800
    time = np.arange(n_samples) / SAMPLE_RATE
    audio = np.stack([0.5 * np.sin(2 * np.pi * 440.0 * time),
                      np.full(n_samples, 3.0),   # Clipped to 1.
                      np.full(n_samples, -0.25)]).astype(np.float32)  # Dropped: max_outputs=2.
    audio[0, :10] = np.nan
    with summaries.SummaryWriter(tmp_path) as writer:
        writer.audio(7, "audio/generated", audio, sample_rate=SAMPLE_RATE, max_outputs=2)

    [(step, tag, plugin, content, value)] = read_events(tmp_path)
    assert (step, tag, plugin) == (7, "audio/generated", "audio")
    assert content == b"\x10\x0b"  # Plugin settings: encoding = WAV.
    assert value.shape == (2, 2)  # (WAV file, label) per clip.
    clips = []
    for wav, label in value:
        clip, rate = soundfile.read(io.BytesIO(wav), dtype="float64")
        assert rate == SAMPLE_RATE and clip.shape == (n_samples,) and label == b""
        clips.append(clip)
    np.testing.assert_array_equal(clips[0][:10], 0.0)
    np.testing.assert_allclose(clips[0][10:], audio[0, 10:], atol=1.0 / 2**15)
    np.testing.assert_allclose(clips[1], 1.0, atol=1.0 / 2**15)


def test_image_stores_size_and_png(tmp_path):
    png = png_bytes(height=30, width=50)
    with summaries.SummaryWriter(tmp_path) as writer:
        writer.image(11, "spectrogram/0", png)
    [(step, tag, plugin, _, value)] = read_events(tmp_path)
    assert (step, tag, plugin) == (11, "spectrogram/0", "images")
    assert list(value) == [b"50", b"30", png]  # Width, height, then the PNG itself.


def test_image_rejects_bytes_that_are_not_png(tmp_path):
    with summaries.SummaryWriter(tmp_path) as writer, pytest.raises(tf.errors.InvalidArgumentError):
        writer.image(1, "broken", b"not a png")


def test_text_is_stored_as_a_string(tmp_path):
    with summaries.SummaryWriter(tmp_path) as writer:
        writer.text(0, "config", "# Run\n`lr = 1e-3`")
    [(step, tag, plugin, _, value)] = read_events(tmp_path)
    assert (step, tag, plugin) == (0, "config", "text")
    assert value.item().decode() == "# Run\n`lr = 1e-3`"


def test_flush_makes_events_readable_before_close(tmp_path):
    writer = summaries.SummaryWriter(tmp_path / "run")
    writer.scalars(5, {"loss": 1.0})
    writer.flush()
    assert [(step, tag) for step, tag, *_ in read_events(tmp_path / "run")] == [(5, "loss")]
    writer.close()
