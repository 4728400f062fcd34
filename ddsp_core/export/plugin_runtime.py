"""What DDSP-VST's own libraries accept in a .tflite file: the ZIP reader and the TFLite runtime.

The plugin (magenta/ddsp-vst at f2996e97f9469f3956a6b8e9d2d9b50b6555e1e9, May 2023) builds two
libraries from git submodules, pinned in its tree (`externals/`) since its first release:

    externals/JUCE         2f980209cc4091a4490bb1bafc5d530f16834e58  JUCE 6.1.6 (its commit message)
    externals/tensorflow   d8ce9f9c301d021a69953134185ab728c1c248d3  TensorFlow 2.9.1 (branch r2.9; the
                                                                    commit other build recipes pin as
                                                                    PV 2.9.1), built with CMake from
                                                                    tensorflow/lite (CMakeLists.txt)

The model's metadata (src/audio/tflite/PredictControlsModel.cpp, getMetadata): the whole .tflite
file, in memory, is opened as a `juce::ZipFile`, whose entry "metadata.json" (looked up ignoring
case) is parsed as JSON. JUCE 6.1.6's reader (modules/juce_core/zip/juce_ZipFile.cpp):

  - the end-of-central-directory record is found by searching backwards from the end of the file
    (at most 1 MiB back) for the signature 0x06054b50; it reads the entry count at offset 10 and
    the central directory's offset at offset 16 of that record, and seeks to that offset in the
    whole file: an absolute position, nothing is added for data before the archive (it accepts an
    offset 4 bytes past the signature, a quirk of some writers);
  - each 46-byte central directory header gives the method at 10 (non-zero: read as deflate), the
    compressed and uncompressed sizes at 20 and 24, the name length at 28 (extra and comment
    lengths at 30 and 32) and, at 42, the local header's offset: again an absolute position;
  - the entry's bytes start after the 30-byte local header (signature 0x04034b50) and its name and
    extra field (lengths at 26 and 28). No ZIP64, no CRC check.

Python's zipfile is more forgiving: it notices when the archive's offsets are relative to where the
archive starts in the file (data prepended to it) and corrects them. `read_juce_zip` reads as
JUCE does, so a test of it fails where the plugin would find no metadata.

The control model is loaded with `tflite::FlatBufferModel::VerifyAndBuildFromBuffer` and
`tflite::ops::builtin::BuiltinOpResolver` (src/audio/tflite/ModelBase.h): builtin operators only,
each up to the version that TensorFlow 2.9.1's `BuiltinOpResolver` registers
(tensorflow/lite/kernels/register.cc). A newer version of an operator makes the interpreter fail
to build ("Didn't find op for builtin opcode ... version ..."). `MAX_OPERATOR_VERSIONS` holds
those maxima for the operators a dense or recurrent control model can convert to. They are read
from tensorflow/tensorflow's register.cc at 00b1ec2ad4b0ecd5275167371cc5d5570fba8e4c (after 2.9:
the r2.9 file could not be read here) and kept only where
tensorflow/lite/tools/versioning/runtime_version.cc at the same commit, the table of the first
runtime that runs each (operator, version), dates that version to 2.9.0 or earlier; operators it
dates after 2.9 (ATAN2, UNSORTED_SEGMENT_*, RELU_0_TO_1) are left out. An operator missing from
the table is refused too: add it, from those two files, when a model needs it.
"""

import json
import struct
import zlib

# The plugin's TFLite runtime (externals/tensorflow, see the module docstring).
PLUGIN_TFLITE_VERSION = "2.9.1"

