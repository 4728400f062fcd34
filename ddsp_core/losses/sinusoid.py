"""Losses between sets of sinusoids (experimental in magenta's ddsp too).

Each frame holds a set of sinusoids, frequencies in Hz and amplitudes, shaped
[batch, n_frames, n_sinusoids]. `WassersteinConsistencyLoss` compares two sets as
amplitude-weighted distributions of pitch; `KDEConsistencyLoss` scores each set under a
Gaussian kernel density estimate of the other; `TWMLoss` is a smooth two-way mismatch
between sinusoids and the harmonics of f0 candidates. Densities are Gaussian mixtures
(`GaussianMixture`), written with keras.ops.
"""

import math

import gin
import numpy as np
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.units import float32, hz_to_midi, safe_divide
from ddsp_core.losses.base import Loss

# Amplitudes of 0 are replaced by this in a mixture's weights, so that an all-silent frame
# still has a (uniform) density.
_MIN_AMPLITUDE = 1e-7


class GaussianMixture:
    """A mixture of 1-D Gaussians along the last axis of its parameters.

    Args:
        weights: Mixture weights, summing to 1 along the last axis, [..., n_components].
        loc: Means, broadcastable to weights.
        scale: Standard deviations (> 0), broadcastable to weights.
    """

    def __init__(self, weights, loc, scale):
        self.weights = float32(weights)
        self.loc = float32(loc)
        self.scale = float32(scale)

    def log_prob(self, x):
        """log p(x) for x [*sample_shape, *batch_shape] (batch_shape: the parameters' shape without its last axis)."""
        x = float32(x)[..., None]  # [..., 1] against the components
        z = (x - self.loc) / self.scale
        log_normal = -0.5 * z * z - ops.log(self.scale) - 0.5 * math.log(2.0 * math.pi)
        return ops.logsumexp(ops.log(self.weights) + log_normal, axis=-1)


def _normalized(amps):
    """Amplitudes scaled to sum to 1 along the last axis (0s replaced by a tiny value first)."""
    amps = float32(amps)
    amps = ops.where(amps == 0.0, _MIN_AMPLITUDE, amps)
    return safe_divide(amps, ops.sum(amps, axis=-1, keepdims=True))


def _check_sinusoids(**tensors):
    for name, value in tensors.items():
        checks.check_rank(name, value, 3, "[batch, n_frames, n_sinusoids]")
    checks.check_same_dims(list(tensors.items()), axes=(0, 1), expected_shape="[batch, n_frames, n_sinusoids]")


def _cdf_at(sorted_values, cumulative_weights, points):
    """Step CDF of sorted samples at `points`: cumulative_weights[count of samples <= point]."""
    counts = ops.sum(ops.cast(sorted_values[..., None, :] <= points[..., :, None], "int32"), axis=-1)
    return ops.take_along_axis(cumulative_weights, counts, axis=-1)


def wasserstein_distance(u_values, v_values, u_weights, v_weights, p=1.0):
    """Differentiable 1-D Wasserstein-p distance between two weighted sets of samples.

    ( integral |U(x) - V(x)|^p dx )^(1/p), with U and V the step CDFs of the samples,
    each weighted by its (normalized) weights; p = 1 is the earth mover's distance, as
    scipy.stats.wasserstein_distance. magenta's version leaves weighted CDFs unnormalized
    (a discarded safe_divide); here they are normalized, so the distance does not depend
    on the overall scale of the weights.

    Args:
        u_values: Samples of u, [..., n_u].
        v_values: Samples of v, [..., n_v].
        u_weights: Weights >= 0 of u's samples, [..., n_u], or None for equal weights.
        v_weights: Same for v, [..., n_v].
        p: Order of the distance (>= 1).

    Returns:
        Distance, [...] (the leading axes).
    """
    u_values, v_values = float32(u_values), float32(v_values)
    all_values = ops.sort(ops.concatenate([u_values, v_values], axis=-1), axis=-1)  # [..., n_u + n_v]
    deltas = all_values[..., 1:] - all_values[..., :-1]
    points = all_values[..., :-1]

    def cdf(values, weights):
        order = ops.argsort(values, axis=-1)
        sorted_values = ops.take_along_axis(values, order, axis=-1)
        if weights is None:
            weights = ops.ones_like(values)
        cumulative = ops.cumsum(ops.take_along_axis(float32(weights), order, axis=-1), axis=-1)
        cumulative = ops.concatenate([ops.zeros_like(cumulative[..., :1]), cumulative], axis=-1)
        return safe_divide(_cdf_at(sorted_values, cumulative, points), cumulative[..., -1:])

    difference = ops.abs(cdf(u_values, u_weights) - cdf(v_values, v_weights))
    total = ops.sum(deltas * difference**p, axis=-1)
    return total if p == 1.0 else ops.power(total, 1.0 / p)


