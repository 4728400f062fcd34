"""Timbre transfer: the features of any recording, adjusted to what a trained model knows.

    recording (any format, rate, channels) -> mono 16 kHz (the prepare job's decoding)
      -> CREPE f0 + confidence, and the model's level feature (loudness or power), per frame
      -> adjust: --auto_adjust maps the level distribution of the recording's notes onto the
         model's (quantile mapping) and moves the pitch by whole octaves into the model's
         range; then --pitch_shift (semitones) and --loudness_shift (dB)
      -> unvoiced frames (f0 confidence below the threshold, except dips shorter than
         MAX_GAP_SECONDS inside a phrase) kept quiet: level at the floor.
"""

import dataclasses

import numpy as np

from ddsp_core.core.units import DB_RANGE
from ddsp_core.example_format import F0_TRACKER_SAMPLE_RATE

# Frames whose f0 confidence is below this are unvoiced (no pitch to play): kept quiet.
DEFAULT_MIN_F0_CONFIDENCE = 0.5
# Level of the frames kept quiet, in dB: the bottom of the feature range.
QUIET_DB = -DB_RANGE
# Unvoiced gaps shorter than this between voiced frames (a confidence dip at a note change)
# are treated as voiced: gating them would cut clicks into a legato line.
MAX_GAP_SECONDS = 0.05
# A recording whose peak is below this is treated as silence.
SILENCE_DBFS = -60.0


class TransferError(ValueError):
    """The recording cannot be transferred (not audio, silent, no voiced frame); says what to do."""


@dataclasses.dataclass(frozen=True)
class Adjustment:
    """How the recording's features are moved before the model plays them.

    Attributes:
        auto_adjust: Map the note levels onto the model's and shift by octaves into its range.
        pitch_shift: Semitones added to f0 (after auto_adjust's octaves).
        loudness_shift: dB added to the level (after auto_adjust's mapping).
        min_f0_confidence: Frames below this f0 confidence are unvoiced and kept quiet.
    """

    auto_adjust: bool = True
    pitch_shift: float = 0.0
    loudness_shift: float = 0.0
    min_f0_confidence: float = DEFAULT_MIN_F0_CONFIDENCE


def load_audio_16k(path):
    """Reads any audio file as mono float32 at 16 kHz (the prepare job's decoding).

    Raises:
        TransferError: unreadable, not audio, or silent.
    """
    from ddsp_core.io import storage
    from ddsp_core.io import audio_io

    if not storage.exists(path):
        raise TransferError(f"{path}: no such file. Give a recording to play with --audio.")
    try:
        samples, rate = audio_io.decode(storage.read_bytes(path), path)
    except audio_io.AudioFileError as error:
        raise TransferError(f"{path}: {error}.") from None
    mono = audio_io.to_mono(samples)
    peak = audio_io.peak_dbfs(mono)
    if peak < SILENCE_DBFS:
        raise TransferError(f"{path} is silent (peak {peak:.1f} dBFS, below {SILENCE_DBFS} dBFS): nothing to "
                            "transfer. Give a recording of a melody.")
    return audio_io.resample(mono, rate, F0_TRACKER_SAMPLE_RATE)


def level_feature(audio_16k, level_key, frame_rate):
    """The model's level feature of 16 kHz audio, [1 + n_samples // hop] NumPy float32 dB."""
    from keras import ops

    from ddsp_core import spectral_ops

    if level_key == "power_db":
        power_db = spectral_ops.compute_power_db(audio_16k, F0_TRACKER_SAMPLE_RATE, frame_rate)
        return np.asarray(ops.convert_to_numpy(power_db), np.float32)
    loudness_db = spectral_ops.compute_loudness(audio_16k, F0_TRACKER_SAMPLE_RATE, frame_rate, use_tf=False)
    return np.asarray(loudness_db, np.float32)


def extract_features(audio_16k, level_key, frame_rate, crepe_capacity="full", pitch_tracker=None):
    """{'f0_hz', 'f0_confidence', level_key}: NumPy float32 [n_frames], frames centred on i / frame_rate."""
    from ddsp_core import spectral_ops

    f0_hz, confidence = spectral_ops.compute_f0(audio_16k, frame_rate, capacity=crepe_capacity,
                                                pitch_tracker=pitch_tracker)
    level = level_feature(audio_16k, level_key, frame_rate)
    n_frames = min(len(f0_hz), len(level))
    return {"f0_hz": np.asarray(f0_hz[:n_frames], np.float32),
            "f0_confidence": np.asarray(confidence[:n_frames], np.float32), level_key: level[:n_frames]}


