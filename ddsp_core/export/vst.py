"""DDSP-VST's control model: one frame of (pitch, power) in, synthesizer controls out, as TFLite.

The DDSP-VST plugin (magenta/ddsp-vst) runs the network of a trained model frame by frame
and does the synthesis itself. It loads a .tflite file and finds its tensors by name:

    inputs   call_f0_scaled:0   [1]    midi(f0_hz) / 127
             call_pw_scaled:0   [1]    power_db / 80 + 1
             call_state:0       [512]  the GRU state after the previous frame (zeros at first)
    outputs  StatefulPartitionedCall:0  [1]    amplitude (linear, after exp_sigmoid)
             StatefulPartitionedCall:1  [60]   harmonic distribution (after exp_sigmoid, harmonics
                                               at or above Nyquist removed, summing to 1)
             StatefulPartitionedCall:2  [65]   noise band magnitudes (exp_sigmoid(x + initial_bias))
             StatefulPartitionedCall:3  [512]  the GRU state after this frame

It checks for exactly 3 inputs and 4 outputs, float32, their element counts, and links only
TFLite's builtin ops. Those names are what TensorFlow gives a SavedModel signature 'call'
with inputs named f0_scaled, pw_scaled and state, returning a tuple in the order above,
once converted by TFLiteConverter.from_saved_model with builtin ops only; `export_tflite`
builds the model that way and checks the names of the result.

The plugin hard-codes more than its tensors (magenta/ddsp-vst at
f2996e97f9469f3956a6b8e9d2d9b50b6555e1e9: src/util/Constants.h, src/audio/NoiseSynthesizer.cpp,
src/audio/tflite/InferencePipeline.cpp), and `check_vst_compatible` checks each at export:

    16 kHz, 50 frames/s     kModelSampleRate_Hz 16000, kModelHopSize 320: one call per 320 samples,
                            whatever rate the model was trained at (a 250 frames/s model would
                            play 5 times too slowly)
    60 harmonics, 65 bands  kHarmonicsSize, kNoiseAmpsSize: it copies that many values out of the
                            output tensors
    GRU state of 512        kGruModelStateSize
    noise filter            NoiseSynthesizer: the inverse FFT of the 65 magnitudes (128 points,
                            scaled by 1/128 as every JUCE FFT engine does), times a periodic Hann
                            window of 128 taps, 0.5 * (1 - cos(2 pi n / 128)), in zero-phase form,
                            then made causal. The window's first tap is 0, so the filter is the 127
                            taps around time 0 weighted 0.5 * (1 + cos(2 pi k / 128)), k = -63..63:
                            what FilteredNoise with window_size 0 (or >= 127) makes from 65 bands
                            (core.convolution's odd Hann of 127 taps is that window; tested). The
                            plugin's output lags the filter's centre by 2 samples, which white noise
                            does not show.

What its runtimes accept of the file (the operators' versions and the appended metadata ZIP) is in
`plugin_runtime`. Only a model decoding from ('pw_scaled', 'f0_scaled') with a GRU of 512 units,
trained on 50 frames/s features, can be played by the plugin: train it with the pipeline's
`--preset vst` (models/vst.gin).
"""

import os
import tempfile

import numpy as np

INPUT_NAMES = {"f0_scaled": "call_f0_scaled:0", "pw_scaled": "call_pw_scaled:0", "state": "call_state:0"}
OUTPUT_NAMES = {"amplitude": "StatefulPartitionedCall:0", "harmonics": "StatefulPartitionedCall:1",
                "noise": "StatefulPartitionedCall:2", "state": "StatefulPartitionedCall:3"}
VST_INPUT_KEYS = ("pw_scaled", "f0_scaled")
STATE_SIZE = 512
# The plugin's audio rate: its models are trained on, and synthesize, 16 kHz audio.
SAMPLE_RATE = 16000
# One control frame per 320 samples (kModelHopSize), 50 frames a second.
FRAME_RATE = 50
NUM_HARMONICS = 60
NUM_NOISE_BANDS = 65
# Non-zero taps of the plugin's 128-tap noise filter (its periodic Hann window is 0 at one end).
NOISE_IR_SIZE = 127
SIGNATURE_KEY = "call"


class VstExportError(ValueError):
    """The model cannot be played by DDSP-VST (its inputs or state size differ); the message says why."""


