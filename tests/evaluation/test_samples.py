"""Tests for ddsp_core.evaluation.samples: real WAV, PNG and HTML files, read back and checked."""

import html
import io
import pathlib
import re

import matplotlib.image
import numpy as np
import pytest
import soundfile

from ddsp_core.evaluation import samples
from ddsp_core.training import summaries
from tests.training.test_summaries import read_events

SAMPLE_RATE = 16000
FRAME_RATE = 250
N_SAMPLES = SAMPLE_RATE  # 1 s.
N_FRAMES = FRAME_RATE
ORIGINAL_HZ, GENERATED_HZ = 440.0, 660.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
KINDS = ("spectrogram", "waveform", "f0")


def sine(hz, amplitude=0.5, n_samples=N_SAMPLES):
    return amplitude * np.sin(2 * np.pi * hz * np.arange(n_samples) / SAMPLE_RATE)


def sine_batch(batch_size=2):
    """A 440 Hz batch with unconfident f0 over its first half, and a 660 Hz 'generated' batch."""
    confidence = np.where(np.arange(N_FRAMES) < N_FRAMES // 2, 0.2, 0.95)
    batch = {
        "audio": np.stack([sine(ORIGINAL_HZ)] * batch_size),  # [batch, n_samples]
        "f0_hz": np.full([batch_size, N_FRAMES], ORIGINAL_HZ),
        "f0_confidence": np.tile(confidence, [batch_size, 1]),
        "loudness_db": np.tile(np.linspace(-60.0, -10.0, N_FRAMES), [batch_size, 1]),
    }
    return batch, np.stack([sine(GENERATED_HZ)] * batch_size)


def peak_hz(audio, sample_rate=SAMPLE_RATE):
    """Frequency of the largest FFT bin, in Hz (1 Hz resolution for 1 s)."""
    spectrum = np.abs(np.fft.rfft(audio))
    return np.argmax(spectrum) * sample_rate / len(audio)


def read_png(path):
    """(file bytes, decoded image [height, width, channels] float in [0, 1])."""
    data = pathlib.Path(path).read_bytes()
    return data, matplotlib.image.imread(io.BytesIO(data), format="png")


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """write_samples for the sine batch with metrics and a SummaryWriter; (save_dir, paths, log_dir)."""
    save_dir = tmp_path_factory.mktemp("run")
    log_dir = save_dir / "summaries"
    batch, audio_gen = sine_batch()
    with summaries.SummaryWriter(log_dir) as writer:
        paths = samples.write_samples(
            str(save_dir), 1200, batch, audio_gen, SAMPLE_RATE, FRAME_RATE,
            f0_hz_gen=np.full([2, N_FRAMES], GENERATED_HZ), f0_confidence_gen=np.ones([2, N_FRAMES]),
            metrics={"spectral_loss": 1.2345, "f0_error_cents": 12.5}, summary_writer=writer,
            title="Clarinet <solo> & reverb")
    return save_dir, paths, log_dir


def test_layout_and_returned_paths(written):
    save_dir, paths, _ = written
    step_dir = save_dir / "samples" / "step_00001200"
    assert paths["html"] == str(step_dir / "index.html")
    assert paths["index"] == str(save_dir / "samples" / "index.html")
    assert paths["wav"] == [str(step_dir / f"{i:02d}_{kind}.wav")
                            for i in range(2) for kind in ("original", "generated")]
    assert paths["png"] == [str(step_dir / f"{i:02d}_{kind}.png") for i in range(2) for kind in KINDS]
    assert sorted(p.name for p in step_dir.iterdir()) == sorted(
        [p.rsplit("/", 1)[1] for p in paths["wav"] + paths["png"]] + ["index.html"])


def test_wav_files_have_rate_length_and_pitch(written):
    _, paths, _ = written
    for path in paths["wav"]:
        info = soundfile.info(path)
        assert (info.samplerate, info.frames, info.channels) == (SAMPLE_RATE, N_SAMPLES, 1)
        assert info.subtype == "PCM_16"
        audio, _ = soundfile.read(path)
        expected_hz = ORIGINAL_HZ if path.endswith("_original.wav") else GENERATED_HZ
        assert peak_hz(audio) == expected_hz
        assert np.max(np.abs(audio)) == pytest.approx(0.5, abs=1e-3)


def test_pngs_are_valid_images_with_content(written):
    _, paths, _ = written
    for path in paths["png"]:
        data, image = read_png(path)
        assert data.startswith(PNG_MAGIC)
        assert image.shape[:2] == (300, 800)  # 8 x 3 inches at 100 dpi.
        assert np.all(np.isfinite(image)) and image.std() > 0.01  # Not a blank figure.


def test_step_page_links_everything_relatively(written):
    save_dir, paths, _ = written
    page = pathlib.Path(paths["html"]).read_text(encoding="utf-8")
    for i in range(2):
        for kind in ("original", "generated"):
            assert re.search(rf'<audio controls[^>]* src="{i:02d}_{kind}\.wav"', page)
        for kind in KINDS:
            assert f'<img src="{i:02d}_{kind}.png"' in page
    assert "02_original.wav" not in page
    assert '<a href="../index.html">' in page
    assert str(save_dir) not in page and "://" not in page  # Nothing absolute, nothing external.
    assert "Step 1200" in page


def test_step_page_shows_metrics_and_escapes_text(written):
    _, paths, _ = written
    page = pathlib.Path(paths["html"]).read_text(encoding="utf-8")
    for name, value in (("spectral_loss", "1.2345"), ("f0_error_cents", "12.5")):
        assert re.search(rf"<td>{name}</td><td[^>]*>{re.escape(value)}</td>", page)
    assert html.escape("Clarinet <solo> & reverb") in page
    assert "<solo>" not in page


def test_summary_writer_gets_audio_and_images(written):
    _, _, log_dir = written
    records = {tag: (step, plugin, value) for step, tag, plugin, _, value in read_events(log_dir)}
    expected = {"audio/original", "audio/generated"} | {f"{kind}/{i}" for kind in KINDS for i in range(2)}
    assert set(records) == expected
    assert all(step == 1200 for step, _, _ in records.values())
    for tag in ("audio/original", "audio/generated"):
        _, plugin, value = records[tag]
        assert plugin == "audio" and value.shape == (2, 2)
        clip, rate = soundfile.read(io.BytesIO(value[1, 0]))
        assert rate == SAMPLE_RATE and len(clip) == N_SAMPLES
        assert peak_hz(clip) == (ORIGINAL_HZ if tag == "audio/original" else GENERATED_HZ)
    _, plugin, value = records["f0/1"]
    assert plugin == "images" and value[2].startswith(PNG_MAGIC)


def test_index_lists_step_pages_newest_first(tmp_path):
    batch, audio_gen = sine_batch(batch_size=1)
    batch = {"audio": batch["audio"][:, :4000]}  # Short and without features: fast.
    for step in (2000, 100, 30000):  # Not written in step order.
        paths = samples.write_samples(tmp_path, step, batch, audio_gen[:, :4000], SAMPLE_RATE, FRAME_RATE)
    index = pathlib.Path(paths["index"]).read_text(encoding="utf-8")
    links = re.findall(r'<a href="(step_\d+/index\.html)">', index)
    assert links == ["step_00030000/index.html", "step_00002000/index.html", "step_00000100/index.html"]
    assert samples.list_steps(str(tmp_path / "samples")) == [30000, 2000, 100]


def test_silent_and_nan_audio_give_finite_images(tmp_path):
    batch = {"audio": np.zeros([1, 8000])}
    audio_gen = np.full([1, 8000], np.nan)
    paths = samples.write_samples(tmp_path, 0, batch, audio_gen, SAMPLE_RATE, FRAME_RATE)
    for path in paths["png"]:
        data, image = read_png(path)
        assert data.startswith(PNG_MAGIC) and np.all(np.isfinite(image))
    audio, _ = soundfile.read(paths["wav"][1])
    np.testing.assert_array_equal(audio, 0.0)


def test_max_examples_and_channel_axes(tmp_path):
    batch, audio_gen = sine_batch(batch_size=3)
    batch = {name: values[..., np.newaxis] for name, values in batch.items()}  # [batch, n, 1]
    paths = samples.write_samples(tmp_path, 5, batch, audio_gen[..., np.newaxis], SAMPLE_RATE, FRAME_RATE,
                                  max_examples=1)
    assert [p.rsplit("/", 1)[1] for p in paths["wav"]] == ["00_original.wav", "00_generated.wav"]
    assert len(paths["png"]) == 3


def test_generated_batch_must_match(tmp_path):
    batch, audio_gen = sine_batch(batch_size=2)
    with pytest.raises(ValueError, match="audio_gen"):
        samples.write_samples(tmp_path, 0, batch, audio_gen[:1], SAMPLE_RATE, FRAME_RATE)


# spectrogram_db and the figures moved to ddsp_core.plotting: tests/test_plotting.py.


def test_wav_bytes_clips_and_replaces_nan():
    data = samples.wav_bytes(np.array([2.0, -3.0, np.nan, 0.25]), sample_rate=22050)
    audio, rate = soundfile.read(io.BytesIO(data))
    assert rate == 22050
    np.testing.assert_allclose(audio, [1.0, -1.0, 0.0, 0.25], atol=1.0 / 2**15)
    assert soundfile.info(io.BytesIO(data)).subtype == "PCM_16"


def test_writes_to_gcs(gcs_emulator, gcs_bucket):
    batch, audio_gen = sine_batch(batch_size=1)
    save_dir = f"{gcs_bucket}/runs/clarinet/"  # A trailing slash must not double up.
    for step in (10, 20):
        paths = samples.write_samples(save_dir, step, batch, audio_gen, SAMPLE_RATE, FRAME_RATE,
                                      metrics={"loss": 0.5})
    step_dir = f"{gcs_bucket}/runs/clarinet/samples/step_00000020"
    assert paths["html"] == f"{step_dir}/index.html"
    names = ["index.html", "00_original.wav", "00_generated.wav"] + [f"00_{kind}.png" for kind in KINDS]
    assert set(gcs_emulator.list(f"{step_dir}/")) == {f"{step_dir}/{name}" for name in names}
    audio, rate = soundfile.read(io.BytesIO(gcs_emulator.download(f"{step_dir}/00_generated.wav")))
    assert rate == SAMPLE_RATE and peak_hz(audio) == GENERATED_HZ
    index = gcs_emulator.download(paths["index"]).decode()
    assert re.findall(r'href="(step_\d+)/', index) == ["step_00000020", "step_00000010"]


def test_step_page_shows_each_examples_metrics_and_the_note():
    page = samples.step_page_html("run", 7, {"spectral_loss": 1.5}, 2,
                                  example_metrics=[{"silent_level_db": -61.25}, {"onset_lag_median_ms": 12.0}],
                                  note="Measured on training examples <here>.")
    assert "Measured on training examples &lt;here&gt;." in page
    first, second = page.split('<section class="example">')[1:]
    assert "silent_level_db" in first and "-61.25" in first and "onset_lag_median_ms" not in first
    assert "onset_lag_median_ms" in second and ">12<" in second


PER_PITCH_ROWS = [
    {"midi": 60, "note": "C4", "n_frames": 100, "loudness_l1_db": 2.0, "f0_l1_cents": 0.0, "f0_outlier_ratio": 0.0,
     "harmonic_share": 0.9},
    {"midi": 67, "note": "G4", "n_frames": 150, "loudness_l1_db": 0.0, "f0_l1_cents": 100.0, "f0_outlier_ratio": 1.0,
     "harmonic_share": None},
]


def test_step_page_shows_the_per_pitch_table_under_the_metrics_table():
    page = samples.step_page_html("run", 7, {"spectral_loss": 1.5}, 1, per_pitch=PER_PITCH_ROWS)
    metrics_table, rest = page.split('<table class="metrics per-pitch">')
    assert "spectral_loss" in metrics_table and '<section class="example">' in rest
    table = rest.split("</table>")[0]
    assert re.findall(r"<th>([^<]*)</th>", table) == ["note", "MIDI", "frames", "loudness L1 (dB)",
                                                      "f0 L1, every frame (cents)", "f0 outliers, every frame",
                                                      "harmonic share"]
    rows = [re.findall(r"<td[^>]*>([^<]*)</td>", row) for row in table.split("<tr>")[2:]]
    assert rows == [["C4", "60", "100", "2", "0", "0", "0.9"], ["G4", "67", "150", "0", "100", "1", "-"]]


def test_per_pitch_table_has_no_harmonic_share_column_without_it_and_nothing_without_rows():
    rows = [{key: value for key, value in row.items() if key != "harmonic_share"} for row in PER_PITCH_ROWS]
    assert "harmonic share" not in samples.per_pitch_table(rows)
    assert samples.per_pitch_table([]) == ""
    assert "per-pitch" not in samples.step_page_html("run", 7, {}, 1)
