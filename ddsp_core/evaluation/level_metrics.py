"""Does the generated audio follow the input's level where a listener notices: releases, rests, onsets?

The overall loudness L1 (`metrics.loudness_l1_db`) is dominated by the loud, sustained
frames of an example. These metrics look at the frames that tell whether a model is an
instrument: the quiet ones (note releases, rests), the silent ones, and the moments a note
starts (or a window starts in the middle of one). Each takes frame-wise loudness in dB
(`spectral_ops.compute_loudness`: A-weighted, floored at -80 dB) of the input example and
of the generated audio, [batch, n_frames], aligned at their first frame.

Levels are relative to each input example's peak loudness (its loudest frame):

    quiet frames    input at least QUIET_BELOW_PEAK_DB (30 dB) below the peak.
    silent frames   input at least SILENT_BELOW_PEAK_DB (60 dB) below the peak.
    onsets          frame 0 if the input is not quiet there (a window that starts inside a
                    note), and every frame where the input goes from quiet to not quiet.

All functions are NumPy, pure, and return float64.
"""

import numpy as np

# An input frame this many dB below its example's peak loudness is quiet (a release, a rest).
QUIET_BELOW_PEAK_DB = 30.0
# An input frame this many dB below its example's peak loudness is silent.
SILENT_BELOW_PEAK_DB = 60.0
# An onset has caught up once the generated loudness is within this many dB of the input's.
ONSET_TOLERANCE_DB = 3.0


def _frames(name, x):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape [batch, n_frames] (rank 2), got shape {x.shape}.")
    return x


def aligned(loudness_db_input, loudness_db_generated):
    """Both loudness arrays as float64 [batch, n_frames], cut to their common frames.

    Args:
        loudness_db_input: Input loudness in dB, [batch, n_frames].
        loudness_db_generated: Generated audio's loudness in dB, [batch, n_frames'].

    Returns:
        (input, generated), each [batch, min(n_frames, n_frames')].
    """
    reference = _frames("loudness_db_input", loudness_db_input)
    estimate = _frames("loudness_db_generated", loudness_db_generated)
    if reference.shape[0] != estimate.shape[0]:
        raise ValueError(f"Batch sizes differ: loudness_db_input {reference.shape}, "
                         f"loudness_db_generated {estimate.shape}.")
    n_frames = min(reference.shape[1], estimate.shape[1])
    if n_frames == 0:
        raise ValueError(f"No frames to compare: shapes {reference.shape} and {estimate.shape}.")
    return reference[:, :n_frames], estimate[:, :n_frames]


def below_peak_db(loudness_db_input):
    """How far each input frame is below its example's loudest frame, in dB (>= 0).

    Args:
        loudness_db_input: [batch, n_frames] in dB.

    Returns:
        [batch, n_frames] in dB.
    """
    loudness = _frames("loudness_db_input", loudness_db_input)
    return np.max(loudness, axis=1, keepdims=True) - loudness


def quiet_loudness_errors_db(loudness_db_input, loudness_db_generated, quiet_below_peak_db=QUIET_BELOW_PEAK_DB):
    """|generated - input| loudness on the input's quiet frames.

    Args:
        loudness_db_input, loudness_db_generated: see `aligned`.
        quiet_below_peak_db: A frame at least this far below its example's peak is quiet.

    Returns:
        (errors, counts): 1-D errors in dB, one per quiet frame, example by example, and
        [batch] int, the number of quiet frames of each example.
    """
    reference, estimate = aligned(loudness_db_input, loudness_db_generated)
    quiet = below_peak_db(reference) >= quiet_below_peak_db  # [batch, n_frames]
    return np.abs(estimate - reference)[quiet], np.sum(quiet, axis=1)


