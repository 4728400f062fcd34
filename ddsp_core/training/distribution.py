"""Data-parallel training across devices, per Keras backend.

TensorFlow: tf.distribute (MultiWorkerMirroredStrategy when TF_CONFIG describes a
cluster, MirroredStrategy over the local GPUs). JAX: keras.distribution.DataParallel
over the local devices. With one device nothing is distributed. The model and its
optimizer must be created inside `scope()`.
"""

import contextlib
import json
import logging
import os

import gin
import keras

KINDS = ("auto", "none", "mirrored", "multi_worker", "data_parallel")


def _tf_strategy(kind):
    import tensorflow as tf

    if kind == "auto":
        if os.environ.get("TF_CONFIG") and json.loads(os.environ["TF_CONFIG"]).get("cluster"):
            kind = "multi_worker"
        elif len(tf.config.list_logical_devices("GPU")) > 1:
            kind = "mirrored"
        else:
            return None
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if kind in ("mirrored", "data_parallel"):
        return tf.distribute.MirroredStrategy()
    return None


def _jax_distribution(kind):
    import jax

    devices = jax.devices()
    if kind == "auto" and len(devices) < 2:
        return None
    if kind == "multi_worker":
        raise ValueError("distribution kind 'multi_worker' is for the TensorFlow backend; on JAX use "
                         "'data_parallel' (it spans the devices jax.devices() sees).")
    return keras.distribution.DataParallel(devices=devices)


class Distribution:
    """The active data-parallel setting: `scope()` to build under, `num_replicas` to divide batches by."""

    def __init__(self, kind="auto"):
        if kind not in KINDS:
            raise ValueError(f"distribution kind must be one of {KINDS}, got {kind!r}.")
        self.kind = kind
        self.strategy = None
        self.jax_distribution = None
        if kind == "none":
            return
        backend = keras.backend.backend()
        if backend == "tensorflow":
            self.strategy = _tf_strategy(kind)
        elif backend == "jax":
            self.jax_distribution = _jax_distribution(kind)
        if self.strategy is not None:
            logging.info("Training with %s over %d replicas.", type(self.strategy).__name__, self.num_replicas)
        if self.jax_distribution is not None:
            keras.distribution.set_distribution(self.jax_distribution)
            logging.info("Training with keras.distribution.DataParallel over %d devices.", self.num_replicas)

    @property
    def num_replicas(self):
        if self.strategy is not None:
            return int(self.strategy.num_replicas_in_sync)
        if self.jax_distribution is not None:
            return len(self.jax_distribution.device_mesh.devices.flatten())
        return 1

    def scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def check_batch_size(self, batch_size):
        if batch_size % self.num_replicas:
            raise ValueError(f"batch_size {batch_size} must be divisible by the {self.num_replicas} devices "
                             "training in parallel (set --gin_param='batch_size=...').")


@gin.configurable
def get_distribution(kind="auto"):
    """The distribution to train with (gin: get_distribution.kind = 'auto'|'none'|'mirrored'|...)."""
    return Distribution(kind)
