"""Every picture the project draws: spectrograms, waveforms, f0 and level curves.

Figures for a page or a file, each a `matplotlib.figure.Figure`, turned into PNG bytes by
`png_bytes`:

    spectrogram_figure(original, generated, sample_rate)   sample page: two spectrograms, one colour scale
    waveform_figure(original, generated, sample_rate)      sample page: both waveforms stacked
    f0_figure(frame_rate, f0_hz=..., loudness_db=...)      sample page: f0 (faded where unconfident), loudness
    performance_figure(audio, sample_rate, f0_hz, ...)     ddsp_play and the listening examples: input and
                                                           output spectrograms, the f0 and level curves played

They are built from Axes-level drawers that a caller can use on its own axes:
`draw_spectrogram` (of a `spectrogram_db` array), `draw_f0` and `draw_level`.

Spectrograms come from `spectral_ops.stft_np`, the STFT the losses use (periodic Hann).
Figures are made with `new_figure` on an Agg canvas and never registered with pyplot: no
global figure list, no backend switch, nothing to close; a figure is freed when dropped.
"""

import io

import numpy as np

from ddsp_core import spectral_ops

# Frames whose f0 confidence is below this are drawn faded (the tracker is guessing there).
F0_CONFIDENCE_THRESHOLD = 0.85
# Colour range of a spectrogram image in dB, below its loudest bin (or the pair's).
SPECTROGRAM_RANGE_DB = 80.0
# The sample page's figures: inches and dots per inch (800 x 300 pixels).
FIGURE_SIZE = (8.0, 3.0)
FIGURE_DPI = 100
# A performance figure: inches wide, inches per row, dots per inch (900 pixels wide, 207 a row).
PERFORMANCE_WIDTH, PERFORMANCE_ROW_HEIGHT, PERFORMANCE_DPI = 10.0, 2.3, 90
# STFT of every spectrogram drawn: frame length and hop, in samples.
N_FFT, HOP = 1024, 256
# Level curves: NaN and -inf are drawn at this (dB), +inf at 0 dB.
SILENCE_DB = -120.0
SPECTROGRAM_COLOURS = "magma"


def new_figure(nrows=1, ncols=1, figsize=FIGURE_SIZE, dpi=FIGURE_DPI, **subplot_kw):
    """A Figure on an Agg canvas (pyplot never sees it) and its axes, squeezed like `pyplot.subplots`.

    Args:
        nrows, ncols: Grid of axes.
        figsize: (width, height) in inches.
        dpi: Dots per inch, also used by `png_bytes`.
        **subplot_kw: Passed to `Figure.subplots` (sharex, sharey, ...).

    Returns:
        (figure, axes): one Axes for a 1 x 1 grid, else a NumPy array of them.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(nrows, ncols, **subplot_kw)


def png_bytes(figure):
    """The figure as PNG bytes, at its own dpi."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=figure.dpi)
    return buffer.getvalue()


def _finite_audio(audio):
    """1-D float64 audio with NaN as 0, +-inf as +-1, clipped to [-1, 1]."""
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float64).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(audio, -1.0, 1.0)


def spectrogram_db(audio, n_fft=N_FFT, hop=HOP, floor_db=-120.0):
    """Log-magnitude spectrogram of mono audio, by `spectral_ops.stft_np` (periodic Hann window).

    Frame i covers samples [i * hop, i * hop + n_fft) (audio shorter than n_fft is
    zero-padded to one frame; a tail shorter than a hop is left out); bin k is at
    k * sample_rate / n_fft Hz. Magnitudes are scaled so that a sine of amplitude A reads
    20 * log10(A) dB at its peak bin.

    Args:
        audio: Waveform, shape [n_samples]. NaN counts as 0.
        n_fft: Frame length and FFT size in samples.
        hop: Samples between frame starts, 1 <= hop < n_fft.
        floor_db: Lowest value returned (silence), in dB; keeps the result finite.

    Returns:
        float32 array, shape [n_frames, n_fft // 2 + 1], in dB, with
        n_frames = 1 + (max(n_samples, n_fft) - n_fft) // hop.
    """
    if not 1 <= hop < n_fft:
        raise ValueError(f"spectrogram_db (ddsp_core/plotting.py): hop must be at least 1 and less than n_fft "
                         f"({n_fft}), got {hop}; pass a hop below the frame length.")
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float64).reshape(-1))
    if audio.size < n_fft:
        audio = np.pad(audio, (0, n_fft - audio.size))
    # stft_np takes an overlap and truncates n_fft * (1 - overlap) to its hop; half a sample
    # more than the hop keeps that truncation at the hop whatever the rounding.
    overlap = 1.0 - (hop + 0.5) / n_fft
    spectrum = spectral_ops.stft_np(audio, frame_size=n_fft, overlap=overlap, pad_end=False)  # [n_frames, n_bins]
    # A periodic Hann window sums to n_fft / 2: a sine of amplitude A peaks at A * n_fft / 4.
    magnitude = np.abs(spectrum).astype(np.float64) * (4.0 / n_fft)
    return (20.0 * np.log10(np.maximum(magnitude, 10.0 ** (floor_db / 20.0)))).astype(np.float32)


