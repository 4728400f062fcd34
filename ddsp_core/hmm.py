"""Hidden Markov models with Gaussian observations, in keras.ops: likelihood and Viterbi path.

`log_likelihood` runs the forward algorithm (differentiable); `viterbi_path` the Viterbi
recursion and backtracking. `HmmTranscriber` (magenta's `losses.HmmTranscriber`) uses
them to turn pitch and amplitude curves into MIDI notes, or a likelihood loss.
"""

import math

import gin
import numpy as np
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.units import float32


def gaussian_log_emissions(observations, loc, scale):
    """log N(observation; loc_s, diag(scale_s^2)) for every state s.

    Args:
        observations: [batch, n_steps, n_dims].
        loc: State means, [n_states, n_dims].
        scale: State standard deviations, [n_states, n_dims].

    Returns:
        [batch, n_steps, n_states].
    """
    z = (float32(observations)[:, :, None, :] - float32(loc)) / float32(scale)  # [batch, n_steps, n_states, n_dims]
    log_density = -0.5 * z * z - ops.log(float32(scale)) - 0.5 * math.log(2.0 * math.pi)
    return ops.sum(log_density, axis=-1)


def log_likelihood(log_initial, log_transition, log_emissions):
    """log p(observations) of an HMM: the forward algorithm, in log space.

    Args:
        log_initial: log p(state at step 0), [n_states].
        log_transition: log p(state j at t + 1 | state i at t), [n_states (i), n_states (j)].
        log_emissions: log p(observation t | state), [batch, n_steps, n_states].

    Returns:
        [batch].
    """
    log_emissions = float32(log_emissions)
    log_transition = float32(log_transition)
    alpha = float32(log_initial) + log_emissions[:, 0]  # [batch, n_states]

    def step(alpha, emission):
        alpha = ops.logsumexp(alpha[:, :, None] + log_transition, axis=1) + emission
        return alpha, None

    if log_emissions.shape[1] > 1:
        alpha, _ = ops.scan(step, alpha, ops.transpose(log_emissions[:, 1:], (1, 0, 2)))
    return ops.logsumexp(alpha, axis=-1)


def viterbi_path(log_initial, log_transition, log_emissions):
    """Most likely state sequence of an HMM.

    Args: as `log_likelihood`.

    Returns:
        int32 states, [batch, n_steps].
    """
    log_emissions = float32(log_emissions)
    log_transition = float32(log_transition)
    score = float32(log_initial) + log_emissions[:, 0]  # [batch, n_states]
    n_steps = log_emissions.shape[1]
    if n_steps == 1:
        return ops.cast(ops.argmax(score, axis=-1), "int32")[:, None]

    def forward(score, emission):
        candidates = score[:, :, None] + log_transition  # [batch, from, to]
        # Emitted as float32 (exact for state numbers): TensorFlow's scan stacks outputs
        # in the carry's dtype.
        best_previous = ops.cast(ops.argmax(candidates, axis=1), "float32")  # [batch, to]
        return ops.max(candidates, axis=1) + emission, best_previous

    score, backpointers = ops.scan(forward, score, ops.transpose(log_emissions[:, 1:], (1, 0, 2)))
    backpointers = ops.cast(backpointers, "int32")  # [n_steps - 1, batch, n_states]
    last = ops.cast(ops.argmax(score, axis=-1), "int32")  # [batch]

    def backward(state, pointers):  # pointers [batch, n_states]: best state at t - 1 for each state at t
        previous = ops.take_along_axis(pointers, state[:, None], axis=1)[:, 0]
        return previous, previous

    _, earlier = ops.scan(backward, last, backpointers, reverse=True)  # [n_steps - 1, batch], for t = 0..n-2
    return ops.concatenate([ops.transpose(earlier, (1, 0)), last[:, None]], axis=1)