def silent_level_db(loudness_db_input, loudness_db_generated, silent_below_peak_db=SILENT_BELOW_PEAK_DB):
    """Level of the generated audio where the input is silent, in dB re the input example's peak.

    Per example, the power mean (10 log10 of the mean of 10^(dB/10)) of the generated
    loudness over the input's silent frames, minus the input's peak loudness: a tail that
    keeps sounding after a note ends counts at its real level, however short.

    Args:
        loudness_db_input, loudness_db_generated: see `aligned`.
        silent_below_peak_db: A frame at least this far below its example's peak is silent.

    Returns:
        (levels, powers, counts): [batch] level in dB (NaN for an example without silent
        frames), [batch] sum over its silent frames of the relative power
        10^((generated - peak) / 10) (to pool examples), [batch] int number of silent frames.
    """
    reference, estimate = aligned(loudness_db_input, loudness_db_generated)
    peak = np.max(reference, axis=1, keepdims=True)  # [batch, 1]
    silent = peak - reference >= silent_below_peak_db  # [batch, n_frames]
    relative_power = np.where(silent, 10.0 ** ((estimate - peak) / 10.0), 0.0)
    powers = np.sum(relative_power, axis=1)
    counts = np.sum(silent, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        levels = np.where(counts > 0, 10.0 * np.log10(powers / np.maximum(counts, 1)), np.nan)
    return levels, powers, counts


def pooled_level_db(powers, counts):
    """The power-mean level over examples: 10 log10(sum(powers) / sum(counts)); None if no frame."""
    total = float(np.sum(counts))
    return None if total == 0 else float(10.0 * np.log10(max(float(np.sum(powers)), 1e-30) / total))


def onset_frames(loudness_db_input, quiet_below_peak_db=QUIET_BELOW_PEAK_DB):
    """Onsets of one example: (start, end) frame pairs of each span where the input is not quiet.

    Args:
        loudness_db_input: One example's loudness in dB, [n_frames].
        quiet_below_peak_db: see `quiet_loudness_errors_db`.

    Returns:
        List of (start, end): the input is not quiet on frames start..end-1 and quiet at
        `end` (or end == n_frames). A span that starts at frame 0 is an onset too: the
        model starts from its initial state there.
    """
    loudness = np.asarray(loudness_db_input, dtype=np.float64).reshape(-1)
    sounding = (np.max(loudness) - loudness) < quiet_below_peak_db  # [n_frames]
    edges = np.diff(np.concatenate([[False], sounding, [False]]).astype(np.int8))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), ends.tolist()))


def onset_lags_s(loudness_db_input, loudness_db_generated, frame_rate, quiet_below_peak_db=QUIET_BELOW_PEAK_DB,
                 tolerance_db=ONSET_TOLERANCE_DB):
    """Time from each input onset until the generated loudness is within tolerance_db of the input's.

    For each onset span (`onset_frames`), the lag is (first frame j >= start with
    |generated[j] - input[j]| <= tolerance_db, minus start) / frame_rate. A span that never
    catches up gives its whole length (the lag is at least that).

    Args:
        loudness_db_input, loudness_db_generated: see `aligned`.
        frame_rate: Frames per second.
        quiet_below_peak_db: see `quiet_loudness_errors_db`.
        tolerance_db: How close counts as caught up, in dB.

    Returns:
        List (one per example) of 1-D arrays of lags in seconds, one per onset.
    """
    if not frame_rate > 0:
        raise ValueError(f"frame_rate must be > 0, got {frame_rate!r}.")
    reference, estimate = aligned(loudness_db_input, loudness_db_generated)
    lags = []
    for example_in, example_gen in zip(reference, estimate):
        close = np.abs(example_gen - example_in) <= tolerance_db  # [n_frames]
        example_lags = []
        for start, end in onset_frames(example_in, quiet_below_peak_db):
            caught_up = np.flatnonzero(close[start:end])
            example_lags.append((caught_up[0] if caught_up.size else end - start) / frame_rate)
        lags.append(np.asarray(example_lags, dtype=np.float64))
    return lags
