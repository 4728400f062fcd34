"""The base of every loss: `Loss` (a weighted Keras layer), `mean_difference` (L1, L2 or
cosine, with optional weights), and `LossGroup`, which runs losses as a DAG."""

from typing import Any, Dict

import gin
import keras
from keras import ops

from ddsp_core import dags
from ddsp_core.core.units import float32


# magenta's type name for a dict of tensors.
TensorDict = Dict[str, Any]

LOSS_TYPES = ("L1", "L2", "COSINE")


def _unit_norm(x, eps=1e-12):
    """x scaled to unit L2 norm along the last axis (zero vectors stay zero)."""
    norm = ops.sqrt(ops.maximum(ops.sum(x * x, axis=-1, keepdims=True), eps * eps))
    return x / norm


def mean_difference(target, value, loss_type="L1", weights=None):
    """Mean difference between two tensors of the same shape.

    Args:
        target: Target, e.g. a spectrogram [batch, n_frames, n_bins].
        value: Prediction, same shape.
        loss_type: 'L1' (mean absolute difference), 'L2' (mean squared difference) or
            'COSINE' (mean over frames of 1 - cosine similarity along the last axis).
        weights: Optional weights broadcastable to the difference (for COSINE, to
            [batch, n_frames, 1]).

    Returns:
        Scalar loss.
    """
    loss_type = str(loss_type).upper()
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}.")
    weights = 1.0 if weights is None else float32(weights)
    if loss_type == "L1":
        return ops.mean(ops.abs(target - value) * weights)
    if loss_type == "L2":
        difference = target - value
        return ops.mean(difference * difference * weights)
    # 1 - cos(angle) = |a/|a| - b/|b||^2 / 2; exactly zero for identical inputs.
    distance = 0.5 * ops.sum((_unit_norm(target) - _unit_norm(value)) ** 2, axis=-1, keepdims=True)
    return ops.mean(distance * weights)


class Loss(keras.layers.Layer):
    """Base class of losses: a layer computing a scalar from (target, prediction)."""

    def get_losses_dict(self, *args, **kwargs):
        """{loss name: scalar loss}."""
        return {self.name: self(*args, **kwargs)}


@gin.register(module="ddsp_core.losses")  # gin name: losses.<Class>, as magenta's
class LossGroup(dags.DAGLayer):
    """Computes several losses on a dict of model outputs, wired as a DAG (see `dags`).

    Each node is (loss or its name, [input keys]); the result is one flat dict of every
    loss's `get_losses_dict`, e.g. {'spectral_loss': ..., 'crepe_loss': ...}.

    Args:
        dag: [(loss, ['audio', 'audio_synth']), ...]; keys are paths into the outputs.
        **kwarg_losses: Losses the DAG names by string, and Keras layer arguments (name, ...).
    """

    def __init__(self, dag, **kwarg_losses):
        super().__init__(dag, **kwarg_losses)
        self.loss_names = self.module_names

    @property
    def losses(self):
        """The loss layers, in order (magenta's meaning; Keras' own `losses` list is not used here)."""
        return [getattr(self, name) for name in self.loss_names]

    def call(self, outputs, **kwargs):
        """{loss name: scalar} from `outputs`, a dict of the model's output tensors."""
        dag_outputs = super().call(outputs, **kwargs)
        losses = {}
        for name in self.loss_names:
            losses.update(dag_outputs[name])
        return losses

    def get_losses_dict(self, outputs, **kwargs):
        """Same as calling the group."""
        return self(outputs, **kwargs)