@gin.register(module="ddsp_core.losses")  # gin name: losses.<Class>, as magenta's
class WassersteinConsistencyLoss(Loss):
    """Mean Wasserstein-1 distance between two sets of sinusoids, weighted by amplitude, per frame.

    Args:
        weight: Loss weight.
        midi: Compare frequencies in MIDI (log scale); else in Hz. (magenta returns 0
            when midi=False; here the distance is taken in Hz.)
    """

    def __init__(self, weight=1.0, midi=True, **kwargs):
        super().__init__(**kwargs)
        self.weight = weight
        self.midi = midi

    def call(self, amps_a, freqs_a, amps_b, freqs_b):
        """Scalar loss from amplitudes (> 0) and frequencies (Hz), each [batch, n_frames, n_sinusoids]."""
        amps_a, freqs_a, amps_b, freqs_b = map(float32, (amps_a, freqs_a, amps_b, freqs_b))
        _check_sinusoids(amps_a=amps_a, freqs_a=freqs_a, amps_b=amps_b, freqs_b=freqs_b)
        if self.weight <= 0.0:
            return 0.0
        if self.midi:
            freqs_a, freqs_b = hz_to_midi(freqs_a), hz_to_midi(freqs_b)
        return ops.mean(self.weight * wasserstein_distance(freqs_a, freqs_b, amps_a, amps_b, p=1.0))


@gin.register(module="ddsp_core.losses")  # gin name: losses.<Class>, as magenta's
class KDEConsistencyLoss(Loss):
    """Likelihood of each set of sinusoids under a kernel density estimate of the other.

    Each set becomes a Gaussian mixture in MIDI, one component per sinusoid weighted by
    its amplitude (`kernel_density_estimate`); the loss adds -log p(a | b), -log p(b | a)
    (each weighted by the scored sinusoids' amplitudes) and the difference of the mean
    amplitudes, which the likelihoods ignore.

    Args:
        weight_a: Weight of -log p(a | b).
        weight_b: Weight of -log p(b | a).
        weight_mean_amp: Weight of |mean amplitude of a - mean amplitude of b|.
        scale_a: Kernel width in MIDI around a's sinusoids.
        scale_b: Kernel width in MIDI around b's sinusoids.
    """

    def __init__(self, weight_a=1.0, weight_b=1.0, weight_mean_amp=1.0, scale_a=0.1, scale_b=0.1, **kwargs):
        super().__init__(**kwargs)
        self.weight_a = weight_a
        self.weight_b = weight_b
        self.weight_mean_amp = weight_mean_amp
        self.scale_a = scale_a
        self.scale_b = scale_b

    def call(self, amps_a, freqs_a, amps_b, freqs_b):
        """Scalar loss from amplitudes (> 0) and frequencies (Hz), each [batch, n_frames, n_sinusoids]."""
        amps_a, freqs_a, amps_b, freqs_b = map(float32, (amps_a, freqs_a, amps_b, freqs_b))
        _check_sinusoids(amps_a=amps_a, freqs_a=freqs_a, amps_b=amps_b, freqs_b=freqs_b)
        loss = 0.0
        if self.weight_a > 0.0:
            loss = loss + ops.mean(self.weight_a * self.nll(amps_a, freqs_a, amps_b, freqs_b, self.scale_b))
        if self.weight_b > 0.0:
            loss = loss + ops.mean(self.weight_b * self.nll(amps_b, freqs_b, amps_a, freqs_a, self.scale_a))
        if self.weight_mean_amp > 0.0:
            difference = ops.mean(amps_a, axis=-1) - ops.mean(amps_b, axis=-1)
            loss = loss + self.weight_mean_amp * ops.mean(ops.abs(difference))
        return loss

    def nll(self, amps, freqs, amps_target, freqs_target, scale_target):
        """-log p(source sinusoids | target sinusoids), amplitude-weighted mean over the sources: [batch, n_frames].

        Args:
            amps, freqs: Source amplitudes (> 0) and frequencies (Hz), [batch, n_frames, n].
            amps_target, freqs_target: Target sinusoids, [batch, n_frames, n_target].
            scale_target: Kernel width in MIDI around the targets.
        """
        density = self.kernel_density_estimate(amps_target, freqs_target, scale_target)
        # Sources first, as the mixture's sample axis: [n, batch, n_frames].
        log_p = density.log_prob(ops.transpose(hz_to_midi(freqs), (2, 0, 1)))
        nll = ops.transpose(-log_p, (1, 2, 0))  # [batch, n_frames, n]
        return ops.mean(nll * _normalized(amps), axis=-1)

    def kernel_density_estimate(self, amps, freqs, scale):
        """Gaussian mixture in MIDI: one component per sinusoid, weighted by its amplitude, width `scale`."""
        return GaussianMixture(_normalized(amps), hz_to_midi(freqs), scale)


