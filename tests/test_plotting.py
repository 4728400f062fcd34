"""Tests for ddsp_core.plotting: known answers read back from the drawn Axes and the PNG bytes."""

import io

import matplotlib.image
import numpy as np
import pytest

from ddsp_core import plotting, spectral_ops

SAMPLE_RATE = 16000
FRAME_RATE = 250
N_SAMPLES = SAMPLE_RATE  # 1 s.
TONE_HZ = 440.0


def sine(hz=TONE_HZ, amplitude=0.5, n_samples=N_SAMPLES, sample_rate=SAMPLE_RATE):
    return amplitude * np.sin(2 * np.pi * hz * np.arange(n_samples) / sample_rate)


def image_size(png):
    """(height, width) in pixels of PNG bytes."""
    return matplotlib.image.imread(io.BytesIO(png), format="png").shape[:2]


def cell_centres(image):
    """(x centres of the columns, y centres of the rows) of an AxesImage, in data units."""
    n_rows, n_columns = image.get_array().shape
    left, right, bottom, top = image.get_extent()
    return (left + (np.arange(n_columns) + 0.5) * (right - left) / n_columns,
            bottom + (np.arange(n_rows) + 0.5) * (top - bottom) / n_rows)


# spectrogram_db

def test_spectrogram_db_peak_shape_and_level():
    n_fft, hop = 1024, 256
    spectrogram = plotting.spectrogram_db(sine(TONE_HZ), n_fft=n_fft, hop=hop)
    assert spectrogram.shape == (1 + (N_SAMPLES - n_fft) // hop, n_fft // 2 + 1)
    bin_hz = SAMPLE_RATE / n_fft
    peak_bins = np.argmax(spectrogram, axis=1)
    assert np.all(np.abs(peak_bins * bin_hz - TONE_HZ) <= bin_hz)
    # A sine of amplitude 0.5 reads 20 * log10(0.5) = -6.02 dB (less a little scalloping loss).
    assert spectrogram.max() == pytest.approx(-6.02, abs=0.5)


def test_spectrogram_db_of_silence_and_short_audio():
    silent = plotting.spectrogram_db(np.zeros(4096), floor_db=-100.0)
    assert np.all(silent == -100.0)
    short = plotting.spectrogram_db(sine(TONE_HZ, n_samples=300))  # Shorter than n_fft: one frame.
    assert short.shape == (1, 513) and np.all(np.isfinite(short))


def test_spectrogram_db_is_spectral_ops_stft_in_db():
    """The frames and window of spectral_ops.stft_np (here at a hop it gives exactly: 1024 * 0.25)."""
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, 5000)
    magnitude = np.abs(spectral_ops.stft_np(audio, frame_size=1024, overlap=0.75, pad_end=False))
    expected = 20 * np.log10(np.maximum(magnitude * 4.0 / 1024, 1e-6))
    np.testing.assert_allclose(plotting.spectrogram_db(audio, 1024, 256), expected, atol=1e-3)


