"""Tests for ddsp_core.training.distribution: data-parallel training over 2 CPU devices.

TensorFlow (MirroredStrategy over 2 logical CPUs) and JAX (keras.distribution.DataParallel
over 2 host devices) each run in a subprocess, since the devices must be set up before
the framework starts. Both subprocesses start together, when the first test needs them.
"""

import json
import math
import os
import subprocess
import sys

import keras
import pytest

from ddsp_core.training import distribution

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Run as `python script.py KIND`; prints one line "RESULT {json}".
TRAIN_SCRIPT = """
import json, os, sys

if os.environ["KERAS_BACKEND"] == "tensorflow":  # Before anything starts TensorFlow's runtime.
    import tensorflow as tf
    [cpu] = tf.config.list_physical_devices("CPU")
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from ddsp_core.training import distribution, trainers
from tests.models.test_models import tiny_autoencoder, tiny_features

kind = sys.argv[1]
result = {"backend": keras.backend.backend()}
try:
    distribution.Distribution("multi_worker" if result["backend"] == "jax" else "nonsense")
except ValueError as error:
    result["bad_kind_error"] = str(error)

dist = distribution.Distribution(kind)
result["num_replicas"] = dist.num_replicas
try:
    dist.check_batch_size(3)
except ValueError as error:
    result["batch_3_error"] = str(error)
dist.check_batch_size(4)

features = tiny_features(batch=4)
with dist.scope():
    model = tiny_autoencoder(noise=False)
    model(features)
    trainers.Trainer(learning_rate=1e-3).compile(model)
initial_weights = model.get_weights()
kernel = model.trainable_variables[0].value
result["kernel_devices"] = (len(kernel.sharding.device_set) if result["backend"] == "jax"
                            else len(kernel.values))  # A MirroredVariable: one copy per replica.


class Record(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.steps, self.weights = [], []

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append({name: float(np.asarray(value)) for name, value in logs.items()})
        self.weights.append(self.model.get_weights())


record = Record()
dataset = tf.data.Dataset.from_tensor_slices(features).batch(4).repeat()
model.fit(dataset, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False, callbacks=[record])
result["steps"] = record.steps
result["iterations"] = int(ops.convert_to_numpy(model.optimizer.iterations))

# The losses outside fit (TensorFlow: on one device) at the weights before steps 1 and 2:
# of the full batch, and (before step 1) of each replica's half.
if result["backend"] == "jax":
    keras.distribution.set_distribution(None)


def loss_at(weights, batch):
    model.set_weights(weights)
    return model.losses_dict(batch, model(batch))["total_loss"]


result["reference_full"] = [loss_at(w, features) for w in (initial_weights, record.weights[0])]
if result["backend"] == "tensorflow":  # JAX shards one global batch: it has no per-replica losses.
    halves = [{key: value[i * 2:(i + 1) * 2] for key, value in features.items()} for i in range(2)]
    result["reference_halves"] = [loss_at(initial_weights, half) for half in halves]

if kind == "mirrored":
    # One SGD step (update = -lr * gradient) under the strategy and on one device, both
    # through fit. (Not against an eager GradientTape: with the log-magnitude loss term,
    # this model's compiled and eager gradients differ by up to 3%; without it, by 2e-6.)
    def sgd_update(sgd_model, scope):
        sgd_model.set_weights(initial_weights)
        with scope:
            sgd_model.compile(optimizer=keras.optimizers.SGD(0.1))
        before = [ops.convert_to_numpy(v) for v in sgd_model.trainable_variables]
        sgd_model.fit(dataset, steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)
        return [ops.convert_to_numpy(v) - b for v, b in zip(sgd_model.trainable_variables, before)]

    import contextlib
    single_model = tiny_autoencoder(seed=2, noise=False)
    single_model(features)
    distributed, single = sgd_update(model, dist.scope()), sgd_update(single_model, contextlib.nullcontext())
    result["sgd_relative_difference"] = max(
        float(np.linalg.norm(d - s) / np.linalg.norm(s)) for d, s in zip(distributed, single) if np.linalg.norm(s) > 0)
print("RESULT " + json.dumps(result))
"""

