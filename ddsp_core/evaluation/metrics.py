"""Evaluation metrics of an autoencoder: does the generated audio follow its input controls?

The model resynthesizes each example from the example's own f0 and loudness. These
metrics measure the features of the generated audio against those inputs:

    loudness_l1_db    A-weighted loudness of the generated audio (`compute_loudness`) vs
                      the input's `loudness_db`: mean |difference| in dB per example,
                      then the mean over examples.
    f0_l1_cents       CREPE's f0 of the generated audio vs the input's `f0_hz`, on the
                      frames where the input is confidently pitched
                      (`f0_confidence >= min_f0_confidence`, 0.85 as in magenta's ddsp,
                      and f0 > 0) and readable (below): mean |error| in cents, pooled over
                      the frames of all examples (a long example weighs more than a short one).
    f0_outlier_ratio  Fraction of those frames whose error exceeds `outlier_cents`
                      (50 cents, a quarter tone: 1 - the raw pitch accuracy of MIREX
                      melody extraction at its 50-cent tolerance).
    f0_unreadable_ratio   Fraction of the confident frames left out of those two as
                      unreadable: the same CREPE reads a plain tone that follows the input
                      f0 and loudness exactly (`reference_tone`) more than `outlier_cents`
                      off there, so a model that follows the input would be an outlier
                      too (almost all at note changes, where the input f0 is a tracker's
                      reading of a transition). `screen_unreadable_frames=False` keeps them.
    f0_l1_cents_every_frame, f0_outlier_ratio_every_frame   The two on every confident
                      frame, unreadable ones included (the figures before the screen).
    quiet_loudness_l1_db   Loudness L1 over the input's quiet frames (at least 30 dB below
                      the example's peak: releases, rests), pooled over frames.
    silent_level_db   Power-mean level of the generated audio where the input is silent
                      (60 dB below its peak), in dB re the input example's peak.
    onset_lag_median_ms    Median over onsets (and windows that start inside a note) of
                      the time until the generated loudness is within 3 dB of the input's.
(the last three are defined in `level_metrics`), and, defined in `pitch_metrics` on every
confident frame (no screen):
    f0_l1_cents_stable, f0_outlier_ratio_stable   The f0 figures on the stable frames only:
                      confident frames where the input holds one pitch (within 50 cents
                      over +-40 ms) away from input onsets, offsets and confidence drops.
    f0_outliers_at_transitions, _near_onsets_offsets, _low_generated_confidence,
    _elsewhere        Where the outliers sit: fractions of the outlier frames, summing to 1.
    lowest_register_*, middle_register_*   loudness L1, f0 L1 and harmonic share pooled
                      over the material's lowest five semitones and the five around its
                      median note; `per_pitch()` gives the table by MIDI note.

CREPE may run on fewer frames than the features have (`crepe_frame_rate`, the full and hq
presets' 50 frames/s on 250 frames/s features): it then runs on every k-th frame only, k =
frame_rate // crepe_frame_rate, and every f0 figure (f0_l1_cents, the outliers, the stable
frames, the f0 columns of the table by note and of the registers) is pooled over those frames
alone, the input's f0 read at the same frames; the loudness figures keep every frame. Each
of those frames is decoded alone (argmax and local average, no Viterbi path). Which
frames are "stable" or "at a transition" is still decided on the input at its full rate.
`settings()` gives the CREPE settings, recorded beside the metrics.

Frames line up by time: frame i of every feature is centred on i / frame_rate seconds
(the prepare job's convention, and `compute_loudness` / `compute_f0` with padding
'center'). An example holds example_secs * frame_rate frames (one more when centred),
while the generated audio gives 1 + n_samples // hop: both are cut to the shorter.

This runs after generation, on NumPy arrays; only CREPE uses Keras.
"""

import gin
import numpy as np

from ddsp_core import crepe, spectral_ops
from ddsp_core.core import checks
from ddsp_core.evaluation import level_metrics, pitch_metrics, reference_tone
from ddsp_core.io.audio_io import resample

# Input frames with at least this f0 confidence are compared (magenta's threshold).
MIN_F0_CONFIDENCE = 0.85
# A frame whose f0 is off by more than this many cents is an outlier (a quarter tone).
OUTLIER_CENTS = 50.0
# Error, in cents, of a frame where a frequency is not positive (cents are undefined):
# the span of CREPE's 360 bins (31.7 Hz to 2006 Hz), the largest error between two
# pitches CREPE can report, so such a frame is always an outlier and stays finite.
UNPITCHED_ERROR_CENTS = float(crepe.CENTS_PER_BIN * (crepe.N_BINS - 1))  # 7180 cents

