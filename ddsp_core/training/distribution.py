"""Data-parallel training across devices and machines, per Keras backend.

TensorFlow: tf.distribute (MultiWorkerMirroredStrategy when the environment describes a
cluster of several training tasks, MirroredStrategy over the local GPUs). JAX:
keras.distribution.DataParallel over the local devices. With one device nothing is
distributed. The model and its optimizer must be created inside `scope()`.

Several machines (TensorFlow only): each process finds its cluster and its own task in
TF_CONFIG, as AI Platform and Kubeflow's TFJob set it, or in Vertex AI's CLUSTER_SPEC
(its worker pools 0-3 are TensorFlow's chief, workers, parameter servers and evaluator;
`cluster_config`). Every task runs the same training; the gradients are summed across
all replicas of all machines each step, so the global batch is split among them
(`check_batch_size`), and only the chief writes files (`is_chief`).
"""

import contextlib
import json
import logging
import os

import gin
import keras

KINDS = ("auto", "none", "mirrored", "multi_worker", "data_parallel")
SHARD_POLICIES = ("data", "file", "auto")
# Vertex AI's worker pools, in the order of CustomJobSpec.workerPoolSpecs, as TensorFlow task types.
VERTEX_WORKER_POOLS = {"workerpool0": "chief", "workerpool1": "worker", "workerpool2": "ps",
                       "workerpool3": "evaluator"}
# Task types that train (the others serve parameters or evaluate).
TRAINING_TASKS = ("chief", "master", "worker")


def tf_config_from_cluster_spec(cluster_spec):
    """Vertex AI's CLUSTER_SPEC (a dict) as a TF_CONFIG dict.

    CLUSTER_SPEC names the worker pools (`{"cluster": {"workerpool0": [host:port],
    "workerpool1": [...]}, "task": {"type": "workerpool1", "index": 0}, ...}`); TF_CONFIG
    names TensorFlow's task types, here chief, worker, ps and evaluator. The evaluator is
    left out of the cluster, as TensorFlow expects.
    """
    def task_type(pool):
        if pool not in VERTEX_WORKER_POOLS:
            raise ValueError(f"CLUSTER_SPEC names an unknown worker pool {pool!r} (expected one of "
                             f"{', '.join(VERTEX_WORKER_POOLS)}).")
        return VERTEX_WORKER_POOLS[pool]

    cluster = {task_type(pool): list(addresses) for pool, addresses in cluster_spec.get("cluster", {}).items()
               if addresses}
    cluster.pop("evaluator", None)
    config = {"cluster": cluster}
    task = cluster_spec.get("task")
    if task:
        config["task"] = {"type": task_type(task["type"]), "index": int(task.get("index", 0))}
    return config


def cluster_config(environ):
    """This process's TF_CONFIG as a dict, or None when it is not part of a cluster.

    Args:
        environ: The environment (a mapping, e.g. os.environ). TF_CONFIG (JSON) is used
            when it has a cluster; else Vertex AI's CLUSTER_SPEC, translated by
            `tf_config_from_cluster_spec`.

    Returns:
        {'cluster': {task type: [host:port, ...]}, 'task': {'type': ..., 'index': int}}
        (the TF_CONFIG to give TensorFlow), or None.
    """
    for name in ("TF_CONFIG", "CLUSTER_SPEC"):
        text = environ.get(name)
        if not text:
            continue
        try:
            parsed = json.loads(text)
        except ValueError as error:
            raise ValueError(f"{name} is not JSON ({error}): {text[:200]!r}") from None
        config = parsed if name == "TF_CONFIG" else tf_config_from_cluster_spec(parsed)
        if config.get("cluster"):
            return {"cluster": config["cluster"], "task": config.get("task", {})}
    return None


def training_task_count(config):
    """The number of tasks that train (chief, master and workers) in a TF_CONFIG dict (0 for None)."""
    if not config:
        return 0
    return sum(len(config["cluster"].get(task_type, ())) for task_type in TRAINING_TASKS)


def is_chief_task(config):
    """Whether the task of a TF_CONFIG dict is the one that writes files: the chief (or
    'master'), or worker 0 when the cluster has neither. True when config is None."""
    if not config:
        return True
    task = config.get("task") or {}
    task_type, index = task.get("type"), int(task.get("index", 0))
    if task_type in ("chief", "master"):
        return True
    has_chief = any(config["cluster"].get(name) for name in ("chief", "master"))
    return task_type == "worker" and index == 0 and not has_chief


def _multi_worker_strategy(config):
    import tensorflow as tf

    if not config:
        return tf.distribute.MultiWorkerMirroredStrategy()
    task = config.get("task") or {}
    if task.get("type") not in TRAINING_TASKS:
        raise ValueError(f"This task ({task.get('type')!r} {task.get('index')}) does not train: multi-worker "
                         f"training runs on the {', '.join(TRAINING_TASKS)} tasks only. Give the job no "
                         "parameter servers or evaluators.")
    if config["cluster"].get("ps"):
        raise ValueError("The cluster has parameter servers ('ps'): MultiWorkerMirroredStrategy trains on "
                         "chief and worker tasks only. Give the job no parameter-server pool.")
    # Given explicitly, not through os.environ: TF_CONFIG is read from the config found above.
    resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
        tf.train.ClusterSpec(config["cluster"]), task_type=task["type"], task_id=int(task.get("index", 0)),
        rpc_layer="grpc")
    return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver)


