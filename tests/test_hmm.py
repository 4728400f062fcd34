"""Tests for ddsp_core.hmm against brute-force enumeration of every state sequence."""

import itertools

import numpy as np
import pytest
from keras import ops
from scipy.special import logsumexp

from ddsp_core import hmm
from tests.gradients import gradient

pytestmark = pytest.mark.dsp


def _random_hmm(n_states=3, n_steps=4, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    initial = rng.dirichlet(np.ones(n_states))
    transition = rng.dirichlet(np.ones(n_states), size=n_states)
    log_emissions = np.log(rng.uniform(0.05, 1.0, size=(batch, n_steps, n_states)))
    return np.log(initial), np.log(transition), log_emissions.astype(np.float32)


def _sequence_scores(log_initial, log_transition, log_emissions):
    """{state sequence: log p(sequence, observations)} for each example, by enumeration."""
    batch, n_steps, n_states = log_emissions.shape
    scores = []
    for b in range(batch):
        per_sequence = {}
        for states in itertools.product(range(n_states), repeat=n_steps):
            score = log_initial[states[0]] + log_emissions[b, 0, states[0]]
            for t in range(1, n_steps):
                score += log_transition[states[t - 1], states[t]] + log_emissions[b, t, states[t]]
            per_sequence[states] = score
        scores.append(per_sequence)
    return scores


@pytest.mark.parametrize("n_steps", [1, 2, 5])
def test_log_likelihood_and_viterbi_match_enumeration(n_steps):
    log_initial, log_transition, log_emissions = _random_hmm(n_steps=n_steps, seed=n_steps)
    scores = _sequence_scores(log_initial, log_transition, log_emissions)
    likelihood = ops.convert_to_numpy(hmm.log_likelihood(log_initial, log_transition, log_emissions))
    np.testing.assert_allclose(likelihood, [logsumexp(list(s.values())) for s in scores], rtol=1e-5)
    path = ops.convert_to_numpy(hmm.viterbi_path(log_initial, log_transition, log_emissions))
    assert path.shape == (2, n_steps)
    np.testing.assert_array_equal(path, [max(s, key=s.get) for s in scores])


def test_gaussian_log_emissions():
    observations = np.array([[[0.5, -1.0]]], np.float32)
    loc, scale = np.array([[0.0, 0.0], [1.0, -1.0]]), np.array([[1.0, 2.0], [0.5, 0.5]])
    got = ops.convert_to_numpy(hmm.gaussian_log_emissions(observations, loc, scale))
    z = (observations[0, 0] - loc) / scale
    np.testing.assert_allclose(got[0, 0], np.sum(-0.5 * z**2 - np.log(scale) - 0.5 * np.log(2 * np.pi), axis=-1),
                               rtol=1e-5)


def _notes_curve():
    """Pitch and amplitude curves: silence, note 60, note 64, silence; 30 steps each. [1, 120, 1] each."""
    pitch = np.concatenate([np.full(30, 40.0), np.full(30, 60.2), np.full(30, 63.9), np.full(30, 70.0)])
    amps = np.concatenate([np.zeros(30), np.full(60, 1.5), np.zeros(30)])
    return pitch[None, :, None].astype(np.float32), amps[None, :, None].astype(np.float32)


def test_transcriber_decodes_notes_and_silence():
    pitch, amps = _notes_curve()
    transcriber = hmm.HmmTranscriber(avg_length=30, n_timesteps=120)
    midi = ops.convert_to_numpy(transcriber.predict_midi(pitch, amps))
    assert midi.shape == (1, 120, 1)
    np.testing.assert_array_equal(midi[0, :, 0], np.repeat([0.0, 60.0, 64.0, 0.0], 30))
    assert tuple(transcriber.predict_midi(pitch, amps, channel_dim=False).shape) == (1, 120)


def test_transcriber_nll_is_the_scaled_negative_log_likelihood():
    pitch, amps = _notes_curve()
    transcriber = hmm.HmmTranscriber(avg_length=30, weight=2.0)
    log_p = ops.convert_to_numpy(transcriber.log_prob(pitch, amps))
    np.testing.assert_allclose(float(transcriber(pitch, amps)), 2.0 * np.mean(-log_p / 120), rtol=1e-5)
    per_example = ops.convert_to_numpy(transcriber.nll(pitch, amps, per_example_loss=True))
    np.testing.assert_allclose(per_example, 2.0 * -log_p / 120, rtol=1e-5)
    # A pitch between notes is less likely than one on a note.
    assert float(transcriber(pitch + 0.5, amps)) > float(transcriber(pitch, amps))


def test_transcriber_gradients():
    pitch, amps = _notes_curve()
    transcriber = hmm.HmmTranscriber(avg_length=30)
    d_pitch, d_amps = gradient(lambda p, a: transcriber(p, a), pitch + 0.15, amps)
    assert np.all(np.isfinite(d_pitch)) and np.all(np.isfinite(d_amps))
    assert np.all(d_pitch[0, 35:85, 0] > 0)  # above the notes (60.35, 64.05): the loss pulls pitch down


def test_straight_through_forward_and_backward():
    x = np.array([0.2, 1.7, 2.4], np.float32)
    quantized = np.round(x)
    np.testing.assert_allclose(ops.convert_to_numpy(hmm.HmmTranscriber.straight_through(x, quantized)), quantized)
    [d_x] = gradient(lambda v: hmm.HmmTranscriber.straight_through(v, ops.round(v)) * np.array([1.0, 2.0, 3.0]), x)
    np.testing.assert_allclose(d_x, [1.0, 2.0, 3.0])


def test_transcriber_bad_inputs():
    pitch, amps = _notes_curve()
    with pytest.raises(ValueError, match="Shapes do not match along axis 1"):
        hmm.HmmTranscriber().nll(pitch, amps[:, :100])
    with pytest.raises(ValueError, match=r"pitch must have shape \[batch, n_steps, 1\]"):
        hmm.HmmTranscriber().nll(pitch[..., 0], amps)
    with pytest.raises(ValueError, match="n_pitches"):
        hmm.HmmTranscriber(n_pitches=1)
