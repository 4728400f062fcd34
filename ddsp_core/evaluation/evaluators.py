"""Evaluators: what eval and sample measure on a batch of generated audio.

An evaluator is built per run with the data's (sample_rate, frame_rate). In eval mode
it accumulates over batches (`update`) and reports `result()`; in sample mode it may
add curves to the sample page (`sample_extras`). gin picks them:

    evaluate.evaluator_classes = [@evaluators.BasicEvaluator, @evaluators.F0LdEvaluator]
"""

import gin
import numpy as np

from ddsp_core.evaluation import pitch_metrics
from ddsp_core.evaluation.metrics import REGISTER_NAMES, F0LoudnessMetrics


class Evaluator:
    """Base class; see the module docstring."""

    def __init__(self, sample_rate, frame_rate):
        self.sample_rate = sample_rate
        self.frame_rate = frame_rate

    def update(self, batch, outputs, losses):
        """batch, outputs: dicts of NumPy arrays; losses: {name: float} of this batch."""

    def result(self):
        """{metric name: float or None}."""
        return {}

    def tables(self):
        """{name: list of row dicts} recorded beside the metrics in metrics.json (e.g. 'per_pitch')."""
        return {}

    def sample_extras(self, batch, outputs):
        """Extra keyword arguments of `samples.write_samples` (e.g. generated f0)."""
        return {}


@gin.register
class BasicEvaluator(Evaluator):
    """The model's losses (e.g. spectral_loss, total_loss), averaged over batches weighted by size."""

    def __init__(self, sample_rate, frame_rate):
        super().__init__(sample_rate, frame_rate)
        self._sums, self._count = {}, 0

    def update(self, batch, outputs, losses):
        size = len(batch["audio"])
        for name, value in losses.items():
            self._sums[name] = self._sums.get(name, 0.0) + float(value) * size
        self._count += size

    def result(self):
        return {name: total / self._count for name, total in self._sums.items()} if self._count else {}


@gin.register
class F0LdEvaluator(Evaluator):
    """Loudness L1 (dB) overall and on quiet frames, level where the input is silent, onset
    lag, f0 L1 (cents) and outlier ratio from CREPE on the generated audio (all frames and
    stable ones, and where the outliers sit), the register figures, and the table by MIDI note
    (`tables()['per_pitch']`), with the CREPE settings they were measured with (`tables()['f0_tracking']`).

    See `metrics.F0LoudnessMetrics` (its settings, e.g. crepe_capacity, are bound in gin).
    When `outputs` hold 'harmonic_audio' and 'noise_audio' (the synths' audio alone, as
    `eval_util.generator` gives them), the table and the registers have a harmonic
    share. On the sample page each example gets its own values of these metrics, and the
    page gets the table of its examples.
    """

    RESULT_NAMES = ("loudness_l1_db", "quiet_loudness_l1_db", "silent_level_db", "onset_lag_median_ms",
                    "f0_l1_cents", "f0_outlier_ratio", "f0_unreadable_ratio", "f0_l1_cents_every_frame",
                    "f0_outlier_ratio_every_frame", "f0_l1_cents_stable", "f0_outlier_ratio_stable",
                    *(f"f0_outliers_{name}" for name in pitch_metrics.OUTLIER_LOCATIONS), *REGISTER_NAMES,
                    "n_confident_frames", "n_readable_frames", "n_stable_frames", "n_quiet_frames", "n_onsets")

    def __init__(self, sample_rate, frame_rate):
        super().__init__(sample_rate, frame_rate)
        self.metrics = F0LoudnessMetrics(sample_rate=sample_rate, frame_rate=frame_rate)
        self._last = None

    def update(self, batch, outputs, losses):
        self._last = self._update(batch, outputs)

    def _update(self, batch, outputs):
        return self.metrics.update_state(batch, outputs["audio_synth"], outputs.get("harmonic_audio"),
                                         outputs.get("noise_audio"))

    def result(self):
        result = self.metrics.result()
        return {name: result[name] for name in self.RESULT_NAMES}

    def tables(self):
        # 'f0_tracking': the CREPE settings the f0 figures were measured with (runs compare only under the same).
        return {"per_pitch": self.metrics.per_pitch(), "f0_tracking": self.metrics.settings()}

    def sample_extras(self, batch, outputs):
        generated = self._update(batch, outputs)
        return {"f0_hz_gen": np.asarray(generated["f0_hz_gen"]),
                "f0_confidence_gen": np.asarray(generated["f0_confidence_gen"]),
                "loudness_db_gen": np.asarray(generated["loudness_db_gen"]),
                "example_metrics": generated["example_metrics"],
                "per_pitch": generated["per_pitch"]}
