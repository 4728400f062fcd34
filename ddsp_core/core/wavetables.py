"""Wavetable synthesis: reading single-cycle tables at a running phase, with linear interpolation.

A wavetable holds one period of a waveform in n_wavetable samples; sample k sits at phase
k / n_wavetable (in cycles), and the table wraps around, so between its last sample and
phase 1 the value moves linearly back to the first sample. Reads are gathers of the two
neighbouring samples, so memory grows with the number of output samples, not with
n_samples * n_wavetable.
"""

import numpy as np
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.oscillators import _wrap_cycles, accumulate_cycles
from ddsp_core.core.resampling import _source_positions, resample
from ddsp_core.core.units import float32


def _closed_tables(wavetables):
    """Tables with their first sample appended, flattened: ([n_rows * (n + 1)], n)."""
    n_wavetable = wavetables.shape[-1]
    if n_wavetable is None or n_wavetable < 1:
        raise ValueError(f"wavetables needs a static, non-empty last axis, got shape {tuple(wavetables.shape)}.")
    closed = ops.concatenate([wavetables, wavetables[..., :1]], axis=-1)  # [..., n + 1]
    return ops.reshape(closed, (-1,)), n_wavetable


def _read(flat_tables, n_wavetable, rows, phase):
    """Linear interpolation in table `rows` (int, [batch, n_samples]) at `phase` (cycles, [batch, n_samples])."""
    position = _wrap_cycles(phase) * float(n_wavetable)  # [batch, n_samples], in table samples
    index = ops.clip(ops.stop_gradient(ops.floor(position)), 0.0, float(n_wavetable - 1))
    fraction = position - index
    start = rows * (n_wavetable + 1) + ops.cast(index, "int32")
    left = ops.take(flat_tables, start)
    right = ops.take(flat_tables, start + 1)
    return left + fraction * (right - left)


def _row_offsets(phase, table_batch, rows_per_example):
    """First table row of each example, [batch, 1]: 0 for one table batch shared by all."""
    if table_batch == 1:
        return ops.zeros((1, 1), "int32")
    batch = ops.arange(ops.shape(phase)[0], dtype="int32")
    return batch[:, None] * rows_per_example


def _check_batches(phase, wavetables):
    table_batch, batch = wavetables.shape[0], phase.shape[0]
    if table_batch is not None and batch is not None and table_batch not in (1, batch):
        raise ValueError(f"wavetables has batch size {table_batch}, phase has {batch}: they must match (or be 1).")


def linear_lookup(phase, wavetables):
    """Reads wavetables at a phase, interpolating linearly between neighbouring samples.

    Args:
        phase: Position in the table in cycles, [batch, n_samples, 1] (or
            [batch, n_samples]); 0 is the first table sample, 1 a full period. Values
            outside [0, 1) wrap around (the table is periodic).
        wavetables: One table per example, [batch, n_wavetable], or one per output sample,
            [batch, n_samples, n_wavetable] ([batch, 1, n_wavetable] is one per example).
            A batch of 1 is shared by every example.

    Returns:
        Audio, [batch, n_samples].
    """
    phase, wavetables = float32(phase), float32(wavetables)
    checks.check_rank("phase", phase, (2, 3), "[batch, n_samples, 1] or [batch, n_samples]")
    checks.check_rank("wavetables", wavetables, (2, 3), "[batch, n_wavetable] or [batch, n_samples, n_wavetable]")
    if len(phase.shape) == 3:
        checks.check_dim("phase", phase, -1, 1, "[batch, n_samples, 1]")
        phase = phase[:, :, 0]
    if len(wavetables.shape) == 2:
        wavetables = wavetables[:, None, :]
    _check_batches(phase, wavetables)
    n_tables, n_samples = wavetables.shape[1], phase.shape[1]
    if n_tables not in (1, n_samples):
        raise ValueError(
            f"wavetables has {n_tables} tables per example: linear_lookup needs 1 or one per sample "
            f"({n_samples}); wavetable_synthesis interpolates frame-rate tables."
        )
    flat_tables, n_wavetable = _closed_tables(wavetables)
    rows = _row_offsets(phase, wavetables.shape[0], n_tables)  # [batch or 1, 1]
    if n_tables > 1:
        rows = rows + ops.arange(n_samples, dtype="int32")[None, :]
    rows = rows + ops.zeros_like(phase, dtype="int32")  # [batch, n_samples]
    return _read(flat_tables, n_wavetable, rows, phase)


