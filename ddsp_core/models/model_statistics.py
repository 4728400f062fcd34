"""What playing a trained model needs to know about its training data, stored next to its checkpoints.

`train` writes `model_statistics.json` in the run folder before the first step, from the
training split itself (so it cannot drift from the data, as notebook-side statistics did in
magenta/ddsp#427):
    sample_rate, frame_rate, hop_size    the rates the model was trained at
    level_features                       per level feature ('loudness_db', and 'power_db' if the
                                         dataset has it): quantiles of all frames and of note
                                         frames, and the mean over examples of each example's
                                         quietest and loudest note frame (dB)
    pitch                                quantiles of note frames' f0 in MIDI, the f0 range
                                         (5th to 95th percentile) in Hz, and the mean per-example
                                         lowest and highest note (MIDI and Hz), as DDSP-VST reads
    gin_config                           the operative gin config (the model's configuration)
A note frame is a frame whose f0 confidence is >= `min_f0_confidence` and whose level is
above `NOTE_FLOOR_DB` (not a rest).
"""

import datetime
import json

import numpy as np

from ddsp_core.io import storage

STATISTICS_FILE = "model_statistics.json"
VERSION = 1
# Quantiles stored: every percentile, enough to map one distribution onto another.
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 101)
LEVEL_FEATURES = ("loudness_db", "power_db")
# Frames at or below this level are rests, not notes, whatever the pitch tracker says.
NOTE_FLOOR_DB = -70.0


class StatisticsError(ValueError):
    """No usable statistics (no note frames, a missing file); the message says what to do."""


def _quantiles(values):
    return [round(float(v), 4) for v in np.quantile(values, QUANTILE_LEVELS)] if len(values) else []


def midi_of(f0_hz):
    """f0 in Hz -> MIDI notes, NumPy float64 (`core.units.hz_to_midi`)."""
    from keras import ops

    from ddsp_core.core.units import hz_to_midi

    return np.asarray(ops.convert_to_numpy(hz_to_midi(np.asarray(f0_hz, np.float32))), np.float64)


def _hz(midi):
    return float(440.0 * 2.0 ** ((midi - 69.0) / 12.0))


def compute(examples, sample_rate, frame_rate, min_f0_confidence=0.5, gin_config=""):
    """Statistics of a sequence of examples.

    Args:
        examples: Iterable of {'f0_hz', 'f0_confidence', 'loudness_db' (and 'power_db'):
            NumPy [n_frames]} (e.g. a dataset's examples as NumPy).
        sample_rate: The model's audio rate, in Hz.
        frame_rate: Feature frames per second.
        min_f0_confidence: Frames below this confidence are not notes.
        gin_config: The operative gin config text.

    Returns:
        The statistics (dict, JSON-ready; see the module docstring).

    Raises:
        StatisticsError: no example, or no note frame in any of them.
    """
    levels = {key: [] for key in LEVEL_FEATURES}
    note_levels = {key: [] for key in LEVEL_FEATURES}
    note_extremes = {key: [] for key in LEVEL_FEATURES}
    pitch_notes, pitch_extremes = [], []
    n_examples = n_frames = 0
    for example in examples:
        n_examples += 1
        confidence = np.asarray(example["f0_confidence"], np.float64)
        n_frames += confidence.size
        notes = (confidence >= min_f0_confidence) & (np.asarray(example["loudness_db"]) > NOTE_FLOOR_DB)
        midi = midi_of(example["f0_hz"])
        for key in LEVEL_FEATURES:
            if key in example:
                value = np.asarray(example[key], np.float64)
                levels[key].append(value)
                if notes.any():
                    note_levels[key].append(value[notes])
                    note_extremes[key].append((value[notes].min(), value[notes].max()))
        if notes.any():
            pitch_notes.append(midi[notes])
            pitch_extremes.append((midi[notes].min(), midi[notes].max()))
    if not n_examples:
        raise StatisticsError("The training data has no example: nothing to compute model statistics from.")
    if not pitch_notes:
        raise StatisticsError(f"None of the {n_examples} training examples has a note frame (f0 confidence >= "
                              f"{min_f0_confidence} and level > {NOTE_FLOOR_DB} dB): is the audio silent or "
                              "unpitched?")
    pitch = np.concatenate(pitch_notes)
    mean_min_pitch, mean_max_pitch = np.mean(pitch_extremes, axis=0)
    level_stats = {}
    for key in LEVEL_FEATURES:
        if not levels[key]:
            continue
        notes_only = np.concatenate(note_levels[key]) if note_levels[key] else np.zeros(0)
        mean_min, mean_max = np.mean(note_extremes[key], axis=0)
        level_stats[key] = {
            "quantiles": _quantiles(np.concatenate(levels[key])),
            "note_quantiles": _quantiles(notes_only),
            "mean_min_note_db": round(float(mean_min), 3), "mean_max_note_db": round(float(mean_max), 3),
        }
    return {
        "version": VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "sample_rate": int(sample_rate), "frame_rate": int(frame_rate),
        "hop_size": int(sample_rate // frame_rate),
        "n_examples": n_examples, "n_frames": n_frames, "n_note_frames": int(pitch.size),
        "min_f0_confidence": float(min_f0_confidence), "note_floor_db": NOTE_FLOOR_DB,
        "quantile_levels": [round(float(q), 2) for q in QUANTILE_LEVELS],
        "level_features": level_stats,
        "pitch": {
            "note_quantiles_midi": _quantiles(pitch),
            "f0_range_hz": [_hz(np.quantile(pitch, 0.05)), _hz(np.quantile(pitch, 0.95))],
            "min_max_midi": [round(float(pitch.min()), 3), round(float(pitch.max()), 3)],
            "mean_min_pitch_note": round(float(mean_min_pitch), 4),
            "mean_max_pitch_note": round(float(mean_max_pitch), 4),
            "mean_min_pitch_note_hz": _hz(mean_min_pitch), "mean_max_pitch_note_hz": _hz(mean_max_pitch),
        },
        "gin_config": gin_config,
    }


def from_provider(data_provider, max_examples=5000, min_f0_confidence=0.5, gin_config=""):
    """`compute` over (up to max_examples of) a DataProvider's examples, in file order."""
    dataset = data_provider.get_dataset(shuffle=False).take(max_examples)
    examples = ({key: value.numpy() for key, value in example.items() if key != "audio"} for example in dataset)
    return compute(examples, data_provider.sample_rate, data_provider.frame_rate,
                   min_f0_confidence=min_f0_confidence, gin_config=gin_config)


def write(directory, statistics):
    """Writes directory/model_statistics.json (whole, or not at all); returns its path."""
    path = storage.join(directory, STATISTICS_FILE)
    storage.write_json(path, statistics)
    return path


def read(directory):
    """The statistics of a run or export folder.

    Raises:
        StatisticsError: the folder has no model_statistics.json.
    """
    path = storage.join(directory, STATISTICS_FILE)
    if not storage.exists(path):
        raise StatisticsError(f"{directory} has no {STATISTICS_FILE}: it was trained before model statistics were "
                              "stored. Rerun training in that folder (it resumes and writes them), or give an "
                              "export folder.")
    statistics = json.loads(storage.read_bytes(path).decode("utf-8"))
    if statistics.get("version") != VERSION:
        raise StatisticsError(f"{path} has version {statistics.get('version')}; this code reads version {VERSION}.")
    return statistics