@gin.register
class HmmTranscriber:
    """An HMM that decodes MIDI notes from f0 (in MIDI) and amplitude curves.

    Hidden states are the MIDI pitches 0..n_pitches - 1, state 0 meaning "off". The start
    is uniform; a state holds with probability 1 - 1 / avg_length and otherwise moves to
    any other state. Observations (pitch, amplitude) are Gaussian: for pitch p > 0 around
    (p, amps_on_center) with widths (midi_std, amps_on_scale); for "off" around
    (n_pitches / 2, amps_off_center) with widths (n_pitches, amps_off_scale).

    Args:
        avg_length: Mean note length, in steps.
        midi_std: Width of the pitch around a note, in MIDI.
        amps_on_center, amps_on_scale: Amplitude mean and width while a note sounds.
        amps_off_center, amps_off_scale: Amplitude mean and width while off.
        n_timesteps: Steps per sequence (kept for magenta's API: the inputs' length is used).
        n_pitches: Number of states (MIDI pitches from 0).
        weight: Weight of the loss (`nll`).
        name: A name, for magenta's API.
    """

    def __init__(self, avg_length=200, midi_std=0.5, amps_on_center=1.5, amps_on_scale=0.5, amps_off_center=0.0,
                 amps_off_scale=0.1, n_timesteps=1000, n_pitches=128, weight=1.0, name="HmmTranscriber"):
        checks.check_positive("avg_length", avg_length)
        checks.check_positive("midi_std", midi_std)
        if n_pitches < 2:
            raise ValueError(f"n_pitches must be at least 2 (off and one pitch), got {n_pitches}.")
        self.avg_length = avg_length
        self.midi_std = midi_std
        self.n_timesteps = n_timesteps
        self.n_pitches = int(n_pitches)
        self.weight = weight
        self.name = name
        n = self.n_pitches
        hold = 1.0 - 1.0 / avg_length
        other = (1.0 - hold) / (n - 1)
        transition = (hold - other) * np.eye(n) + other * np.ones([n, n])
        self.log_initial = np.full([n], -math.log(n), np.float32)
        self.log_transition = np.log(transition / transition.sum(axis=1, keepdims=True)).astype(np.float32)
        pitch_loc = np.concatenate([[n / 2.0], np.arange(1, n)])
        pitch_scale = np.concatenate([[float(n)], np.full([n - 1], midi_std)])
        amps_loc = np.concatenate([[amps_off_center], np.full([n - 1], amps_on_center)])
        amps_scale = np.concatenate([[amps_off_scale], np.full([n - 1], amps_on_scale)])
        self.loc = np.stack([pitch_loc, amps_loc], axis=-1).astype(np.float32)  # [n_pitches, 2]
        self.scale = np.stack([pitch_scale, amps_scale], axis=-1).astype(np.float32)

    def _log_emissions(self, pitch, amps):
        pitch, amps = float32(pitch), float32(amps)
        for name, value in (("pitch", pitch), ("amps", amps)):
            checks.check_rank(name, value, 3, "[batch, n_steps, 1]")
            checks.check_dim(name, value, -1, 1, "[batch, n_steps, 1]")
        checks.check_same_dims([("pitch", pitch), ("amps", amps)], axes=(0, 1), expected_shape="[batch, n_steps, 1]")
        return gaussian_log_emissions(ops.concatenate([pitch, amps], axis=-1), self.loc, self.scale)

    def log_prob(self, pitch, amps):
        """log p(pitch, amps) of each sequence, [batch]: pitch (MIDI) and amps each [batch, n_steps, 1]."""
        return log_likelihood(self.log_initial, self.log_transition, self._log_emissions(pitch, amps))

    def __call__(self, pitch, amps):
        """The loss, `nll`."""
        return self.nll(pitch, amps)

    @staticmethod
    def straight_through(x, x_quant):
        """x_quant forward, the identity's gradient backward (straight-through estimator)."""
        x = float32(x)
        return x - ops.stop_gradient(x - float32(x_quant))

    def nll(self, pitch, amps, per_example_loss=False):
        """weight * -log p(pitch, amps) / n_steps: a scalar mean over the batch, or [batch] if per_example_loss."""
        average = -self.log_prob(pitch, amps) / float32(pitch).shape[1]
        return self.weight * (average if per_example_loss else ops.mean(average))

    def predict_midi(self, pitch, amps, channel_dim=True, dtype="float32"):
        """Viterbi states, i.e. MIDI pitch with 0 for off: [batch, n_steps, 1] (or [batch, n_steps])."""
        states = viterbi_path(self.log_initial, self.log_transition, self._log_emissions(pitch, amps))
        states = ops.cast(states, dtype)
        return states[:, :, None] if channel_dim else states
