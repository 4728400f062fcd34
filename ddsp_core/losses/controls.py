"""Losses on synthesizer controls: a parameter loss (`ParamLoss`, `amp_loss`, `freq_loss`) and
the consistency losses between a filtered-noise or harmonic synth's controls and another's."""

import gin
from keras import ops

from ddsp_core.core.units import float32, hz_to_midi, log10
from ddsp_core.losses.base import Loss, mean_difference


@gin.register(module="ddsp_core.losses")  # gin name: losses.<Class>, as magenta's
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


@gin.register(module="ddsp_core.losses")  # gin name: losses.<Class>, as magenta's
class FilteredNoiseConsistencyLoss(Loss):
    """weight * `amp_loss` between filtered-noise magnitudes and target ones (experimental)."""

    def __init__(self, weight=1.0, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight

    def call(self, noise_magnitudes, noise_magnitudes_target):
        """Scalar loss; both [batch, n_frames, n_bands]."""
        return self.weight * amp_loss(noise_magnitudes, noise_magnitudes_target)


@gin.register(module="ddsp_core.losses")  # gin name: losses.<Class>, as magenta's
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
