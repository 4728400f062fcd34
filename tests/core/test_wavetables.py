"""Tests for ddsp_core.core.wavetables against NumPy interpolation and closed-form sinusoids."""

import numpy as np
import pytest
from keras import ops

from ddsp_core.core import wavetables
from tests.gradients import gradient

pytestmark = pytest.mark.dsp

SAMPLE_RATE = 16000


def _np(x):
    return ops.convert_to_numpy(x)


def _np_lookup(phase, table):
    """Periodic linear interpolation: np.interp on the table closed with its first sample."""
    n = len(table)
    return np.interp(np.mod(phase, 1.0) * n, np.arange(n + 1), np.append(table, table[0]))


@pytest.mark.parametrize("n_wavetable", [1, 7, 64], ids=lambda n: f"table{n}")
def test_linear_lookup_matches_np_interp(n_wavetable):
    rng = np.random.default_rng(n_wavetable)
    tables = rng.normal(size=(2, n_wavetable)).astype(np.float32)
    phase = rng.uniform(-0.5, 1.5, size=(2, 300, 1)).astype(np.float32)  # outside [0, 1) wraps
    phase[0, :4, 0] = [0.0, 1.0, 0.5, 0.999999]
    audio = _np(wavetables.linear_lookup(phase, tables))
    expected = np.stack([_np_lookup(phase[b, :, 0], tables[b]) for b in range(2)])
    np.testing.assert_allclose(audio, expected, atol=1e-5)


def test_linear_lookup_per_sample_tables_and_broadcast_batch():
    rng = np.random.default_rng(0)
    tables = rng.normal(size=(1, 50, 16)).astype(np.float32)  # one batch of per-sample tables, shared
    phase = rng.uniform(0.0, 1.0, size=(3, 50)).astype(np.float32)  # rank 2 phase
    audio = _np(wavetables.linear_lookup(phase, tables))
    expected = np.array([[_np_lookup(phase[b, t], tables[0, t]) for t in range(50)] for b in range(3)])
    assert audio.shape == (3, 50)
    np.testing.assert_allclose(audio, expected, atol=1e-5)


def test_linear_lookup_of_sine_table_is_a_sine():
    n_wavetable, n_samples = 2048, 4000
    table = np.sin(2 * np.pi * np.arange(n_wavetable) / n_wavetable).astype(np.float32)
    phase = (np.arange(n_samples) * 0.0137) % 1.0
    audio = _np(wavetables.linear_lookup(phase[None, :, None].astype(np.float32), table[None]))[0]
    # Linear interpolation error of a sine: at most (pi / n)^2 / 2.
    np.testing.assert_allclose(audio, np.sin(2 * np.pi * phase), atol=(np.pi / n_wavetable) ** 2 / 2 + 1e-6)


@pytest.mark.parametrize(
    "phase_shape, table_shape, message",
    [((2, 10, 2), (2, 8), r"phase must have shape \[batch, n_samples, 1\]"),
     ((2, 10, 1), (2, 3, 8), r"wavetables has 3 tables per example"),
     ((2, 10, 1), (3, 8), r"wavetables has batch size 3, phase has 2"),
     ((10,), (2, 8), r"phase must have shape"),
     ((2, 10, 1), (2, 2, 2, 8), r"wavetables must have shape")],
    ids=["phase_channels", "table_frames", "batch", "phase_rank", "table_rank"])
def test_linear_lookup_bad_shapes_name_the_argument(phase_shape, table_shape, message):
    with pytest.raises(ValueError, match=message):
        wavetables.linear_lookup(np.zeros(phase_shape, np.float32), np.zeros(table_shape, np.float32))


def test_harmonic_distribution_to_wavetable_is_a_sum_of_cosines():
    distribution = np.array([[[0.5, 0.0, 0.25, 0.25]]], np.float32)
    n_wavetable = 64
    table = _np(wavetables.harmonic_distribution_to_wavetable(distribution, n_wavetable))
    n = np.arange(n_wavetable)
    expected = sum(a * np.cos(2 * np.pi * (k + 1) * n / n_wavetable) for k, a in enumerate(distribution[0, 0]))
    assert table.shape == (1, 1, n_wavetable)
    np.testing.assert_allclose(table[0, 0], expected, atol=1e-6)


def test_harmonic_distribution_to_wavetable_needs_room_below_nyquist():
    with pytest.raises(ValueError, match=r"n_wavetable \(16\) must be more than twice the number of harmonics \(8\)"):
        wavetables.harmonic_distribution_to_wavetable(np.ones((1, 2, 8), np.float32), 16)


