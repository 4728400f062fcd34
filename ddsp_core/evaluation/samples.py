"""Listenable results without TensorBoard: WAV files, plots and an HTML page per step.

`write_samples` lays out, under `save_dir`:

    samples/index.html                        links to every step page, newest first
    samples/step_00001000/index.html          title, metrics and per-pitch tables, players and plots
    samples/step_00001000/00_original.wav     16-bit PCM, clipped to [-1, 1]
    samples/step_00001000/00_generated.wav
    samples/step_00001000/00_spectrogram.png  log-magnitude spectrograms, one colour scale
    samples/step_00001000/00_waveform.png
    samples/step_00001000/00_f0.png           f0 (Hz) and loudness (dB) over time
    samples/step_00001000/01_original.wav ...

Every link is relative, so `samples/` or one step folder can be downloaded and opened as
is. Files are written through `storage`, so `save_dir` may be a gs:// URL. Plots use
matplotlib's object API on the Agg canvas (no pyplot state); everything else is NumPy.
"""

import base64
import html
import io
import re

import numpy as np

from ddsp_core import progress
from ddsp_core.io import storage

# Frames whose f0 confidence is below this are drawn faded (the tracker is guessing there).
F0_CONFIDENCE_THRESHOLD = 0.85
# Colour range of the spectrogram images in dB, below the loudest bin of the pair.
SPECTROGRAM_RANGE_DB = 80.0
# Size of each figure: inches and dots per inch (800 x 300 pixels).
FIGURE_SIZE = (8.0, 3.0)
FIGURE_DPI = 100
# Folder under save_dir that holds the step folders and the index page.
SAMPLES_FOLDER = "samples"
_STEP_PAGE = re.compile(r"step_(\d+)/index\.html$")
_PAGE_STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table.metrics { border-collapse: collapse; margin: 1em 0; }
table.metrics th, table.metrics td { border: 1px solid #ccc; padding: 0.2em 0.8em; text-align: left; }
table.metrics td.value { font-family: monospace; text-align: right; }
section.example { border-top: 1px solid #ccc; padding: 0.5em 0 1em; }
div.players { display: flex; gap: 2em; flex-wrap: wrap; }
figure { margin: 0.3em 0; }
img { max-width: 100%; display: block; margin: 0.3em 0; }
"""


def _batched(values, name, batch_size=None):
    """`values` as float64 [batch, n]; accepts [n], [batch, n] or [batch, n, 1]."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[np.newaxis, :]  # [1, n]
    if values.ndim == 3 and values.shape[-1] == 1:
        values = values[..., 0]  # [batch, n]
    if values.ndim != 2:
        raise ValueError(f"{name} must have shape [batch, n] (or [batch, n, 1]), got {values.shape}.")
    if batch_size is not None and values.shape[0] < batch_size:
        raise ValueError(f"{name} holds {values.shape[0]} examples, expected {batch_size}.")
    return values


def _clean_audio(audio):
    """1-D audio with NaN replaced by 0, +-inf by +-1, clipped to [-1, 1]."""
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float64).reshape(-1), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(audio, -1.0, 1.0)


def wav_bytes(audio, sample_rate):
    """Encodes mono audio as a 16-bit PCM WAV file.

    Args:
        audio: Waveform, shape [n_samples], nominally in [-1, 1]; NaN becomes 0 and values
            are clipped to [-1, 1].
        sample_rate: Sample rate in Hz.

    Returns:
        The bytes of the WAV file.
    """
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, _clean_audio(audio), int(sample_rate), format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def spectrogram_db(audio, n_fft=1024, hop=256, floor_db=-120.0):
    """Log-magnitude spectrogram of mono audio, by NumPy STFT over Hann-windowed frames.

    Frame i covers samples [i * hop, i * hop + n_fft) (audio shorter than n_fft is
    zero-padded to one frame); bin k is at k * sample_rate / n_fft Hz. Magnitudes are
    scaled so that a sine of amplitude A reads 20 * log10(A) dB at its peak bin.

    Args:
        audio: Waveform, shape [n_samples]. NaN counts as 0.
        n_fft: Frame length and FFT size in samples.
        hop: Samples between frame starts.
        floor_db: Lowest value returned (silence), in dB; keeps the result finite.

    Returns:
        float32 array, shape [n_frames, n_fft // 2 + 1], in dB, with
        n_frames = 1 + (max(n_samples, n_fft) - n_fft) // hop.
    """
    audio = np.nan_to_num(np.asarray(audio, dtype=np.float64).reshape(-1))
    if audio.size < n_fft:
        audio = np.pad(audio, (0, n_fft - audio.size))
    window = np.hanning(n_fft + 1)[:-1]  # Periodic Hann, [n_fft].
    frames = np.lib.stride_tricks.sliding_window_view(audio, n_fft)[::hop]  # [n_frames, n_fft]
    magnitude = np.abs(np.fft.rfft(frames * window, axis=-1)) * (2.0 / window.sum())  # [n_frames, n_bins]
    return (20.0 * np.log10(np.maximum(magnitude, 10.0 ** (floor_db / 20.0)))).astype(np.float32)


def _new_figure(nrows=1, ncols=1, **subplot_kw):
    """A Figure on an Agg canvas (no pyplot) and its axes (squeezed like pyplot.subplots)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=FIGURE_SIZE, dpi=FIGURE_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.subplots(nrows, ncols, **subplot_kw)


def _png_bytes(figure):
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI)
    return buffer.getvalue()


def spectrogram_png(original, generated, sample_rate, n_fft=1024, hop=256):
    """PNG of the spectrograms of `original` and `generated` side by side, one colour scale.

    Args:
        original, generated: Waveforms, shape [n_samples] each (lengths may differ).
        sample_rate: Sample rate of both, in Hz.
        n_fft, hop: STFT frame length and hop in samples (see `spectrogram_db`).

    Returns:
        PNG bytes: time in s on x, frequency in Hz (0 to Nyquist) on y, dB in colour; the
        colour range is SPECTROGRAM_RANGE_DB below the loudest bin of the two.
    """
    spectrograms = [spectrogram_db(audio, n_fft, hop) for audio in (original, generated)]
    vmax = max(float(spec.max()) for spec in spectrograms)
    figure, axes = _new_figure(1, 2, sharey=True)
    for ax, audio, spec, label in zip(axes, (original, generated), spectrograms, ("original", "generated")):
        duration = max(np.size(audio), n_fft) / sample_rate
        image = ax.imshow(spec.T, origin="lower", aspect="auto", cmap="magma", interpolation="nearest",
                          extent=(0.0, duration, 0.0, sample_rate / 2.0),
                          vmin=vmax - SPECTROGRAM_RANGE_DB, vmax=vmax)
        ax.set_title(label)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (Hz)")
    figure.colorbar(image, ax=axes, label="dB")
    return _png_bytes(figure)


def _envelope(audio, sample_rate, n_columns):
    """(times in s, minima, maxima) of `audio` over n_columns equal spans (fast to draw)."""
    edges = np.linspace(0, audio.size, n_columns + 1).astype(int)
    minima = np.minimum.reduceat(audio, edges[:-1])
    maxima = np.maximum.reduceat(audio, edges[:-1])
    return edges[:-1] / sample_rate, minima, maxima


def waveform_png(original, generated, sample_rate):
    """PNG of both waveforms stacked (original above), same amplitude scale, time in s.

    Args:
        original, generated: Waveforms, shape [n_samples] each; NaN drawn as 0.
        sample_rate: Sample rate of both, in Hz.
    """
    signals = [_clean_audio(audio) for audio in (original, generated)]
    peak = max([1e-3] + [float(np.abs(s).max()) for s in signals if s.size])
    figure, axes = _new_figure(2, 1, sharex=True, sharey=True)
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
    return _png_bytes(figure)


def _plot_f0(ax, f0_hz, f0_confidence, frame_rate, colour, label):
    """Draws f0 faded everywhere and solid where confidence >= the threshold; returns the solid values."""
    f0_hz = np.nan_to_num(np.asarray(f0_hz, dtype=np.float64).reshape(-1))
    times = np.arange(f0_hz.size) / frame_rate
    confident = np.ones(f0_hz.size, dtype=bool)
    if f0_confidence is not None:
        confidence = np.nan_to_num(np.asarray(f0_confidence, dtype=np.float64).reshape(-1))
        confident[:confidence.size] = confidence[:f0_hz.size] >= F0_CONFIDENCE_THRESHOLD
    ax.plot(times, f0_hz, color=colour, alpha=0.25, linewidth=1.0)
    ax.plot(times, np.where(confident, f0_hz, np.nan), color=colour, linewidth=1.5, label=label)
    return f0_hz[confident]


def f0_png(frame_rate, f0_hz=None, f0_confidence=None, f0_hz_gen=None, f0_confidence_gen=None,
           loudness_db=None, loudness_db_gen=None):
    """PNG of the input f0 and the generated audio's f0 over time, with loudness on a twin axis.

    Frames whose confidence is below F0_CONFIDENCE_THRESHOLD are drawn faded. Every series
    is optional; with none of them the image says so.

    Args:
        frame_rate: Frames per second of every series.
        f0_hz: Input f0 in Hz, shape [n_frames].
        f0_confidence: Its confidence in [0, 1], shape [n_frames].
        f0_hz_gen: f0 of the generated audio in Hz, shape [n_frames'].
        f0_confidence_gen: Its confidence in [0, 1], shape [n_frames'].
        loudness_db: Input loudness in dB, shape [n_frames].
        loudness_db_gen: Loudness of the generated audio in dB, shape [n_frames'].
    """
    figure, ax = _new_figure()
    confident = []
    if f0_hz is not None:
        confident.append(_plot_f0(ax, f0_hz, f0_confidence, frame_rate, "C0", "input f0"))
    if f0_hz_gen is not None:
        confident.append(_plot_f0(ax, f0_hz_gen, f0_confidence_gen, frame_rate, "C1", "generated f0"))
    values = np.concatenate(confident) if confident else np.zeros([0])
    values = values[values > 0]
    if values.size:  # Scale to the confident frames; unconfident ones may be far off.
        ax.set_ylim(0.8 * values.min(), 1.25 * values.max())
    handles, labels = ax.get_legend_handles_labels()
    series = [(values, colour, label) for values, colour, label in
              ((loudness_db, "0.5", "input loudness"), (loudness_db_gen, "C1", "generated loudness"))
              if values is not None]
    if series:
        twin = ax.twinx()
        for values, colour, label in series:
            loudness = np.nan_to_num(np.asarray(values, dtype=np.float64).reshape(-1), nan=-120.0,
                                     posinf=0.0, neginf=-120.0)
            twin.plot(np.arange(loudness.size) / frame_rate, loudness, color=colour, linestyle="--",
                      linewidth=1.0, label=label)
        twin.set_ylabel("loudness (dB)")
        more_handles, more_labels = twin.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    if handles:
        ax.legend(handles, labels, loc="upper right", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no f0 or loudness given", transform=ax.transAxes, ha="center", va="center")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("f0 (Hz)")
    return _png_bytes(figure)


def _format_value(value):
    try:
        return f"{float(value):.6g}"
    except (TypeError, ValueError):
        return str(value)


def _metrics_table(metrics):
    """An HTML table of {name: value} (escaped), or '' when empty."""
    if not metrics:
        return ""
    rows = "".join(f"<tr><td>{html.escape(str(name))}</td>"
                   f'<td class="value">{html.escape(_format_value(value))}</td></tr>'
                   for name, value in metrics.items())
    return f'<table class="metrics"><tr><th>metric</th><th>value</th></tr>{rows}</table>'


# Columns of the per-pitch table: (row key, heading).
PER_PITCH_COLUMNS = (("note", "note"), ("midi", "MIDI"), ("n_frames", "frames"), ("loudness_l1_db", "loudness L1 (dB)"),
                     ("f0_l1_cents", "f0 L1 (cents)"), ("f0_outlier_ratio", "f0 outliers"),
                     ("harmonic_share", "harmonic share"))


def per_pitch_table(rows):
    """An HTML table of per-pitch rows (`pitch_metrics.per_pitch_rows`), or '' when there are none.

    Its columns are those of PER_PITCH_COLUMNS that some row has (no harmonic share column
    for a model without separate synths); a missing or None value shows as '-'.
    """
    if not rows:
        return ""
    columns = [(key, heading) for key, heading in PER_PITCH_COLUMNS if any(key in row for row in rows)]
    head = "".join(f"<th>{html.escape(heading)}</th>" for _, heading in columns)

    def cell(row, key):
        value = row.get(key)
        if key == "note":
            return f"<td>{html.escape(str(value))}</td>"
        return f'<td class="value">{html.escape("-" if value is None else _format_value(value))}</td>'

    body = "".join("<tr>" + "".join(cell(row, key) for key, _ in columns) + "</tr>" for row in rows)
    return f'<table class="metrics per-pitch"><tr>{head}</tr>{body}</table>'


def step_page_html(title, step, metrics, n_examples, example_metrics=None, note=None, per_pitch=None):
    """The HTML page of one step: title, metrics table and, per example, players and plots.

    It links the files of `write_samples` by relative path ("00_original.wav", ...) and
    `../index.html`; all text is escaped. `example_metrics` (a list of {name: value}, one
    per example) adds a table to each example; `note` is a sentence shown under the title
    (e.g. that the examples are training data); `per_pitch` (rows by input MIDI note, see
    `per_pitch_table`) adds a table under the metrics table.
    """
    escape = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(title)} - step {step}</title>", f"<style>{_PAGE_STYLE}</style></head><body>",
             '<p><a href="../index.html">All steps</a></p>',
             f"<h1>{escape(title)}</h1>", f"<p>Step {step}</p>"]
    if note:
        parts.append(f'<p class="note"><strong>{escape(str(note))}</strong></p>')
    parts.append(_metrics_table(metrics))
    if per_pitch:
        parts.append("<h2>By pitch (input MIDI note, confidently pitched frames of these examples)</h2>")
        parts.append(per_pitch_table(per_pitch))
    for i in range(n_examples):
        parts.append(f'<section class="example"><h2>Example {i:02d}</h2>')
        if example_metrics is not None and i < len(example_metrics):
            parts.append(_metrics_table(example_metrics[i]))
        parts.append('<div class="players">')
        for kind in ("original", "generated"):
            src = escape(f"{i:02d}_{kind}.wav", quote=True)
            parts.append(f'<figure><figcaption>{kind}</figcaption>'
                         f'<audio controls preload="metadata" src="{src}"></audio></figure>')
        parts.append("</div>")
        for kind in ("spectrogram", "waveform", "f0"):
            src = escape(f"{i:02d}_{kind}.png", quote=True)
            parts.append(f'<img src="{src}" alt="{kind} of example {i:02d}" loading="lazy">')
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def index_html(steps, title="DDSP samples"):
    """The index page linking `step_XXXXXXXX/index.html` for each of `steps`, newest first."""
    escape = html.escape
    items = "\n".join(f'<li><a href="step_{step:08d}/index.html">Step {step}</a></li>'
                      for step in sorted(set(steps), reverse=True))
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"<style>{_PAGE_STYLE}</style></head><body>\n<h1>{escape(title)}</h1>\n<ul>\n{items}\n</ul>\n"
            "</body></html>\n")


_LOCAL_SRC = re.compile(r'(src|href)="(\d\d_[a-z0-9]+\.(wav|png))"')
_MIME_TYPES = {"wav": "audio/wav", "png": "image/png"}


def self_contained_page(step_dir):
    """The step page of `step_dir` (local or gs://) with its WAV and PNG files inlined.

    The page `write_samples` writes links its files by relative path; this one carries them
    as base64 `data:` URIs, so it plays and shows as one file: an HTML artifact in the
    Vertex AI / Kubeflow UI, or an e-mail attachment. The link to the other steps is dropped.

    Returns:
        The page as a string (about 1.4x the size of its files).
    """
    page = storage.read_bytes(storage.join(step_dir, "index.html")).decode("utf-8")
    page = page.replace('<p><a href="../index.html">All steps</a></p>\n', "")

    def inline(match):
        attribute, name, extension = match.groups()
        data = base64.b64encode(storage.read_bytes(storage.join(step_dir, name))).decode("ascii")
        return f'{attribute}="data:{_MIME_TYPES[extension]};base64,{data}"'

    return _LOCAL_SRC.sub(inline, page)


def list_steps(samples_dir):
    """Steps that have a page under `samples_dir` (local or gs://), as ints, newest first."""
    steps = set()
    for path in storage.list_glob(storage.join(samples_dir, "step_*", "index.html")):
        page = _STEP_PAGE.search(path.replace("\\", "/"))
        if page:
            steps.add(int(page.group(1)))
    return sorted(steps, reverse=True)


def write_samples(save_dir, step, batch, audio_gen, sample_rate, frame_rate,
                  f0_hz_gen=None, f0_confidence_gen=None, metrics=None,
                  summary_writer=None, max_examples=8, title=None, loudness_db_gen=None,
                  example_metrics=None, note=None, per_pitch=None):
    """Writes WAV and PNG files and an HTML page for one batch, and rewrites samples/index.html.

    Args:
        save_dir: Run folder, local path or gs:// URL; files go under save_dir/samples/.
        step: Training step (int); names the folder step_{step:08d}.
        batch: Dict of arrays (NumPy or tensors): 'audio' [batch, n_samples], the original
            audio at sample_rate, required; optional 'f0_hz' [batch, n_frames] in Hz,
            'f0_confidence' [batch, n_frames] in [0, 1] and 'loudness_db' [batch, n_frames]
            in dB, at frame_rate. Trailing channel axes of size 1 are accepted.
        audio_gen: Generated audio, shape [batch, n_samples], at sample_rate.
        sample_rate: Audio sample rate in Hz.
        frame_rate: Frames per second of the f0 and loudness series.
        f0_hz_gen: Optional f0 of the generated audio in Hz (e.g. from CREPE),
            shape [batch, n_frames'], at frame_rate.
        f0_confidence_gen: Optional confidence of f0_hz_gen in [0, 1], shape [batch, n_frames'].
        metrics: Optional dict name -> number, shown in a table at the top of the page.
        summary_writer: Optional `summaries.SummaryWriter`: also writes 'audio/original' and
            'audio/generated' (up to max_examples clips each) and, per example i, the images
            'spectrogram/{i}', 'waveform/{i}' and 'f0/{i}' to TensorBoard.
        max_examples: Most examples written, the first ones of the batch.
        title: Page title; "DDSP samples" if None.
        loudness_db_gen: Optional loudness of the generated audio in dB, [batch, n_frames'],
            drawn with the input's.
        example_metrics: Optional list of {name: value}, one per example, shown with it.
        note: Optional sentence shown under the page title.
        per_pitch: Optional rows by input MIDI note (`pitch_metrics.per_pitch_rows`),
            shown as a table under the metrics table.

    Returns:
        {'html': path of the step page, 'index': path of samples/index.html,
         'wav': [paths of the WAV files], 'png': [paths of the PNG files]}.
    """
    title = "DDSP samples" if title is None else str(title)
    step = int(step)
    originals = _batched(batch["audio"], "batch['audio']")
    generated = _batched(audio_gen, "audio_gen", batch_size=originals.shape[0])
    n_examples = min(originals.shape[0], int(max_examples))
    features = {name: _batched(batch[name], f"batch[{name!r}]", n_examples)
                for name in ("f0_hz", "f0_confidence", "loudness_db") if batch.get(name) is not None}
    gen_f0 = {name: _batched(values, name, n_examples)
              for name, values in (("f0_hz_gen", f0_hz_gen), ("f0_confidence_gen", f0_confidence_gen),
                                   ("loudness_db_gen", loudness_db_gen))
              if values is not None}

    samples_dir = storage.join(save_dir, SAMPLES_FOLDER)
    step_dir = storage.join(samples_dir, f"step_{step:08d}")
    paths = {"wav": [], "png": []}
    with progress.Progress("sample", n_examples, "examples") as shown:
        for i in range(n_examples):
            for kind, audio in (("original", originals[i]), ("generated", generated[i])):
                path = storage.join(step_dir, f"{i:02d}_{kind}.wav")
                storage.write_bytes(path, wav_bytes(audio, sample_rate))
                paths["wav"].append(path)
            images = {
                "spectrogram": spectrogram_png(originals[i], generated[i], sample_rate),
                "waveform": waveform_png(originals[i], generated[i], sample_rate),
                "f0": f0_png(frame_rate,
                             **{name: values[i] for name, values in features.items()},
                             **{name: values[i] for name, values in gen_f0.items()}),
            }
            for kind, png in images.items():
                path = storage.join(step_dir, f"{i:02d}_{kind}.png")
                storage.write_bytes(path, png)
                paths["png"].append(path)
                if summary_writer is not None:
                    summary_writer.image(step, f"{kind}/{i}", png)
            shown.update()
    if summary_writer is not None:
        summary_writer.audio(step, "audio/original", originals[:n_examples], sample_rate, n_examples)
        summary_writer.audio(step, "audio/generated", generated[:n_examples], sample_rate, n_examples)
        summary_writer.flush()

    paths["html"] = storage.join(step_dir, "index.html")
    page = step_page_html(title, step, metrics or {}, n_examples, example_metrics=example_metrics, note=note,
                          per_pitch=per_pitch)
    storage.write_bytes(paths["html"], page.encode("utf-8"))
    paths["index"] = storage.join(samples_dir, "index.html")
    steps = set(list_steps(samples_dir)) | {step}  # The listing may lag behind the page just written.
    storage.write_bytes(paths["index"], index_html(steps, title).encode("utf-8"))
    return paths
