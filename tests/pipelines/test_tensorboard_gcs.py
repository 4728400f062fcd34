"""`tensorboard --logdir gs://...` shows a run's scalars, audio and images from the bucket.

The README's cloud section says a run's TensorBoard logs stay in the artifact bucket and
are read there with `tensorboard --logdir gs://B/ddsp/... --load_fast=false`. Here a run's
summaries are written the way the train, eval and sample steps write them (the project's
`SummaryWriter`, and `samples.write_samples` for the sample step's audio and plots) into a
bucket of the storage emulator, through TensorFlow's own gs:// file system; then a real
TensorBoard server (its `program.TensorBoard`, the code behind the `tensorboard` command,
on a free port) is started on the gs:// folder and asked over HTTP for runs, scalars, audio
and images, which must be the values written.

TensorFlow's gs:// client has no endpoint setting; `tests/tf_gcs_relay.py` sends its
requests to the emulator through an HTTPS proxy it honours (see there). TensorFlow and
TensorBoard themselves run unchanged.

Not shown here (said in docs/cloud.md): TensorBoard's default for gs:// logdirs,
`--load_fast=auto`, reads through its Rust data server, which has its own GCS client with
built-in certificate roots and no endpoint setting, so it cannot be pointed at the
emulator; nor real credentials, nor a Vertex AI TensorBoard instance (not used).
"""

import io
import json
import urllib.parse
import urllib.request
import wave

import numpy as np
import pytest

from tests.tf_gcs_relay import TfGcsRelay

SAMPLE_RATE = 16000
FRAME_RATE = 250
TRAIN_LOSSES = {0: 9.5, 10: 7.25, 20: 6.0}  # step -> losses/total_loss
EVAL_STEP, EVAL_LOUDNESS_L1 = 20, 3.5


@pytest.fixture
def tf_gcs_relay(gcs_emulator):
    """TensorFlow's gs:// requests go to the emulator while the test runs."""
    with TfGcsRelay(gcs_emulator.url) as relay, relay.environment():
        yield relay