def _increasing(values):
    """Quantiles made strictly increasing (ties broken by 1e-6 steps), for interpolation."""
    values = np.maximum.accumulate(np.asarray(values, np.float64))
    return values + np.arange(len(values)) * 1e-6


def map_quantiles(values, source_quantiles, target_quantiles):
    """Moves `values` so that their distribution follows `target_quantiles`.

    Within the source's range, each value goes to the target value at the same quantile;
    below it, values keep their distance to the source's minimum (so rests stay below
    notes); above it, likewise from the maximum.

    Args:
        values: NumPy [n].
        source_quantiles, target_quantiles: Increasing quantiles at the same levels, [n_q].
    """
    source, target = _increasing(source_quantiles), _increasing(target_quantiles)
    mapped = np.interp(values, source, target)
    mapped = np.where(values < source[0], values - source[0] + target[0], mapped)
    return np.where(values > source[-1], values - source[-1] + target[-1], mapped)


def octave_shift(note_midi, model_pitch_quantiles):
    """Whole octaves that bring the notes' median pitch closest to the model's median pitch."""
    model_median = float(np.interp(0.5, np.linspace(0, 1, len(model_pitch_quantiles)), model_pitch_quantiles))
    return 12.0 * round((model_median - float(np.median(note_midi))) / 12.0)


def voiced_frames(f0_confidence, frame_rate, min_f0_confidence):
    """Frames with a pitch to play: confidence >= min_f0_confidence, short dips filled, [n] bool."""
    voiced = np.asarray(f0_confidence) >= min_f0_confidence
    return fill_short_gaps(voiced, int(MAX_GAP_SECONDS * frame_rate))


def fill_short_gaps(voiced, max_gap_frames):
    """`voiced` [n] bool with runs of False of at most max_gap_frames between True frames set True."""
    voiced = np.asarray(voiced, bool).copy()
    indices = np.flatnonzero(voiced)
    for before, after in zip(indices[:-1], indices[1:]):
        if 1 < after - before <= max_gap_frames + 1:
            voiced[before + 1:after] = True
    return voiced


def adjust(features, level_key, statistics, adjustment=Adjustment()):
    """Moves a recording's features into the model's range (see the module docstring).

    Args:
        features: {'f0_hz', 'f0_confidence', level_key}: NumPy [n_frames].
        level_key: 'loudness_db' or 'power_db'.
        statistics: The model's statistics (model_statistics.json).
        adjustment: What to do.

    Returns:
        ({'f0_hz', level_key} NumPy float32 [n_frames], facts dict: octaves shifted,
        voiced fraction, ...).

    Raises:
        TransferError: no voiced frame.
    """
    from ddsp_core.models.model_statistics import QUANTILE_LEVELS, midi_of

    f0_hz = np.asarray(features["f0_hz"], np.float64)
    level = np.asarray(features[level_key], np.float64)
    voiced = voiced_frames(features["f0_confidence"], statistics["frame_rate"], adjustment.min_f0_confidence)
    if not voiced.any():
        raise TransferError(f"No voiced frame in the recording (f0 confidence never reaches "
                            f"{adjustment.min_f0_confidence}): it has no pitch to play. Give a melody (voice, "
                            "instrument), or lower --min_f0_confidence.")
    midi = midi_of(f0_hz)
    facts = {"voiced_fraction": round(float(voiced.mean()), 4), "octaves_shifted": 0}
    semitones = adjustment.pitch_shift
    if adjustment.auto_adjust:
        octaves = octave_shift(midi[voiced], statistics["pitch"]["note_quantiles_midi"])
        semitones += octaves
        facts["octaves_shifted"] = int(octaves // 12)
        source = np.quantile(level[voiced], QUANTILE_LEVELS)
        target = statistics["level_features"][level_key]["note_quantiles"]
        level = map_quantiles(level, source, target)
    level = level + adjustment.loudness_shift
    level = np.where(voiced, level, QUIET_DB)
    f0_hz = f0_hz * 2.0 ** (semitones / 12.0)
    facts["semitones_shifted"] = float(semitones)
    return {"f0_hz": f0_hz.astype(np.float32), level_key: np.clip(level, -DB_RANGE, None).astype(np.float32)}, facts
