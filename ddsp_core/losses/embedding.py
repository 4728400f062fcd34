"""Losses between embeddings of target and synthesized audio, among them CREPE's activations
(`PretrainedCREPEEmbeddingLoss`)."""

import gin

from ddsp_core.core.units import float32
from ddsp_core.crepe_layers import CREPEActivations
from ddsp_core.losses.base import Loss, mean_difference


@gin.register(module="ddsp_core.losses")  # gin name: losses.<Class>, as magenta's
class EmbeddingLoss(Loss):
    """weight * `mean_difference` of a pretrained model's embeddings of target and audio.

    A perceptual loss: a network trained to recognise structure (e.g. harmonicity) compares
    the two signals, where spectral losses alone let noise stand in for harmonics.

    Args:
        weight: Loss weight (0 turns the loss off).
        loss_type: 'L1', 'L2' or 'COSINE'.
        pretrained_model: Callable audio [batch, n_samples] -> embeddings.
    """

    def __init__(self, weight=1.0, loss_type="L1", pretrained_model=None, name="embedding_loss"):
        super().__init__(name=name)
        self.weight = weight
        self.loss_type = loss_type
        self.pretrained_model = pretrained_model

    def call(self, target_audio, audio):
        """Scalar loss from target and synthesized audio, each [batch, n_samples]."""
        if self.weight <= 0.0:
            return 0.0
        target_embedding = self.pretrained_model(float32(target_audio))
        embedding = self.pretrained_model(float32(audio))
        return self.weight * mean_difference(target_embedding, embedding, self.loss_type)


# Divisors that bring each CREPE layer's activation differences to comparable sizes.
CREPE_LAYER_SCALES = {
    "conv1-BN": 1.3, "conv1-maxpool": 1.0, "conv2-BN": 1.4, "conv2-maxpool": 1.1, "conv3-BN": 1.9,
    "conv3-maxpool": 1.6, "conv4-BN": 1.5, "conv4-maxpool": 1.4, "conv5-BN": 1.9, "conv5-maxpool": 1.7,
    "conv6-BN": 30.0, "conv6-maxpool": 25.0, "classifier": 130.0,
}


@gin.register(module="ddsp_core.losses")  # gin name: losses.<Class>, as magenta's
class PretrainedCREPEEmbeddingLoss(EmbeddingLoss):
    """`EmbeddingLoss` on the activations of one layer of a frozen pretrained CREPE (the original weights).

    Audio is 16 kHz, [batch, n_samples]; it is cut into centred 1024-sample frames every
    1024 samples (`crepe_layers.CREPEActivations`). The loss is weighted by
    20 * CREPE_LAYER_SCALES[activation_layer] * weight.

    Args:
        weight: Loss weight.
        loss_type: 'L1', 'L2' or 'COSINE'.
        model_capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
        activation_layer: One of CREPE_LAYER_SCALES' keys.
    """

    def __init__(self, weight=1.0, loss_type="L1", model_capacity="tiny", activation_layer="classifier",
                 name="pretrained_crepe_embedding_loss"):
        if activation_layer not in CREPE_LAYER_SCALES:
            raise ValueError(f"activation_layer must be one of {sorted(CREPE_LAYER_SCALES)}, got {activation_layer!r}.")
        super().__init__(weight=20.0 * CREPE_LAYER_SCALES[activation_layer] * weight, loss_type=loss_type, name=name,
                         pretrained_model=CREPEActivations(model_capacity=model_capacity,
                                                           activation_layer=activation_layer))


# magenta's name for the CREPE embedding layer.
PretrainedCREPE = CREPEActivations
