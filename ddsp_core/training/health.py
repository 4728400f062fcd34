"""Training health: figures that show a harmonic collapse while it happens.

A harmonic-plus-noise model can fail in training in a way the loss hides: the harmonic
synth falls silent (its amplitude driven into the flat end of its sigmoid) or piles its
energy onto one high partial, and the filtered noise learns to stand in for the notes
(benchmarks/RESULTS.md, "The harmonic collapse"). The loss of such a run stalls near a
healthy run's, but CREPE finds no pitch in its audio. These figures, measured on a fixed
probe batch with the model's current weights, make it visible:

    harmonic_share       Energy of the harmonic synth's audio over that of harmonic + noise,
                         on the probe's voiced frames (input f0 confidence >= min_confidence
                         and loudness within VOICED_RANGE_DB of the example's peak), 0-1.
                         A clarinet is mostly harmonic: ~0.9 or more when healthy.
    top_harmonic_weight  Mean over voiced frames of the largest weight of the (normalized)
                         harmonic distribution, 0-1 (1: one partial carries everything).
    harmonic_centroid    Mean over voiced frames of the distribution's centroid, in harmonic
                         numbers (1 = the fundamental).
    loud_amplitude_db    Mean harmonic amplitude (the synth's scaled `amplitudes`) in dB on
                         the probe's loud voiced frames (within LOUD_RANGE_DB of the peak).

`is_collapsed` judges the figures against `CollapseCriteria`; `train_util` checks them every
`HealthGuard.every_steps` steps and rolls back on a collapse (`HealthGuard`).
"""

import dataclasses

import gin
import numpy as np

FIGURES = ("harmonic_share", "top_harmonic_weight", "harmonic_centroid", "loud_amplitude_db")
# Input frames with at least this f0 confidence count as voiced (the quick preset's metric threshold).
MIN_CONFIDENCE = 0.5
# Pitched frames within this many dB of their example's loudest frame count as voiced (audible
# notes, not the tails of releases, where any synth is near silence) ...
VOICED_RANGE_DB = 40.0
# ... and within this many dB as loud.
LOUD_RANGE_DB = 20.0
_TINY = 1e-12


def _numpy(value):
    import keras

    return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64)


def synth_parts(model, features):
    """The harmonic and noise synths' audio and the harmonic controls of a batch, as NumPy.

    Args:
        model: A built `Autoencoder` (any model with `synthesize`) whose processor group has
            a 'harmonic' synth and, optionally, a 'filtered_noise' synth.
        features: A batch of features (dict of arrays), as the model takes them.

    Returns:
        {'harmonic': [batch, n_samples], 'noise': [batch, n_samples] (zeros without a noise
        synth), 'amplitudes': [batch, n_frames] (linear, after the synth's scaling),
        'harmonic_distribution': [batch, n_frames, n_harmonics] (normalized: sums to 1 on
        each frame where any harmonic sounds below Nyquist), 'audio_synth': [batch, n_samples]}.

    Raises:
        ValueError: the model has no harmonic synth named 'harmonic'.
    """
    _, nodes = model.synthesize(features, training=False)
    if "harmonic" not in nodes:
        raise ValueError(f"The model's processor group has no 'harmonic' synth (nodes: {sorted(nodes)}): the health "
                         "figures measure a harmonic-plus-noise model such as models/solo_instrument.gin.")
    harmonic = nodes["harmonic"]
    signal = _numpy(harmonic["signal"])
    noise = _numpy(nodes["filtered_noise"]["signal"]) if "filtered_noise" in nodes else np.zeros_like(signal)
    distribution = _numpy(harmonic["controls"]["harmonic_distribution"])
    totals = distribution.sum(axis=-1, keepdims=True)
    distribution = np.where(totals > _TINY, distribution / np.maximum(totals, _TINY), 0.0)
    return {"harmonic": signal, "noise": noise, "amplitudes": _numpy(harmonic["controls"]["amplitudes"])[..., 0],
            "harmonic_distribution": distribution, "audio_synth": _numpy(nodes["out"]["signal"])}


