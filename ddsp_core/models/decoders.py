"""Decoders: networks that map conditioning (f0, loudness, ...) to synthesizer controls."""

import gin
import keras
from keras import ops

from ddsp_core import accelerators
from ddsp_core.models.nn import FastGRU, FcStack, split_to_dict

# FastGRU: keras.layers.GRU with the same weights and outputs, faster on CPUs (see nn.FastGRU).
# 'keras_gru': Keras' own GRU (same weights and checkpoints), for comparisons.
RNN_TYPES = {"gru": FastGRU, "keras_gru": keras.layers.GRU, "lstm": keras.layers.LSTM}
PRECISIONS = ("float32", "bfloat16", "auto")


def auto_precision():
    """The decoder precision 'auto' picks: 'bfloat16' where its matmuls are fast, else 'float32'.

    bfloat16 on a GPU, and on a CPU with bfloat16 units (AMX-BF16/AVX512-BF16) under
    TensorFlow, whose oneDNN matmuls use them (a 1.8x faster solo train step here); XLA's CPU
    matmuls (JAX) gained nothing from bfloat16 in the same measurement (benchmarks/RESULTS.md).
    """
    if accelerators.has_gpu():
        return "bfloat16"
    if keras.backend.backend() == "tensorflow" and accelerators.cpu_has_bfloat16_units():
        return "bfloat16"
    return "float32"


@gin.register
class RnnFcDecoder(keras.layers.Layer):
    """The solo-instrument decoder: per-input MLPs, a recurrent layer, an output MLP.

    For each input key: an FcStack ([batch, n_frames, 1] -> [batch, n_frames, ch]). The
    stacks are concatenated and run through a GRU (or LSTM) of `rnn_channels`; its
    output, concatenated again with the stacks, goes through a final FcStack and a
    Dense layer whose outputs are split into the named controls.

    Args:
        rnn_channels: Units of the recurrent layer.
        rnn_type: 'gru' (`nn.FastGRU`), 'keras_gru' (keras.layers.GRU: same weights, slower on
            CPUs) or 'lstm'.
        ch: Units of every Dense layer in the stacks.
        layers_per_stack: (Dense, LayerNorm, leaky ReLU) blocks per stack.
        input_keys: Conditioning keys, each [batch, n_frames, 1] (or [batch, n_frames]).
        output_splits: ((control name, size), ...), e.g. (('amps', 1),
            ('harmonic_distribution', 60), ('noise_magnitudes', 65)).
        precision: 'float32'; 'bfloat16' (Keras 'mixed_bfloat16': the matmuls in bfloat16,
            weights, layer norms, the GRU recurrence and the outputs in float32); or 'auto'
            (see `auto_precision`). The weights are float32 either way, so
            checkpoints do not depend on it.
    """

    def __init__(self, rnn_channels=512, rnn_type="gru", ch=512, layers_per_stack=3,
                 input_keys=("ld_scaled", "f0_scaled"),
                 output_splits=(("amps", 1), ("harmonic_distribution", 40)), precision="float32",
                 name="rnn_fc_decoder"):
        super().__init__(name=name)
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"RnnFcDecoder.rnn_type must be one of {sorted(RNN_TYPES)}, got {rnn_type!r}.")
        if not input_keys:
            raise ValueError("RnnFcDecoder.input_keys must name at least one conditioning key.")
        if precision not in PRECISIONS:
            raise ValueError(f"RnnFcDecoder.precision must be one of {PRECISIONS}, got {precision!r}.")
        self.precision = auto_precision() if precision == "auto" else precision
        policy = "mixed_bfloat16" if self.precision == "bfloat16" else None
        self.input_keys = tuple(input_keys)
        self.output_splits = tuple((str(name), int(size)) for name, size in output_splits)
        self.input_stacks = [FcStack(ch, layers_per_stack, name=f"input_stack_{key}", dtype=policy)
                             for key in self.input_keys]
        self.rnn = RNN_TYPES[rnn_type](int(rnn_channels), return_sequences=True, name=rnn_type.replace("keras_", ""),
                                       dtype=policy)
        self.output_stack = FcStack(ch, layers_per_stack, name="output_stack", dtype=policy)
        self.dense_out = keras.layers.Dense(sum(size for _, size in self.output_splits), name="dense_out",
                                            dtype=policy)

    def call(self, conditioning, initial_state=None, return_state=False):
        """conditioning: dict with the input keys -> {control name: [batch, n_frames, size]}.

        Args:
            conditioning: {input key: [batch, n_frames, 1] or [batch, n_frames]}.
            initial_state: The recurrent state before the first frame, [batch, rnn_channels]
                (a GRU; zeros when None). Streaming passes the state a previous block ended with.
            return_state: Also return the state after the last frame.

        Returns:
            {control name: [batch, n_frames, size]}, and with return_state the state
            [batch, rnn_channels] as a second value.
        """
        missing = [key for key in self.input_keys if key not in conditioning]
        if missing:
            raise KeyError(f"RnnFcDecoder needs {missing}; the conditioning has {sorted(conditioning)}.")
        inputs = []
        for key in self.input_keys:
            x = conditioning[key]
            inputs.append(x[..., None] if len(x.shape) == 2 else x)
        stacks = [stack(x) for stack, x in zip(self.input_stacks, inputs)]  # each [batch, n_frames, ch]
        if (initial_state is not None or return_state) and not isinstance(self.rnn, keras.layers.GRU):
            raise ValueError("RnnFcDecoder carries a recurrent state only with a GRU (rnn_type 'gru' or 'keras_gru').")
        x = self.rnn(ops.concatenate(stacks, axis=-1), initial_state=initial_state)  # [batch, n_frames, rnn]
        state = ops.cast(x[:, -1], "float32")  # A GRU's output is its state.
        x = ops.concatenate([x] + stacks, axis=-1)
        x = ops.cast(self.dense_out(self.output_stack(x)), "float32")  # [batch, n_frames, sum of sizes]
        controls = split_to_dict(x, self.output_splits)
        return (controls, state) if return_state else controls
