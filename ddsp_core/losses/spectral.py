"""The multi-scale spectral loss between target and synthesized audio (magnitudes, log
magnitudes, their time and frequency deltas, and loudness)."""

import gin
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.units import float32, safe_log
from ddsp_core.losses.base import LOSS_TYPES, Loss, mean_difference
from ddsp_core.spectral_ops import compute_loudness, compute_mag


@gin.register(module="ddsp_core.losses")  # gin name: losses.<Class>, as magenta's
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