_FEATURE_KEYS = ("f0_hz", "f0_confidence", "loudness_db")
# The register figures in `result` (see `pitch_metrics.register_summaries`).
REGISTER_NAMES = tuple(f"{register}_register_{name}" for register in ("lowest", "middle")
                       for name in ("midi", "loudness_l1_db", "f0_l1_cents", "harmonic_share"))


def cents_error(f0_hz_reference, f0_hz_estimate):
    """Absolute pitch difference in cents, |1200 * log2(estimate / reference)|.

    Args:
        f0_hz_reference: Frequencies in Hz, any shape.
        f0_hz_estimate: Frequencies in Hz, the same shape.

    Returns:
        Float64 array of that shape, in cents, always finite: where either frequency is
        not a positive finite number, `UNPITCHED_ERROR_CENTS`.
    """
    reference = np.asarray(f0_hz_reference, dtype=np.float64)
    estimate = np.asarray(f0_hz_estimate, dtype=np.float64)
    if reference.shape != estimate.shape:
        raise ValueError(f"f0_hz_reference and f0_hz_estimate must have the same shape, got "
                         f"{reference.shape} and {estimate.shape}.")
    pitched = (reference > 0) & (estimate > 0) & np.isfinite(reference) & np.isfinite(estimate)
    # Evaluate the log on 1 Hz where a frame is unpitched, so no warning is raised.
    ratio = np.where(pitched, estimate, 1.0) / np.where(pitched, reference, 1.0)
    return np.where(pitched, np.abs(1200.0 * np.log2(ratio)), UNPITCHED_ERROR_CENTS)


def _as_frames(name, x):
    """`x` as a float64 [batch, n_frames] array; ValueError naming `name` otherwise."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} must have shape [batch, n_frames] (rank 2), got shape {x.shape}.")
    return x


def _check_same_batch(names_and_arrays):
    """Raises ValueError if the arrays' first (batch) dimensions differ."""
    if len({x.shape[0] for _, x in names_and_arrays}) > 1:
        listing = ", ".join(f"{name} {x.shape}" for name, x in names_and_arrays)
        raise ValueError(f"Batch sizes differ: {listing}.")


def loudness_l1_db(loudness_db_reference, loudness_db_estimate):
    """Mean absolute loudness difference of each example, over their common frames.

    Args:
        loudness_db_reference: Loudness in dB, [batch, n_frames].
        loudness_db_estimate: Loudness in dB, [batch, n_frames'], aligned with the
            reference at its first frame; both are cut to min(n_frames, n_frames').

    Returns:
        [batch] mean |estimate - reference| in dB, float64.
    """
    reference = _as_frames("loudness_db_reference", loudness_db_reference)
    estimate = _as_frames("loudness_db_estimate", loudness_db_estimate)
    _check_same_batch([("loudness_db_reference", reference), ("loudness_db_estimate", estimate)])
    n_frames = min(reference.shape[1], estimate.shape[1])
    if n_frames == 0:
        raise ValueError(f"No frames to compare: shapes {reference.shape} and {estimate.shape}.")
    return np.mean(np.abs(estimate[:, :n_frames] - reference[:, :n_frames]), axis=1)


