"""vst.py: DDSP-VST's control model as TFLite, checked as the plugin uses it (tensors by name)."""

import gin
import numpy as np
import pytest

from ddsp_core.export import metadata as metadata_lib
from ddsp_core.export import vst
from ddsp_core.playing.streaming import synth_parts
from ddsp_core.training.gin_configs import parse_gin
from ddsp_core.models import get_model
from tests.export.conftest import FRAME_RATE

N_FRAMES = 3 * FRAME_RATE  # 150 frames: 3 s at 50 frames/s.
TOLERANCE = 1e-3  # Absolute, on every control.


def test_tensors_are_those_the_plugin_looks_up(vst_tflite):
    interpreter = vst.tflite_interpreter(str(vst_tflite[0]))
    inputs = {d["name"]: (int(np.prod(d["shape"])), d["dtype"]) for d in interpreter.get_input_details()}
    outputs = {d["name"]: (int(np.prod(d["shape"])), d["dtype"]) for d in interpreter.get_output_details()}
    assert inputs == {"call_f0_scaled:0": (1, np.float32), "call_pw_scaled:0": (1, np.float32),
                      "call_state:0": (512, np.float32)}
    assert outputs == {"StatefulPartitionedCall:0": (1, np.float32), "StatefulPartitionedCall:1": (60, np.float32),
                       "StatefulPartitionedCall:2": (65, np.float32), "StatefulPartitionedCall:3": (512, np.float32)}


