"""Training on several machines: two `ddsp_run --mode=train` worker processes on localhost
(TensorFlow's MultiWorkerMirroredStrategy, from TF_CONFIG) train the same steps as one
process does, and only the chief writes files.

The two workers and the single process run at the same time, on CPU, with the tiny model:
the same initial weights (train.seed; the strategy also sends worker 0's initial values to
worker 1), the same order of examples (TFRecordProvider.seed) and the same global batch.
The workers split each global batch between them (tf.data's DATA shard policy,
`distribution.Distribution.shard`): each reads every example in the same order, worker 0
keeps the first half of each batch and worker 1 the second, so the gradients summed over
the two replicas are those of the single process's whole batch. (With the FILE policy each
worker would read other files, and the global batches would differ from one process's.)
"""

import contextlib
import json
import os
import socket
import subprocess
import sys

import pytest

from ddsp_core.training import distribution
from tests.training_runs import (REPO, checkpoint_steps, read_json, step_loss_params, step_losses, tiny_params,
                                 train_argv)

NUM_STEPS = 3
BATCH_SIZE = 4  # The global batch: 2 examples per worker.
TIMEOUT_S = 180
# Settings under which one step on two replicas equals one step on one device to float
# rounding, so that a difference means a bug (measured: losses within 2e-5, checkpoints
# within 7e-5):
EXACT_PARAMS = (
    # bfloat16 matmuls ('auto' on CPUs with AVX512-BF16) round differently for batches of 2 and 4.
    "RnnFcDecoder.precision='float32'",
    # The log-magnitude term's gradient is ill-conditioned (a 5% difference in the reverb's
    # gradient from summing halves in another order; see also test_distribution's SGD test).
    "SpectralLoss.logmag_weight=0.0",
    # The noise synth draws its noise per replica: silence it, so that both see the same signal.
    "FilteredNoise.initial_bias=-30.0",
    # Clip every step, so that the clip is of the gradient summed over the replicas, as on one
    # device (trainers.Adam; Keras' own clips each replica's part: a 1e-3 difference by step 3).
    "Trainer.grad_clip_norm=0.01",
)
# The per-step total_loss of the workers (the mean of their halves' losses) against the
# single process's (the loss of the whole batch), relative.
LOSS_TOLERANCE = 1e-4
# Each array of the last checkpoint (weights and Adam's moments): |multi - single| / |single|.
CHECKPOINT_TOLERANCE = 1e-3


def _free_ports(n):
    """n TCP ports free on 127.0.0.1 now (held open together, so they differ)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(n)]
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]


def _start(save_dir, params, log_path, **extra_env):
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2",
           "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])), **extra_env}
    for name in ("TF_CONFIG", "CLUSTER_SPEC"):
        if name not in extra_env:
            env.pop(name, None)
    log = open(log_path, "w")
    process = subprocess.Popen([sys.executable, "-m", "ddsp_core.ddsp_run",
                                *train_argv(save_dir, params, "--verbose")],
                               cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return process


@pytest.fixture(scope="module")
def runs(tfrecords_1s, tmp_path_factory):
    """{'worker0', 'worker1', 'single': (exit status, log text, save_dir)}: the two workers of a
    localhost cluster and one process, training the same NUM_STEPS steps at the same time."""
    root = tmp_path_factory.mktemp("multi_worker")
    params = tiny_params(tfrecords_1s, f"train_util.train.num_steps={NUM_STEPS}", "train.steps_per_save=2",
                         "train.steps_per_summary=1", "train.seed=1", *EXACT_PARAMS, batch_size=BATCH_SIZE)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in _free_ports(2)]}
    environments = {
        "worker0": {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})},
        "worker1": {"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})},
        "single": {},
    }
    processes = {}
    for name, env in environments.items():
        (root / name).mkdir()
        processes[name] = _start(root / name, [*params, *step_loss_params(_steps_path(root, name))],
                                 root / f"{name}.log", **env)
    results = {}
    try:
        for name, process in processes.items():
            try:
                process.wait(timeout=TIMEOUT_S)
            except subprocess.TimeoutExpired:
                pass
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    for name, process in processes.items():
        results[name] = (process.returncode, (root / f"{name}.log").read_text(), root / name)
    return results


def _steps_path(root, name):
    """Where process `name` records its steps' losses (`step_loss_file`), beside its save_dir."""
    return root / f"{name}-steps.jsonl"


def _step_losses(runs, name):
    return step_losses(_steps_path(runs[name][2].parent, name))


