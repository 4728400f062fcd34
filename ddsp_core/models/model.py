"""Base class of trainable DDSP models: a Keras model whose loss is a dict of named terms."""

import keras
from keras import ops, tree

try:  # Keras' own scaling of a per-replica loss under tf.distribute (a no-op elsewhere).
    from keras.src.losses.loss import scale_loss_for_distribution
except ImportError:  # pragma: no cover - older or newer Keras layouts
    def scale_loss_for_distribution(value):
        return value

TOTAL_LOSS = "total_loss"


class LastValue(keras.metrics.Metric):
    """A metric that reports the value of its last update (a per-step loss, not a running mean).

    Under data-parallel training the replicas' values are averaged.
    """

    def __init__(self, name, **kwargs):
        super().__init__(name=name, **kwargs)
        self.last_value = self.add_variable(shape=(), initializer="zeros", name="last_value", aggregation="mean")

    def update_state(self, value):
        self.last_value.assign(ops.cast(value, self.dtype))

    def result(self):
        # `+ 0.0` reads the value as a tensor (also of a tf.distribute sync-on-read variable).
        return self.last_value + 0.0

    def reset_state(self):
        self.last_value.assign(0.0)


def _multi_worker_strategy(model):
    """Whether `model` trains under a TensorFlow MultiWorkerMirroredStrategy spanning several
    machines (Keras' own test for its multi-worker reductions)."""
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    strategy = model.distribute_strategy
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and strategy.extended._in_multi_worker_mode()


class Model(keras.Model):
    """A Keras model trained on a sum of named losses.

    Subclasses implement `call(features, training)` returning a dict of outputs, and
    `loss_terms(features, outputs)` returning {loss name: scalar}. `compute_loss` sums
    the terms; each term and the total are reported per step through `LastValue`
    metrics, so `fit` logs e.g. {'spectral_loss': ..., 'total_loss': ...}.
    """

    def __init__(self, loss_names=(), **kwargs):
        super().__init__(**kwargs)
        self.loss_trackers = {name: LastValue(name) for name in (*loss_names, TOTAL_LOSS)}

    def build(self, input_shape=None):
        """Sublayers build themselves on the first call."""
        self.built = True

    def loss_terms(self, features, outputs):
        raise NotImplementedError

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """Sum of `loss_terms(x, y_pred)`; also updates the per-term trackers."""
        terms = self.loss_terms(x, y_pred)
        total = ops.sum(ops.stack([ops.cast(value, "float32") for value in terms.values()]))
        for name, value in terms.items():
            self.loss_trackers[name].update_state(value)
        self.loss_trackers[TOTAL_LOSS].update_state(total)
        # Under tf.distribute each replica's gradients are summed: scale by 1 / replicas.
        return scale_loss_for_distribution(total)

    def losses_dict(self, features, outputs):
        """{loss name: float} and the total, for evaluation (no metric updates)."""
        terms = {name: float(ops.convert_to_numpy(value)) for name, value in self.loss_terms(features, outputs).items()}
        terms[TOTAL_LOSS] = float(sum(terms.values()))
        return terms

    def train_step(self, *args, **kwargs):
        """Keras' train step; its logs as shape [1] under a multi-worker TensorFlow strategy.

        There Keras averages each log over the replicas with `strategy.reduce('MEAN', value,
        axis=0)`, which fails on a scalar ("Invalid reduction dimension 0 for input with 0
        dimensions", Keras 3, tensorflow/tensorflow#72388); on [1] it gives the scalar mean.
        """
        logs = super().train_step(*args, **kwargs)
        if _multi_worker_strategy(self):
            logs = {name: ops.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """(TensorFlow) Builds the model's state before `fit` from the dataset's element spec.

        Keras takes the first batch under a strategy and averages its dict of per-replica
        values in one `strategy.reduce` call, which MultiWorkerMirroredStrategy refuses
        ("Attempt to convert a value ({'audio': PerReplica...}) ... to a Tensor", Keras
        3.15); it also starts an iterator over the data just for that, so that training
        then starts a second pass (another order of a reshuffled dataset than on one
        device). Only the shapes and dtypes are needed: they are taken from the spec. Elsewhere
        (one process) Keras' own build is kept.
        """
        if iterator is not None and data_batch is None and _multi_worker_strategy(self):
            spec = iterator.data_adapter.get_tf_dataset().element_spec
            data_batch = tree.map_structure(lambda s: keras.KerasTensor(s.shape, s.dtype.name), spec)
            iterator = None
        return super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    @property
    def metrics(self):
        base = super().metrics
        return [*base, *[tracker for tracker in self.loss_trackers.values() if tracker not in base]]
