"""metadata.py: the fields DDSP-VST reads, and metadata.json zipped into a .tflite file."""

import datetime
import json
import struct
import zipfile

import numpy as np
import pytest
import tensorflow as tf

import ddsp_core
from ddsp_core.export import metadata as metadata_lib
from ddsp_core.export import vst
from tests.export.conftest import CHECKPOINT_STEP, FRAME_RATE, SAMPLE_RATE

DDSP_VST_FIELDS = ("mean_min_pitch_note", "mean_max_pitch_note", "mean_min_pitch_note_hz", "mean_max_pitch_note_hz",
                   "mean_min_power_note", "mean_max_power_note", "version", "export_time", "num_harmonics",
                   "num_noise_amps", "frame_rate", "frame_size", "sample_rate")


def test_fields_of_a_power_model(vst_instrument):
    metadata = metadata_lib.metadata_dict(vst_instrument)
    assert set(DDSP_VST_FIELDS) <= set(metadata)
    pitch = vst_instrument.statistics["pitch"]
    power = vst_instrument.statistics["level_features"]["power_db"]
    assert metadata["mean_min_pitch_note"] == pytest.approx(pitch["mean_min_pitch_note"])
    assert metadata["mean_max_pitch_note_hz"] == pytest.approx(pitch["mean_max_pitch_note_hz"])
    assert metadata["mean_min_power_note"] == pytest.approx(power["mean_min_note_db"])
    assert metadata["mean_max_power_note"] == pytest.approx(power["mean_max_note_db"])
    assert metadata["mean_min_pitch_note"] < metadata["mean_max_pitch_note"]
    assert (metadata["num_harmonics"], metadata["num_noise_amps"]) == (60, 65)
    assert (metadata["frame_rate"], metadata["sample_rate"], metadata["frame_size"]) == (FRAME_RATE, SAMPLE_RATE, 1024)
    assert metadata["version"] == ddsp_core.__version__
    assert metadata["level_feature"] == "power_db"
    assert metadata["checkpoint_step"] == CHECKPOINT_STEP
    assert metadata["f0_range_hz"] == pytest.approx(pitch["f0_range_hz"])
    datetime.datetime.fromisoformat(metadata["export_time"])
    json.dumps(metadata)  # JSON-ready.


def test_fields_of_a_loudness_model(loudness_instrument):
    metadata = metadata_lib.metadata_dict(loudness_instrument, export_time="2026-01-02T03:04:05")
    loudness = loudness_instrument.statistics["level_features"]["loudness_db"]
    assert metadata["level_feature"] == "loudness_db"
    assert metadata["frame_size"] == 512  # compute_loudness's n_fft.
    assert metadata["mean_max_power_note"] == pytest.approx(loudness["mean_max_note_db"])
    assert metadata["export_time"] == "2026-01-02T03:04:05"


@pytest.fixture
def small_tflite(tmp_path):
    """A TFLite model doubling a [2] input (no metadata yet)."""
    module = tf.Module()
    module.double = tf.function(lambda x: 2.0 * x, input_signature=[tf.TensorSpec([2], tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.double.get_concrete_function()], module)
    path = tmp_path / "small.tflite"
    path.write_bytes(converter.convert())
    return path


def _end_of_central_directory(data):
    """(entries, central directory size, central directory offset) of the last EOCD record."""
    position = data.rindex(b"PK\x05\x06")
    _, _, _, entries, size, offset, _ = struct.unpack("<HHHHIIH", data[position + 4:position + 22])
    return position, entries, size, offset


def test_zipped_metadata_reads_back_with_absolute_offsets(small_tflite):
    flatbuffer = small_tflite.read_bytes()
    metadata = {"export_time": "2026-01-02T03:04:05", "num_harmonics": 60}
    metadata_lib.append_zip_metadata(small_tflite, metadata)
    data = small_tflite.read_bytes()
    assert data.startswith(flatbuffer)  # The flatbuffer is untouched; the archive follows it.
    assert metadata_lib.read_zip_metadata(small_tflite) == metadata
    with zipfile.ZipFile(small_tflite) as archive:
        info = archive.getinfo(metadata_lib.METADATA_ENTRY)
        assert info.compress_type == zipfile.ZIP_STORED
    # JUCE's ZipFile reads offsets as absolute file offsets: the central directory ends where the
    # EOCD record starts, and the entry's local header lies after the flatbuffer.
    position, entries, size, offset = _end_of_central_directory(data)
    assert entries == 1 and offset + size == position
    header_offset = struct.unpack("<I", data[offset + 42:offset + 46])[0]
    assert header_offset >= len(flatbuffer) and data[header_offset:header_offset + 4] == b"PK\x03\x04"


def test_tflite_with_zipped_metadata_still_runs(small_tflite):
    metadata_lib.append_zip_metadata(small_tflite, {"version": "x"})
    interpreter = vst.tflite_interpreter(str(small_tflite))
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.array([1.5, -2.0], np.float32))
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(interpreter.get_output_details()[0]["index"]), [3.0, -4.0])


def test_metadata_is_appended_once(small_tflite):
    metadata_lib.append_zip_metadata(small_tflite, {"version": "x"})
    with pytest.raises(ValueError, match="already holds"):
        metadata_lib.append_zip_metadata(small_tflite, {"version": "y"})


def test_reading_a_file_without_metadata(small_tflite):
    with pytest.raises(ValueError, match="no metadata.json"):
        metadata_lib.read_zip_metadata(small_tflite)
