"""The synth demo script, run as users run it (TensorFlow backend: it calls audio.numpy())."""

import importlib.util
import pathlib

import numpy as np
import soundfile

DEMO = pathlib.Path(__file__).resolve().parents[2] / "examples" / "synth_demo.py"


def _load_demo():
    spec = importlib.util.spec_from_file_location("synth_demo", DEMO)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_synth_demo_writes_wav_and_png(tmp_path):
    assert _load_demo().main([str(tmp_path / "out")]) == 0
    audio, sample_rate = soundfile.read(tmp_path / "out" / "synth_demo_py.wav")
    assert sample_rate == 16000 and audio.shape == (64000,)
    spectrum = np.abs(np.fft.rfft(audio[:16000] * np.hanning(16000)))
    assert np.argmax(spectrum) == 440  # 1 Hz bins: the fundamental is the strongest partial
    png = (tmp_path / "out" / "synth_demo_py.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 10000


def test_synth_demo_usage_error(capsys):
    assert _load_demo().main([]) == 2
    assert "usage" in capsys.readouterr().err
