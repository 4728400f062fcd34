"""Network building blocks shared by encoders and decoders."""

import gin
import keras
from keras import ops


@gin.register
class FcStack(keras.layers.Layer):
    """A stack of `layers` x (Dense(ch), LayerNormalization, leaky ReLU).

    [batch, n_frames, n_in] -> [batch, n_frames, ch]. `dtype`: a Keras dtype policy for
    every sublayer (e.g. 'mixed_bfloat16'; None: the global policy, float32 by default).
    """

    def __init__(self, ch=256, layers=2, negative_slope=0.2, name="fc_stack", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.ch = int(ch)
        self.negative_slope = negative_slope
        self.denses = [keras.layers.Dense(self.ch, name=f"dense_{i}", dtype=dtype) for i in range(int(layers))]
        self.norms = [keras.layers.LayerNormalization(name=f"layer_norm_{i}", dtype=dtype) for i in range(int(layers))]

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


def _gru_states(x_proj, recurrent_kernel, recurrent_bias, h0):
    """Runs the GRU recurrence (reset gate after the matmul) over time: the states only.

    Args:
        x_proj: Input projections with their bias, time-major [n_steps, batch, 3 * units]
            in Keras' gate order (z, r, h).
        recurrent_kernel: [units, 3 * units].
        recurrent_bias: [3 * units].
        h0: Initial state, [batch, units].

    Returns:
        States h_1..h_n, [n_steps, batch, units].
    """
    units = recurrent_kernel.shape[0]

    def step(h_prev, x_t):
        m = ops.matmul(h_prev, recurrent_kernel) + recurrent_bias
        zr = ops.sigmoid(x_t[:, :2 * units] + m[:, :2 * units])
        hh = ops.tanh(x_t[:, 2 * units:] + zr[:, units:] * m[:, 2 * units:])
        h = hh + zr[:, :units] * (h_prev - hh)  # z h_prev + (1 - z) hh
        return h, h

    if x_proj.shape[0] == 1:  # One step (streaming): no loop, so a TFLite export has builtin ops only.
        return step(h0, x_proj[0])[1][None]
    _, states = ops.scan(step, h0, x_proj)
    return states


def _gru_gates(x_proj, h_prev_all, recurrent_kernel, recurrent_bias):
    """The gates of every step at once, from the inputs and the previous states (one large matmul).

    Returns:
        (z, r, hh, mh), each [n_steps, batch, units]: update and reset gates, candidate
        state, and the candidate's recurrent projection (before the reset gate).
    """
    units = recurrent_kernel.shape[0]
    m = ops.matmul(h_prev_all, recurrent_kernel) + recurrent_bias  # [n_steps, batch, 3 units]
    zr = ops.sigmoid(x_proj[..., :2 * units] + m[..., :2 * units])
    z, r, mh = zr[..., :units], zr[..., units:], m[..., 2 * units:]
    return z, r, ops.tanh(x_proj[..., 2 * units:] + r * mh), mh


def _gru_backward(grad_states, x_proj, states, recurrent_kernel, recurrent_bias, h0):
    """Gradients of `_gru_states`: backpropagation through time with one small matmul per step.

    The gates are recomputed for all steps at once (nothing but the states is kept from
    the forward pass); the loop carries only dL/dh; every weight gradient is one large
    matmul after it.

    Returns:
        (d x_proj [n_steps, batch, 3 units], d recurrent_kernel, d recurrent_bias, d h0).
    """
    units = recurrent_kernel.shape[0]
    h_prev_all = ops.concatenate([h0[None], states[:-1]], axis=0)  # [n_steps, batch, units]
    z, r, hh, mh = _gru_gates(x_proj, h_prev_all, recurrent_kernel, recurrent_bias)
    # With g = dL/dh_t (from the output and from step t + 1), per step:
    #   d(candidate pre-activation) = g a,  a = (1 - z)(1 - hh^2);
    #   d(z pre-activation) = g (h_prev - hh) z (1 - z);  d(r pre-activation) = g a mh r (1 - r);
    #   dm = g [(h_prev - hh) z (1 - z), a mh r (1 - r), a r];  dh_prev = g z + dm @ U^T.
    a = (1.0 - z) * (1.0 - hh * hh)
    coefficients = ops.concatenate([(h_prev_all - hh) * z * (1.0 - z), a * mh * r * (1.0 - r), a * r], axis=-1)
    kernel_t = ops.transpose(recurrent_kernel)

    def step(dh_next, inputs):
        g_out, z_t, coefficients_t = inputs
        g = g_out + dh_next
        dm = ops.concatenate([g, g, g], axis=-1) * coefficients_t
        dh_prev = g * z_t + ops.matmul(dm, kernel_t)
        return dh_prev, g

    dh0, g = ops.scan(step, ops.zeros_like(h0), (grad_states, z, coefficients), reverse=True)
    dm = ops.concatenate([g, g, g], axis=-1) * coefficients  # [n_steps, batch, 3 units]
    dx = ops.concatenate([dm[..., :2 * units], g * a], axis=-1)
    flat_h = ops.reshape(h_prev_all, (-1, units))
    flat_dm = ops.reshape(dm, (-1, 3 * units))
    return dx, ops.matmul(ops.transpose(flat_h), flat_dm), ops.sum(flat_dm, axis=0), dh0


@ops.custom_gradient
def gru_recurrence(x_proj, recurrent_kernel, recurrent_bias, h0):
    """GRU states over time from projected inputs, with a hand-written backward pass.

    Args:
        x_proj: [n_steps, batch, 3 * units], time-major, input bias included.
        recurrent_kernel: [units, 3 * units]; recurrent_bias: [3 * units];
        h0: [batch, units].

    Returns:
        States, [n_steps, batch, units].
    """
    states = _gru_states(x_proj, recurrent_kernel, recurrent_bias, h0)

    def grad(*upstream, variables=None):
        if variables:  # TensorFlow passes the variables read inside; FastGRU passes tensors only.
            raise ValueError(f"gru_recurrence takes tensors, not variables; got {[v.name for v in variables]}.")
        return _gru_backward(upstream[0], x_proj, states, recurrent_kernel, recurrent_bias, h0)

    return states, grad


@gin.register
class FastGRU(keras.layers.GRU):
    """keras.layers.GRU, computed faster on CPUs; same weights, same outputs.

    Keras' generic GRU multiplies each step's input by the input kernel inside the
    time loop, and accumulates the weight gradients step by step. Here the input
    projection of all steps is one large matmul before the loop, the loop runs only
    the recurrent matmul and the gates, and the backward pass (hand-written, see
    `gru_recurrence`) computes the recurrent weight gradients in one matmul after its
    loop. Used when the configuration allows it (tanh/sigmoid, reset_after, no mask,
    dropout, statefulness or reversal) and cuDNN is not available; otherwise Keras' own
    GRU runs. Checkpoints are interchangeable with keras.layers.GRU.
    """

    def _fast_path_ok(self, mask, training):
        cell = self.cell
        if mask is not None or self.go_backwards or self.stateful or self.unroll:
            return False
        if not cell.reset_after or not cell.use_bias:
            return False
        if training and (cell.dropout or cell.recurrent_dropout):
            return False
        if cell.activation is not keras.activations.tanh or cell.recurrent_activation is not keras.activations.sigmoid:
            return False
        if keras.backend.backend() not in ("tensorflow", "jax"):
            return False
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            if tf.config.list_logical_devices("GPU"):
                return False  # Keras uses cuDNN there.
        return True

    def inner_loop(self, sequences, initial_state, mask, training=False):
        h0 = initial_state[0] if isinstance(initial_state, (list, tuple)) else initial_state
        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        if not self._fast_path_ok(mask, training):
            return super().inner_loop(sequences, initial_state, mask, training=training)
        cell = self.cell
        input_bias, recurrent_bias = cell.bias[0], cell.bias[1]
        # The input projection in the compute dtype (bfloat16 under a mixed policy: the large
        # matmul); the recurrence always in float32, so the state does not drift over long inputs.
        x_proj = ops.matmul(ops.transpose(sequences, (1, 0, 2)), cell.kernel) + input_bias  # [steps, batch, 3u]
        # Casts also make tensors of the variables (TensorFlow's eager custom_gradient must not see them read).
        states = gru_recurrence(ops.cast(x_proj, "float32"), ops.cast(cell.recurrent_kernel, "float32"),
                                ops.cast(recurrent_bias, "float32"), ops.cast(h0, "float32"))
        outputs = ops.cast(ops.transpose(states, (1, 0, 2)), x_proj.dtype)  # [batch, steps, units]
        last = outputs[:, -1]
        return last, outputs, [last]