RUNS = {
    "tensorflow": ("mirrored", {}),
    "jax": ("data_parallel", {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """{backend: result dict} of TRAIN_SCRIPT, both backends run at the same time."""
    script = tmp_path_factory.mktemp("distribution") / "train_two_devices.py"
    script.write_text(TRAIN_SCRIPT)
    python_path = os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")]))
    processes = {}
    for backend, (kind, extra_env) in RUNS.items():
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": python_path,
               **extra_env}
        processes[backend] = subprocess.Popen([sys.executable, str(script), kind], cwd=REPO_ROOT, env=env,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = {}
    for backend, process in processes.items():
        try:
            stdout, stderr = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
        results[backend] = json.loads(lines[-1][len("RESULT "):]) if process.returncode == 0 and lines else {
            "failed": f"exit status {process.returncode}:\n{stderr[-3000:]}"}
    return results


def _result(runs, backend):
    result = runs[backend]
    assert "failed" not in result, result.get("failed")
    assert result["backend"] == backend
    return result


@pytest.mark.parametrize("backend", list(RUNS))
def test_two_replicas_and_batches_divisible_by_them(runs, backend):
    result = _result(runs, backend)
    assert result["num_replicas"] == 2
    assert "batch_size 3 must be divisible by the 2 devices" in result["batch_3_error"]
    assert result["kernel_devices"] == 2  # The variables are on both devices.


def test_multi_worker_is_refused_on_jax(runs):
    assert "multi_worker" in _result(runs, "jax")["bad_kind_error"]


@pytest.mark.parametrize("backend", list(RUNS))
def test_two_steps_train_with_finite_losses(runs, backend):
    result = _result(runs, backend)
    assert result["iterations"] == 2
    assert len(result["steps"]) == 2
    for step in result["steps"]:
        assert set(step) >= {"spectral_loss", "total_loss"}
        assert all(math.isfinite(value) for value in step.values()), step


@pytest.mark.parametrize("backend", list(RUNS))
def test_per_step_loss_is_the_full_batch_loss(runs, backend):
    """The per-step tracker reports the loss of the whole global batch at that step's weights."""
    result = _result(runs, backend)
    tracked = [step["total_loss"] for step in result["steps"]]
    assert tracked == pytest.approx(result["reference_full"], rel=1e-5)
    assert tracked[0] != pytest.approx(tracked[1], rel=1e-5)  # Step 1 changed the weights.


def test_mirrored_per_step_loss_is_the_mean_over_replicas(runs):
    result = _result(runs, "tensorflow")
    halves = result["reference_halves"]
    assert halves[0] != pytest.approx(halves[1], rel=1e-3)  # The replicas' losses differ...
    assert result["steps"][0]["total_loss"] == pytest.approx(sum(halves) / 2, rel=1e-5)  # ...their mean is reported.


def test_mirrored_sgd_step_equals_the_single_device_step(runs):
    """Loss scaled by 1 / replicas, gradients summed over replicas: the same update as on one device."""
    assert _result(runs, "tensorflow")["sgd_relative_difference"] < 1e-4


@pytest.mark.dsp
def test_unknown_kind_raises():
    with pytest.raises(ValueError, match="'nonsense'"):
        distribution.Distribution("nonsense")


@pytest.mark.dsp
def test_none_is_one_replica_without_a_strategy():
    dist = distribution.Distribution("none")
    assert dist.num_replicas == 1
    assert dist.strategy is None and dist.jax_distribution is None
    dist.check_batch_size(3)
    with dist.scope():
        pass


def test_auto_on_one_device_distributes_nothing():
    if keras.backend.backend() == "jax":
        import jax

        several = len(jax.devices()) > 1
    else:
        import tensorflow as tf

        several = len(tf.config.list_logical_devices("GPU")) > 1 or bool(os.environ.get("TF_CONFIG"))
    if several:
        pytest.skip("this process sees several devices")
    dist = distribution.Distribution("auto")
    assert dist.num_replicas == 1
    assert dist.strategy is None and dist.jax_distribution is None
