"""The metadata of an exported model: what DDSP-VST and users read about it.

`metadata_dict(instrument)` gathers it from the model's training statistics
(model_statistics.json) and configuration. It is written twice by `ddsp_export`: as
metadata.json in the export folder, and inside the .tflite file, where DDSP-VST looks for
it. The plugin opens the whole .tflite file as a ZIP archive (JUCE's ZipFile, which finds
the end-of-central-directory record by searching backwards from the end and reads every
offset as an absolute file offset) and reads its entry "metadata.json". A TFLite
flatbuffer with a stored (uncompressed) ZIP appended still loads in TFLite, which reads the
flatbuffer from the start and ignores what follows it; `append_zip_metadata` writes that
ZIP and `read_zip_metadata` reads it back.

Fields (the first group is what DDSP-VST reads):
    mean_min_pitch_note, mean_max_pitch_note         mean per-example lowest / highest note (MIDI)
    mean_min_pitch_note_hz, mean_max_pitch_note_hz   the same in Hz
    mean_min_power_note, mean_max_power_note         mean per-example quietest / loudest note
                                                     frame of the level feature (dB)
    version                                          this package's version
    export_time                                      ISO time of the export (the plugin's model id)
    num_harmonics, num_noise_amps                    sizes of the harmonic and noise controls
    frame_rate, frame_size, sample_rate              frames/s, samples per level-feature frame
                                                     (FFT size of loudness), Hz
    level_feature                                    'power_db' or 'loudness_db'
    f0_range_hz                                      5th-95th percentile of the note frames' f0 (Hz)
    checkpoint_step                                  training step of the exported weights
"""

import datetime
import importlib.metadata
import inspect
import json
import zipfile

METADATA_ENTRY = "metadata.json"


def package_version():
    """This package's version: ddsp_core.__version__, else the installed distribution's."""
    import ddsp_core

    version = getattr(ddsp_core, "__version__", None)
    return str(version) if version else importlib.metadata.version("ddsp-pipeline")


def level_frame_size(level_key):
    """Samples per frame of a level feature, as the prepare job computes it (spectral_ops' defaults):
    compute_power_db's frame_size for 'power_db', compute_loudness's n_fft for 'loudness_db'."""
    from ddsp_core import spectral_ops

    function, argument = ((spectral_ops.compute_power_db, "frame_size") if level_key == "power_db"
                          else (spectral_ops.compute_loudness, "n_fft"))
    return int(inspect.signature(function).parameters[argument].default)


def control_sizes(model):
    """(num_harmonics, num_noise_amps): sizes of the decoder outputs the harmonic synth and the
    filtered noise read."""
    from ddsp_core.playing.streaming import synth_parts

    parts = synth_parts(model)
    splits = dict(model.decoder.output_splits)
    return int(splits[parts.harmonic_keys[1]]), int(splits[parts.noise_keys[0]])


def metadata_dict(instrument, export_time=None):
    """The metadata of an instrument (see the module docstring for the fields).

    Args:
        instrument: A loaded `ddsp_core.playing.instrument.Instrument`.
        export_time: ISO time string; now when None.

    Returns:
        A JSON-ready dict.
    """
    from ddsp_core.models import checkpoints

    statistics = instrument.statistics
    pitch = statistics["pitch"]
    level_min_db, level_max_db = instrument.level_range_db()
    num_harmonics, num_noise_amps = control_sizes(instrument.model)
    return {
        "mean_min_pitch_note": float(pitch["mean_min_pitch_note"]),
        "mean_max_pitch_note": float(pitch["mean_max_pitch_note"]),
        "mean_min_pitch_note_hz": float(pitch["mean_min_pitch_note_hz"]),
        "mean_max_pitch_note_hz": float(pitch["mean_max_pitch_note_hz"]),
        "mean_min_power_note": level_min_db,
        "mean_max_power_note": level_max_db,
        "version": package_version(),
        "export_time": export_time or datetime.datetime.now().isoformat(),
        "num_harmonics": num_harmonics,
        "num_noise_amps": num_noise_amps,
        "frame_rate": instrument.frame_rate,
        "frame_size": level_frame_size(instrument.level_key),
        "sample_rate": instrument.sample_rate,
        "level_feature": instrument.level_key,
        "f0_range_hz": [float(f) for f in pitch["f0_range_hz"]],
        "checkpoint_step": checkpoints.step_of(instrument.checkpoint),
    }


def append_zip_metadata(tflite_path, metadata):
    """Appends a ZIP archive holding `metadata` as metadata.json to a local .tflite file.

    The archive is stored (not compressed) and its offsets count from the start of the
    file, as DDSP-VST's reader (JUCE ZipFile) expects; zipfile's append mode on a file that
    is not a ZIP archive writes exactly that.

    Args:
        tflite_path: Local path of a TFLite flatbuffer (without an archive yet).
        metadata: JSON-ready dict.
    """
    with zipfile.ZipFile(tflite_path, "a", compression=zipfile.ZIP_STORED) as archive:
        if METADATA_ENTRY in archive.namelist():
            raise ValueError(f"{tflite_path} already holds {METADATA_ENTRY}.")
        archive.writestr(METADATA_ENTRY, json.dumps(metadata, indent=2))


def read_zip_metadata(tflite_path):
    """The metadata.json zipped into a .tflite file (a dict).

    Raises:
        ValueError: the file has no such archive or entry.
    """
    try:
        with zipfile.ZipFile(tflite_path) as archive:
            return json.loads(archive.read(METADATA_ENTRY).decode("utf-8"))
    except (zipfile.BadZipFile, KeyError) as error:
        raise ValueError(f"{tflite_path} has no {METADATA_ENTRY} archived in it ({error}).") from None
