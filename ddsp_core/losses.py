"""Losses: multi-scale spectral loss between target and synthesized audio, a CREPE embedding
loss, losses on synthesizer controls, and a `LossGroup` running losses as a DAG.

The experimental losses between sets of sinusoids live in `sinusoid_losses`, the HMM
note transcriber in `hmm`; both are importable from here under magenta's names.
"""

from typing import Any, Dict

import gin
import keras
from keras import ops

from ddsp_core import dags
from ddsp_core.core import checks
from ddsp_core.core.units import float32, hz_to_midi, log10, safe_log
from ddsp_core.crepe_layers import CREPEActivations
from ddsp_core.spectral_ops import compute_loudness, compute_mag

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


@gin.register
class SpectralLoss(Loss):
    """Multi-scale spectrogram loss (Engel et al. 2020).

    For each FFT size, compares the STFT magnitudes of target and audio (hann window,
    `overlap` between frames), with optional terms on their time and frequency
    differences, frequency cumsum and log; plus optionally the A-weighted loudness of
    audio at `sample_rate` Hz (the only term that depends on the rate; models/ae.gin binds
    it to the dataset's).
    """

    def __init__(self, fft_sizes=(2048, 1024, 512, 256, 128, 64), loss_type="L1", mag_weight=1.0,
                 delta_time_weight=0.0, delta_freq_weight=0.0, cumsum_freq_weight=0.0, logmag_weight=0.0,
                 loudness_weight=0.0, overlap=0.75, sample_rate=16000, name="spectral_loss"):
        super().__init__(name=name)
        checks.check_positive("sample_rate", sample_rate)
        if str(loss_type).upper() not in LOSS_TYPES:
            raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}.")
        if not fft_sizes:
            raise ValueError("fft_sizes must name at least one FFT size.")
        for size in fft_sizes:
            checks.check_positive_int("fft_sizes[i]", size)
        self.fft_sizes = tuple(int(size) for size in fft_sizes)
        self.loss_type = str(loss_type).upper()
        self.mag_weight = mag_weight
        self.delta_time_weight = delta_time_weight
        self.delta_freq_weight = delta_freq_weight
        self.cumsum_freq_weight = cumsum_freq_weight
        self.logmag_weight = logmag_weight
        self.loudness_weight = loudness_weight
        self.overlap = overlap
        self.sample_rate = sample_rate

    def call(self, target_audio, audio, weights=None):
        """Loss between target and synthesized audio.

        Args:
            target_audio: [batch, n_samples].
            audio: [batch, n_samples].
            weights: Optional weights for the spectrogram terms, broadcastable to
                [batch, n_frames, n_bins].

        Returns:
            Scalar loss (0 for identical inputs).
        """
        target_audio, audio = float32(target_audio), float32(audio)
        checks.check_rank("target_audio", target_audio, 2, "[batch, n_samples]")
        checks.check_rank("audio", audio, 2, "[batch, n_samples]")
        checks.check_same_dims([("target_audio", target_audio), ("audio", audio)], axes=(0, 1),
                               expected_shape="both [batch, n_samples]")
        loss = 0.0
        for size in self.fft_sizes:
            target_mag = compute_mag(target_audio, size=size, overlap=self.overlap)
            value_mag = compute_mag(audio, size=size, overlap=self.overlap)
            loss = loss + self._terms(target_mag, value_mag, weights)
        if self.loudness_weight > 0:
            target_loudness = compute_loudness(target_audio, self.sample_rate, n_fft=2048)
            value_loudness = compute_loudness(audio, self.sample_rate, n_fft=2048)
            loss = loss + self.loudness_weight * mean_difference(target_loudness, value_loudness, self.loss_type)
        return loss

    def _terms(self, target_mag, value_mag, weights):
        """Weighted sum of the spectrogram terms for one FFT size."""
        def difference(target, value):
            return mean_difference(target, value, self.loss_type, weights=weights)

        loss = 0.0
        if self.mag_weight > 0:
            loss = loss + self.mag_weight * difference(target_mag, value_mag)
        if self.delta_time_weight > 0:
            loss = loss + self.delta_time_weight * difference(
                ops.diff(target_mag, axis=1), ops.diff(value_mag, axis=1))
        if self.delta_freq_weight > 0:
            loss = loss + self.delta_freq_weight * difference(
                ops.diff(target_mag, axis=2), ops.diff(value_mag, axis=2))
        if self.cumsum_freq_weight > 0:
            loss = loss + self.cumsum_freq_weight * difference(
                ops.cumsum(target_mag, axis=2), ops.cumsum(value_mag, axis=2))
        if self.logmag_weight > 0:
            loss = loss + self.logmag_weight * difference(safe_log(target_mag), safe_log(value_mag))
        return loss


