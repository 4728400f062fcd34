"""Tests for the device line and the requested-GPU check (accelerators.training_devices,
check_requested_accelerator) and for the pipeline's train step failing fast with it, on this
CPU-only machine."""

import glob
import json
import logging
import os
import shutil
import subprocess
import sys

import keras
import pytest

from ddsp_core.steps import steps
from ddsp_core import accelerators
from tests.training_runs import checkpoint_steps

cpu_only = pytest.mark.skipif(accelerators.has_gpu(), reason="checks what happens when no GPU is visible")

GPU_REQUESTS = ["NVIDIA_L4", "NVIDIA_TESLA_T4", "nvidia.com/gpu", "gpu"]


@cpu_only
def test_this_machine_trains_on_the_cpu():
    devices = accelerators.training_devices()
    assert devices == accelerators.TrainingDevices(keras.backend.backend(), ())
    assert devices.line == f"Training on the CPU (no GPU visible), {keras.backend.backend()} backend"
    assert str(devices) == devices.line


@pytest.mark.parametrize("gpus, line", [
    (("NVIDIA H200, compute capability 9.0",), "Training on 1 GPU (NVIDIA H200, compute capability 9.0), jax backend"),
    (("NVIDIA L4, compute capability 8.9",) * 2 + ("Tesla T4",),
     "Training on 3 GPUs (2 x NVIDIA L4, compute capability 8.9; Tesla T4), jax backend"),
], ids=["one_gpu", "mixed_gpus"])
def test_the_line_names_the_gpus_and_counts_identical_ones(gpus, line):
    assert accelerators.TrainingDevices("jax", gpus).line == line


@pytest.mark.parametrize("requested", ["NVIDIA_L4", "NVIDIA_TESLA_T4", "nvidia.com/gpu", "gpu", "amd.com/gpu"])
def test_gpu_names_request_a_gpu(requested):
    assert accelerators.requests_gpu(requested)


@pytest.mark.parametrize("requested", ["", "  ", None, "TPU_V3", "cloud-tpus.google.com/v3", "google.com/tpu"])
def test_no_name_or_a_tpu_requests_no_gpu(requested):
    assert not accelerators.requests_gpu(requested)


@cpu_only
@pytest.mark.parametrize("requested", ["", None, "TPU_V3"], ids=["nothing", "none", "tpu"])
def test_no_gpu_request_passes_without_a_gpu(requested):
    assert accelerators.check_requested_accelerator(requested).gpus == ()


@cpu_only
@pytest.mark.parametrize("requested", GPU_REQUESTS)
def test_a_requested_gpu_that_is_not_visible_stops_with_what_to_check(requested, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(accelerators.AcceleratorError) as raised:
        accelerators.check_requested_accelerator(requested)
    message = str(raised.value)
    assert message.startswith(f"A GPU was requested ({requested!r}) but the {keras.backend.backend()} backend "
                              "sees no GPU: it would train on the CPU")
    for check in ("`nvidia-smi` lists the GPU", "NVIDIA driver", "CUDA_VISIBLE_DEVICES is not empty or -1 (it is '' "
                  "here)", "requests the GPU resource (nvidia.com/gpu)", "NVIDIA device plugin",
                  "request no accelerator ('')"):
        assert check in message
    if keras.backend.backend() == "tensorflow":
        assert "tensorflow[and-cuda], the `tf-gpu` extra" in message
        assert "print(tf.config.list_physical_devices('GPU'))" in message
        assert "a build without CUDA" in message  # tensorflow-cpu, as installed here.
    assert isinstance(raised.value, RuntimeError)


def test_a_requested_gpu_that_is_visible_passes():
    devices = accelerators.TrainingDevices("tensorflow", ("NVIDIA L4, compute capability 8.9",))
    assert accelerators.check_requested_accelerator("NVIDIA_L4", devices) is devices


def test_the_jax_backend_describes_and_checks_its_devices():
    """In a subprocess with KERAS_BACKEND=jax: the line names the jax backend; without a GPU the
    check fails and says to install jax[cuda12]."""
    pytest.importorskip("jax")
    code = ("import json\n"
            "from ddsp_core.training import accelerators\n"
            "devices = accelerators.training_devices()\n"
            "try:\n"
            "    accelerators.check_requested_accelerator('NVIDIA_L4')\n"
            "    error = None\n"
            "except accelerators.AcceleratorError as raised:\n"
            "    error = str(raised)\n"
            "print(json.dumps({'gpus': list(devices.gpus), 'line': devices.line, 'error': error}))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-2000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    if found["gpus"]:  # A machine with a GPU: it is named, and the request passes.
        assert found["line"].startswith(f"Training on {len(found['gpus'])} GPU") and found["error"] is None
        assert found["line"].endswith("), jax backend")
        return
    assert found["line"] == "Training on the CPU (no GPU visible), jax backend"
    assert found["error"].startswith("A GPU was requested ('NVIDIA_L4') but the jax backend sees no GPU")
    assert "JAX with CUDA (jax[cuda12])" in found["error"] and "tensorflow[and-cuda]" not in found["error"]


def _dataset(folder, file_pattern):
    """A train step's dataset folder (manifest + train shards) made of the prepared 1 s examples."""
    os.makedirs(folder)
    for path in glob.glob(file_pattern):
        shutil.copy(path, os.path.join(folder, steps.TRAIN_PREFIX + path.rsplit(".tfrecord", 1)[1]))
    manifest = {"settings": {"sample_rate": 16000, "frame_rate": 250, "example_secs": 1.0, "center": False},
                "examples_written": {"train": 16, "eval": 0}}
    with open(os.path.join(folder, steps.MANIFEST), "w") as handle:
        json.dump(manifest, handle)
    return folder


@cpu_only
def test_the_train_step_fails_before_writing_when_the_requested_gpu_is_missing(tfrecords_1s, tmp_path, clean_state,
                                                                              caplog):
    dataset = _dataset(str(tmp_path / "dataset"), tfrecords_1s)
    model_dir, checkpoint_dir = str(tmp_path / "model"), str(tmp_path / "checkpoints")
    kwargs = dict(preset="quick", num_steps=1, batch_size=2, checkpoint_dir=checkpoint_dir,
                  gin_params=["RnnFcDecoder.rnn_channels = 32", "RnnFcDecoder.ch = 32",
                              "RnnFcDecoder.layers_per_stack = 1"])
    with pytest.raises(accelerators.AcceleratorError, match=r"A GPU was requested \('NVIDIA_L4'\)"):
        steps.train(dataset, model_dir, accelerator="NVIDIA_L4", **kwargs)
    assert not os.path.exists(model_dir) and not os.path.exists(checkpoint_dir)

    # The same call without the request trains: the dataset and folders were usable.
    with caplog.at_level(logging.INFO):
        result = steps.train(dataset, model_dir, accelerator="", **kwargs)
    assert result["step"] == 1
    line = f"Training on the CPU (no GPU visible), {keras.backend.backend()} backend."
    assert "Accelerator requested: none." in caplog.messages
    assert caplog.messages.count(line) == 1  # train_util.train's, before its "Training from step" line.
    assert caplog.messages[caplog.messages.index(line) + 1].startswith("Training from step 0 to 1")
    assert checkpoint_steps(checkpoint_dir) == [1] and checkpoint_steps(model_dir) == [1]