def frame_energy(audio, n_frames):
    """Mean square of `audio` [batch, n_samples] in n_frames equal frames, [batch, n_frames].

    A frame is round(n_samples / n_frames) samples (the hop: 64 at 16 kHz and 250 frames/s,
    where a centred example has one frame more than n_samples / hop); frames past the audio's
    end (that extra one) read as the last whole frame's energy.
    """
    audio = np.asarray(audio, np.float64)
    hop = max(1, int(round(audio.shape[-1] / n_frames)))
    whole = audio.shape[-1] // hop
    energy = np.mean(audio[:, :whole * hop].reshape(audio.shape[0], whole, hop) ** 2, axis=-1)
    if whole < n_frames:
        energy = np.concatenate([energy, np.repeat(energy[:, -1:], n_frames - whole, axis=1)], axis=1)
    return energy[:, :n_frames]


def frame_masks(features, n_frames, min_confidence=MIN_CONFIDENCE, loud_range_db=LOUD_RANGE_DB,
                voiced_range_db=VOICED_RANGE_DB):
    """(voiced, loud) boolean masks [batch, n_frames] of a batch's input frames.

    Both are pitched frames (f0_confidence >= min_confidence and f0_hz > 0; f0_hz > 0 alone
    when the batch has no confidence): voiced ones with a level (loudness_db, else power_db)
    within `voiced_range_db` of their example's peak, loud ones within `loud_range_db`."""
    f0_hz = np.asarray(features["f0_hz"], np.float64).reshape(len(features["f0_hz"]), -1)[:, :n_frames]
    if "f0_confidence" in features:
        pitched = np.asarray(features["f0_confidence"], np.float64).reshape(len(f0_hz), -1)[:, :n_frames] >= \
            min_confidence
    else:
        pitched = f0_hz > 0
    pitched &= f0_hz > 0
    level_key = "loudness_db" if "loudness_db" in features else "power_db"
    level = np.asarray(features[level_key], np.float64).reshape(len(f0_hz), -1)[:, :n_frames]
    below_peak = level.max(axis=1, keepdims=True) - level
    return pitched & (below_peak <= voiced_range_db), pitched & (below_peak <= loud_range_db)


def figures(parts, features, min_confidence=MIN_CONFIDENCE, loud_range_db=LOUD_RANGE_DB):
    """The health figures (module docstring) of `synth_parts`' output on `features`.

    Returns:
        {figure: float} for FIGURES, plus 'voiced_frames' (how many frames they are measured
        on). With no voiced frame, the figures are NaN.
    """
    amplitudes = parts["amplitudes"]
    n_frames = amplitudes.shape[1]
    voiced, loud = frame_masks(features, n_frames, min_confidence, loud_range_db)
    n_frames = min(n_frames, voiced.shape[1])
    voiced, loud = voiced[:, :n_frames], loud[:, :n_frames]
    count = int(voiced.sum())
    if count == 0:
        return {**{name: float("nan") for name in FIGURES}, "voiced_frames": 0}
    harmonic = frame_energy(parts["harmonic"], amplitudes.shape[1])[:, :n_frames]
    noise = frame_energy(parts["noise"], amplitudes.shape[1])[:, :n_frames]
    distribution = parts["harmonic_distribution"][:, :n_frames]
    numbers = np.arange(1, distribution.shape[-1] + 1)
    harmonic_energy = harmonic[voiced].sum()
    return {
        "harmonic_share": float(harmonic_energy / max(harmonic_energy + noise[voiced].sum(), _TINY)),
        "top_harmonic_weight": float(distribution.max(axis=-1)[voiced].mean()),
        "harmonic_centroid": float((distribution * numbers).sum(axis=-1)[voiced].mean()),
        "loud_amplitude_db": float(np.mean(20.0 * np.log10(np.maximum(amplitudes[:, :n_frames][loud], 1e-7)))),
        "voiced_frames": count,
    }


