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
is. Files are written through `storage`, so `save_dir` may be a gs:// URL. The plots are
`ddsp_core.plotting`'s (matplotlib's object API, no pyplot state); everything else is NumPy.
"""

import base64
import html
import io
import re

import numpy as np

from ddsp_core import plotting, progress
from ddsp_core.io import storage

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
                     # By note, the f0 columns pool every confident frame (no unreadable-frame screen).
                     ("f0_l1_cents", "f0 L1, every frame (cents)"), ("f0_outlier_ratio", "f0 outliers, every frame"),
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
            figures = {
                "spectrogram": plotting.spectrogram_figure(originals[i], generated[i], sample_rate),
                "waveform": plotting.waveform_figure(originals[i], generated[i], sample_rate),
                "f0": plotting.f0_figure(frame_rate,
                                         **{name: values[i] for name, values in features.items()},
                                         **{name: values[i] for name, values in gen_f0.items()}),
            }
            images = {kind: plotting.png_bytes(figure) for kind, figure in figures.items()}
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
