"""Tests for ddsp_core.losses.sinusoid against scipy and NumPy references of each formula."""

import numpy as np
import pytest
from keras import ops
from scipy import stats
from scipy.special import logsumexp

from ddsp_core.losses import sinusoid as sinusoid_losses
from tests.gradients import gradient

pytestmark = pytest.mark.dsp


def _midi(hz):
    return 12.0 * np.log2(np.asarray(hz, np.float64) / 440.0) + 69.0


def _sinusoids(batch=2, n_frames=3, n=5, seed=0):
    rng = np.random.default_rng(seed)
    freqs = rng.uniform(100.0, 2000.0, size=(batch, n_frames, n)).astype(np.float32)
    amps = rng.uniform(0.05, 1.0, size=(batch, n_frames, n)).astype(np.float32)
    return amps, freqs


def _mixture_log_prob(x, weights, loc, scale):
    """log sum_k w_k N(x; loc_k, scale) for scalar x and 1-D parameters."""
    log_normal = -0.5 * ((x - loc) / scale) ** 2 - np.log(scale) - 0.5 * np.log(2 * np.pi)
    return logsumexp(np.log(weights) + log_normal)


def test_gaussian_mixture_log_prob():
    weights, loc = np.array([0.2, 0.8]), np.array([-1.0, 2.0])
    mixture = sinusoid_losses.GaussianMixture(weights, loc, 0.5)
    x = np.array([[-1.0], [0.3], [2.5]], np.float32)  # sample axis first, then the (empty) batch
    got = ops.convert_to_numpy(mixture.log_prob(x[:, 0]))
    np.testing.assert_allclose(got, [_mixture_log_prob(v, weights, loc, 0.5) for v in x[:, 0]], rtol=1e-5)


def test_wasserstein_matches_scipy_weighted_and_unweighted():
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=(4, 7)).astype(np.float32), rng.normal(1.0, 2.0, size=(4, 5)).astype(np.float32)
    u_w, v_w = rng.uniform(0.1, 3.0, size=(4, 7)), rng.uniform(0.1, 3.0, size=(4, 5))
    got = ops.convert_to_numpy(sinusoid_losses.wasserstein_distance(u, v, u_w, v_w))
    np.testing.assert_allclose(got, [stats.wasserstein_distance(u[i], v[i], u_w[i], v_w[i]) for i in range(4)],
                               rtol=1e-4)
    unweighted = ops.convert_to_numpy(sinusoid_losses.wasserstein_distance(u, v, None, None))
    np.testing.assert_allclose(unweighted, [stats.wasserstein_distance(u[i], v[i]) for i in range(4)], rtol=1e-4)
    scaled = ops.convert_to_numpy(sinusoid_losses.wasserstein_distance(u, v, 10 * u_w, v_w))
    np.testing.assert_allclose(scaled, got, rtol=1e-4)  # weights are normalized


def test_wasserstein_p2_is_the_l2_distance_of_cdfs():
    u, v = np.array([[0.0, 1.0, 3.0]], np.float32), np.array([[0.5, 2.0]], np.float32)
    # U steps 1/3 at 0, 1, 3; V steps 1/2 at 0.5, 2. |U - V| on [0, .5), [.5, 1), [1, 2), [2, 3):
    gaps, differences = np.array([0.5, 0.5, 1.0, 1.0]), np.array([1 / 3, 1 / 6, 1 / 6, 1 / 3])
    got = ops.convert_to_numpy(sinusoid_losses.wasserstein_distance(u, v, None, None, p=2.0))
    np.testing.assert_allclose(got, [np.sqrt(np.sum(gaps * differences**2))], rtol=1e-5)


def test_wasserstein_consistency_loss_in_midi_and_hz():
    amps_a, freqs_a = _sinusoids(seed=2)
    amps_b, freqs_b = _sinusoids(seed=3)
    loss = sinusoid_losses.WassersteinConsistencyLoss(weight=2.0)
    expected = np.mean([stats.wasserstein_distance(_midi(freqs_a[b, t]), _midi(freqs_b[b, t]), amps_a[b, t],
                                                   amps_b[b, t]) for b in range(2) for t in range(3)])
    np.testing.assert_allclose(float(loss(amps_a, freqs_a, amps_b, freqs_b)), 2.0 * expected, rtol=1e-4)
    in_hz = sinusoid_losses.WassersteinConsistencyLoss(midi=False)(amps_a, freqs_a, amps_b, freqs_b)
    expected_hz = np.mean([stats.wasserstein_distance(freqs_a[b, t], freqs_b[b, t], amps_a[b, t], amps_b[b, t])
                           for b in range(2) for t in range(3)])
    np.testing.assert_allclose(float(in_hz), expected_hz, rtol=1e-4)