def measure(model, probe):
    """`figures` of the model's current weights on a probe batch (dict of arrays)."""
    return figures(synth_parts(model, probe), probe)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class CollapseCriteria:
    """When health figures mean a collapse (any one suffices).

    Args:
        min_harmonic_share: Below this, the noise synth carries the voiced frames.
        max_top_harmonic_weight: Above this, one partial carries the harmonic synth's energy
            (and above `max_harmonic_centroid` too: a clarinet's low partials dominate).
        max_harmonic_centroid: The distribution's centroid (harmonic number) above which a
            dominant partial counts as a pile-up at the top.
        min_loud_amplitude_db: Below this, the harmonic amplitude on loud frames is silent.
    """

    min_harmonic_share: float = 0.3
    max_top_harmonic_weight: float = 0.6
    max_harmonic_centroid: float = 12.0
    min_loud_amplitude_db: float = -60.0

    def reasons(self, health):
        """Readable reasons the figures mean a collapse; [] when healthy (or unmeasured)."""
        found = []
        if not health or not health.get("voiced_frames"):
            return found
        if health["harmonic_share"] < self.min_harmonic_share:
            found.append(f"harmonic share {health['harmonic_share']:.2f} < {self.min_harmonic_share}: the noise synth "
                         "is carrying the notes")
        if health["loud_amplitude_db"] < self.min_loud_amplitude_db:
            found.append(f"harmonic amplitude on loud frames {health['loud_amplitude_db']:.1f} dB < "
                         f"{self.min_loud_amplitude_db} dB: the harmonic synth fell silent")
        if (health["top_harmonic_weight"] > self.max_top_harmonic_weight
                and health["harmonic_centroid"] > self.max_harmonic_centroid):
            found.append(f"top harmonic weight {health['top_harmonic_weight']:.2f} > {self.max_top_harmonic_weight} "
                         f"with centroid {health['harmonic_centroid']:.1f}: the harmonics piled onto one high partial")
        return found


def is_collapsed(health, criteria=None):
    """Whether health figures (`figures`) mean a collapse under `criteria` (default CollapseCriteria())."""
    return bool((criteria or CollapseCriteria()).reasons(health))


@gin.configurable
@dataclasses.dataclass(frozen=True)
class HealthGuard:
    """How training watches its health and recovers from a collapse (`train.health_guard`).

    Every `every_steps` steps, training measures the figures on the probe batch, writes them
    to TensorBoard (health/*), train_state.json and the progress line, and keeps an
    in-memory copy of the state when it is healthy. From `check_from_step` on, a collapse
    (`criteria` met at two probes in a row, the harmonic amplitude on loud frames not rising
    by `recovery_db` or more between them: a flat-started run can dive and climb back out)
    rolls training back to the last healthy copy and continues with new seeds
    for the data and the noise and the learning rate times `lr_factor`; after `max_retries`
    such retries the step fails (TrainingError) saying so.

    Args:
        enabled: False: no probe, no figures, no guard (magenta's loop).
        every_steps: Steps between two measurements.
        check_from_step: The first step judged (the figures of a model still in its
            warm-up are not yet meaningful); None: the trainer's warm-up steps, at least 100.
        max_retries: Roll-backs allowed in one run.
        lr_factor: The learning rate's factor on each retry.
        probe_examples: Examples in the probe batch, spread evenly over the probe data.
        recovery_db: A rise of the loud frames' harmonic amplitude (dB) between two probes
            that counts as recovering, not collapsed.
        criteria: A `CollapseCriteria`.
    """

    enabled: bool = True
    every_steps: int = 50
    check_from_step: int = None
    max_retries: int = 2
    lr_factor: float = 0.5
    probe_examples: int = 16
    recovery_db: float = 10.0
    criteria: CollapseCriteria = CollapseCriteria()

    def __post_init__(self):
        for name in ("every_steps", "max_retries", "probe_examples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "max_retries" else 1):
                raise ValueError(f"HealthGuard.{name} must be a{' non-negative' if name == 'max_retries' else ' positive'}"
                                 f" integer, got {value!r}.")
        if not 0.0 < float(self.lr_factor) <= 1.0:
            raise ValueError(f"HealthGuard.lr_factor must be in (0, 1], got {self.lr_factor!r}.")

    def first_checked_step(self, warmup_steps=0):
        return self.check_from_step if self.check_from_step is not None else max(100, int(warmup_steps))


def probe_batch(data_provider, n_examples, scan=256):
    """A fixed probe batch: n_examples spread evenly over the first `scan` examples of the
    provider in file order (no shuffling, no augmentation), as a dict of NumPy arrays."""
    dataset = data_provider.get_batch(scan, shuffle=False, repeats=1, drop_remainder=False)
    batch = next(iter(dataset.take(1)), None)
    if batch is None:
        raise ValueError(f"The probe data ({getattr(data_provider, 'file_patterns', data_provider)}) holds no example.")
    batch = {key: np.asarray(value) for key, value in batch.items()}
    count = len(batch["audio"])
    chosen = np.unique(np.linspace(0, count - 1, min(n_examples, count)).round().astype(int))
    return {key: value[chosen] for key, value in batch.items()}