def check_vst_model(model):
    """Raises VstExportError unless the model's decoder and synthesizers are those the plugin has:
    inputs, GRU state size, control sizes and noise filter (see the module docstring)."""
    import keras

    from ddsp_core.export.metadata import control_sizes
    from ddsp_core.playing.streaming import StreamingError, noise_ir_size, synth_parts

    if keras.backend.backend() != "tensorflow":
        raise VstExportError(f"The DDSP-VST export needs the TensorFlow backend (KERAS_BACKEND=tensorflow); "
                             f"this process runs Keras on {keras.backend.backend()}.")
    decoder = model.decoder
    input_keys = tuple(getattr(decoder, "input_keys", ()))
    if sorted(input_keys) != sorted(VST_INPUT_KEYS):
        raise VstExportError(f"DDSP-VST plays models that decode from {VST_INPUT_KEYS} (frame power and pitch); "
                             f"this model's decoder reads {input_keys}. Train one with the pipeline's "
                             "`--preset vst` (models/vst.gin).")
    rnn = getattr(decoder, "rnn", None)
    if not isinstance(rnn, keras.layers.GRU):
        raise VstExportError("DDSP-VST needs a decoder with a GRU (RnnFcDecoder.rnn_type = 'gru'); this model's "
                             f"recurrent layer is {type(rnn).__name__}. Train with `--preset vst` (models/vst.gin).")
    if int(rnn.units) != STATE_SIZE:
        raise VstExportError(f"DDSP-VST carries a state of {STATE_SIZE} values (RnnFcDecoder.rnn_channels = "
                             f"{STATE_SIZE}); this model's GRU has {rnn.units} units. Train with `--preset vst` "
                             "(models/vst.gin).")
    try:
        parts = synth_parts(model)
    except StreamingError as error:
        raise VstExportError(f"DDSP-VST synthesizes harmonics and filtered noise itself: {error}") from None
    if parts.harmonic.sample_rate != SAMPLE_RATE:
        raise VstExportError(f"DDSP-VST's model format is {SAMPLE_RATE} Hz only (its synthesizers run at that rate); "
                             f"this model makes {parts.harmonic.sample_rate:g} Hz audio. Train at 16 kHz with "
                             "`--preset vst`, or export this model's SavedModel (--inference_model=autoencoder).")
    num_harmonics, num_noise_bands = control_sizes(model)
    if (num_harmonics, num_noise_bands) != (NUM_HARMONICS, NUM_NOISE_BANDS):
        raise VstExportError(f"DDSP-VST reads exactly {NUM_HARMONICS} harmonic amplitudes and {NUM_NOISE_BANDS} noise "
                             f"band magnitudes per frame; this model's decoder makes {num_harmonics} and "
                             f"{num_noise_bands} (RnnFcDecoder.output_splits). Train with `--preset vst` "
                             "(models/vst.gin).")
    taps = noise_ir_size(parts.noise, num_noise_bands)
    if taps != NOISE_IR_SIZE:
        raise VstExportError(f"DDSP-VST filters its noise with the whole {NOISE_IR_SIZE + 1}-tap response of "
                             f"{NUM_NOISE_BANDS} bands ({NOISE_IR_SIZE} taps after its Hann window); this model's "
                             f"FilteredNoise.window_size = {parts.noise.window_size} gives {taps} taps, so the "
                             "plugin's noise would not be the one it was trained with. Train with `--preset vst` "
                             "(models/vst.gin: FilteredNoise.window_size = 0).")


def check_vst_compatible(model, *, frame_rate):
    """Raises VstExportError unless DDSP-VST can play the model as it was trained (`check_vst_model`,
    and a frame rate of 50 frames/s).

    Args:
        model: A built `Autoencoder`.
        frame_rate: Frames per second of the features it was trained on (model_statistics.json's
            frame_rate, `Instrument.frame_rate`).
    """
    check_vst_model(model)
    if float(frame_rate) != FRAME_RATE:
        ratio = float(frame_rate) / FRAME_RATE
        pace = f"{ratio:g} times too slowly" if ratio > 1 else f"{1 / ratio:g} times too fast"
        raise VstExportError(f"DDSP-VST runs the model {FRAME_RATE} times a second (one frame per "
                             f"{SAMPLE_RATE // FRAME_RATE} samples at {SAMPLE_RATE} Hz); this model was trained at "
                             f"{float(frame_rate):g} frames/s (model_statistics.json) and would play {pace}. Train "
                             f"with `--preset vst` (its dataset is prepared at {FRAME_RATE} frames/s).")