def test_only_builtin_ops_and_no_variables(vst_tflite):
    interpreter = vst.tflite_interpreter(str(vst_tflite[0]))
    op_names = {op["op_name"] for op in interpreter._get_ops_details()}  # Private, but the only listing.
    assert not {name for name in op_names if name.startswith("Flex") or name == "CUSTOM"}
    # Weights must be frozen into constants: a resource variable would be read uninitialized by the plugin.
    assert not op_names & {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"}


def _glide():
    """f0 from 200 to 800 Hz and power from -60 to -10 dB with a tremolo, [N_FRAMES] each."""
    t = np.arange(N_FRAMES) / FRAME_RATE
    f0_hz = np.geomspace(200.0, 800.0, N_FRAMES).astype("float32")
    power_db = (np.linspace(-60.0, -10.0, N_FRAMES) + 6.0 * np.sin(2 * np.pi * 1.5 * t)).astype("float32")
    return f0_hz, power_db


def _keras_controls(model, f0_hz, power_db):
    """The model's controls for the whole sequence at once (as StreamingSynth._controls computes them,
    before multiplying amplitude and distribution): amplitude, harmonics, noise, each [n_frames, size]."""
    parts = synth_parts(model)
    conditioning = model.preprocessor({"f0_hz": f0_hz[None], "power_db": power_db[None]})
    outputs = {**conditioning, **model.decoder(conditioning)}
    harmonic = parts.harmonic.get_controls(*[outputs[key] for key in parts.harmonic_keys])
    noise = parts.noise.get_controls(*[outputs[key] for key in parts.noise_keys])
    return {"amplitude": np.asarray(harmonic["amplitudes"])[0],
            "harmonics": np.asarray(harmonic["harmonic_distribution"])[0],
            "noise": np.asarray(noise["magnitudes"])[0]}, conditioning


def _check_matches_keras(model, tflite_path):
    f0_hz, power_db = _glide()
    expected, conditioning = _keras_controls(model, f0_hz, power_db)
    played = vst.play_tflite_controls(tflite_path, np.asarray(conditioning["f0_scaled"]).reshape(-1),
                                      np.asarray(conditioning["pw_scaled"]).reshape(-1))
    for key, size in (("amplitude", 1), ("harmonics", 60), ("noise", 65)):
        assert played[key].shape == (N_FRAMES, size)
        error = float(np.max(np.abs(played[key] - expected[key])))
        print(f"{key}: max abs difference TFLite - Keras {error:.2e} (values up to {np.max(expected[key]):.3f})")
        assert error < TOLERANCE, key
    # The controls move with the input (the state is carried, not reset), and the distribution sums to 1.
    assert np.ptp(played["amplitude"]) > 0.01
    np.testing.assert_allclose(played["harmonics"].sum(axis=1), 1.0, atol=1e-5)


def test_frame_by_frame_tflite_matches_the_keras_model(vst_instrument, vst_tflite):
    _check_matches_keras(vst_instrument.model, vst_tflite[0])


def test_export_traced_as_on_a_gpu_machine(vst_instrument, tmp_path):
    """With a GPU, the GRU is traced without cuDNN and unrolled (saved_model.portable_rnn): Keras' generic
    GRU, here on the CPU. Still builtin ops only, and the same controls."""
    path = str(tmp_path / "gpu.tflite")
    vst.export_tflite(vst_instrument.model, path, frame_rate=FRAME_RATE, has_gpu=True)
    assert vst_instrument.model.decoder.rnn.use_cudnn == "auto"  # Restored.
    op_names = {op["op_name"] for op in vst.tflite_interpreter(path)._get_ops_details()}
    assert "WHILE" not in op_names and not op_names & {"VAR_HANDLE", "READ_VARIABLE"}
    _check_matches_keras(vst_instrument.model, path)


def test_harmonics_above_nyquist_are_removed(vst_tflite):
    f0_hz = np.array([1000.0], "float32")  # Harmonics 8 and up are at or above 8 kHz.
    f0_scaled = 12.0 * np.log2(f0_hz / 440.0) / 127.0 + 69.0 / 127.0
    played = vst.play_tflite_controls(vst_tflite[0], f0_scaled, np.array([0.5], "float32"))
    assert np.all(played["harmonics"][0, 7:] == 0.0) and played["harmonics"][0, :7].sum() == pytest.approx(1.0)


def test_metadata_is_zipped_into_the_file(vst_tflite):
    path, metadata = vst_tflite
    assert metadata_lib.read_zip_metadata(path) == metadata


def test_a_loudness_model_is_refused(loudness_instrument):
    with pytest.raises(vst.VstExportError, match="--preset vst"):
        vst.check_vst_compatible(loudness_instrument.model, frame_rate=FRAME_RATE)


def _vst_model(*gin_params):
    """A models/vst.gin model with `gin_params` on top (not built)."""
    parse_gin(["models/vst.gin"], list(gin_params))
    try:
        return get_model()
    finally:
        gin.clear_config()


def test_the_vst_preset_is_accepted(vst_instrument):
    assert vst_instrument.frame_rate == vst.FRAME_RATE == 50
    vst.check_vst_compatible(vst_instrument.model, frame_rate=vst_instrument.frame_rate)  # No error.


@pytest.mark.parametrize("gin_param, message", [
    ("RnnFcDecoder.rnn_channels=64", "state of 512 values .* GRU has 64 units"),
    ("RnnFcDecoder.output_splits=(('amps', 1), ('harmonic_distribution', 100), ('noise_magnitudes', 65))",
     "exactly 60 harmonic amplitudes and 65 noise band magnitudes .* makes 100 and 65"),
    ("RnnFcDecoder.output_splits=(('amps', 1), ('harmonic_distribution', 60), ('noise_magnitudes', 33))",
     "makes 60 and 33"),
    ("FilteredNoise.window_size=64", "window_size = 64 gives 63 taps"),
], ids=["state_64", "harmonics_100", "noise_bands_33", "noise_window_64"])
def test_what_the_plugin_hard_codes_is_refused(gin_param, message):
    with pytest.raises(vst.VstExportError, match=message) as error:
        vst.check_vst_compatible(_vst_model(gin_param), frame_rate=FRAME_RATE)
    assert "--preset vst" in str(error.value)


@pytest.mark.parametrize("frame_rate, pace", [(250, "5 times too slowly"), (25, "2 times too fast")])
def test_a_frame_rate_other_than_50_is_refused(vst_instrument, frame_rate, pace):
    with pytest.raises(vst.VstExportError, match=f"trained at {frame_rate} frames/s .* would play {pace}") as error:
        vst.check_vst_compatible(vst_instrument.model, frame_rate=frame_rate)
    assert "--preset vst" in str(error.value)


def _plugin_noise_filter(magnitudes):
    """DDSP-VST's noise filter (NoiseSynthesizer::applyWindowToImpulseResponse), in NumPy from its description:
    the 128-point inverse FFT of the 65 magnitudes (scaled by 1/128), times a periodic Hann window of 128 taps
    in zero-phase form, rotated by 64 to be causal. [..., 65] -> [..., 128], time 0 at index 64."""
    n_taps = 2 * (magnitudes.shape[-1] - 1)
    impulse_response = np.fft.irfft(magnitudes, n_taps)  # Zero-phase: time 0 at index 0.
    window = 0.5 * (1.0 - np.cos(2.0 * np.pi * np.arange(n_taps) / n_taps))  # Periodic Hann, peak at n_taps / 2.
    zero_phase_window = np.roll(window, -n_taps // 2)
    return np.roll(impulse_response * zero_phase_window, -n_taps // 2, axis=-1)


def test_the_noise_filter_is_the_plugins(vst_instrument):
    """FilteredNoise as models/vst.gin configures it makes the plugin's 128-tap filter: its first tap (the
    window's zero) dropped, the other 127 equal."""
    from ddsp_core.core.convolution import frequency_impulse_response

    noise = synth_parts(vst_instrument.model).noise
    magnitudes = np.random.default_rng(0).uniform(0.0, 1.0, (2, 5, 65)).astype("float32")
    ours = np.asarray(frequency_impulse_response(magnitudes, window_size=noise.window_size))
    plugins = _plugin_noise_filter(magnitudes.astype("float64"))
    assert ours.shape == (2, 5, 127) and plugins.shape == (2, 5, 128)
    assert np.all(plugins[..., 0] == 0.0)
    np.testing.assert_allclose(ours, plugins[..., 1:], atol=1e-6)
    assert np.max(np.abs(ours)) > 0.1  # Not trivially zero.


def test_an_operator_too_new_for_the_plugin_fails_the_export(vst_instrument, tmp_path, monkeypatch):
    """The export checks the converted operators against the plugin's runtime (here the table's
    FULLY_CONNECTED lowered to version 1), and writes nothing."""
    from ddsp_core.export import plugin_runtime

    monkeypatch.setitem(plugin_runtime.MAX_OPERATOR_VERSIONS, "FULLY_CONNECTED", 1)
    path = tmp_path / "model.tflite"
    with pytest.raises(vst.VstExportError, match=r"FULLY_CONNECTED version \d \(TFLite 2.9.1 runs up to version 1\)"):
        vst.export_tflite(vst_instrument.model, str(path), frame_rate=FRAME_RATE, metadata={"version": "x"})
    assert not path.exists()


def test_metadata_the_plugin_cannot_read_fails_the_export(vst_instrument, tmp_path, monkeypatch):
    """The export reads its metadata back as JUCE does: an archive with offsets relative to its own start (which
    Python's zipfile forgives) fails it, and the half-written file is removed."""
    from tests.export.test_plugin_runtime import append_relative_zip

    monkeypatch.setattr(metadata_lib, "append_zip_metadata", append_relative_zip)
    path = tmp_path / "model.tflite"
    with pytest.raises(vst.VstExportError, match="DDSP-VST would not find the metadata .* absolute offset"):
        vst.export_tflite(vst_instrument.model, str(path), frame_rate=FRAME_RATE, metadata={"version": "x"})
    assert not path.exists()