@pytest.mark.parametrize("n_fft, hop", [(1000, 300), (1000, 700), (600, 1), (1023, 1022), (2048, 441)])
def test_spectrogram_db_frames_at_any_hop(n_fft, hop):
    """Hops that n_fft * (1 - overlap) cannot hold exactly still give their frame count."""
    n_samples = 7919
    spectrogram = plotting.spectrogram_db(np.ones(n_samples), n_fft=n_fft, hop=hop)
    assert spectrogram.shape == (1 + (n_samples - n_fft) // hop, n_fft // 2 + 1)


@pytest.mark.parametrize("hop", [0, 1024, 2000])
def test_spectrogram_db_refuses_a_hop_outside_the_frame(hop):
    with pytest.raises(ValueError, match=r"plotting\.py.*hop must be .* less than n_fft \(1024\), got " + str(hop)):
        plotting.spectrogram_db(np.ones(4096), n_fft=1024, hop=hop)


# Axes-level drawers

def test_spectrogram_row_of_most_energy_is_at_the_tone_and_columns_at_frame_centres():
    n_fft, hop = 1024, 256
    figure, ax = plotting.new_figure()
    image = plotting.draw_spectrogram(ax, plotting.spectrogram_db(sine(), n_fft, hop), SAMPLE_RATE, n_fft, hop)
    cells = np.asarray(image.get_array())  # [n_bins, n_frames]
    times, frequencies = cell_centres(image)
    loudest_rows = np.argmax(cells, axis=0)
    bin_hz = SAMPLE_RATE / n_fft
    # 440 Hz lies between bins 28 (437.5 Hz) and 29 (453.1 Hz), nearer 28.
    np.testing.assert_allclose(frequencies[loudest_rows], 437.5)
    assert abs(frequencies[loudest_rows[0]] - TONE_HZ) < bin_hz / 2
    # Column i is centred on frame i's centre: (i * hop + n_fft / 2) / sample_rate.
    np.testing.assert_allclose(times, (np.arange(cells.shape[1]) * hop + n_fft / 2) / SAMPLE_RATE)
    assert ax.get_ylim() == (0.0, SAMPLE_RATE / 2)
    assert image.get_clim() == pytest.approx((cells.max() - plotting.SPECTROGRAM_RANGE_DB, cells.max()))


def test_spectrogram_onset_shows_where_the_tone_starts():
    """A tone from 0.5 s on: the first column with energy holds a frame reaching past 0.5 s."""
    n_fft, hop = 1024, 256
    audio = np.where(np.arange(N_SAMPLES) >= N_SAMPLES // 2, sine(), 0.0)
    figure, ax = plotting.new_figure()
    image = plotting.draw_spectrogram(ax, plotting.spectrogram_db(audio, n_fft, hop), SAMPLE_RATE, n_fft, hop)
    times, _ = cell_centres(image)
    first_loud = np.argmax(np.asarray(image.get_array()).max(axis=0) > -60.0)
    half_frame_s = n_fft / 2 / SAMPLE_RATE
    assert 0.5 - half_frame_s < times[first_loud] <= 0.5 + half_frame_s


def test_draw_spectrogram_refuses_a_wrong_n_fft():
    figure, ax = plotting.new_figure()
    with pytest.raises(ValueError, match=r"plotting\.py.*513 bins.*n_fft=2048 has 1025"):
        plotting.draw_spectrogram(ax, np.zeros((10, 513)), SAMPLE_RATE, n_fft=2048)


def test_f0_curve_is_the_f0_given_solid_where_confident():
    f0_hz = np.linspace(200.0, 400.0, 100)
    confidence = np.where(np.arange(100) < 30, 0.2, 0.9)
    figure, ax = plotting.new_figure()
    confident = plotting.draw_f0(ax, f0_hz, FRAME_RATE, confidence, colour="C0", label="f0")
    faded, solid = ax.get_lines()
    np.testing.assert_allclose(faded.get_ydata(), f0_hz)
    np.testing.assert_allclose(solid.get_ydata()[30:], f0_hz[30:])
    assert np.all(np.isnan(solid.get_ydata()[:30]))
    np.testing.assert_allclose(solid.get_xdata(), np.arange(100) / FRAME_RATE)
    np.testing.assert_allclose(confident, f0_hz[30:])
    assert faded.get_alpha() == 0.25 and solid.get_label() == "f0"


def test_f0_curve_without_confidence_is_one_solid_line():
    f0_hz = np.array([220.0, np.nan, 230.0])
    figure, ax = plotting.new_figure()
    plotting.draw_f0(ax, f0_hz, FRAME_RATE)
    line, = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), [220.0, 0.0, 230.0])


def test_level_curve_is_the_level_given_with_silence_for_nan():
    figure, ax = plotting.new_figure()
    line = plotting.draw_level(ax, [-30.0, np.nan, -np.inf, np.inf, -5.0], FRAME_RATE)
    np.testing.assert_allclose(line.get_ydata(), [-30.0, plotting.SILENCE_DB, plotting.SILENCE_DB, 0.0, -5.0])
    np.testing.assert_allclose(line.get_xdata(), np.arange(5) / FRAME_RATE)


# Figures