# Highest version of each builtin operator that TFLite 2.9.1's BuiltinOpResolver registers.
MAX_OPERATOR_VERSIONS = {
    "ABS": 4, "ADD": 4, "ADD_N": 1, "ARG_MAX": 3, "ARG_MIN": 3, "AVERAGE_POOL_2D": 3, "BATCH_MATMUL": 4,
    "BROADCAST_TO": 3, "CAST": 4, "CONCATENATION": 3, "CONV_2D": 6, "COS": 1, "CUMSUM": 1,
    "DEPTHWISE_CONV_2D": 6, "DEQUANTIZE": 5, "DIV": 2, "ELU": 1, "EQUAL": 3, "EXP": 1, "EXPAND_DIMS": 1,
    "FILL": 3, "FLOOR": 1, "FLOOR_DIV": 2, "FLOOR_MOD": 1, "FULLY_CONNECTED": 9, "GATHER": 5, "GATHER_ND": 3,
    "GELU": 2, "GREATER": 2, "GREATER_EQUAL": 2, "HARD_SWISH": 1, "LEAKY_RELU": 2, "LESS": 2, "LESS_EQUAL": 2,
    "LOG": 1, "LOG_SOFTMAX": 2, "LOGICAL_AND": 1, "LOGICAL_NOT": 1, "LOGICAL_OR": 1, "LOGISTIC": 3,
    "MAXIMUM": 4, "MEAN": 3, "MINIMUM": 4, "MUL": 5, "NEG": 1, "NOT_EQUAL": 3, "PACK": 3, "PAD": 4,
    "PADV2": 4, "POW": 1, "QUANTIZE": 3, "RANGE": 1, "REDUCE_MAX": 3, "REDUCE_MIN": 3, "REDUCE_PROD": 2,
    "RELU": 3, "RELU6": 3, "RESHAPE": 1, "RSQRT": 2, "SELECT": 2, "SELECT_V2": 1, "SHAPE": 1, "SIN": 1,
    "SLICE": 5, "SOFTMAX": 3, "SPLIT": 4, "SPLIT_V": 2, "SQRT": 1, "SQUARE": 1, "SQUARED_DIFFERENCE": 2,
    "SQUEEZE": 2, "STRIDED_SLICE": 6, "SUB": 5, "SUM": 2, "TANH": 3, "TILE": 3, "TRANSPOSE": 5, "UNPACK": 4,
    "WHILE": 1, "ZEROS_LIKE": 1,
}

# JUCE 6.1.6's ZipFile (see the module docstring).
END_OF_CENTRAL_DIRECTORY = 0x06054B50
CENTRAL_DIRECTORY_HEADER = 0x02014B50
LOCAL_FILE_HEADER = 0x04034B50
# The fixed part of each header (bytes), all of which must lie inside the file.
_HEADER_SIZES = {CENTRAL_DIRECTORY_HEADER: 46, LOCAL_FILE_HEADER: 30}
JUCE_SEARCH_BYTES = 1048576  # How far back from the end JUCE looks for the end record.


class PluginRuntimeError(ValueError):
    """The file would not load as DDSP-VST loads it (the message says what and where)."""


def _u16(data, offset):
    return struct.unpack_from("<H", data, offset)[0]


def _u32(data, offset):
    return struct.unpack_from("<I", data, offset)[0]


def _signature_at(data, offset, signature):
    return 0 <= offset <= len(data) - _HEADER_SIZES.get(signature, 4) and _u32(data, offset) == signature


def read_juce_zip(data, name="the file"):
    """The entries of a ZIP archive at the end of `data`, read as JUCE 6.1.6's ZipFile reads them.

    Stricter than JUCE in one way: where JUCE would read garbage (a header signature missing at an
    offset) and then find no entry, this raises, saying what it found there.

    Args:
        data: The whole file's bytes (a .tflite flatbuffer with an archive appended).
        name: The file's name, for error messages.

    Returns:
        {entry name: its bytes}, in the central directory's order.

    Raises:
        PluginRuntimeError: no end record, or an offset that does not point at the header it
            should, read as an absolute position in `data`.
    """
    data = bytes(data)
    start = max(0, len(data) - JUCE_SEARCH_BYTES)
    end_record = data.rfind(struct.pack("<I", END_OF_CENTRAL_DIRECTORY), start)
    if end_record < 0 or end_record + 22 > len(data):
        raise PluginRuntimeError(f"{name}: no ZIP end-of-central-directory record in its last {JUCE_SEARCH_BYTES} "
                                 "bytes: the plugin would find no metadata.json in it.")
    n_entries, directory = _u16(data, end_record + 10), _u32(data, end_record + 16)
    if not _signature_at(data, directory, CENTRAL_DIRECTORY_HEADER) and _signature_at(
            data, directory - 4, CENTRAL_DIRECTORY_HEADER):
        directory -= 4  # JUCE's workaround for writers that point past the signature.
    entries, position = {}, directory
    for index in range(n_entries):
        if not _signature_at(data, position, CENTRAL_DIRECTORY_HEADER):
            raise PluginRuntimeError(
                f"{name}: the ZIP's central directory entry {index} should be at byte {position} of the file (an "
                f"absolute offset, as JUCE reads it; the archive's end record is at byte {end_record}), but no "
                "central directory header is there. The archive's offsets are probably relative to its own start: "
                "write it with offsets counted from the start of the file (metadata.append_zip_metadata does).")
        method, compressed_size = _u16(data, position + 10), _u32(data, position + 20)
        name_length = _u16(data, position + 28)
        extra_length, comment_length = _u16(data, position + 30), _u16(data, position + 32)
        local = _u32(data, position + 42)
        entry_name = data[position + 46:position + 46 + name_length].decode("utf-8")
        if not _signature_at(data, local, LOCAL_FILE_HEADER):
            raise PluginRuntimeError(f"{name}: the ZIP entry {entry_name!r} has its local header at byte {local} "
                                     "(an absolute offset, as JUCE reads it), but no local header is there: the "
                                     "plugin would read it as empty.")
        begin = local + 30 + _u16(data, local + 26) + _u16(data, local + 28)
        stored = data[begin:begin + compressed_size]
        if len(stored) != compressed_size:
            raise PluginRuntimeError(f"{name}: the ZIP entry {entry_name!r} runs past the end of the file.")
        entries[entry_name] = stored if method == 0 else zlib.decompress(stored, -zlib.MAX_WBITS)
        position += 46 + name_length + extra_length + comment_length
    return entries