def _skip_if_no_cluster(runs):
    """Skips when the workers could not form a cluster here (no loopback gRPC)."""
    for name in ("worker0", "worker1"):
        status, log, _ = runs[name]
        if status != 0 and any(text in log for text in ("Failed to connect", "UNAVAILABLE", "Address already in use",
                                                         "Could not start gRPC server")):
            pytest.skip(f"the two workers could not form a gRPC cluster on localhost ({name}: exit status {status}): "
                        + log.strip().splitlines()[-1])


def test_both_workers_and_the_single_process_finish(runs):
    _skip_if_no_cluster(runs)
    for name, (status, log, _) in runs.items():
        assert status == 0, f"{name} exit status {status}:\n{log[-4000:]}"
    for name in ("worker0", "worker1"):
        assert "MultiWorkerMirroredStrategy over 2 replicas on 2 machines" in runs[name][1], name
    assert "MultiWorkerMirroredStrategy" not in runs["single"][1]


def test_workers_train_the_steps_of_one_process(runs):
    """Per step, the same total_loss: the same weights trained on the same global batches."""
    _skip_if_no_cluster(runs)
    single = _step_losses(runs, "single")
    assert [step for step, _ in single] == list(range(1, NUM_STEPS + 1)), runs["single"][1][-3000:]
    for name in ("worker0", "worker1"):
        losses = _step_losses(runs, name)
        assert [step for step, _ in losses] == [step for step, _ in single], runs[name][1][-3000:]
        assert [loss for _, loss in losses] == pytest.approx([loss for _, loss in single], rel=LOSS_TOLERANCE), name


def test_only_the_chief_writes_into_its_save_dir(runs):
    _skip_if_no_cluster(runs)
    chief_dir, other_dir = runs["worker0"][2], runs["worker1"][2]
    assert checkpoint_steps(chief_dir) == [2, NUM_STEPS] == checkpoint_steps(runs["single"][2])
    state = read_json(chief_dir / "train_state.json")
    assert state["status"] == "finished" and state["step"] == NUM_STEPS
    assert (chief_dir / "model_statistics.json").exists()
    assert (chief_dir / "operative_config-0.gin").exists()
    assert os.listdir(chief_dir / "summaries" / "train")
    assert sorted(os.listdir(other_dir)) == [], "worker 1 wrote into its save_dir"
    assert "Not the chief" in runs["worker1"][1] and "Not the chief" not in runs["worker0"][1]


def test_the_chiefs_checkpoint_has_the_single_process_weights(runs):
    _skip_if_no_cluster(runs)
    import h5py
    import numpy as np

    def weights(save_dir, step=NUM_STEPS):
        found = {}
        with h5py.File(save_dir / f"ckpt-{step}.weights.h5", "r") as handle:
            handle.visititems(lambda name, item: found.__setitem__(name, np.asarray(item))
                              if isinstance(item, h5py.Dataset) else None)
        return found

    multi, single = weights(runs["worker0"][2]), weights(runs["single"][2])
    assert multi.keys() == single.keys()
    differences = {name: float(np.linalg.norm(multi[name] - value) / np.linalg.norm(value))
                   for name, value in single.items() if np.linalg.norm(value) > 0}
    assert max(differences.values()) < CHECKPOINT_TOLERANCE, max(differences.items(), key=lambda item: item[1])
    # The model's weights differ by far less than the last step changed them.
    before = weights(runs["single"][2], step=2)
    names = [name for name in single if not name.startswith("optimizer/")]

    def flat(arrays):
        return np.concatenate([arrays[name].ravel() for name in names])

    difference, update = np.linalg.norm(flat(multi) - flat(single)), np.linalg.norm(flat(single) - flat(before))
    assert difference < 0.01 * update, (difference, update)


# The environment a process reads its cluster from: TF_CONFIG, or Vertex AI's CLUSTER_SPEC.

VERTEX_CLUSTER = {"workerpool0": ["cmle-training-workerpool0-ab-0:2222"],
                  "workerpool1": ["cmle-training-workerpool1-ab-0:2222", "cmle-training-workerpool1-ab-1:2222"]}


def _cluster_spec(task_type, index, cluster=VERTEX_CLUSTER):
    return json.dumps({"cluster": cluster, "environment": "cloud", "task": {"type": task_type, "index": index},
                       "job": {"worker_pool_specs": []}})