def test_kde_nll_matches_the_mixture_formula():
    amps, freqs = _sinusoids(batch=1, n_frames=2, n=4, seed=4)
    amps_t, freqs_t = _sinusoids(batch=1, n_frames=2, n=3, seed=5)
    loss = sinusoid_losses.KDEConsistencyLoss(scale_a=0.3, scale_b=0.7)
    got = ops.convert_to_numpy(loss.nll(amps, freqs, amps_t, freqs_t, 0.7))
    expected = np.zeros((1, 2))
    for t in range(2):
        weights = amps_t[0, t] / amps_t[0, t].sum()
        nll = [-_mixture_log_prob(_midi(f), weights, _midi(freqs_t[0, t]), 0.7) for f in freqs[0, t]]
        expected[0, t] = np.mean(np.array(nll) * amps[0, t] / amps[0, t].sum())
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_kde_consistency_loss_adds_both_directions_and_the_mean_amplitude():
    amps_a, freqs_a = _sinusoids(seed=6)
    amps_b, freqs_b = _sinusoids(seed=7)
    loss = sinusoid_losses.KDEConsistencyLoss(weight_a=1.0, weight_b=0.5, weight_mean_amp=3.0)
    expected = (np.mean(ops.convert_to_numpy(loss.nll(amps_a, freqs_a, amps_b, freqs_b, 0.1)))
                + 0.5 * np.mean(ops.convert_to_numpy(loss.nll(amps_b, freqs_b, amps_a, freqs_a, 0.1)))
                + 3.0 * np.mean(np.abs(amps_a.mean(-1) - amps_b.mean(-1))))
    np.testing.assert_allclose(float(loss(amps_a, freqs_a, amps_b, freqs_b)), expected, rtol=1e-5)


def _harmonic_frame(f0_hz, n=6):
    """One frame of n harmonics of f0 at amplitude 1/k: (amps, freqs), each [1, 1, n]."""
    k = np.arange(1, n + 1, dtype=np.float32)
    return (1.0 / k)[None, None, :], (f0_hz * k)[None, None, :].astype(np.float32)


def test_twm_predicts_the_true_f0_among_octave_candidates():
    amps, freqs = _harmonic_frame(220.0)
    candidates = np.array([[[110.0, 220.0, 440.0, 330.0]]], np.float32)
    f0 = sinusoid_losses.TWMLoss().predict_f0(candidates, freqs, amps)
    np.testing.assert_allclose(f0, [[[220.0]]])


def test_twm_loss_tensors_match_the_formula():
    twm = sinusoid_losses.TWMLoss(n_harmonic_points=4, n_harmonic_gaussians=8, sample_rate=2000)
    amps, freqs = _harmonic_frame(300.0, n=3)
    candidates = np.array([[[150.0, 300.0]]], np.float32)
    sinusoids_loss, harmonics_loss = (ops.convert_to_numpy(t) for t in twm.get_loss_tensors(candidates, freqs, amps))
    weights = amps[0, 0] / amps[0, 0].sum()
    prior = np.linspace(1.0, 0.25, 4)
    for c, f0 in enumerate(candidates[0, 0]):
        ratios = freqs[0, 0] / f0
        nll = [-_mixture_log_prob(r, np.full(8, 1 / 8), np.arange(1, 9), 0.2) for r in ratios]
        np.testing.assert_allclose(sinusoids_loss[0, 0, c], np.sum(np.array(nll) * amps[0, 0]) / amps[0, 0].sum(),
                                   rtol=1e-4)
        harmonics = _midi(f0 * np.arange(1, 5))
        below = (harmonics < _midi(1000.0)).astype(float)  # Nyquist at 2 kHz
        nll_h = np.array([-_mixture_log_prob(h, weights, _midi(freqs[0, 0]), 0.5) for h in harmonics]) * prior
        np.testing.assert_allclose(harmonics_loss[0, 0, c], np.mean(nll_h * below / below.mean()), rtol=1e-4)


def test_twm_call_is_a_softmin_over_candidates():
    twm = sinusoid_losses.TWMLoss(softmin_temperature=0.5)
    amps, freqs = _harmonic_frame(200.0)
    candidates = np.array([[[100.0, 200.0, 400.0]]], np.float32)
    s, h = (ops.convert_to_numpy(t) for t in twm.get_loss_tensors(candidates, freqs, amps))
    combined = s + h
    softmin = np.exp(-combined / 0.5) / np.sum(np.exp(-combined / 0.5))
    np.testing.assert_allclose(float(twm(candidates, freqs, amps)), np.mean(combined * softmin), rtol=1e-4)


def test_sinusoid_loss_gradients_are_finite():
    amps_a, freqs_a = _sinusoids(seed=8)
    amps_b, freqs_b = _sinusoids(seed=9)
    for loss in (sinusoid_losses.WassersteinConsistencyLoss(), sinusoid_losses.KDEConsistencyLoss(scale_a=1.0,
                                                                                                   scale_b=1.0)):
        d_amps, d_freqs = gradient(lambda a, f: loss(a, f, amps_b, freqs_b), amps_a, freqs_a)
        assert np.all(np.isfinite(d_amps)) and np.all(np.isfinite(d_freqs)), type(loss).__name__
        assert np.abs(d_freqs).max() > 0, type(loss).__name__
    amps, freqs = _harmonic_frame(220.0)
    [d_candidates] = gradient(lambda c: sinusoid_losses.TWMLoss()(c, freqs, amps), np.array([[[210.0, 450.0]]]))
    assert np.all(np.isfinite(d_candidates)) and np.abs(d_candidates).max() > 0


def test_mismatched_shapes_raise():
    amps, freqs = _sinusoids()
    with pytest.raises(ValueError, match="Shapes do not match along axis 1"):
        sinusoid_losses.KDEConsistencyLoss()(amps, freqs, amps[:, :2], freqs[:, :2])
    with pytest.raises(ValueError, match=r"amps_a must have shape \[batch, n_frames, n_sinusoids\]"):
        sinusoid_losses.WassersteinConsistencyLoss()(amps[0], freqs, amps, freqs)