def read_juce_metadata(path):
    """The metadata.json of a .tflite file as the plugin reads it (JUCE's ZipFile, name matched
    ignoring case): a dict. Raises PluginRuntimeError if the plugin would find none."""
    with open(path, "rb") as handle:
        entries = read_juce_zip(handle.read(), name=str(path))
    for entry_name, content in entries.items():
        if entry_name.lower() == "metadata.json":
            return json.loads(content.decode("utf-8"))
    raise PluginRuntimeError(f"{path}: its ZIP archive has no metadata.json (entries: {sorted(entries)}).")


def operator_versions(flatbuffer):
    """The builtin operators of a TFLite flatbuffer with their versions: sorted [(name, version)].

    Custom (and Flex) operators appear as ('CUSTOM:<their name>', version).
    """
    from tensorflow.lite.python import schema_py_generated as schema

    model = schema.Model.GetRootAsModel(bytes(flatbuffer), 0)
    names = {code: name for name, code in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    found = set()
    for index in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(index)
        # Codes past 127 are in builtin_code only; older files have deprecated_builtin_code only.
        builtin = max(int(code.BuiltinCode()), int(code.DeprecatedBuiltinCode()))
        name = names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{(code.CustomCode() or b'').decode('utf-8')}"
        found.add((name, int(code.Version())))
    return sorted(found)


def check_operator_versions(flatbuffer, max_versions=None, name="the converted model"):
    """Raises PluginRuntimeError unless every operator of the flatbuffer is a builtin one that the
    plugin's TFLite runtime registers, at a version it registers.

    Args:
        flatbuffer: TFLite model bytes.
        max_versions: {operator name: highest version}; MAX_OPERATOR_VERSIONS when None.
        name: What to call the model in the message.

    Returns:
        operator_versions(flatbuffer).
    """
    max_versions = MAX_OPERATOR_VERSIONS if max_versions is None else max_versions
    found = operator_versions(flatbuffer)
    problems = []
    for op, version in found:
        if op not in max_versions:
            problems.append(f"{op} (version {version}) is not among the operators checked against TFLite "
                            f"{PLUGIN_TFLITE_VERSION}")
        elif version > max_versions[op]:
            problems.append(f"{op} version {version} (TFLite {PLUGIN_TFLITE_VERSION} runs up to version "
                            f"{max_versions[op]})")
    if problems:
        raise PluginRuntimeError(
            f"DDSP-VST's TFLite runtime ({PLUGIN_TFLITE_VERSION}) would not load {name}: " + "; ".join(problems)
            + ". The installed TensorFlow's converter chose these operators: express the model with older ones "
            "(float32 math, the ops of models/vst.gin), or, for an operator missing from the table, add it to "
            "ddsp_core/export/plugin_runtime.py from TFLite 2.9.1's register.cc.")
    return found