@pytest.mark.dsp
@pytest.mark.parametrize("task_type, index, expected_type, chief", [
    ("workerpool0", 0, "chief", True),
    ("workerpool1", 0, "worker", False),
    ("workerpool1", 1, "worker", False),
])
def test_cluster_spec_becomes_tf_config(task_type, index, expected_type, chief):
    config = distribution.cluster_config({"CLUSTER_SPEC": _cluster_spec(task_type, index)})
    assert config == {"cluster": {"chief": VERTEX_CLUSTER["workerpool0"], "worker": VERTEX_CLUSTER["workerpool1"]},
                      "task": {"type": expected_type, "index": index}}
    assert distribution.training_task_count(config) == 3
    assert distribution.is_chief_task(config) is chief


@pytest.mark.dsp
def test_cluster_spec_pools_2_and_3_are_ps_and_evaluator():
    cluster = {**VERTEX_CLUSTER, "workerpool2": ["ps-0:2222"], "workerpool3": ["evaluator-0:2222"]}
    config = distribution.cluster_config({"CLUSTER_SPEC": _cluster_spec("workerpool3", 0, cluster)})
    assert config["cluster"] == {"chief": cluster["workerpool0"], "worker": cluster["workerpool1"],
                                 "ps": ["ps-0:2222"]}  # TensorFlow keeps the evaluator out of the cluster.
    assert config["task"] == {"type": "evaluator", "index": 0}
    assert not distribution.is_chief_task(config)


@pytest.mark.dsp
def test_tf_config_wins_over_cluster_spec():
    tf_config = {"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}
    environ = {"TF_CONFIG": json.dumps(tf_config), "CLUSTER_SPEC": _cluster_spec("workerpool0", 0)}
    assert distribution.cluster_config(environ) == tf_config


@pytest.mark.dsp
@pytest.mark.parametrize("environ", [
    {},
    {"TF_CONFIG": ""},
    {"TF_CONFIG": json.dumps({"cluster": {}, "task": {}})},
    {"CLUSTER_SPEC": json.dumps({"cluster": {}, "task": {"type": "workerpool0", "index": 0}})},
], ids=["nothing", "empty", "no cluster", "empty cluster spec"])
def test_no_cluster(environ):
    config = distribution.cluster_config(environ)
    assert config is None
    assert distribution.training_task_count(config) == 0
    assert distribution.is_chief_task(config)


@pytest.mark.dsp
def test_a_single_vertex_replica_is_not_several_machines():
    config = distribution.cluster_config({"CLUSTER_SPEC": _cluster_spec(
        "workerpool0", 0, {"workerpool0": ["cmle-training-workerpool0-ab-0:2222"]})})
    assert distribution.training_task_count(config) == 1  # 'auto' trains on the local devices only.
    assert distribution.is_chief_task(config)


@pytest.mark.dsp
@pytest.mark.parametrize("cluster, task, chief", [
    ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 0}, True),
    ({"worker": ["a:1", "b:1"]}, {"type": "worker", "index": 1}, False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, False),
    ({"chief": ["c:1"], "worker": ["a:1"]}, {"type": "chief", "index": 0}, True),
    ({"master": ["m:1"], "worker": ["a:1"]}, {"type": "master", "index": 0}, True),
    ({"master": ["m:1"], "worker": ["a:1"]}, {"type": "worker", "index": 0}, False),
], ids=["worker 0 without chief", "worker 1", "worker 0 with a chief", "chief", "master", "worker with a master"])
def test_the_chief_is_chief_or_master_else_worker_0(cluster, task, chief):
    assert distribution.is_chief_task({"cluster": cluster, "task": task}) is chief


@pytest.mark.dsp
@pytest.mark.parametrize("environ, message", [
    ({"TF_CONFIG": "{not json"}, "TF_CONFIG is not JSON"),
    ({"CLUSTER_SPEC": _cluster_spec("workerpool7", 0)}, "unknown worker pool 'workerpool7'"),
])
def test_bad_cluster_descriptions_are_named(environ, message):
    with pytest.raises(ValueError, match=message):
        distribution.cluster_config(environ)


@pytest.mark.dsp
def test_unknown_shard_policy_raises():
    with pytest.raises(ValueError, match="shard_policy"):
        distribution.Distribution("none", shard_policy="rows")


def test_several_machines_on_jax_are_refused():
    pytest.importorskip("jax")
    config = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 0}}
    with pytest.raises(ValueError, match="for the TensorFlow backend"):
        distribution._jax_distribution("auto", config)