def _tf_strategy(kind, config):
    import tensorflow as tf

    if kind == "auto":
        # Before anything else starts TensorFlow's runtime: the multi-worker strategy must
        # be created first (listing the logical devices would start it).
        if training_task_count(config) > 1:
            kind = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            return None
    if kind == "multi_worker":
        return _multi_worker_strategy(config)
    if kind in ("mirrored", "data_parallel"):
        return tf.distribute.MirroredStrategy()
    return None


def _jax_distribution(kind, config):
    import jax

    if kind == "multi_worker" or (kind == "auto" and training_task_count(config) > 1):
        raise ValueError("distribution kind 'multi_worker' (several machines, from TF_CONFIG or CLUSTER_SPEC) is "
                         "for the TensorFlow backend; on JAX use 'data_parallel' (it spans the devices "
                         "jax.devices() sees), or train on TensorFlow (KERAS_BACKEND=tensorflow).")
    devices = jax.devices()
    if kind == "auto" and len(devices) < 2:
        return None
    return keras.distribution.DataParallel(devices=devices)


class Distribution:
    """The active data-parallel setting: `scope()` to build under, `num_replicas` to divide
    batches by, `is_chief` to write files only once.

    Args:
        kind: One of KINDS. 'auto': several machines when the environment describes a
            cluster of several training tasks (TensorFlow), else the local GPUs if there
            are several, else nothing.
        environ: Where to find TF_CONFIG or CLUSTER_SPEC; None for os.environ.
        shard_policy: With several machines, how tf.data splits the examples among them:
            'data' (each machine reads every example in the same order and keeps its share
            of each global batch, so a global batch is the one a single process would
            train on), 'file' (each machine reads its own files: less reading, but needs at
            least as many files as machines) or 'auto' (files if it can, else data).
    """

    def __init__(self, kind="auto", environ=None, shard_policy="data"):
        if kind not in KINDS:
            raise ValueError(f"distribution kind must be one of {KINDS}, got {kind!r}.")
        if shard_policy not in SHARD_POLICIES:
            raise ValueError(f"shard_policy must be one of {SHARD_POLICIES}, got {shard_policy!r}.")
        self.kind = kind
        self.shard_policy = shard_policy
        self.strategy = None
        self.jax_distribution = None
        self.cluster = None  # The TF_CONFIG dict of a multi-worker strategy.
        if kind == "none":
            return
        config = cluster_config(os.environ if environ is None else environ)
        backend = keras.backend.backend()
        if backend == "tensorflow":
            self.strategy = _tf_strategy(kind, config)
        elif backend == "jax":
            self.jax_distribution = _jax_distribution(kind, config)
        if self.is_multi_worker:
            self.cluster = config
            task = (config or {}).get("task") or {}
            logging.info("Training with MultiWorkerMirroredStrategy over %d replicas on %d machines; this is %s %s%s.",
                         self.num_replicas, max(training_task_count(config), 1), task.get("type", "the only task"),
                         task.get("index", ""), " (the chief: it writes the files)" if self.is_chief else
                         " (not the chief: it writes nothing into save_dir)")
        elif self.strategy is not None:
            logging.info("Training with %s over %d replicas.", type(self.strategy).__name__, self.num_replicas)
        if self.jax_distribution is not None:
            keras.distribution.set_distribution(self.jax_distribution)
            logging.info("Training with keras.distribution.DataParallel over %d devices.", self.num_replicas)

    @property
    def num_replicas(self):
        """Replicas a global batch is split among (all devices of all machines)."""
        if self.strategy is not None:
            return int(self.strategy.num_replicas_in_sync)
        if self.jax_distribution is not None:
            return len(self.jax_distribution.device_mesh.devices.flatten())
        return 1

    @property
    def is_multi_worker(self):
        if self.strategy is None:
            return False
        import tensorflow as tf

        return isinstance(self.strategy, tf.distribute.MultiWorkerMirroredStrategy)

    @property
    def is_chief(self):
        """Whether this process writes the run's files (always, unless it is a non-chief
        task of a multi-worker cluster)."""
        return is_chief_task(self.cluster) if self.is_multi_worker else True

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def check_batch_size(self, batch_size):
        if batch_size % self.num_replicas:
            raise ValueError(f"batch_size {batch_size} must be divisible by the {self.num_replicas} devices "
                             "training in parallel (set --gin_param='batch_size=...').")

    def shard(self, dataset):
        """A tf.data dataset of global batches, with the shard policy set for several machines
        (`fit` splits each global batch among the replicas)."""
        if not self.is_multi_worker:
            return dataset
        import tensorflow as tf

        policies = {"data": tf.data.experimental.AutoShardPolicy.DATA,
                    "file": tf.data.experimental.AutoShardPolicy.FILE,
                    "auto": tf.data.experimental.AutoShardPolicy.AUTO}
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = policies[self.shard_policy]
        return dataset.with_options(options)


@gin.configurable
def get_distribution(kind="auto", shard_policy="data"):
    """The distribution to train with (gin: get_distribution.kind = 'auto'|'none'|'mirrored'|...,
    get_distribution.shard_policy = 'data'|'file'|'auto'), from this process's environment."""
    return Distribution(kind, environ=os.environ, shard_policy=shard_policy)