def harmonic_distribution_to_wavetable(harmonic_distribution, n_wavetable=2048):
    """One period of a sum of harmonics as a wavetable (an inverse real FFT).

    Harmonic k (k = 1..n_harmonics) is the cosine cos(2 pi k n / n_wavetable) scaled by its
    entry of the distribution; there is no DC. Its period is the table's length.

    Args:
        harmonic_distribution: Harmonic amplitudes, [batch, n_frames, n_harmonics] (usually
            normalized to sum to one).
        n_wavetable: Table length; must exceed 2 * n_harmonics (harmonics below Nyquist).

    Returns:
        Wavetables, [batch, n_frames, n_wavetable].
    """
    checks.check_positive_int("n_wavetable", n_wavetable)
    harmonic_distribution = float32(harmonic_distribution)
    checks.check_rank("harmonic_distribution", harmonic_distribution, 3, "[batch, n_frames, n_harmonics]")
    n_harmonics = harmonic_distribution.shape[-1]
    n_bins = n_wavetable // 2 + 1
    if 2 * n_harmonics >= n_wavetable:
        raise ValueError(
            f"n_wavetable ({n_wavetable}) must be more than twice the number of harmonics ({n_harmonics}), "
            "so that every harmonic lies below the table's Nyquist."
        )
    spectrum = ops.pad(harmonic_distribution, [[0, 0], [0, 0], [1, n_bins - 1 - n_harmonics]])  # [..., n_bins]
    return ops.irfft((spectrum, ops.zeros_like(spectrum)), n_wavetable) * (n_wavetable / 2.0)


def wavetable_synthesis(frequencies, amplitudes, wavetables, n_samples=64000, sample_rate=16000):
    """Monophonic wavetable oscillator: tables read at f0, scaled by an amplitude envelope.

    The phase starts at 0 on the first sample and advances by f0 / sample_rate cycles per
    sample (accumulated accurately, see `accumulate_cycles`). Time-varying tables are
    interpolated linearly between frames (as `resample` does) at every sample.

    Args:
        frequencies: Fundamental frequency in Hz, [batch, n_frames, 1].
        amplitudes: Amplitude, [batch, n_frames, 1]; n_samples must be a multiple of
            n_frames (it is upsampled with overlapping Hann windows).
        wavetables: [batch, n_wavetable] (fixed) or [batch, n_table_frames, n_wavetable]
            (time-varying, any number of frames).
        n_samples: Output length in samples.
        sample_rate: Sample rate in Hz.

    Returns:
        Audio, [batch, n_samples].
    """
    checks.check_positive_int("n_samples", n_samples)
    checks.check_positive("sample_rate", sample_rate)
    frequencies, amplitudes, wavetables = float32(frequencies), float32(amplitudes), float32(wavetables)
    checks.check_rank("frequencies", frequencies, 3, "[batch, n_frames, 1]")
    checks.check_rank("amplitudes", amplitudes, 3, "[batch, n_frames, 1]")
    checks.check_rank("wavetables", wavetables, (2, 3), "[batch, n_wavetable] or [batch, n_frames, n_wavetable]")
    amplitude_envelope = resample(amplitudes, n_samples, method="window")[:, :, 0]  # [batch, n_samples]
    cycles_per_sample = resample(frequencies, n_samples)[:, :, 0] * (1.0 / sample_rate)
    # Phase before each sample: the running sum, less the sample's own increment.
    phase = _wrap_cycles(accumulate_cycles(cycles_per_sample[:, :, None])[:, :, 0] - cycles_per_sample)
    if len(wavetables.shape) == 2:
        wavetables = wavetables[:, None, :]
    _check_batches(phase, wavetables)
    n_tables = wavetables.shape[1]
    flat_tables, n_wavetable = _closed_tables(wavetables)
    first_row = _row_offsets(phase, wavetables.shape[0], n_tables) + ops.zeros_like(phase, dtype="int32")
    if n_tables == 1:
        audio = _read(flat_tables, n_wavetable, first_row, phase)
    else:
        positions = _source_positions(n_tables, n_samples, add_endpoint=True)  # in table frames
        left = np.floor(positions)
        right = np.minimum(left + 1, n_tables - 1)  # the last frame is held
        weight = ops.convert_to_tensor((positions - left)[None, :].astype("float32"))
        as_rows = lambda frames: first_row + ops.convert_to_tensor(frames[None, :].astype("int32"))
        left_audio = _read(flat_tables, n_wavetable, as_rows(left), phase)
        right_audio = _read(flat_tables, n_wavetable, as_rows(right), phase)
        audio = left_audio + weight * (right_audio - left_audio)
    return audio * amplitude_envelope