@gin.register(module="ddsp_core.losses")  # gin name: losses.<Class>, as magenta's
class TWMLoss(Loss):
    """Two-way mismatch between sinusoids and the harmonics of f0 candidates, made smooth.

    For each f0 candidate: -log p(sinusoids | harmonics) (each sinusoid's frequency ratio to
    the candidate under Gaussians at harmonic numbers 1..n_harmonic_gaussians, weighted by
    amplitude) plus -log p(harmonics | sinusoids) (the candidate's first n_harmonic_points
    harmonics, in MIDI, under a kernel density of the sinusoids, later harmonics weighted
    less, harmonics above Nyquist left out). The first term favours low candidates, the
    second high ones; the loss is a softmin over candidates of their sum. After Maher and
    Beauchamp (1994).

    Args:
        sinusoids_weight: Weight of -log p(sinusoids | harmonics).
        harmonics_weight: Weight of -log p(harmonics | sinusoids).
        sinusoids_scale: Kernel width in MIDI around each sinusoid.
        harmonics_scale: Width, in harmonic numbers, of the Gaussian at each harmonic.
        n_harmonic_points: Harmonics of each candidate scored under the sinusoids.
        n_harmonic_gaussians: Harmonic numbers with a Gaussian in p(sinusoids | harmonics).
        softmin_temperature: > 0; lower values weight the best candidate more.
        sample_rate: Audio sample rate in Hz (for Nyquist).
    """

    def __init__(self, sinusoids_weight=1.0, harmonics_weight=1.0, sinusoids_scale=0.5, harmonics_scale=0.2,
                 n_harmonic_points=10, n_harmonic_gaussians=30, softmin_temperature=1.0, sample_rate=16000, **kwargs):
        super().__init__(**kwargs)
        checks.check_positive("softmin_temperature", softmin_temperature)
        checks.check_positive("sample_rate", sample_rate)
        checks.check_positive_int("n_harmonic_points", n_harmonic_points)
        checks.check_positive_int("n_harmonic_gaussians", n_harmonic_gaussians)
        self.sinusoids_weight = sinusoids_weight
        self.harmonics_weight = harmonics_weight
        self.sinusoids_scale = sinusoids_scale
        self.harmonics_scale = harmonics_scale
        self.n_harmonic_points = int(n_harmonic_points)
        self.n_harmonic_gaussians = int(n_harmonic_gaussians)
        self.softmin_temperature = softmin_temperature
        self.sample_rate = sample_rate

    def call(self, f0_candidates, freqs, amps):
        """Scalar loss.

        Args:
            f0_candidates: Candidate f0s in Hz, [batch, n_frames, n_candidates].
            freqs: Sinusoid frequencies in Hz, [batch, n_frames, n_sinusoids].
            amps: Sinusoid amplitudes (> 0), [batch, n_frames, n_sinusoids].
        """
        loss = self._combined_loss(f0_candidates, freqs, amps)  # [batch, n_frames, n_candidates]
        softmin = ops.softmax(-loss / self.softmin_temperature, axis=-1)
        return ops.mean(loss * softmin)

    def predict_f0(self, f0_candidates, freqs, amps):
        """The candidate with the lowest loss in each frame (NumPy, not differentiable): [batch, n_frames, 1] Hz."""
        loss = np.asarray(ops.convert_to_numpy(self._combined_loss(f0_candidates, freqs, amps)))
        best = np.nanargmin(loss, axis=-1)[..., None]
        return np.take_along_axis(np.asarray(ops.convert_to_numpy(f0_candidates)), best, axis=-1)

    def _combined_loss(self, f0_candidates, freqs, amps):
        sinusoids_loss, harmonics_loss = self.get_loss_tensors(f0_candidates, freqs, amps)
        return self.sinusoids_weight * sinusoids_loss + self.harmonics_weight * harmonics_loss

    def get_loss_tensors(self, f0_candidates, freqs, amps):
        """(-log p(sinusoids | harmonics), -log p(harmonics | sinusoids)), each [batch, n_frames, n_candidates]."""
        f0_candidates, freqs, amps = map(float32, (f0_candidates, freqs, amps))
        _check_sinusoids(f0_candidates=f0_candidates, freqs=freqs, amps=amps)
        checks.check_same_dims([("freqs", freqs), ("amps", amps)], axes=(2,), expected_shape="[batch, n_frames, n]")
        # Each sinusoid's frequency in harmonics of each candidate: [batch, n_frames, n_candidates, n_sinusoids].
        ratios = safe_divide(freqs[:, :, None, :], f0_candidates[:, :, :, None])
        nll_sinusoids = -self.get_p_sinusoids_given_harmonics().log_prob(ratios)
        weights = amps[:, :, None, :]
        sinusoids_loss = safe_divide(ops.sum(nll_sinusoids * weights, axis=-1), ops.sum(weights, axis=-1))

        density = self.get_p_harmonics_given_sinusoids(freqs, amps)
        harmonics = self.get_candidate_harmonics(f0_candidates, as_midi=True)  # [b, t, candidate, harmonic]
        log_p = density.log_prob(ops.transpose(harmonics, (2, 3, 0, 1)))  # [candidate, harmonic, b, t]
        nll_harmonics = -ops.transpose(log_p, (2, 3, 0, 1))  # [b, t, candidate, harmonic]
        prior = np.linspace(1.0, 1.0 / self.n_harmonic_points, self.n_harmonic_points).astype(np.float32)
        harmonics_loss = nll_harmonics * ops.convert_to_tensor(prior)
        # Leave out harmonics above Nyquist, scaling by the share below, so that high
        # candidates are not favoured for having fewer harmonics to explain.
        nyquist_midi = 12.0 * math.log2(self.sample_rate / 2.0 / 440.0) + 69.0
        below = ops.cast(harmonics < nyquist_midi, "float32")
        harmonics_loss = harmonics_loss * safe_divide(below, ops.mean(below, axis=-1, keepdims=True))
        return sinusoids_loss, ops.mean(harmonics_loss, axis=-1)

    def get_p_sinusoids_given_harmonics(self):
        """Equal Gaussians (width harmonics_scale) at harmonic numbers 1..n_harmonic_gaussians."""
        n = self.n_harmonic_gaussians
        return GaussianMixture(np.full([n], 1.0 / n, np.float32), np.arange(1, n + 1, dtype=np.float32),
                               self.harmonics_scale)

    def get_p_harmonics_given_sinusoids(self, freqs, amps):
        """Kernel density of the sinusoids in MIDI: one Gaussian (width sinusoids_scale) per sinusoid, by amplitude."""
        return GaussianMixture(_normalized(amps), hz_to_midi(freqs), self.sinusoids_scale)

    def get_candidate_harmonics(self, f0_candidates, as_midi=True):
        """Harmonics 1..n_harmonic_points of each candidate: [batch, n_frames, n_candidates, n_harmonic_points]."""
        numbers = np.arange(1, self.n_harmonic_points + 1, dtype=np.float32)
        harmonics = float32(f0_candidates)[..., None] * ops.convert_to_tensor(numbers)
        return hz_to_midi(harmonics) if as_midi else harmonics