def _clarinet_like_note(seconds=0.25, f0_hz=440.0):
    """A short harmonic tone and a slightly different 'generated' one, [1, n_samples]."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    original = sum(0.3 / k * np.sin(2 * np.pi * k * f0_hz * t) for k in (1, 3, 5))
    generated = 0.8 * original + 0.05 * np.sin(2 * np.pi * 2 * f0_hz * t)
    n_frames = int(seconds * FRAME_RATE)
    batch = {"audio": original[np.newaxis].astype(np.float32),
             "f0_hz": np.full((1, n_frames), f0_hz, np.float32),
             "f0_confidence": np.ones((1, n_frames), np.float32)}
    return batch, generated[np.newaxis].astype(np.float32)


def _write_run(save_dir):
    """Summaries as the train, eval and sample steps write them under `save_dir`.

    Returns what the sample step wrote (`samples.write_samples`'s paths) and the
    generated audio.
    """
    from ddsp_core.evaluation import eval_util, samples
    from ddsp_core.io import storage
    from ddsp_core.training import train_util
    from ddsp_core.training.summaries import SummaryWriter

    with SummaryWriter(storage.join(save_dir, train_util.TRAIN_SUMMARY_DIR)) as writer:
        for step, loss in TRAIN_LOSSES.items():
            writer.scalars(step, {"total_loss": loss}, prefix="losses/")
    with SummaryWriter(storage.join(save_dir, eval_util.EVAL_SUMMARY_DIR)) as writer:
        writer.scalars(EVAL_STEP, {"loudness_l1": EVAL_LOUDNESS_L1}, prefix="metrics/")
    batch, generated = _clarinet_like_note()
    with SummaryWriter(storage.join(save_dir, eval_util.SAMPLE_SUMMARY_DIR)) as writer:
        written = samples.write_samples(save_dir, EVAL_STEP, batch, generated, SAMPLE_RATE, FRAME_RATE,
                                        summary_writer=writer, max_examples=1)
    return written, generated


def _launch_tensorboard(logdir):
    """TensorBoard serving `logdir` as `tensorboard --logdir ... --load_fast=false` does.

    The event files are read once, before it answers (`--reload_task=blocking`), so the
    server touches the bucket no more once this returns. It serves on a free port, in a
    daemon thread of this process (TensorBoard's `launch()`), until the tests end.
    """
    from tensorboard import program

    board = program.TensorBoard()
    board.configure(argv=[None, "--logdir", logdir, "--load_fast=false", "--reload_task=blocking",
                          "--reload_interval=0", "--host=127.0.0.1", "--port=0"])
    return board.launch().rstrip("/")


def _get(url, path, **query):
    """The body of GET url + path?query; JSON decoded when the server says it is JSON."""
    address = f"{url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # straight to 127.0.0.1
    with opener.open(address, timeout=30) as response:
        body = response.read()
        if response.headers.get_content_type() == "application/json":
            return json.loads(body)
        return body


def _wav_samples(wav):
    """16-bit mono WAV bytes -> float samples in [-1, 1]."""
    with wave.open(io.BytesIO(wav)) as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (1, 2, SAMPLE_RATE)
        frames = reader.readframes(reader.getnframes())
    return np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32767.0


def test_tensorboard_reads_a_runs_scalars_audio_and_images_from_gs(gcs_emulator, gcs_bucket, tf_gcs_relay):
    save_dir = f"{gcs_bucket}/ddsp/run-1/train/model"
    written, generated = _write_run(save_dir)

    # The event files are objects in the bucket, written through TensorFlow's gs:// client.
    objects = gcs_emulator.list(f"{gcs_bucket}/ddsp/run-1/")
    for summaries in ("summaries/train/", "summaries/eval/", "summaries/sample/"):
        assert any(f"{save_dir}/{summaries}events.out.tfevents." in name for name in objects), (
            f"no event file under {save_dir}/{summaries}; objects: {objects}")
    assert any(line.startswith('"CONNECT www.googleapis.com:443') for line in tf_gcs_relay.log), (
        f"TensorFlow did not go through the relay: {tf_gcs_relay.log}")

    url = _launch_tensorboard(f"{gcs_bucket}/ddsp/run-1")
    train_run, eval_run, sample_run = (f"train/model/summaries/{name}" for name in ("train", "eval", "sample"))
    assert set(_get(url, "/data/runs")) == {train_run, eval_run, sample_run}

    # Scalars: [wall time, step, value] per point, as written (float32).
    points = _get(url, "/data/plugin/scalars/scalars", run=train_run, tag="losses/total_loss")
    assert {step: value for _, step, value in points} == pytest.approx(TRAIN_LOSSES)
    (point,) = _get(url, "/data/plugin/scalars/scalars", run=eval_run, tag="metrics/loudness_l1")
    assert point[1:] == [EVAL_STEP, pytest.approx(EVAL_LOUDNESS_L1)]

    # Audio: the generated clip comes back as the WAV the sample step wrote.
    assert set(_get(url, "/data/plugin/audio/tags")[sample_run]) == {"audio/original", "audio/generated"}
    (clip,) = _get(url, "/data/plugin/audio/audio", run=sample_run, tag="audio/generated", sample=0)
    assert clip["step"] == EVAL_STEP
    wav = _get(url, "/data/plugin/audio/individualAudio?" + clip["query"])
    np.testing.assert_allclose(_wav_samples(wav), generated[0], atol=2 / 32767)

    # Images: the spectrogram plot is the very PNG the sample step put beside the WAVs.
    image_tags = _get(url, "/data/plugin/images/tags")[sample_run]
    assert {"spectrogram/0", "waveform/0", "f0/0"} <= set(image_tags)
    (image,) = _get(url, "/data/plugin/images/images", run=sample_run, tag="spectrogram/0", sample=0)
    assert image["step"] == EVAL_STEP
    png = _get(url, "/data/plugin/images/individualImage?" + image["query"])
    (spectrogram_path,) = [p for p in written["png"] if p.endswith("_spectrogram.png")]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert png == gcs_emulator.download(spectrogram_path)