@gin.register
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


@gin.register
class ParamLoss(Loss):
    """weight * `mean_difference` of any two tensors of the same shape (e.g. synthesizer controls)."""

    def __init__(self, weight=1.0, loss_type="L1", **kwargs):
        super().__init__(**kwargs)
        self.weight = weight
        self.loss_type = loss_type

    def call(self, pred, target, weights=None):
        """Scalar loss; weights broadcastable to the difference."""
        return self.weight * mean_difference(float32(pred), float32(target), self.loss_type, weights)


def amp_loss(amp, amp_target, loss_type="L1", weights=None, log=False, amin=1e-5):
    """`mean_difference` of two amplitudes (any shape), optionally of log10(max(amin, amp))."""
    amp, amp_target = float32(amp), float32(amp_target)
    if log:
        amp, amp_target = log10(ops.maximum(amp, amin)), log10(ops.maximum(amp_target, amin))
    return mean_difference(amp, amp_target, loss_type, weights)


def freq_loss(f_hz, f_hz_target, loss_type="L1", weights=None):
    """`mean_difference` of two frequencies (Hz, any shape), compared in MIDI."""
    return mean_difference(hz_to_midi(f_hz), hz_to_midi(f_hz_target), loss_type, weights)


@gin.register
class FilteredNoiseConsistencyLoss(Loss):
    """weight * `amp_loss` between filtered-noise magnitudes and target ones (experimental)."""

    def __init__(self, weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight

    def call(self, noise_magnitudes, noise_magnitudes_target):
        """Scalar loss; both [batch, n_frames, n_bands]."""
        return self.weight * amp_loss(noise_magnitudes, noise_magnitudes_target)


@gin.register
class HarmonicConsistencyLoss(Loss):
    """Losses between harmonic-synth controls and target controls (experimental).

    The distribution and f0 terms count only frames whose target amplitude is at least
    amp_threshold. Returns a dict: {'harm_amp_loss', 'harm_dist_loss', 'f0_hz_loss'}.
    """

    def __init__(self, amp_weight=1.0, dist_weight=1.0, f0_weight=1.0, amp_threshold=1e-4, **kwargs):
        super().__init__(**kwargs)
        self.amp_weight = amp_weight
        self.dist_weight = dist_weight
        self.f0_weight = f0_weight
        self.amp_threshold = amp_threshold

    def call(self, harm_amp, harm_amp_target, harm_dist, harm_dist_target, f0_hz, f0_hz_target):
        """Losses from amplitudes [batch, n_frames, 1], distributions [batch, n_frames, n_harmonics]
        and f0 in Hz [batch, n_frames, 1] (each with its target)."""
        weights = ops.cast(float32(harm_amp_target) >= self.amp_threshold, "float32")  # [batch, n_frames, 1]
        return {
            "harm_amp_loss": self.amp_weight * amp_loss(harm_amp, harm_amp_target),
            "harm_dist_loss": self.dist_weight * amp_loss(harm_dist, harm_dist_target, weights=weights),
            "f0_hz_loss": self.f0_weight * freq_loss(f0_hz, f0_hz_target, weights=weights),
        }


@gin.register
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


@gin.register
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

# Experimental losses, in their own modules (which build on Loss and mean_difference above).
from ddsp_core.hmm import HmmTranscriber  # noqa: E402
from ddsp_core.sinusoid_losses import (KDEConsistencyLoss, TWMLoss, WassersteinConsistencyLoss,  # noqa: E402
                                       wasserstein_distance)

__all__ = [
    "CREPE_LAYER_SCALES", "EmbeddingLoss", "FilteredNoiseConsistencyLoss", "HarmonicConsistencyLoss",
    "HmmTranscriber", "KDEConsistencyLoss", "LOSS_TYPES", "Loss", "LossGroup", "ParamLoss", "PretrainedCREPE",
    "PretrainedCREPEEmbeddingLoss", "SpectralLoss", "TWMLoss", "TensorDict", "WassersteinConsistencyLoss",
    "amp_loss", "freq_loss", "mean_difference", "wasserstein_distance",
]