@pytest.mark.parametrize("table_frames", [0, 1, 10], ids=["fixed", "one_frame", "ten_frames"])
def test_wavetable_synthesis_of_sine_table_is_a_sine(table_frames):
    n_frames, n_samples, f0, amplitude = 20, 1600, 437.0, 0.3
    n_wavetable = 1024
    table = np.sin(2 * np.pi * np.arange(n_wavetable) / n_wavetable).astype(np.float32)[None]
    if table_frames:
        table = np.repeat(table[:, None, :], table_frames, axis=1)
    audio = _np(wavetables.wavetable_synthesis(np.full((1, n_frames, 1), f0), np.full((1, n_frames, 1), amplitude),
                                               table, n_samples=n_samples, sample_rate=SAMPLE_RATE))[0]
    # The phase starts at 0 on the first sample.
    expected = amplitude * np.sin(2 * np.pi * f0 * np.arange(n_samples) / SAMPLE_RATE)
    np.testing.assert_allclose(audio, expected, atol=2e-5)


def test_wavetable_synthesis_interpolates_tables_between_frames():
    # Two frames: a sine table, then its negative. Halfway between the frame positions the
    # table is their average, (1 - w) sin + w (-sin), w rising linearly from 0 at sample 0.
    n_samples, n_wavetable, f0 = 800, 512, 200.0
    sine = np.sin(2 * np.pi * np.arange(n_wavetable) / n_wavetable)
    tables = np.stack([sine, -sine])[None].astype(np.float32)  # [1, 2, n_wavetable]
    audio = _np(wavetables.wavetable_synthesis(np.full((1, 2, 1), f0), np.ones((1, 2, 1)), tables,
                                               n_samples=n_samples, sample_rate=SAMPLE_RATE))[0]
    t = np.arange(n_samples)
    weight = np.minimum(t * 2 / n_samples, 1.0)  # frame i at sample i * n_samples / n_frames, last one held
    expected = (1 - 2 * weight) * np.sin(2 * np.pi * f0 * t / SAMPLE_RATE)
    np.testing.assert_allclose(audio, expected, atol=5e-5)


def test_wavetable_synthesis_bad_input_is_named():
    with pytest.raises(ValueError, match=r"amplitudes must have shape \[batch, n_frames, 1\]"):
        wavetables.wavetable_synthesis(np.ones((1, 4, 1)), np.ones((1, 4)), np.ones((1, 8)), n_samples=16)
    with pytest.raises(ValueError, match="n_samples must be a positive integer"):
        wavetables.wavetable_synthesis(np.ones((1, 4, 1)), np.ones((1, 4, 1)), np.ones((1, 8)), n_samples=0)


def test_gradients_are_finite_and_nonzero():
    rng = np.random.default_rng(3)
    phase = rng.uniform(0.0, 1.0, size=(1, 40, 1)).astype(np.float32)
    table = rng.normal(size=(1, 16)).astype(np.float32)
    d_phase, d_table = gradient(lambda p, t: wavetables.linear_lookup(p, t) ** 2, phase, table)
    # d/dphase of a linear interpolation: n * (next sample - this sample), times 2 * value.
    position = phase[0, :, 0] * 16
    index = np.floor(position).astype(int)
    closed = np.append(table[0], table[0, 0])
    value = closed[index] + (position - index) * (closed[index + 1] - closed[index])
    np.testing.assert_allclose(d_phase[0, :, 0], 2 * value * 16 * (closed[index + 1] - closed[index]), rtol=1e-3,
                               atol=1e-3)
    assert np.abs(d_table).max() > 0

    f0 = np.full((1, 4, 1), 300.0, np.float32)
    amps = rng.uniform(0.5, 1.0, size=(1, 4, 1)).astype(np.float32)
    tables = rng.normal(size=(1, 4, 16)).astype(np.float32)
    distribution = rng.uniform(0.1, 1.0, size=(1, 4, 5)).astype(np.float32)
    for grad in gradient(lambda f, a, t: wavetables.wavetable_synthesis(f, a, t, n_samples=64) ** 2, f0, amps, tables):
        assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    (d_distribution,) = gradient(lambda d: wavetables.harmonic_distribution_to_wavetable(d, 32) ** 2, distribution)
    assert np.all(np.isfinite(d_distribution)) and np.abs(d_distribution).max() > 0