def draw_spectrogram(ax, spectrogram, sample_rate, n_fft=N_FFT, hop=HOP, vmax=None,
                     range_db=SPECTROGRAM_RANGE_DB):
    """Draws a `spectrogram_db` array on `ax`: time in s on x, frequency in Hz on y, dB in colour.

    Each cell sits where it belongs: column i is centred on frame i's centre,
    (i * hop + n_fft / 2) / sample_rate s, and row k on bin k's frequency, k * sample_rate / n_fft
    Hz; the y axis shows 0 Hz to Nyquist.

    Args:
        ax: A matplotlib Axes.
        spectrogram: dB, [n_frames, n_fft // 2 + 1], as `spectrogram_db(audio, n_fft, hop)` returns.
        sample_rate: Hz, of the audio it was computed from.
        n_fft, hop: The STFT's frame length and hop in samples.
        vmax: Top of the colour scale in dB; the spectrogram's maximum if None.
        range_db: The colour scale spans [vmax - range_db, vmax].

    Returns:
        The AxesImage (its array is the spectrogram transposed, [n_bins, n_frames]).
    """
    spectrogram = np.asarray(spectrogram)
    n_frames, n_bins = spectrogram.shape
    if n_bins != n_fft // 2 + 1:
        raise ValueError(f"draw_spectrogram (ddsp_core/plotting.py): the spectrogram has {n_bins} bins, while an "
                         f"STFT of n_fft={n_fft} has {n_fft // 2 + 1}; pass the n_fft it was computed with.")
    vmax = float(spectrogram.max()) if vmax is None else float(vmax)
    bin_hz = sample_rate / n_fft
    first_centre_s = n_fft / 2.0 / sample_rate
    hop_s = hop / sample_rate
    extent = (first_centre_s - hop_s / 2.0, first_centre_s + (n_frames - 0.5) * hop_s,
              -bin_hz / 2.0, (n_bins - 0.5) * bin_hz)
    image = ax.imshow(spectrogram.T, origin="lower", aspect="auto", cmap=SPECTROGRAM_COLOURS,
                      interpolation="nearest", extent=extent, vmin=vmax - range_db, vmax=vmax)
    ax.set_ylim(0.0, sample_rate / 2.0)
    return image


def draw_f0(ax, f0_hz, frame_rate, f0_confidence=None, colour=None, label=None,
            threshold=F0_CONFIDENCE_THRESHOLD):
    """Draws an f0 curve on `ax`: solid where confident, faded where not (with a confidence).

    Args:
        ax: A matplotlib Axes.
        f0_hz: Hz, [n_frames]; NaN drawn as 0. Frame i at i / frame_rate s.
        frame_rate: Frames per second.
        f0_confidence: None (every frame confident), or [0, 1] per frame, [n_frames]
            (frames beyond its length count as confident).
        colour, label: Of the solid line.
        threshold: Frames with a confidence below it are unconfident.

    Returns:
        The f0 values of the confident frames, float64 [n_confident].
    """
    f0_hz = np.nan_to_num(np.asarray(f0_hz, dtype=np.float64).reshape(-1))
    times = np.arange(f0_hz.size) / frame_rate
    confident = np.ones(f0_hz.size, dtype=bool)
    if f0_confidence is not None:
        confidence = np.nan_to_num(np.asarray(f0_confidence, dtype=np.float64).reshape(-1))[:f0_hz.size]
        confident[:confidence.size] = confidence >= threshold
        ax.plot(times, f0_hz, color=colour, alpha=0.25, linewidth=1.0)
    ax.plot(times, np.where(confident, f0_hz, np.nan), color=colour, linewidth=1.5, label=label)
    return f0_hz[confident]


