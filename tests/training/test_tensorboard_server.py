"""A real TensorBoard server on a trained and sampled run: it lists the runs, shows the train
scalars at their steps, and serves the sample run's audio as WAV and its plots as PNG."""

import contextlib
import io
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
import soundfile

from ddsp_core import ddsp_run
from tests.training_runs import SAMPLE_RATE, TINY_RUN_STEPS, clean_global_state, read_json

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TRAIN_RUN, SAMPLE_RUN = "summaries/train", "summaries/sample"
LOSS_TAGS = ("losses/spectral_loss", "losses/total_loss")
START_TIMEOUT_SECS = 90


@pytest.fixture(scope="module")
def sampled_run(tiny_run, tfrecords_1s, tmp_path_factory):
    """A copy of the tiny training run with samples of its last checkpoint (batch of 2)."""
    save_dir = tmp_path_factory.mktemp("tensorboard") / "run"
    shutil.copytree(tiny_run[0], save_dir)
    argv = ["--mode=sample", f"--save_dir={save_dir}", "--gin_file=datasets/tfrecord.gin",
            f"--gin_param=TFRecordProvider.file_pattern='{tfrecords_1s}'",
            "--gin_param=TFRecordProvider.example_secs=1",
            "--gin_param=sample.batch_size=2", "--run_once"]
    with clean_global_state():
        assert ddsp_run.main(argv) == 0
    return save_dir


def free_port():
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(base_url, path, **query):
    url = f"{base_url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def get_json(base_url, path, **query):
    return json.loads(get(base_url, path, **query))


@contextlib.contextmanager
def tensorboard_server(logdir, runs_expected, log_path):
    """Base URL of a real TensorBoard on `logdir`, once it lists every run of `runs_expected`."""
    port = free_port()
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", "127.0.0.1",
               "--port", str(port)]
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log_file:
        server = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECS
        runs = []
        while not set(runs_expected) <= set(runs):
            assert server.poll() is None, f"TensorBoard exited: {log_path.read_text()}"
            assert time.monotonic() < deadline, f"runs after {START_TIMEOUT_SECS} s: {runs}; {log_path.read_text()}"
            time.sleep(0.5)
            try:
                runs = get_json(base_url, "/data/runs")
            except OSError:  # Not listening yet.
                runs = []
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def tensorboard(sampled_run, tmp_path_factory):
    """Base URL of a TensorBoard serving sampled_run, once it lists the train and sample runs."""
    log_path = tmp_path_factory.mktemp("tensorboard_log") / "tensorboard.log"
    with tensorboard_server(sampled_run, {TRAIN_RUN, SAMPLE_RUN}, log_path) as base_url:
        yield base_url


def test_runs_are_listed(tensorboard):
    assert {TRAIN_RUN, SAMPLE_RUN} <= set(get_json(tensorboard, "/data/runs"))


def test_train_scalars_are_served_at_their_steps(tensorboard, sampled_run):
    tags = get_json(tensorboard, "/data/plugin/scalars/tags")
    assert {*LOSS_TAGS, "steps_per_sec", "learning_rate"} <= set(tags[TRAIN_RUN])

    series = {tag: get_json(tensorboard, "/data/plugin/scalars/scalars", run=TRAIN_RUN, tag=tag) for tag in LOSS_TAGS}
    for tag, points in series.items():  # [[wall_time, step, value], ...]
        assert [step for _, step, _ in points] == list(range(1, TINY_RUN_STEPS + 1)), tag
        assert np.all(np.isfinite([value for _, _, value in points]))
    # steps_per_summary=1: the value at the last step is that step's loss, as train_state.json has it.
    last_losses = read_json(sampled_run / "train_state.json")["losses"]
    assert series["losses/total_loss"][-1][2] == pytest.approx(last_losses["total_loss"], rel=1e-6)
    learning_rate = get_json(tensorboard, "/data/plugin/scalars/scalars", run=TRAIN_RUN, tag="learning_rate")
    assert learning_rate[0][2] == pytest.approx(3e-4 * 0.98 ** (1 / 10000), rel=1e-5)  # optimization/base.gin


def test_sample_audio_is_served_as_wav(tensorboard):
    tags = get_json(tensorboard, "/data/plugin/audio/tags")
    assert {"audio/original", "audio/generated"} <= set(tags[SAMPLE_RUN])
    assert tags[SAMPLE_RUN]["audio/generated"]["samples"] == 2

    for sample in (0, 1):
        [clip] = get_json(tensorboard, "/data/plugin/audio/audio", run=SAMPLE_RUN, tag="audio/generated",
                          sample=sample)
        assert clip["step"] == TINY_RUN_STEPS
        wav = get(tensorboard, "/data/plugin/audio/individualAudio?" + clip["query"])
        assert wav.startswith(b"RIFF") and wav[8:12] == b"WAVE"
        audio, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
        assert (rate, audio.shape) == (SAMPLE_RATE, (SAMPLE_RATE,))
        assert np.abs(audio).max() > 0


def test_sample_plots_are_served_as_png(tensorboard):
    tags = get_json(tensorboard, "/data/plugin/images/tags")
    assert {"spectrogram/0", "waveform/0", "f0/0", "spectrogram/1"} <= set(tags[SAMPLE_RUN])
    [image] = get_json(tensorboard, "/data/plugin/images/images", run=SAMPLE_RUN, tag="spectrogram/0", sample=0)
    assert image["step"] == TINY_RUN_STEPS
    assert get(tensorboard, "/data/plugin/images/individualImage?" + image["query"]).startswith(PNG_MAGIC)