def test_sample_page_figures_are_800_by_300_with_their_series():
    audio = sine()
    f0_hz, f0_gen = np.full(FRAME_RATE, TONE_HZ), np.full(FRAME_RATE, 660.0)
    loudness = np.linspace(-60.0, -10.0, FRAME_RATE)
    figures = {"spectrogram": plotting.spectrogram_figure(audio, sine(660.0), SAMPLE_RATE),
               "waveform": plotting.waveform_figure(audio, sine(660.0), SAMPLE_RATE),
               "f0": plotting.f0_figure(FRAME_RATE, f0_hz=f0_hz, f0_hz_gen=f0_gen, loudness_db=loudness)}
    for figure in figures.values():
        assert image_size(plotting.png_bytes(figure)) == (300, 800)
    f0_ax, twin = figures["f0"].axes
    np.testing.assert_allclose([line.get_ydata()[0] for line in f0_ax.get_lines()], [TONE_HZ, 660.0])
    np.testing.assert_allclose(twin.get_lines()[0].get_ydata(), loudness)
    assert f0_ax.get_ylim() == pytest.approx((0.8 * TONE_HZ, 1.25 * 660.0))
    original, generated = (ax.images[0] for ax in figures["spectrogram"].axes[:2])
    assert original.get_clim() == generated.get_clim()  # One colour scale for the pair.


def test_performance_figure_rows_size_and_curves():
    f0_hz = np.stack([np.full(FRAME_RATE, 440.0), np.full(FRAME_RATE, 659.26)])  # [n_voices, n_frames]
    level_db = np.stack([np.linspace(-40, -10, FRAME_RATE), np.linspace(-30, -20, FRAME_RATE)])
    figure = plotting.performance_figure(sine(), SAMPLE_RATE, f0_hz, level_db, FRAME_RATE, "loudness_db")
    output_ax, f0_ax, level_ax = figure.axes
    assert output_ax.get_title() == "output" and output_ax.images
    np.testing.assert_allclose([line.get_ydata() for line in f0_ax.get_lines()], f0_hz)
    np.testing.assert_allclose([line.get_ydata() for line in level_ax.get_lines()], level_db)
    assert f0_ax.get_yscale() == "log" and level_ax.get_ylabel() == "loudness_db (dB)"
    assert image_size(plotting.png_bytes(figure)) == (621, 900)  # 3 rows of 2.3 in, 10 in wide, 90 dpi.

    with_input = plotting.performance_figure(sine(), SAMPLE_RATE, f0_hz[0], level_db[0], FRAME_RATE,
                                             input_audio=sine(440.0, n_samples=8000, sample_rate=8000),
                                             input_sample_rate=8000)
    input_ax = with_input.axes[0]
    assert input_ax.get_title() == "input" and input_ax.get_ylim() == (0.0, 4000.0)
    assert image_size(plotting.png_bytes(with_input)) == (828, 900)


def test_performance_figure_needs_the_input_rate():
    with pytest.raises(ValueError, match=r"plotting\.py.*input_sample_rate"):
        plotting.performance_figure(sine(), SAMPLE_RATE, np.full(10, 440.0), np.zeros(10), FRAME_RATE,
                                    input_audio=sine())


def test_drawing_leaves_no_pyplot_figure():
    """Figures are never registered with pyplot: nothing to close, nothing left behind."""
    import matplotlib.pyplot

    assert matplotlib.pyplot.get_fignums() == []
    audio = sine()
    for figure in (plotting.spectrogram_figure(audio, audio, SAMPLE_RATE),
                   plotting.waveform_figure(audio, audio, SAMPLE_RATE),
                   plotting.f0_figure(FRAME_RATE, f0_hz=np.full(FRAME_RATE, TONE_HZ)),
                   plotting.performance_figure(audio, SAMPLE_RATE, np.full(FRAME_RATE, TONE_HZ),
                                               np.zeros(FRAME_RATE), FRAME_RATE)):
        assert plotting.png_bytes(figure).startswith(b"\x89PNG\r\n\x1a\n")
    assert matplotlib.pyplot.get_fignums() == []