def draw_level(ax, level_db, frame_rate, colour=None, label=None, linestyle="-"):
    """Draws a level curve (loudness or power) on `ax`.

    Args:
        ax: A matplotlib Axes.
        level_db: dB, [n_frames]; NaN and -inf drawn at SILENCE_DB, +inf at 0 dB. Frame i at
            i / frame_rate s.
        frame_rate: Frames per second.
        colour, label, linestyle: Of the line.

    Returns:
        The Line2D drawn.
    """
    level_db = np.nan_to_num(np.asarray(level_db, dtype=np.float64).reshape(-1), nan=SILENCE_DB, posinf=0.0,
                             neginf=SILENCE_DB)
    line, = ax.plot(np.arange(level_db.size) / frame_rate, level_db, color=colour, linestyle=linestyle,
                    linewidth=1.0, label=label)
    return line


def spectrogram_figure(original, generated, sample_rate, n_fft=N_FFT, hop=HOP):
    """The spectrograms of `original` and `generated` side by side, one colour scale.

    Args:
        original, generated: Waveforms, shape [n_samples] each (lengths may differ).
        sample_rate: Sample rate of both, in Hz.
        n_fft, hop: STFT frame length and hop in samples (see `spectrogram_db`).

    Returns:
        A Figure: time in s on x, frequency in Hz (0 to Nyquist) on y, dB in colour; the colour
        range is SPECTROGRAM_RANGE_DB below the loudest bin of the two.
    """
    spectrograms = [spectrogram_db(audio, n_fft, hop) for audio in (original, generated)]
    vmax = max(float(spectrogram.max()) for spectrogram in spectrograms)
    figure, axes = new_figure(1, 2, sharey=True)
    for ax, spectrogram, label in zip(axes, spectrograms, ("original", "generated")):
        image = draw_spectrogram(ax, spectrogram, sample_rate, n_fft, hop, vmax=vmax)
        ax.set_title(label)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (Hz)")
    figure.colorbar(image, ax=axes, label="dB")
    return figure


def _envelope(audio, sample_rate, n_columns):
    """(times in s, minima, maxima) of `audio` over n_columns equal spans (fast to draw)."""
    edges = np.linspace(0, audio.size, n_columns + 1).astype(int)
    minima = np.minimum.reduceat(audio, edges[:-1])
    maxima = np.maximum.reduceat(audio, edges[:-1])
    return edges[:-1] / sample_rate, minima, maxima


def waveform_figure(original, generated, sample_rate):
    """Both waveforms stacked (original above), same amplitude scale, time in s.

    Args:
        original, generated: Waveforms, shape [n_samples] each; NaN drawn as 0, clipped to [-1, 1].
        sample_rate: Sample rate of both, in Hz.

    Returns:
        A Figure. Audio longer than two samples a pixel column is drawn as its min-max envelope.
    """
    signals = [_finite_audio(audio) for audio in (original, generated)]
    peak = max([1e-3] + [float(np.abs(s).max()) for s in signals if s.size])
    figure, axes = new_figure(2, 1, sharex=True, sharey=True)
    n_columns = 2 * int(FIGURE_SIZE[0] * FIGURE_DPI)
    for ax, signal, label, colour in zip(axes, signals, ("original", "generated"), ("C0", "C1")):
        if signal.size > n_columns:
            times, minima, maxima = _envelope(signal, sample_rate, n_columns)
            ax.fill_between(times, minima, maxima, color=colour, linewidth=0.5)
        elif signal.size:
            ax.plot(np.arange(signal.size) / sample_rate, signal, color=colour, linewidth=0.8)
        ax.set_ylabel(label)
    axes[0].set_ylim(-1.05 * peak, 1.05 * peak)
    axes[0].set_xlim(0.0, max(max(s.size for s in signals), 1) / sample_rate)
    axes[1].set_xlabel("time (s)")
    return figure