def control_module(model):
    """The plugin's control model as a tf.Module with a tf.function `call` (see the module docstring).

    Args:
        model: A built, restored `Autoencoder` passing `check_vst_model` (decoder in float32).
    """
    import keras
    import tensorflow as tf

    from ddsp_core.core.units import midi_to_hz
    from ddsp_core.playing.streaming import synth_parts
    from ddsp_core.models.preprocessing import F0_RANGE

    check_vst_model(model)
    decoder, parts = model.decoder, synth_parts(model)

    class ControlModule(tf.Module):
        def __init__(self):
            super().__init__(name="ddsp_vst_controls")
            # Copies of the decoder's weights under unique names. Keras 3 gives its TensorFlow
            # variables names that repeat across layers ('rnn_fc_decoder/kernel' for every
            # Dense), and the TFLite converter then leaves some of them as uninitialized
            # resource variables instead of freezing them into constants (the plugin would
            # read NaNs). `call` reads these copies in place of the Keras variables.
            self.decoder_weights = [tf.Variable(v.numpy(), trainable=False, name=f"weight_{i}")
                                    for i, v in enumerate(decoder.variables)]

        @tf.function(input_signature=[tf.TensorSpec([1], tf.float32, name="f0_scaled"),
                                      tf.TensorSpec([1], tf.float32, name="pw_scaled"),
                                      tf.TensorSpec([STATE_SIZE], tf.float32, name="state")])
        def call(self, f0_scaled, pw_scaled, state):
            conditioning = {"f0_scaled": tf.reshape(f0_scaled, [1, 1, 1]),  # [batch, n_frames, 1]
                            "pw_scaled": tf.reshape(pw_scaled, [1, 1, 1])}
            with keras.StatelessScope(state_mapping=list(zip(decoder.variables, self.decoder_weights))):
                controls, new_state = decoder(conditioning, initial_state=tf.reshape(state, [1, STATE_SIZE]),
                                              return_state=True)
            outputs = {**conditioning, **controls, "f0_hz": midi_to_hz(conditioning["f0_scaled"] * F0_RANGE)}
            harmonic = parts.harmonic.get_controls(*[outputs[key] for key in parts.harmonic_keys])
            noise = parts.noise.get_controls(*[outputs[key] for key in parts.noise_keys])
            # The plugin's order: amplitude [1], harmonics [n_harmonics], noise [n_bands], state [512].
            return (tf.reshape(harmonic["amplitudes"], [-1]), tf.reshape(harmonic["harmonic_distribution"], [-1]),
                    tf.reshape(noise["magnitudes"], [-1]), tf.reshape(new_state, [-1]))

    return ControlModule()


def convert_to_tflite(model, *, frame_rate, has_gpu=None):
    """The plugin's control model as TFLite flatbuffer bytes (builtin ops only), checked: the model
    (`check_vst_compatible`), the tensors' names (`check_tensor_names`) and the operators' versions
    against the plugin's TFLite runtime (`plugin_runtime.check_operator_versions`).

    Args:
        model: A built, restored `Autoencoder` (decoder in float32).
        frame_rate: Frames per second of the features the model was trained on.
        has_gpu: See `saved_model.portable_rnn` (detected when None).
    """
    import tensorflow as tf

    from ddsp_core.export import plugin_runtime
    from ddsp_core.export.saved_model import portable_rnn

    check_vst_compatible(model, frame_rate=frame_rate)
    module = control_module(model)
    with tempfile.TemporaryDirectory() as scratch:
        with portable_rnn(model, unroll=True, has_gpu=has_gpu):  # The signature is traced while saving.
            tf.saved_model.save(module, scratch, signatures={SIGNATURE_KEY: module.call})
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=[SIGNATURE_KEY])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()
    check_tensor_names(flatbuffer, model)
    try:
        plugin_runtime.check_operator_versions(flatbuffer, name=f"the converted control model (TensorFlow "
                                                                f"{tf.__version__}'s converter)")
    except plugin_runtime.PluginRuntimeError as error:
        raise VstExportError(str(error)) from None
    return flatbuffer


