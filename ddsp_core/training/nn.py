"""Network building blocks shared by encoders and decoders."""

import gin
import keras
from keras import ops


@gin.register
class FcStack(keras.layers.Layer):
    """A stack of `layers` x (Dense(ch), LayerNormalization, leaky ReLU).

    [batch, n_frames, n_in] -> [batch, n_frames, ch].
    """

    def __init__(self, ch=256, layers=2, negative_slope=0.2, name="fc_stack"):
        super().__init__(name=name)
        self.ch = int(ch)
        self.negative_slope = negative_slope
        self.denses = [keras.layers.Dense(self.ch, name=f"dense_{i}") for i in range(int(layers))]
        self.norms = [keras.layers.LayerNormalization(name=f"layer_norm_{i}") for i in range(int(layers))]

    def call(self, x):
        for dense, norm in zip(self.denses, self.norms):
            x = ops.leaky_relu(norm(dense(x)), negative_slope=self.negative_slope)
        return x


def split_to_dict(tensor, splits):
    """Splits the last axis of `tensor` into named parts.

    Args:
        tensor: [..., sum of sizes].
        splits: ((name, size), ...).

    Returns:
        {name: [..., size]}.
    """
    sizes = [int(size) for _, size in splits]
    if tensor.shape[-1] != sum(sizes):
        raise ValueError(
            f"Cannot split a tensor with last axis {tensor.shape[-1]} into {tuple(splits)} (sum {sum(sizes)})."
        )
    outputs, start = {}, 0
    for (name, _), size in zip(splits, sizes):
        outputs[name] = tensor[..., start:start + size]
        start += size
    return outputs