def f0_figure(frame_rate, f0_hz=None, f0_confidence=None, f0_hz_gen=None, f0_confidence_gen=None,
              loudness_db=None, loudness_db_gen=None):
    """The input f0 and the generated audio's f0 over time, with loudness on a twin axis.

    Frames whose confidence is below F0_CONFIDENCE_THRESHOLD are drawn faded, and the f0 axis
    is scaled to the confident frames (unconfident ones may be far off). Every series is
    optional; with none of them the image says so.

    Args:
        frame_rate: Frames per second of every series.
        f0_hz: Input f0 in Hz, shape [n_frames].
        f0_confidence: Its confidence in [0, 1], shape [n_frames].
        f0_hz_gen: f0 of the generated audio in Hz, shape [n_frames'].
        f0_confidence_gen: Its confidence in [0, 1], shape [n_frames'].
        loudness_db: Input loudness in dB, shape [n_frames].
        loudness_db_gen: Loudness of the generated audio in dB, shape [n_frames'].

    Returns:
        A Figure.
    """
    figure, ax = new_figure()
    confident = []
    if f0_hz is not None:
        confident.append(draw_f0(ax, f0_hz, frame_rate, f0_confidence, "C0", "input f0"))
    if f0_hz_gen is not None:
        confident.append(draw_f0(ax, f0_hz_gen, frame_rate, f0_confidence_gen, "C1", "generated f0"))
    values = np.concatenate(confident) if confident else np.zeros([0])
    values = values[values > 0]
    if values.size:
        ax.set_ylim(0.8 * values.min(), 1.25 * values.max())
    handles, labels = ax.get_legend_handles_labels()
    series = [(values, colour, label) for values, colour, label in
              ((loudness_db, "0.5", "input loudness"), (loudness_db_gen, "C1", "generated loudness"))
              if values is not None]
    if series:
        twin = ax.twinx()
        for values, colour, label in series:
            draw_level(twin, values, frame_rate, colour, label, linestyle="--")
        twin.set_ylabel("loudness (dB)")
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if handles:
        ax.legend(handles, labels, loc="upper right", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no f0 or loudness given", transform=ax.transAxes, ha="center", va="center")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("f0 (Hz)")
    return figure


def performance_figure(audio, sample_rate, f0_hz, level_db, frame_rate, level_name="level",
                       input_audio=None, input_sample_rate=None):
    """What an instrument played: the recording's spectrogram (if any), the output's, and the
    f0 and level curves that drove it, one row each over a shared time axis.

    Args:
        audio: The output, [n_samples] at sample_rate.
        sample_rate: Hz.
        f0_hz: The f0 curves played, Hz, [n_voices, n_frames] (or [n_frames]); f0 on a log axis.
        level_db: The level curves played, dB, [n_voices, n_frames] (or [n_frames]).
        frame_rate: Frames per second of the curves.
        level_name: What the level is ('loudness_db', 'power_db'): the level axis' label.
        input_audio: The recording played from (timbre transfer), [n_samples'], or None.
        input_sample_rate: Hz of input_audio; required with it.

    Returns:
        A Figure PERFORMANCE_WIDTH inches wide, PERFORMANCE_ROW_HEIGHT a row (3 rows, or 4 with
        an input), at PERFORMANCE_DPI.
    """
    if input_audio is not None and input_sample_rate is None:
        raise ValueError("performance_figure (ddsp_core/plotting.py): input_audio was given without its "
                         "input_sample_rate; pass the recording's sample rate in Hz.")
    f0_hz, level_db = np.atleast_2d(f0_hz), np.atleast_2d(level_db)  # [n_voices, n_frames]
    recordings = [] if input_audio is None else [("input", input_audio, input_sample_rate)]
    recordings.append(("output", audio, sample_rate))
    rows = len(recordings) + 2
    figure, axes = new_figure(rows, 1, figsize=(PERFORMANCE_WIDTH, PERFORMANCE_ROW_HEIGHT * rows),
                              dpi=PERFORMANCE_DPI, sharex=True)
    for ax, (title, recording, rate) in zip(axes, recordings):
        draw_spectrogram(ax, spectrogram_db(recording), rate)
        ax.set_ylabel("Hz")
        ax.set_title(title)
    f0_ax, level_ax = axes[-2], axes[-1]
    for voice in range(f0_hz.shape[0]):
        draw_f0(f0_ax, f0_hz[voice], frame_rate, colour=f"C{voice % 10}")
        draw_level(level_ax, level_db[voice], frame_rate, colour=f"C{voice % 10}")
    f0_ax.set_ylabel("f0 (Hz)")
    f0_ax.set_yscale("log")
    level_ax.set_ylabel(f"{level_name} (dB)")
    level_ax.set_xlabel("time (s)")
    return figure
