"""plugin_runtime.py: a .tflite file read as DDSP-VST's libraries read it (JUCE 6.1.6's ZipFile for the
metadata, TFLite 2.9.1's builtin operators)."""

import io
import json
import zipfile

import pytest
import tensorflow as tf

from ddsp_core.export import plugin_runtime
from ddsp_core.export.plugin_runtime import PluginRuntimeError, read_juce_zip


def tiny_tflite(function, input_specs):
    """The TFLite flatbuffer of a small tf.function (builtin ops only)."""
    module = tf.Module()
    module.call = tf.function(function, input_signature=input_specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.call.get_concrete_function()], module)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter.convert()


@pytest.fixture(scope="module")
def doubling_flatbuffer():
    return tiny_tflite(lambda x: 2.0 * x, [tf.TensorSpec([2], tf.float32)])


def append_relative_zip(tflite_path, metadata):
    """Appends metadata.json as a ZIP archive built on its own, so its offsets count from the archive's start
    (as `cat model.tflite metadata.zip` would): what JUCE cannot read."""
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as writer:
        writer.writestr("metadata.json", json.dumps(metadata))
    with open(tflite_path, "ab") as handle:
        handle.write(archive.getvalue())


def test_the_exported_metadata_reads_as_the_plugin_reads_it(vst_tflite):
    path, metadata = vst_tflite
    data = path.read_bytes()
    entries = read_juce_zip(data, name=str(path))
    assert list(entries) == ["metadata.json"] and json.loads(entries["metadata.json"]) == metadata
    assert plugin_runtime.read_juce_metadata(path) == metadata
    # Stored, and its local header lies after the flatbuffer, at the absolute offset the directory gives.
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("metadata.json")
    assert info.compress_type == zipfile.ZIP_STORED and info.header_offset > len(data) // 2
    assert data[info.header_offset:info.header_offset + 4] == b"PK\x03\x04"


def test_relative_offsets_pass_zipfile_but_not_juce(doubling_flatbuffer, tmp_path):
    path = tmp_path / "relative.tflite"
    path.write_bytes(doubling_flatbuffer)
    append_relative_zip(path, {"version": "x"})
    with zipfile.ZipFile(path) as archive:  # Python's zipfile corrects the offsets...
        assert json.loads(archive.read("metadata.json")) == {"version": "x"}
    data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data[len(doubling_flatbuffer):])) as archive:
        directory = archive.start_dir  # Where the archive on its own says its directory is.
    assert 0 < directory < len(doubling_flatbuffer)
    with pytest.raises(PluginRuntimeError, match=f"entry 0 should be at byte {directory} of the file "
                                                 r"\(an absolute offset"):
        read_juce_zip(data, name=str(path))  # ...JUCE reads them from the start of the file.


def test_a_deflated_entry_is_inflated_as_juce_does(doubling_flatbuffer, tmp_path):
    path = tmp_path / "deflated.tflite"
    path.write_bytes(doubling_flatbuffer)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Metadata.JSON", json.dumps({"num_harmonics": 60} | {f"k{i}": i for i in range(50)}))
    assert plugin_runtime.read_juce_metadata(path)["num_harmonics"] == 60  # The name is matched ignoring case.


def test_a_file_without_an_archive(doubling_flatbuffer):
    with pytest.raises(PluginRuntimeError, match="no ZIP end-of-central-directory record"):
        read_juce_zip(doubling_flatbuffer)


def test_the_exported_operators_are_those_of_tflite_2_9_1(vst_tflite):
    flatbuffer = vst_tflite[0].read_bytes()  # The appended archive does not disturb the flatbuffer's reading.
    found = plugin_runtime.check_operator_versions(flatbuffer)
    print("\n".join(f"{op} v{version} (2.9.1: up to v{plugin_runtime.MAX_OPERATOR_VERSIONS[op]})"
                    for op, version in found))
    versions = dict(found)
    assert len(versions) == len(found)  # One version per operator.
    # The GRU and the dense layers: FULLY_CONNECTED with keep_num_dims (version 5), the gates' LOGISTIC and TANH.
    assert versions["FULLY_CONNECTED"] == 5 and versions["LOGISTIC"] == 1 and versions["TANH"] == 1
    assert not {op for op in versions if op.startswith("CUSTOM")}


@pytest.mark.parametrize("function, specs, message", [
    (lambda x: tf.abs(x), [tf.TensorSpec([4], tf.int32)], r"ABS version 5 \(TFLite 2.9.1 runs up to version 4\)"),
    (lambda x, y: tf.math.atan2(x, y), [tf.TensorSpec([4], tf.float32)] * 2,
     r"ATAN2 \(version 1\) is not among the operators checked against TFLite 2.9.1"),
], ids=["abs_int32", "atan2"])
def test_an_operator_too_new_for_the_plugin_is_refused(function, specs, message):
    """Real converted models: the integer ABS came in version 5 and ATAN2 in TFLite 2.10."""
    flatbuffer = tiny_tflite(function, specs)
    with pytest.raises(PluginRuntimeError, match=message):
        plugin_runtime.check_operator_versions(flatbuffer)


def test_a_lowered_table_fails_the_exported_model(vst_tflite):
    flatbuffer = vst_tflite[0].read_bytes()
    lowered = {**plugin_runtime.MAX_OPERATOR_VERSIONS, "FULLY_CONNECTED": 4}
    with pytest.raises(PluginRuntimeError, match=r"FULLY_CONNECTED version 5 \(TFLite 2.9.1 runs up to version 4\)"):
        plugin_runtime.check_operator_versions(flatbuffer, lowered)