def tflite_interpreter(tflite_path=None, content=None):
    """A TFLite interpreter of a file or of flatbuffer bytes, tensors allocated."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():  # tf.lite.Interpreter warns that LiteRT will replace it.
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=tflite_path, model_content=content)
    interpreter.allocate_tensors()
    return interpreter


def check_tensor_names(flatbuffer, model):
    """Raises VstExportError unless the TFLite model has exactly the plugin's tensors (names, sizes,
    float32) and a frame from a zero state gives finite controls (frozen weights, no uninitialized variable)."""
    from ddsp_core.export.metadata import control_sizes

    num_harmonics, num_noise_amps = control_sizes(model)
    expected_inputs = {INPUT_NAMES["f0_scaled"]: 1, INPUT_NAMES["pw_scaled"]: 1, INPUT_NAMES["state"]: STATE_SIZE}
    expected_outputs = {OUTPUT_NAMES["amplitude"]: 1, OUTPUT_NAMES["harmonics"]: num_harmonics,
                        OUTPUT_NAMES["noise"]: num_noise_amps, OUTPUT_NAMES["state"]: STATE_SIZE}
    interpreter = tflite_interpreter(content=flatbuffer)
    for what, details, expected in (("inputs", interpreter.get_input_details(), expected_inputs),
                                    ("outputs", interpreter.get_output_details(), expected_outputs)):
        found = {d["name"]: int(np.prod(d["shape"])) for d in details if d["dtype"] == np.float32}
        if found != expected or len(details) != len(expected):
            raise VstExportError(f"The converted TFLite model's {what} are {sorted(found.items())}; DDSP-VST "
                                 f"needs {sorted(expected.items())} (float32). The TensorFlow converter may have "
                                 "changed how it names tensors.")
    for detail in interpreter.get_input_details():
        value = 0.5 if detail["name"] != INPUT_NAMES["state"] else 0.0
        interpreter.set_tensor(detail["index"], np.full(detail["shape"], value, np.float32))
    try:
        interpreter.invoke()
        finite = all(np.all(np.isfinite(interpreter.get_tensor(d["index"]))) for d in interpreter.get_output_details())
    except RuntimeError as error:
        finite, reason = False, str(error).strip().splitlines()[0]
    else:
        reason = "non-finite outputs"
    if not finite:
        raise VstExportError(f"The converted TFLite model does not run ({reason}): its weights were probably not "
                             "frozen into constants by the TensorFlow converter.")


def export_tflite(model, path, *, frame_rate, metadata=None, has_gpu=None):
    """Writes the plugin's control model to a local `path` (.tflite), with `metadata` zipped in if given,
    and reads the metadata back as the plugin does (JUCE's ZipFile: `plugin_runtime.read_juce_metadata`).
    On any failure no file is left at `path`.

    Args:
        model: A built, restored `Autoencoder` (decoder in float32).
        path: Local path of the .tflite file.
        frame_rate: Frames per second of the features the model was trained on (50 for DDSP-VST).
        metadata: JSON-ready dict (`metadata.metadata_dict`), or None for none.
        has_gpu: See `saved_model.portable_rnn` (detected when None).

    Returns:
        `path`.
    """
    import json

    from ddsp_core.export import plugin_runtime
    from ddsp_core.export.metadata import append_zip_metadata

    flatbuffer = convert_to_tflite(model, frame_rate=frame_rate, has_gpu=has_gpu)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    try:
        with open(path, "wb") as handle:
            handle.write(flatbuffer)
        if metadata is not None:
            append_zip_metadata(path, metadata)
            try:
                read_back = plugin_runtime.read_juce_metadata(path)
            except plugin_runtime.PluginRuntimeError as error:
                raise VstExportError(f"DDSP-VST would not find the metadata in {path}: {error}") from None
            if read_back != json.loads(json.dumps(metadata)):
                raise VstExportError(f"The metadata.json that DDSP-VST would read from {path} differs from the one "
                                     "written.")
    except BaseException:
        if os.path.exists(path):
            os.remove(path)
        raise
    return path


def play_tflite_controls(tflite_path, f0_scaled, pw_scaled):
    """Runs a control model as DDSP-VST does: one frame per call, tensors by name, the state fed back.

    Args:
        tflite_path: Local .tflite file (as written by `export_tflite`).
        f0_scaled: midi(f0_hz) / 127 per frame, [n_frames].
        pw_scaled: power_db / 80 + 1 per frame, [n_frames].

    Returns:
        {'amplitude' [n_frames, 1], 'harmonics' [n_frames, n_harmonics], 'noise' [n_frames, n_bands]},
        NumPy float32, starting from a zero state.
    """
    interpreter = tflite_interpreter(tflite_path=str(tflite_path))
    inputs = {d["name"]: d["index"] for d in interpreter.get_input_details()}
    outputs = {d["name"]: d["index"] for d in interpreter.get_output_details()}
    f0_scaled = np.asarray(f0_scaled, np.float32).reshape(-1)
    pw_scaled = np.asarray(pw_scaled, np.float32).reshape(-1)
    state = np.zeros(STATE_SIZE, np.float32)
    frames = {key: [] for key in ("amplitude", "harmonics", "noise")}
    for f0, pw in zip(f0_scaled, pw_scaled):
        interpreter.set_tensor(inputs[INPUT_NAMES["f0_scaled"]], np.array([f0], np.float32))
        interpreter.set_tensor(inputs[INPUT_NAMES["pw_scaled"]], np.array([pw], np.float32))
        interpreter.set_tensor(inputs[INPUT_NAMES["state"]], state)
        interpreter.invoke()
        for key in frames:
            frames[key].append(interpreter.get_tensor(outputs[OUTPUT_NAMES[key]]).reshape(-1).copy())
        state = interpreter.get_tensor(outputs[OUTPUT_NAMES["state"]]).reshape(-1).copy()
    return {key: np.stack(values).astype(np.float32) for key, values in frames.items()}
