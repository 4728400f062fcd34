"""Trainable models. `get_model()` returns the one configured in gin (get_model.model)."""

import gin

from ddsp_core.models.autoencoder import Autoencoder, count_trainable_parameters
from ddsp_core.models.model import TOTAL_LOSS, LastValue, Model


@gin.configurable
def get_model(model=gin.REQUIRED):
    """The model bound in gin: get_model.model = @models.Autoencoder()."""
    return model


__all__ = ["Autoencoder", "LastValue", "Model", "TOTAL_LOSS", "count_trainable_parameters", "get_model"]
