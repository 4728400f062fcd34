"""play.plot_performance and write_outputs: the PNG is plotting.performance_figure's, to a path or a file."""

import io

import matplotlib.image
import numpy as np
import soundfile

from ddsp_core.playing import play

SAMPLE_RATE = 16000
FRAME_RATE = 250


def _performance(input_audio_16k=None):
    """One second of a 440 Hz tone, played from two voices' curves."""
    audio = (0.5 * np.sin(2 * np.pi * 440.0 * np.arange(SAMPLE_RATE) / SAMPLE_RATE)).astype("float32")
    f0_hz = np.stack([np.full(FRAME_RATE, 440.0), np.full(FRAME_RATE, 659.26)])  # [n_voices, n_frames]
    level_db = np.stack([np.linspace(-40.0, -10.0, FRAME_RATE), np.full(FRAME_RATE, -20.0)])
    return play.Performance(audio=audio, sample_rate=SAMPLE_RATE, frame_rate=FRAME_RATE, f0_hz=f0_hz,
                            level_db=level_db, level_key="power_db", input_audio_16k=input_audio_16k)


def _image(png):
    return matplotlib.image.imread(io.BytesIO(png), format="png")


def test_plot_performance_to_a_file_object_and_a_path(tmp_path):
    buffer = io.BytesIO()
    play.plot_performance(_performance(), buffer)
    assert _image(buffer.getvalue()).shape[:2] == (621, 900)  # output, f0 and level rows
    path = tmp_path / "played.png"
    play.plot_performance(_performance(input_audio_16k=np.zeros(SAMPLE_RATE, "float32")), str(path))
    assert _image(path.read_bytes()).shape[:2] == (828, 900)  # and the input's row


def test_write_outputs_writes_the_wav_and_the_png_beside_it(tmp_path):
    import matplotlib.pyplot

    wav_path = str(tmp_path / "out.wav")
    paths = play.write_outputs(_performance(), wav_path)
    assert paths == [wav_path, str(tmp_path / "out.png")]
    audio, rate = soundfile.read(wav_path)
    assert rate == SAMPLE_RATE and audio.size == SAMPLE_RATE
    assert _image((tmp_path / "out.png").read_bytes()).shape[:2] == (621, 900)
    assert matplotlib.pyplot.get_fignums() == []  # pyplot's figure list is never touched
    assert play.write_outputs(_performance(), str(tmp_path / "quiet.wav"), plot=False) == [str(tmp_path / "quiet.wav")]
    assert not (tmp_path / "quiet.png").exists()
