"""Tests for ddsp_core.evaluation.reference_tone: the tone's pitch, spectrum, level and limits."""

import numpy as np
import pytest

from ddsp_core.evaluation import reference_tone

pytestmark = pytest.mark.dsp

SAMPLE_RATE = 16000
N_FRAMES = 250
N_SAMPLES = SAMPLE_RATE  # 1 s


def _tone(f0_hz, loudness_db=-20.0):
    f0 = np.broadcast_to(np.asarray(f0_hz, dtype=np.float64), [1, N_FRAMES])
    loudness = np.broadcast_to(np.asarray(loudness_db, dtype=np.float64), [1, N_FRAMES])
    return reference_tone.reference_tone(f0, loudness, N_SAMPLES, SAMPLE_RATE)[0]


def _magnitude_at(audio, frequency_hz):
    """|DFT| of a Hann-windowed second half of `audio` at `frequency_hz` (1 Hz bins), scaled to amplitude."""
    half = audio[N_SAMPLES // 2:]
    spectrum = np.abs(np.fft.rfft(half * np.hanning(half.size), n=SAMPLE_RATE)) * 4.0 / half.size
    return spectrum[int(round(frequency_hz))]


def test_a_440_hz_tone_peaks_at_440_hz_with_harmonics_at_1_over_k():
    audio = _tone(440.0)
    spectrum = np.abs(np.fft.rfft(audio[N_SAMPLES // 2:] * np.hanning(N_SAMPLES // 2), n=SAMPLE_RATE))
    assert int(np.argmax(spectrum)) == 440
    fundamental = _magnitude_at(audio, 440.0)
    for k in (2, 3, 5):
        assert _magnitude_at(audio, 440.0 * k) / fundamental == pytest.approx(1.0 / k, rel=0.02)


def test_no_harmonic_at_or_above_nyquist():
    audio = _tone(3000.0)  # Harmonics 3000 and 6000 Hz; 9000 Hz would alias to 7000 Hz.
    assert _magnitude_at(audio, 6000.0) / _magnitude_at(audio, 3000.0) == pytest.approx(0.5, rel=0.02)
    assert _magnitude_at(audio, 7000.0) < 1e-4 * _magnitude_at(audio, 3000.0)


def test_the_loudest_frame_has_the_peak_amplitude_and_quiet_frames_are_quieter():
    loudness = np.where(np.arange(N_FRAMES) < 125, -10.0, -50.0)  # 40 dB apart.
    audio = _tone(220.0, loudness)
    loud, quiet = audio[2000:7000], audio[10000:15000]
    assert 20.0 * np.log10(np.sqrt(np.mean(loud ** 2)) / np.sqrt(np.mean(quiet ** 2))) == pytest.approx(40.0, abs=0.5)
    assert np.max(np.abs(audio)) < 4.0 * reference_tone.PEAK_AMPLITUDE  # 1 + 1/2 + ... + 1/20 < 4


def test_a_steady_tone_has_its_fundamental_at_the_peak_amplitude():
    assert _magnitude_at(_tone(440.0), 440.0) == pytest.approx(reference_tone.PEAK_AMPLITUDE, rel=0.02)


def test_unpitched_frames_are_silent():
    audio = _tone(np.where(np.arange(N_FRAMES) < 125, 440.0, 0.0))
    assert np.max(np.abs(audio[9000:])) < 1e-3


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"f0_hz and loudness_db must both have shape \[batch, n_frames\]"):
        reference_tone.reference_tone(np.zeros([1, 10]), np.zeros([1, 11]), 160, SAMPLE_RATE)


def test_centred_frames_sound_at_whole_hops():
    """251 centred frames on 16000 samples (hop 64): the tone of the first 250 frames, the end frame ignored."""
    f0 = np.where(np.arange(N_FRAMES + 1) < 125, 440.0, 660.0)[None, :]
    loudness = np.full([1, N_FRAMES + 1], -20.0)
    centred = reference_tone.reference_tone(f0, loudness, N_SAMPLES, SAMPLE_RATE)
    uncentred = reference_tone.reference_tone(f0[:, :-1], loudness[:, :-1], N_SAMPLES, SAMPLE_RATE)
    np.testing.assert_allclose(centred, uncentred, atol=1e-6)