def frame_stride(frame_rate, crepe_frame_rate=None):
    """k such that CREPE on every k-th of `frame_rate` frames/s runs at least `crepe_frame_rate` frames/s.

    Args:
        frame_rate: Feature frames per second.
        crepe_frame_rate: Frames per second CREPE should run at, or None (every frame).

    Returns:
        max(1, frame_rate // crepe_frame_rate), an int (1 for None).
    """
    if crepe_frame_rate is None:
        return 1
    checks.check_positive("crepe_frame_rate", crepe_frame_rate)
    return max(1, int(frame_rate // crepe_frame_rate))


def f0_errors_cents(f0_hz_input, f0_confidence_input, f0_hz_generated, min_confidence=MIN_F0_CONFIDENCE):
    """Pitch errors of the generated audio on the frames where the input is confidently pitched.

    Args:
        f0_hz_input: Input f0 in Hz, [batch, n_frames].
        f0_confidence_input: Its confidence in [0, 1], [batch, n_frames].
        f0_hz_generated: f0 of the generated audio in Hz, [batch, n_frames'], aligned
            at the first frame; all are cut to min(n_frames, n_frames').
        min_confidence: A frame is compared when its input confidence is >= this and
            its input f0 > 0.

    Returns:
        1-D float64 array of errors in cents (see `cents_error`), one per compared frame,
        example by example; empty when no frame is compared.
    """
    f0_input = _as_frames("f0_hz_input", f0_hz_input)
    confidence = _as_frames("f0_confidence_input", f0_confidence_input)
    f0_generated = _as_frames("f0_hz_generated", f0_hz_generated)
    if confidence.shape != f0_input.shape:
        raise ValueError(f"f0_confidence_input must have the shape of f0_hz_input {f0_input.shape}, "
                         f"got {confidence.shape}.")
    _check_same_batch([("f0_hz_input", f0_input), ("f0_hz_generated", f0_generated)])
    n_frames = min(f0_input.shape[1], f0_generated.shape[1])
    f0_input, confidence, f0_generated = f0_input[:, :n_frames], confidence[:, :n_frames], f0_generated[:, :n_frames]
    confident = (confidence >= min_confidence) & (f0_input > 0)  # [batch, n_frames]
    return cents_error(f0_input[confident], f0_generated[confident])


def _synth_energies(f0_hz, harmonic_audio, noise_audio):
    """{'harmonic_energy', 'noise_energy'}: the synths' mean square per input frame (`health.frame_energy`),
    [batch, n_frames] each, or {} unless both are given; ValueError on bad shapes."""
    if harmonic_audio is None or noise_audio is None:
        return {}
    parts = {"harmonic_audio": np.asarray(harmonic_audio), "noise_audio": np.asarray(noise_audio)}
    for name, audio in parts.items():
        if audio.ndim != 2:
            raise ValueError(f"{name} must have shape [batch, n_samples] (rank 2), got shape {audio.shape}.")
    _check_same_batch([("batch['f0_hz']", f0_hz), *parts.items()])
    # Imported here: ddsp_core.training imports this module, so a module-level import would be circular
    # for a caller that imports ddsp_core.evaluation.metrics first.
    from ddsp_core.training import health

    return {name: health.frame_energy(parts[key], f0_hz.shape[1])
            for name, key in (("harmonic_energy", "harmonic_audio"), ("noise_energy", "noise_audio"))}


def _salience(tracker, frames):
    """CREPE's salience [n_frames, 360] of frames [n_frames, 1024], `tracker.batch_size` frames per forward
    pass, the last pass padded to a whole batch (one compiled shape, as `crepe.PitchTracker` does)."""
    salience = np.zeros([frames.shape[0], crepe.N_BINS], dtype=np.float32)
    for first in range(0, frames.shape[0], tracker.batch_size):
        chunk = frames[first:first + tracker.batch_size]  # [n <= batch_size, 1024]
        padded = np.pad(chunk, [(0, tracker.batch_size - chunk.shape[0]), (0, 0)])
        salience[first:first + chunk.shape[0]] = np.asarray(tracker.model.predict_on_batch(padded))[:chunk.shape[0]]
    return salience


def _per_pitch_rows(sums, f0_sums):
    """`pitch_metrics.per_pitch_rows(sums)` with the f0 columns from `f0_sums` (the frames CREPE ran on;
    None: every frame of `sums`)."""
    rows = pitch_metrics.per_pitch_rows(sums)
    if f0_sums is None:
        return rows
    f0_rows = {row["midi"]: row for row in pitch_metrics.per_pitch_rows(f0_sums)}
    for row in rows:
        measured = f0_rows.get(row["midi"], {})
        row["f0_l1_cents"] = measured.get("f0_l1_cents")
        row["f0_outlier_ratio"] = measured.get("f0_outlier_ratio")
    return rows


def _span_f0_l1_cents(f0_sums, span):
    """Pooled f0 L1 in cents of the notes span = (first, last) MIDI notes in `f0_sums`; None without frames."""
    if span is None:
        return None
    notes = np.arange(len(f0_sums["n_frames"]))
    selected = (notes >= span[0]) & (notes <= span[1])
    n_frames = float(np.sum(f0_sums["n_frames"][selected]))
    return float(np.sum(f0_sums["f0_error_cents"][selected]) / n_frames) if n_frames else None


@gin.configurable
class F0LoudnessMetrics:
    """Loudness and f0 errors of generated audio against its input controls, over many batches.

    Call `update_state` once per batch, then `result`. See the module docstring for the
    definitions. In gin:

        F0LoudnessMetrics.crepe_capacity = 'tiny'

    Args:
        sample_rate: Sample rate of the audio, in Hz. CREPE runs on it resampled to
            16 kHz when it differs.
        frame_rate: Feature frames per second (of the input features and of the
            features computed here).
        crepe_capacity: CREPE model size for the f0 of the generated audio: 'tiny',
            'small', 'medium', 'large' or 'full' (magenta's choice, the most accurate).
        min_f0_confidence: Input frames with a lower f0 confidence are not compared.
        outlier_cents: A frame off by more than this counts as an f0 outlier.
        crepe_precision: 'float32', 'bfloat16' (see `crepe.build_model`) or 'auto'
            (bfloat16 where the GPU or CPU computes it natively, else float32).
        crepe_frame_rate: Frames per second CREPE runs at on the generated audio, or None
            for frame_rate (every frame). CREPE then runs on every k-th feature frame,
            k = `frame_stride(frame_rate, crepe_frame_rate)` (at least crepe_frame_rate
            frames/s; every frame when frame_rate is lower), and the f0 figures are pooled
            over those frames (see the module docstring).
        pitch_tracker: A `crepe.PitchTracker` to use; it overrides crepe_capacity and
            crepe_precision. By default one is built on the first `update_state`, so
            constructing this object is cheap.
        screen_unreadable_frames: Leave the unreadable frames (see the module docstring)
            out of f0_l1_cents and f0_outlier_ratio. It runs CREPE on a reference tone
            as well as on the generated audio: twice the CREPE time.
    """

    def __init__(self, sample_rate=16000, frame_rate=250, crepe_capacity="full", min_f0_confidence=MIN_F0_CONFIDENCE,
                 outlier_cents=OUTLIER_CENTS, crepe_precision="float32", pitch_tracker=None, crepe_frame_rate=None,
                 screen_unreadable_frames=True):
        checks.check_positive("sample_rate", sample_rate)
        checks.check_positive("frame_rate", frame_rate)
        if not 0.0 <= min_f0_confidence <= 1.0:
            raise ValueError(f"min_f0_confidence must be in [0, 1], got {min_f0_confidence!r}.")
        checks.check_positive("outlier_cents", outlier_cents)
        if sample_rate // frame_rate < 1:
            raise ValueError(f"frame_rate {frame_rate} is above sample_rate {sample_rate}: a hop needs "
                             "at least one sample.")
        self.sample_rate = sample_rate
        self.frame_rate = frame_rate
        self.crepe_capacity = crepe.check_capacity(crepe_capacity)
        self.frame_stride = frame_stride(frame_rate, crepe_frame_rate)
        if crepe_precision == "auto":
            from ddsp_core.accelerators import fast_precision

            crepe_precision = fast_precision()
        self.crepe_precision = crepe.check_precision(crepe_precision)
        self.min_f0_confidence = float(min_f0_confidence)
        self.outlier_cents = float(outlier_cents)
        self.screen_unreadable_frames = bool(screen_unreadable_frames)
        self._pitch_tracker = pitch_tracker
        self.reset_state()

    @property
    def pitch_tracker(self):
        """The `crepe.PitchTracker`, loaded on first use."""
        if self._pitch_tracker is None:
            self._pitch_tracker = crepe.PitchTracker(self.crepe_capacity, precision=self.crepe_precision)
        return self._pitch_tracker

    def settings(self):
        """What the f0 figures depend on, for the record: {'crepe_capacity', 'crepe_precision',
        'crepe_frame_rate' (frames/s CREPE ran at), 'frame_stride', 'min_f0_confidence',
        'outlier_cents', 'screen_unreadable_frames'}; a given pitch_tracker's own capacity and precision."""
        tracker = self._pitch_tracker
        return {"crepe_capacity": getattr(tracker, "capacity", self.crepe_capacity),
                "crepe_precision": getattr(tracker, "precision", self.crepe_precision),
                "crepe_frame_rate": self.frame_rate / self.frame_stride, "frame_stride": self.frame_stride,
                "min_f0_confidence": self.min_f0_confidence, "outlier_cents": self.outlier_cents,
                "screen_unreadable_frames": self.screen_unreadable_frames}

    def reset_state(self):
        """Forgets every batch seen so far (the pitch tracker is kept)."""
        self._loudness_l1_sum = 0.0  # Sum over examples of each example's mean |error| in dB.
        self._n_examples = 0
        self._readable_error_sum = 0.0  # Sum over confident, readable frames of |error| in cents.
        self._n_readable_frames = 0
        self._n_readable_outliers = 0
        self._every_frame_error_sum = 0.0  # The same three over every confident frame, unreadable ones too.
        self._n_confident_frames = 0
        self._n_every_frame_outliers = 0
        self._quiet_error_sum = 0.0  # Sum over quiet input frames of |error| in dB.
        self._n_quiet_frames = 0
        self._silent_power_sum = 0.0  # Sum over silent input frames of the generated power re the peak.
        self._n_silent_frames = 0
        self._onset_lags_s = []  # One per onset.
        self._stable_error_sum = 0.0  # Sum over stable frames of |error| in cents.
        self._n_stable_frames = 0
        self._n_stable_outliers = 0
        self._outlier_locations = dict.fromkeys(pitch_metrics.OUTLIER_LOCATIONS, 0)
        self._note_sums = None  # pitch_metrics.note_sums pooled over batches (confident frames).
        self._f0_note_sums = None  # ... over the confident frames CREPE ran on (stride > 1 only).

    def update_state(self, batch, audio_gen, harmonic_audio=None, noise_audio=None):
        """Adds one batch of examples and their generated audio.

        Args:
            batch: Dict of NumPy arrays with at least 'f0_hz' [batch, n_frames] (Hz),
                'f0_confidence' [batch, n_frames] and 'loudness_db' [batch, n_frames] (dB);
                other keys, such as 'audio' [batch, n_samples], are not used (an 'audio'
                entry must have the same batch size).
            audio_gen: Generated audio at sample_rate, [batch, n_samples].
            harmonic_audio, noise_audio: Optional audio of the model's harmonic and noise
                synths alone, [batch, n_samples] each (e.g. from `health.synth_parts`): with
                both, the per-pitch table and the register figures have a harmonic share.

        Returns:
            The features of the generated audio, e.g. for plots: {'f0_hz_gen': [batch,
            n_f0_frames] Hz, 'f0_confidence_gen': [batch, n_f0_frames],
            'loudness_db_gen': [batch, n_loudness_frames] dB}, float32, and
            'example_metrics': one dict per example with the metrics of `result` for that
            example alone (None where it has no such frames), and 'per_pitch': the rows
            of `per_pitch` for this batch alone.
        """
        features = self._check_batch(batch, audio_gen)
        energies = _synth_energies(features["f0_hz"], harmonic_audio, noise_audio)
        audio_gen = np.asarray(audio_gen, dtype=np.float32)

        loudness_gen = spectral_ops.compute_loudness(audio_gen, self.sample_rate, self.frame_rate, use_tf=False)
        loudness_gen = np.asarray(loudness_gen, dtype=np.float32).reshape(audio_gen.shape[0], -1)
        f0_gen, confidence_gen = self._track_f0(audio_gen)
        # The input frames whose f0 is compared: those CREPE ran on (all with stride 1), ...
        every_confidence = np.where(self._measured(features["f0_hz"].shape[1]), features["f0_confidence"], -1.0)
        # ... and, for f0_l1_cents and f0_outlier_ratio, where CREPE reads the input's f0 back.
        compared_confidence = np.where(self._readable_frames(features, audio_gen.shape[1]), every_confidence, -1.0)

        loudness_in = features["loudness_db"]
        loudness_errors = loudness_l1_db(loudness_in, loudness_gen)  # [batch]
        self._loudness_l1_sum += float(np.sum(loudness_errors))
        self._n_examples += audio_gen.shape[0]
        quiet_errors, quiet_counts = level_metrics.quiet_loudness_errors_db(loudness_in, loudness_gen)
        self._quiet_error_sum += float(np.sum(quiet_errors))
        self._n_quiet_frames += int(np.sum(quiet_counts))
        silent_levels, silent_powers, silent_counts = level_metrics.silent_level_db(loudness_in, loudness_gen)
        self._silent_power_sum += float(np.sum(silent_powers))
        self._n_silent_frames += int(np.sum(silent_counts))
        lags = level_metrics.onset_lags_s(loudness_in, loudness_gen, self.frame_rate)
        self._onset_lags_s.extend(float(lag) for example_lags in lags for lag in example_lags)

        by_pitch = self._add_pitch_figures(features, f0_gen, confidence_gen, loudness_gen, energies)
        example_metrics = []
        quiet_ends = np.cumsum(quiet_counts)
        for i in range(audio_gen.shape[0]):
            errors = f0_errors_cents(features["f0_hz"][i:i + 1], compared_confidence[i:i + 1],
                                     f0_gen[i:i + 1], self.min_f0_confidence)
            every_errors = f0_errors_cents(features["f0_hz"][i:i + 1], every_confidence[i:i + 1],
                                           f0_gen[i:i + 1], self.min_f0_confidence)
            quiet = quiet_errors[quiet_ends[i] - quiet_counts[i]:quiet_ends[i]]
            example_metrics.append({
                "loudness_l1_db": float(loudness_errors[i]),
                "quiet_loudness_l1_db": float(np.mean(quiet)) if quiet.size else None,
                "silent_level_db": None if silent_counts[i] == 0 else float(silent_levels[i]),
                "onset_lag_median_ms": float(1000.0 * np.median(lags[i])) if lags[i].size else None,
                "f0_l1_cents": float(np.mean(errors)) if errors.size else None,
                "f0_outlier_ratio": float(np.mean(errors > self.outlier_cents)) if errors.size else None,
                "f0_unreadable_ratio": (every_errors.size - errors.size) / every_errors.size if every_errors.size
                else None,
                "f0_l1_cents_stable": by_pitch["f0_l1_cents_stable"][i],
                "f0_outlier_ratio_stable": by_pitch["f0_outlier_ratio_stable"][i],
            })
            self._readable_error_sum += float(np.sum(errors))
            self._n_readable_frames += errors.size
            self._n_readable_outliers += int(np.sum(errors > self.outlier_cents))
            self._every_frame_error_sum += float(np.sum(every_errors))
            self._n_confident_frames += every_errors.size
            self._n_every_frame_outliers += int(np.sum(every_errors > self.outlier_cents))
        return {"f0_hz_gen": f0_gen, "f0_confidence_gen": confidence_gen, "loudness_db_gen": loudness_gen,
                "example_metrics": example_metrics, "per_pitch": by_pitch["per_pitch"]}

    def _add_pitch_figures(self, features, f0_gen, confidence_gen, loudness_gen, energies):
        """Adds a batch to the stable-frame, outlier-location and per-note figures (`pitch_metrics`).

        `energies` are `_synth_energies`' (possibly {}).

        Returns:
            {'f0_l1_cents_stable', 'f0_outlier_ratio_stable': [batch] lists of each example's
            figures on its stable frames (None without any), 'per_pitch': this batch's rows}.
        """
        n_frames = min(features["f0_hz"].shape[1], f0_gen.shape[1], loudness_gen.shape[1])
        f0_in, loudness_in = features["f0_hz"][:, :n_frames], features["loudness_db"][:, :n_frames]
        confident = (features["f0_confidence"][:, :n_frames] >= self.min_f0_confidence) & (f0_in > 0)
        compared = confident & self._measured(n_frames)  # [batch, n_frames]
        errors = cents_error(f0_in, f0_gen[:, :n_frames])  # [batch, n_frames]
        outlier = compared & (errors > self.outlier_cents)
        transition, onset_offset = pitch_metrics.unstable_frames(f0_in, confident, loudness_in, self.frame_rate)
        stable = compared & ~transition & ~onset_offset
        self._stable_error_sum += float(np.sum(errors[stable]))
        self._n_stable_frames += int(np.sum(stable))
        self._n_stable_outliers += int(np.sum(outlier & stable))
        low_generated = confidence_gen[:, :n_frames] < self.min_f0_confidence
        for name, count in pitch_metrics.outlier_locations(outlier, transition, onset_offset, low_generated).items():
            self._outlier_locations[name] += count

        sums = pitch_metrics.note_sums(pitch_metrics.midi_notes(f0_in), confident,
                                       np.abs(loudness_gen[:, :n_frames] - loudness_in), errors, outlier,
                                       **{name: energy[:, :n_frames] for name, energy in energies.items()})
        self._note_sums = pitch_metrics.add_sums(self._note_sums, sums)
        f0_sums = None  # With stride 1, the f0 figures are those of `sums`.
        if self.frame_stride > 1:
            f0_sums = pitch_metrics.note_sums(pitch_metrics.midi_notes(f0_in), compared,
                                              np.abs(loudness_gen[:, :n_frames] - loudness_in), errors, outlier)
            self._f0_note_sums = pitch_metrics.add_sums(self._f0_note_sums, f0_sums)
        n_stable = np.sum(stable, axis=1)  # [batch]
        return {
            "f0_l1_cents_stable": [float(np.sum(errors[i][stable[i]]) / n) if n else None
                                   for i, n in enumerate(n_stable)],
            "f0_outlier_ratio_stable": [float(np.sum(outlier[i] & stable[i]) / n) if n else None
                                        for i, n in enumerate(n_stable)],
            "per_pitch": _per_pitch_rows(sums, f0_sums),
        }

    def _readable_frames(self, features, n_samples):
        """bool [batch, n_frames]: the input frames where CREPE reads `reference_tone` of the input's f0 and
        loudness within outlier_cents of the input f0 (all True when screen_unreadable_frames is off)."""
        f0_in = features["f0_hz"]
        readable = np.ones(f0_in.shape, dtype=bool)
        # Only the examples with a frame to compare: CREPE on the others' tone would be wasted.
        rows = np.flatnonzero(np.any((features["f0_confidence"] >= self.min_f0_confidence) & (f0_in > 0), axis=1))
        if not self.screen_unreadable_frames or rows.size == 0:
            return readable
        tone = reference_tone.reference_tone(f0_in[rows], features["loudness_db"][rows], n_samples, self.sample_rate)
        f0_read, _ = self._track_f0(tone)
        n_frames = min(f0_in.shape[1], f0_read.shape[1])
        readable[rows] = False  # A frame the tone does not reach is not readable.
        readable[rows, :n_frames] = cents_error(f0_in[rows, :n_frames], f0_read[:, :n_frames]) <= self.outlier_cents
        return readable

    def _measured(self, n_frames):
        """The frames CREPE runs on, bool [n_frames]: every `frame_stride`-th from frame 0."""
        return np.arange(n_frames) % self.frame_stride == 0

    def per_pitch(self):
        """The table by input MIDI note over every batch since `reset_state` (`pitch_metrics.per_pitch_rows`)."""
        return _per_pitch_rows(self._note_sums, self._f0_note_sums)

    def result(self):
        """The metrics over every batch since the last `reset_state`.

        Returns:
            {'loudness_l1_db': float (None before any example), 'f0_l1_cents': float,
            'f0_outlier_ratio': float (both None when no input frame was confidently
            pitched and readable), 'f0_l1_cents_every_frame', 'f0_outlier_ratio_every_frame',
            'f0_unreadable_ratio' (None without a confident frame), 'quiet_loudness_l1_db',
            'silent_level_db', 'onset_lag_median_ms': float (None without quiet frames, silent
            frames or onsets), 'f0_l1_cents_stable',
            'f0_outlier_ratio_stable' (None without stable frames), 'f0_outliers_at_transitions',
            'f0_outliers_near_onsets_offsets', 'f0_outliers_low_generated_confidence',
            'f0_outliers_elsewhere' (fractions of the outliers, None without any), the register
            figures of `pitch_metrics.register_summaries` (harmonic shares None unless the
            synths' audio was given), 'n_examples', 'n_confident_frames', 'n_readable_frames'
            (those of them readable), 'n_stable_frames', 'n_quiet_frames', 'n_silent_frames',
            'n_onsets': int}.
        """
        has_f0 = self._n_readable_frames > 0
        has_every_f0 = self._n_confident_frames > 0
        n_outliers = sum(self._outlier_locations.values())
        min_note_frames = int(round(pitch_metrics.REGISTER_MIN_NOTE_S * self.frame_rate))
        registers = pitch_metrics.register_summaries(self._note_sums, min_note_frames=min_note_frames)
        if self._f0_note_sums is not None:
            # The registers' notes from every confident frame, their f0 from the frames CREPE ran on.
            spans = pitch_metrics.register_notes(self._note_sums, min_note_frames)
            for prefix, span in zip(("lowest_register_", "middle_register_"), spans):
                registers[prefix + "f0_l1_cents"] = _span_f0_l1_cents(self._f0_note_sums, span)
        return {
            "loudness_l1_db": self._loudness_l1_sum / self._n_examples if self._n_examples else None,
            "quiet_loudness_l1_db": self._quiet_error_sum / self._n_quiet_frames if self._n_quiet_frames else None,
            "silent_level_db": level_metrics.pooled_level_db(self._silent_power_sum, self._n_silent_frames),
            "onset_lag_median_ms": float(1000.0 * np.median(self._onset_lags_s)) if self._onset_lags_s else None,
            "f0_l1_cents": self._readable_error_sum / self._n_readable_frames if has_f0 else None,
            "f0_outlier_ratio": self._n_readable_outliers / self._n_readable_frames if has_f0 else None,
            "f0_l1_cents_every_frame": self._every_frame_error_sum / self._n_confident_frames if has_every_f0
            else None,
            "f0_outlier_ratio_every_frame": (self._n_every_frame_outliers / self._n_confident_frames
                                             if has_every_f0 else None),
            "f0_unreadable_ratio": ((self._n_confident_frames - self._n_readable_frames) / self._n_confident_frames
                                    if has_every_f0 else None),
            "f0_l1_cents_stable": self._stable_error_sum / self._n_stable_frames if self._n_stable_frames else None,
            "f0_outlier_ratio_stable": (self._n_stable_outliers / self._n_stable_frames if self._n_stable_frames
                                        else None),
            **{f"f0_outliers_{name}": count / n_outliers if n_outliers else None
               for name, count in self._outlier_locations.items()},
            **{name: registers.get(name) for name in REGISTER_NAMES},
            "n_examples": self._n_examples,
            "n_confident_frames": self._n_confident_frames,
            "n_readable_frames": self._n_readable_frames,
            "n_stable_frames": self._n_stable_frames,
            "n_quiet_frames": self._n_quiet_frames,
            "n_silent_frames": self._n_silent_frames,
            "n_onsets": len(self._onset_lags_s),
        }

    def _track_f0(self, audio_gen):
        """CREPE on each generated example: (f0_hz, confidence), each [batch, n_f0_frames] float32 at
        frame_rate (with a stride, CREPE's values held over the frames it did not run on).

        The frames of all examples go through CREPE together, `pitch_tracker.batch_size` at a time
        (one example alone would be padded to a whole batch); each example is then decoded alone:
        along a Viterbi path on every frame, as `spectral_ops.compute_f0` decodes a file; each frame
        alone with a stride (CREPE's Viterbi transitions are set per frame: at 50 frames/s its
        path lagged behind note changes and read 150 cents where every frame read 4).
        """
        tracker = self.pitch_tracker
        crepe_rate = self.frame_rate / self.frame_stride
        audios_16k = [resample(audio, self.sample_rate, crepe.SAMPLE_RATE) for audio in audio_gen]
        frames = [crepe.frame_audio(audio, crepe_rate) for audio in audios_16k]  # [n_crepe_frames, 1024] each
        salience = _salience(tracker, np.concatenate(frames))  # [sum of n_crepe_frames, 360]
        f0s, confidences = [], []
        ends = np.cumsum([len(example) for example in frames])
        for audio, end, n_crepe in zip(audios_16k, ends, (len(example) for example in frames)):
            f0_hz, confidence = crepe.decode(salience[end - n_crepe:end], viterbi=self.frame_stride == 1)
            # CREPE's frame j is feature frame j * stride; each value is held over the frames between.
            n_frames = crepe.n_frames_for(audio.shape[0], self.frame_rate)
            f0s.append(np.repeat(f0_hz, self.frame_stride)[:n_frames])
            confidences.append(np.repeat(confidence, self.frame_stride)[:n_frames])
        return np.stack(f0s).astype(np.float32), np.stack(confidences).astype(np.float32)

    def _check_batch(self, batch, audio_gen):
        """The input features as float64 arrays; ValueError on missing keys, bad shapes or NaN."""
        if not hasattr(batch, "keys"):
            raise TypeError(f"batch must be a dict of arrays, got {type(batch).__name__}.")
        missing = [key for key in _FEATURE_KEYS if key not in batch]
        if missing:
            raise ValueError(f"batch is missing {missing}; it must hold {list(_FEATURE_KEYS)} "
                             f"(it has {sorted(batch.keys())}).")
        audio_gen = np.asarray(audio_gen)
        if audio_gen.ndim != 2:
            raise ValueError(f"audio_gen must have shape [batch, n_samples] (rank 2), got shape {audio_gen.shape}.")
        if audio_gen.shape[0] == 0 or audio_gen.shape[1] == 0:
            raise ValueError(f"audio_gen is empty (shape {audio_gen.shape}): there is nothing to measure.")
        if not np.all(np.isfinite(audio_gen)):
            raise ValueError(f"audio_gen contains {int(np.sum(~np.isfinite(audio_gen)))} NaN or infinite value(s).")
        features = {key: _as_frames(f"batch[{key!r}]", batch[key]) for key in _FEATURE_KEYS}
        for key, value in features.items():
            checks.check_finite(f"batch[{key!r}]", value)
        if features["f0_confidence"].shape != features["f0_hz"].shape:
            raise ValueError(f"batch['f0_confidence'] must have the shape of batch['f0_hz'] "
                             f"{features['f0_hz'].shape}, got {features['f0_confidence'].shape}.")
        named = [(f"batch[{key!r}]", value) for key, value in features.items()] + [("audio_gen", audio_gen)]
        if "audio" in batch:
            audio = np.asarray(batch["audio"])
            if audio.ndim != 2:
                raise ValueError(f"batch['audio'] must have shape [batch, n_samples] (rank 2), "
                                 f"got shape {audio.shape}.")
            named.append(("batch['audio']", audio))
        _check_same_batch(named)
        return features
