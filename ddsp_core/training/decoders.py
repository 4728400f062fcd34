"""Decoders: networks that map conditioning (f0, loudness, ...) to synthesizer controls."""

import gin
import keras
from keras import ops

from ddsp_core.training.nn import FcStack, split_to_dict

RNN_TYPES = {"gru": keras.layers.GRU, "lstm": keras.layers.LSTM}


@gin.register
class RnnFcDecoder(keras.layers.Layer):
    """The solo-instrument decoder: per-input MLPs, a recurrent layer, an output MLP.

    For each input key: an FcStack ([batch, n_frames, 1] -> [batch, n_frames, ch]). The
    stacks are concatenated and run through a GRU (or LSTM) of `rnn_channels`; its
    output, concatenated again with the stacks, goes through a final FcStack and a
    Dense layer whose outputs are split into the named controls.

    Args:
        rnn_channels: Units of the recurrent layer.
        rnn_type: 'gru' or 'lstm'.
        ch: Units of every Dense layer in the stacks.
        layers_per_stack: (Dense, LayerNorm, leaky ReLU) blocks per stack.
        input_keys: Conditioning keys, each [batch, n_frames, 1] (or [batch, n_frames]).
        output_splits: ((control name, size), ...), e.g. (('amps', 1),
            ('harmonic_distribution', 60), ('noise_magnitudes', 65)).
    """

    def __init__(self, rnn_channels=512, rnn_type="gru", ch=512, layers_per_stack=3,
                 input_keys=("ld_scaled", "f0_scaled"),
                 output_splits=(("amps", 1), ("harmonic_distribution", 40)), name="rnn_fc_decoder"):
        super().__init__(name=name)
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"RnnFcDecoder.rnn_type must be one of {sorted(RNN_TYPES)}, got {rnn_type!r}.")
        if not input_keys:
            raise ValueError("RnnFcDecoder.input_keys must name at least one conditioning key.")
        self.input_keys = tuple(input_keys)
        self.output_splits = tuple((str(name), int(size)) for name, size in output_splits)
        self.input_stacks = [FcStack(ch, layers_per_stack, name=f"input_stack_{key}") for key in self.input_keys]
        self.rnn = RNN_TYPES[rnn_type](int(rnn_channels), return_sequences=True, name=rnn_type)
        self.output_stack = FcStack(ch, layers_per_stack, name="output_stack")
        self.dense_out = keras.layers.Dense(sum(size for _, size in self.output_splits), name="dense_out")

    def call(self, conditioning):
        """conditioning: dict with the input keys -> {control name: [batch, n_frames, size]}."""
        missing = [key for key in self.input_keys if key not in conditioning]
        if missing:
            raise KeyError(f"RnnFcDecoder needs {missing}; the conditioning has {sorted(conditioning)}.")
        inputs = []
        for key in self.input_keys:
            x = conditioning[key]
            inputs.append(x[..., None] if len(x.shape) == 2 else x)
        stacks = [stack(x) for stack, x in zip(self.input_stacks, inputs)]  # each [batch, n_frames, ch]
        x = self.rnn(ops.concatenate(stacks, axis=-1))  # [batch, n_frames, rnn_channels]
        x = ops.concatenate([x] + stacks, axis=-1)
        x = self.dense_out(self.output_stack(x))  # [batch, n_frames, sum of sizes]
        return split_to_dict(x, self.output_splits)
