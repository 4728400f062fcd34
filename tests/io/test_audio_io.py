"""Tests for audio_io: decoding every kind of file the prepare job may meet, mono, resampling."""

import io

import numpy as np
import pytest
import soundfile

from ddsp_core.io import audio_io


def _tone(frequency_hz, seconds, sample_rate, amplitude=0.5):
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (amplitude * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def _encode(samples, sample_rate, file_format, subtype=None):
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, sample_rate, format=file_format, subtype=subtype)
    return buffer.getvalue()


@pytest.mark.parametrize("file_format, subtype, tolerance", [
    ("WAV", "PCM_16", 1e-4), ("WAV", "PCM_U8", 1e-2), ("WAV", "PCM_24", 1e-6), ("WAV", "FLOAT", 0.0),
    ("FLAC", "PCM_16", 1e-4), ("OGG", "VORBIS", 5e-2), ("AIFF", "PCM_16", 1e-4),
], ids=["wav16", "wav8", "wav24", "wavfloat", "flac", "ogg", "aiff"])
def test_decode_formats_round_trip(file_format, subtype, tolerance):
    tone = _tone(440.0, 0.5, 16000)
    samples, sample_rate = audio_io.decode(_encode(tone, 16000, file_format, subtype), "x")
    assert sample_rate == 16000
    assert samples.shape == (8000, 1) and samples.dtype == np.float32
    # Lossy OGG is compared after its codec delay is irrelevant: RMS must match.
    if file_format == "OGG":
        assert np.sqrt(np.mean(samples**2)) == pytest.approx(0.5 / np.sqrt(2), rel=0.05)
    else:
        np.testing.assert_allclose(samples[:, 0], tone, atol=tolerance)


def test_decode_keeps_channels_and_rate():
    four_channels = np.stack([_tone(220.0 * (k + 1), 0.25, 96000) for k in range(4)], axis=1)
    samples, sample_rate = audio_io.decode(_encode(four_channels, 96000, "WAV", "PCM_24"), "x")
    assert sample_rate == 96000
    assert samples.shape == (24000, 4)


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file"),
    (b"this is a text file, not audio\n" * 20, "not a readable audio file"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "not a readable audio file"),  # a truncated header
], ids=["empty", "text", "truncated-header"])
def test_decode_rejects_bad_files_with_reason(data, reason):
    with pytest.raises(audio_io.AudioFileError, match=reason) as error:
        audio_io.decode(data, "bad.wav")
    assert "<_io.BytesIO" not in str(error.value)


def test_decode_rejects_zero_length_audio():
    with pytest.raises(audio_io.AudioFileError, match="zero-length"):
        audio_io.decode(_encode(np.zeros([0, 1], np.float32), 16000, "WAV", "PCM_16"), "x")


def test_decode_rejects_nan_samples():
    with pytest.raises(audio_io.AudioFileError, match="NaN"):
        audio_io.decode(_encode(np.array([0.0, np.nan, 0.1], np.float32), 16000, "WAV", "FLOAT"), "x")


def test_to_mono_is_the_channel_mean():
    stereo = np.array([[1.0, 0.0], [0.5, -0.5], [0.2, 0.4]], np.float32)
    np.testing.assert_allclose(audio_io.to_mono(stereo), [0.5, 0.0, 0.3], atol=1e-7)
    np.testing.assert_array_equal(audio_io.to_mono(stereo[:, 0]), stereo[:, 0])


@pytest.mark.parametrize("from_rate", [44100, 48000, 96000, 8000])
def test_resample_keeps_frequency_amplitude_and_duration(from_rate):
    tone = _tone(1000.0, 1.0, from_rate)
    resampled = audio_io.resample(tone, from_rate, 16000)
    assert resampled.shape == (16000,) and resampled.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(resampled[2000:-2000] * np.hanning(12000)))
    peak_hz = np.argmax(spectrum) * 16000 / 12000
    assert abs(peak_hz - 1000.0) < 2.0
    assert np.max(np.abs(resampled[2000:-2000])) == pytest.approx(0.5, abs=0.01)


def test_resample_removes_content_above_the_new_nyquist():
    # A 12 kHz tone at 44.1 kHz must vanish at 16 kHz, not alias to 4 kHz.
    resampled = audio_io.resample(_tone(12000.0, 1.0, 44100), 44100, 16000)
    assert np.max(np.abs(resampled[2000:-2000])) < 1e-3


def test_resample_same_rate_is_identity():
    tone = _tone(440.0, 0.1, 16000)
    np.testing.assert_array_equal(audio_io.resample(tone, 16000, 16000), tone)


def test_peak_dbfs():
    assert audio_io.peak_dbfs(np.array([0.0, -0.5, 0.25])) == pytest.approx(-6.0206, abs=1e-3)
    assert audio_io.peak_dbfs(np.zeros(10)) == -np.inf
    assert audio_io.peak_dbfs(np.zeros(0)) == -np.inf
