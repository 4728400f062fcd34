"""TensorBoard summaries: scalars, audio, images and text written as event files.

A thin wrapper around TensorFlow's summary writer so that the training loop passes plain
Python and NumPy values and never holds a default writer (no global state). TensorFlow
is imported when a `SummaryWriter` is created, not when this module is imported.

    with SummaryWriter("out/train") as writer:
        writer.scalars(step, {"total_loss": 1.5, "spectral_loss": 1.2}, prefix="losses/")
        writer.audio(step, "audio/generated", audio_gen, sample_rate=example_format.sample_rate)

`tf.summary.scalar`, `.audio`, `.image` and `.text` are implemented by the `tensorboard`
package, which TensorFlow 2.21 no longer installs. So each summary is written with the
core op `tf.summary.write`, a tensor plus the `SummaryMetadata` that names the
TensorBoard plugin showing it, in the layout those plugins read:

    scalars  float32 scalar
    audio    string [k, 2]: (WAV file, label) per clip; plugin content: WAV encoding
    images   string [2 + k]: width, height (as decimal strings), then the PNG files
    text     string scalar (Markdown)
"""

import numpy as np

# SummaryMetadata.PluginData.content of the audio plugin: its settings proto with
# version 0 (the default, so not serialized) and field 2, `encoding`, = 11 (WAV),
# serialized by hand as tag byte 0x10 (field 2, varint) then 0x0b.
_AUDIO_PLUGIN_CONTENT = b"\x10\x0b"


def _as_batch(audio):
    """Audio as float32 [batch, n_samples, channels], NaN/inf replaced and clipped to [-1, 1].

    Accepts [n_samples], [batch, n_samples] or [batch, n_samples, channels].
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[np.newaxis, :]  # [1, n_samples]
    if audio.ndim == 2:
        audio = audio[:, :, np.newaxis]  # [batch, n_samples, 1]
    if audio.ndim != 3:
        raise ValueError(f"audio must have shape [batch, n_samples] (or [batch, n_samples, channels]), "
                         f"got {audio.shape}.")
    return np.clip(np.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)


class SummaryWriter:
    """Writes TensorBoard event files under `log_dir`.

    Args:
        log_dir: Folder for the event files: a local path or a URL TensorFlow's file system
            knows (gs://bucket/run/train). Created if missing.

    Each method takes the training step (stored as int64) first, then the tag. Usable as a
    context manager, which closes the writer on exit.
    """

    def __init__(self, log_dir):
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self._tf = tf
        self._pb = summary_pb2
        self.log_dir = str(log_dir)
        self._writer = tf.summary.create_file_writer(self.log_dir)

    def _write(self, step, tag, tensor, plugin_name, content=b""):
        """Writes one summary: `tensor` under `tag`, shown by TensorBoard's `plugin_name` plugin.

        The data class is left unset, as TensorBoard's own writers do: its loader derives it
        from the plugin name (and keeps only the clips of an audio tensor).
        """
        tf = self._tf
        metadata = self._pb.SummaryMetadata(
            plugin_data=self._pb.SummaryMetadata.PluginData(plugin_name=plugin_name, content=content))
        with self._writer.as_default():
            tf.summary.write(tag, tensor, step=tf.constant(int(step), dtype=tf.int64), metadata=metadata)

    def scalars(self, step, values, prefix=""):
        """Writes one scalar per entry of `values` (dict name -> number), tagged prefix + name."""
        for name, value in values.items():
            self._write(step, f"{prefix}{name}", self._tf.constant(float(value), dtype=self._tf.float32),
                        "scalars")

    def audio(self, step, tag, audio, sample_rate, max_outputs=8):
        """Writes up to `max_outputs` clips as one audio summary (16-bit WAV).

        Args:
            step: Training step.
            tag: Summary tag, e.g. "audio/generated".
            audio: Waveforms, shape [batch, n_samples] (or [batch, n_samples, channels]),
                nominally in [-1, 1]; NaN becomes 0 and values are clipped to [-1, 1].
            sample_rate: Sample rate of `audio` in Hz (a whole number).
            max_outputs: Most clips kept from the batch (the first ones).
        """
        tf = self._tf
        clips = _as_batch(audio)[:max_outputs]  # [k, n_samples, channels]
        if not len(clips):
            return
        wavs = [tf.audio.encode_wav(clip, sample_rate=int(sample_rate)) for clip in clips]
        tensor = tf.stack([tf.stack([wav, tf.constant(b"")]) for wav in wavs])  # [k, 2]
        self._write(step, tag, tensor, "audio", _AUDIO_PLUGIN_CONTENT)

    def image(self, step, tag, png_bytes):
        """Writes one PNG image (its encoded bytes) as an image summary."""
        tf = self._tf
        height, width = tf.io.decode_png(png_bytes).shape[:2]  # Also checks that it is a PNG.
        tensor = tf.constant([str(width).encode(), str(height).encode(), bytes(png_bytes)])  # [3]
        self._write(step, tag, tensor, "images")

    def text(self, step, tag, markdown):
        """Writes `markdown` (a string, rendered as Markdown by TensorBoard) as a text summary."""
        self._write(step, tag, self._tf.constant(str(markdown)), "text")

    def flush(self):
        """Writes pending events to the event file."""
        self._writer.flush()

    def close(self):
        """Flushes and closes the event file; the writer cannot be used afterwards."""
        self._writer.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()
        return False
