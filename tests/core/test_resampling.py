"""Tests for ddsp_core.core.resampling against NumPy interpolation references."""

import math

import numpy as np
import pytest
from keras import ops

from ddsp_core.core.resampling import resample, upsample_with_windows
from tests.gradients import gradient

pytestmark = pytest.mark.dsp

# ------------------------------------------------------------------------------------------
# NumPy references, each for a 1-D signal of frames; `_per_channel` maps them over
# [batch, n_frames, n_channels].


def _positions(n_frames, n_timesteps, add_endpoint):
    j = np.arange(n_timesteps, dtype=np.float64)
    if add_endpoint:
        return j * n_frames / n_timesteps
    return j * (n_frames - 1) / (n_timesteps - 1)


def _linear_reference(x, n_timesteps, add_endpoint):
    # np.interp holds the end values outside [0, n_frames - 1]: clamped to the last frame.
    return np.interp(_positions(len(x), n_timesteps, add_endpoint), np.arange(len(x)), x)


def _nearest_reference(x, n_timesteps, add_endpoint):
    positions = _positions(len(x), n_timesteps, add_endpoint)
    indices = np.floor(positions) if add_endpoint else np.floor(positions + 0.5)
    return x[np.minimum(indices.astype(int), len(x) - 1)]


def _keys_kernel(d, a=-0.5):
    d = np.abs(d)
    return np.where(d <= 1, (a + 2) * d**3 - (a + 3) * d**2 + 1,
                    np.where(d < 2, a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a, 0.0))


def _cubic_reference(x, n_timesteps, add_endpoint):
    out = np.zeros(n_timesteps)
    for j, p in enumerate(_positions(len(x), n_timesteps, add_endpoint)):
        base = int(np.floor(p))
        for k in range(base - 1, base + 3):
            out[j] += x[min(max(k, 0), len(x) - 1)] * _keys_kernel(p - k)
    return out


def _window_formula_reference(x, n_timesteps, add_endpoint):
    if add_endpoint:
        x = np.append(x, x[-1])
    hop = n_timesteps // (len(x) - 1)
    m = np.arange(hop)
    rise = 0.5 - 0.5 * np.cos(np.pi * m / hop)
    return np.concatenate([x[i] + (x[i + 1] - x[i]) * rise for i in range(len(x) - 1)])


def _window_ola_reference(x, n_timesteps, add_endpoint):
    """magenta ddsp: overlap-add periodic Hann windows of 2 hops centred on frames, trim a hop each end."""
    if add_endpoint:
        x = np.append(x, x[-1])
    hop = n_timesteps // (len(x) - 1)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(2 * hop) / (2 * hop))  # periodic Hann, length 2 hop
    out = np.zeros((len(x) - 1) * hop + 2 * hop)
    for i, value in enumerate(x):
        out[i * hop:i * hop + 2 * hop] += value * window
    return out[hop:-hop]


REFERENCES = {
    "linear": _linear_reference,
    "nearest": _nearest_reference,
    "cubic": _cubic_reference,
    "window": _window_formula_reference,
}


def _per_channel(reference, frames, n_timesteps, add_endpoint):
    batch, _, channels = frames.shape
    out = np.zeros((batch, n_timesteps, channels))
    for b in range(batch):
        for c in range(channels):
            out[b, :, c] = reference(frames[b, :, c].astype(np.float64), n_timesteps, add_endpoint)
    return out


def _frames(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _as_rank(frames3d, rank):
    return {1: frames3d[0, :, 0], 2: frames3d[:, :, 0], 3: frames3d}[rank]


# ------------------------------------------------------------------------------------------
# Values.

# (n_frames, n_timesteps, add_endpoint): integer and non-integer factors, both endpoint modes.
INTERPOLATION_CASES = [
    (5, 20, True), (5, 23, True), (4, 4, True), (6, 3, True),
    (5, 18, False), (5, 13, False), (8, 64, False),
]  # no position falls exactly halfway between two frames: ties are tested separately
INTERPOLATION_IDS = [f"{n}to{t}_{'endpoint' if e else 'noendpoint'}" for n, t, e in INTERPOLATION_CASES]


@pytest.mark.parametrize("method", ["linear", "nearest", "cubic"])
@pytest.mark.parametrize("n_frames, n_timesteps, add_endpoint", INTERPOLATION_CASES, ids=INTERPOLATION_IDS)
def test_resample_matches_numpy_reference(method, n_frames, n_timesteps, add_endpoint):
    frames = _frames((2, n_frames, 3), seed=n_frames * 100 + n_timesteps)
    expected = _per_channel(REFERENCES[method], frames, n_timesteps, add_endpoint)
    got = ops.convert_to_numpy(resample(frames, n_timesteps, method=method, add_endpoint=add_endpoint))
    assert got.shape == (2, n_timesteps, 3)
    np.testing.assert_allclose(got, expected, atol=1e-5)


WINDOW_CASES = [(5, 20, True), (4, 64, True), (1, 8, True), (5, 16, False), (2, 7, False), (9, 8, False)]
WINDOW_IDS = [f"{n}to{t}_{'endpoint' if e else 'noendpoint'}" for n, t, e in WINDOW_CASES]


@pytest.mark.parametrize("n_frames, n_timesteps, add_endpoint", WINDOW_CASES, ids=WINDOW_IDS)
def test_window_matches_raised_cosine_formula(n_frames, n_timesteps, add_endpoint):
    frames = _frames((2, n_frames, 3), seed=n_frames + n_timesteps)
    expected = _per_channel(_window_formula_reference, frames, n_timesteps, add_endpoint)
    got = ops.convert_to_numpy(resample(frames, n_timesteps, method="window", add_endpoint=add_endpoint))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    direct = ops.convert_to_numpy(upsample_with_windows(frames, n_timesteps, add_endpoint=add_endpoint))
    np.testing.assert_allclose(direct, expected, atol=1e-5)


@pytest.mark.parametrize("n_frames, n_timesteps, add_endpoint", WINDOW_CASES, ids=WINDOW_IDS)
def test_window_matches_hann_overlap_add(n_frames, n_timesteps, add_endpoint):
    frames = _frames((2, n_frames, 3), seed=7 * n_frames + n_timesteps)
    expected = _per_channel(_window_ola_reference, frames, n_timesteps, add_endpoint)
    got = ops.convert_to_numpy(upsample_with_windows(frames, n_timesteps, add_endpoint=add_endpoint))
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("method", ["linear", "nearest", "cubic", "window"])
@pytest.mark.parametrize("rank, add_endpoint", [(1, True), (2, False)], ids=["rank1_endpoint", "rank2_noendpoint"])
def test_resample_ranks(rank, method, add_endpoint):
    # Rank 3 is the shape of every other test in this module.
    n_frames = 5
    n_timesteps = 40 if add_endpoint else 36  # multiples of 5 and 4 frame intervals for 'window'
    frames3d = _frames((1 if rank == 1 else 2, n_frames, 1), seed=rank)
    expected3d = _per_channel(REFERENCES[method], frames3d, n_timesteps, add_endpoint)
    got = ops.convert_to_numpy(resample(_as_rank(frames3d, rank), n_timesteps, method=method,
                                        add_endpoint=add_endpoint))
    expected = _as_rank(expected3d, rank)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    "n_frames, n_timesteps, expected",
    [(5, 17, [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4]),
     (3, 5, [0, 1, 1, 2, 2])],
    ids=["5to17", "3to5"])
def test_nearest_without_endpoint_rounds_ties_up(n_frames, n_timesteps, expected):
    # Positions j * (n_frames - 1) / (n_timesteps - 1) that fall halfway between frames go to
    # the later frame, as in magenta's ddsp (tf.compat.v1.image.resize, method='nearest',
    # align_corners=True), so that every interior frame is held equally long.
    got = ops.convert_to_numpy(resample(np.arange(n_frames, dtype=np.float32), n_timesteps, method="nearest",
                                        add_endpoint=False))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("add_endpoint", [True, False], ids=["endpoint", "noendpoint"])
def test_cubic_passes_through_frames(add_endpoint):
    frames = _frames((1, 6, 1), seed=3)
    n_timesteps = 24 if add_endpoint else 26  # frame i lands on step 4i or 5i
    hop = 4 if add_endpoint else 5
    got = ops.convert_to_numpy(resample(frames, n_timesteps, method="cubic", add_endpoint=add_endpoint))
    np.testing.assert_allclose(got[0, ::hop, 0], frames[0, :, 0], atol=1e-6)


def test_window_endpoint_holds_last_frame():
    frames = np.array([[[0.0], [1.0], [3.0]]], np.float32)
    got = ops.convert_to_numpy(resample(frames, 12, method="window"))[0, :, 0]
    quarter = 0.5 * math.cos(math.pi / 4)
    np.testing.assert_allclose(got[:4], [0.0, 0.5 - quarter, 0.5, 0.5 + quarter], atol=1e-6)
    np.testing.assert_allclose(got[4], 1.0, atol=1e-6)
    np.testing.assert_allclose(got[8:], 3.0, atol=1e-6)


# ------------------------------------------------------------------------------------------
# Errors.


@pytest.mark.parametrize("n_frames, n_timesteps, add_endpoint", [(4, 10, True), (5, 10, False), (3, 100, True)],
                         ids=["endpoint_4_intervals", "noendpoint_4_intervals", "endpoint_3_intervals"])
def test_window_needs_multiple_of_intervals(n_frames, n_timesteps, add_endpoint):
    with pytest.raises(ValueError, match="multiple"):
        resample(np.zeros((1, n_frames, 1)), n_timesteps, method="window", add_endpoint=add_endpoint)
    with pytest.raises(ValueError, match="multiple"):
        upsample_with_windows(np.zeros((1, n_frames, 1)), n_timesteps, add_endpoint=add_endpoint)


def test_window_refuses_to_downsample():
    with pytest.raises(ValueError, match="upsamples"):
        upsample_with_windows(np.zeros((1, 10, 1)), 4, add_endpoint=False)


@pytest.mark.parametrize("method", ["bilinear", "Linear", "", None], ids=["bilinear", "capitalised", "empty", "none"])
def test_unknown_method_raises(method):
    with pytest.raises(ValueError, match="method"):
        resample(np.zeros((1, 4, 1)), 16, method=method)


@pytest.mark.parametrize("method", ["linear", "window"])
def test_rank5_inputs_raise(method):
    with pytest.raises(ValueError, match="inputs"):
        resample(np.zeros((1, 4, 1, 1, 1)), 16, method=method)


def test_upsample_with_windows_needs_rank3():
    with pytest.raises(ValueError, match="inputs"):
        upsample_with_windows(np.zeros((1, 4)), 16)


@pytest.mark.parametrize("n_timesteps", [0, -4, 2.5], ids=["zero", "negative", "fraction"])
def test_bad_n_timesteps_raises(n_timesteps):
    with pytest.raises(ValueError, match="n_timesteps"):
        resample(np.zeros((1, 4, 1)), n_timesteps)


# ------------------------------------------------------------------------------------------
# Gradients.


@pytest.mark.parametrize(
    "method, n_timesteps",
    [("linear", 40), ("linear", 44), ("nearest", 40), ("nearest", 44), ("cubic", 40), ("cubic", 44),
     ("window", 40)],
    ids=["linear_integer_factor", "linear_fractional_factor", "nearest_integer_factor",
         "nearest_fractional_factor", "cubic_integer_factor", "cubic_fractional_factor", "window"])
def test_resample_gradients_finite_nonzero(method, n_timesteps):
    frames = _frames((2, 5, 3), seed=11)
    (d_frames,) = gradient(lambda x: resample(x, n_timesteps, method=method), frames)
    assert d_frames.shape == frames.shape
    assert np.all(np.isfinite(d_frames))
    assert np.all(d_frames != 0), d_frames[0, :, 0]
    # Interpolation weights sum to one at every output step: d sum(out) / d frames sums to n_timesteps.
    np.testing.assert_allclose(d_frames.sum(axis=1), n_timesteps, rtol=1e-5)


def test_upsample_with_windows_gradients_finite_nonzero():
    frames = _frames((1, 5, 2), seed=12)
    weights = np.random.default_rng(13).normal(size=(1, 32, 2)).astype(np.float32)
    (d_frames,) = gradient(lambda x: upsample_with_windows(x, 32, add_endpoint=False) * weights, frames)
    # d sum(w * out) / d frames[i] = sum_j w_j * d out_j / d frames[i]: the transposed weight matrix.
    basis = np.eye(5)
    matrix = np.stack([_window_formula_reference(basis[i], 32, False) for i in range(5)])  # [5, 32]
    expected = np.einsum("ij,bjc->bic", matrix, weights)
    assert np.all(np.isfinite(d_frames)) and np.all(d_frames != 0)
    np.testing.assert_allclose(d_frames, expected, atol=1e-5)


# ------------------------------------------------------------------------------------------
# Rank 4: [batch, n_frames, n_freq, n_channels], as magenta's callers pass.


@pytest.mark.parametrize("method", ["linear", "nearest", "cubic", "window"])
def test_rank4_resamples_each_freq_and_channel(method):
    frames4d = _frames((2, 5, 3, 2), seed=21)
    got = ops.convert_to_numpy(resample(frames4d, 40, method=method))
    assert got.shape == (2, 40, 3, 2)
    for freq in range(3):
        expected = _per_channel(REFERENCES[method], frames4d[:, :, freq, :], 40, True)
        np.testing.assert_allclose(got[:, :, freq, :], expected, atol=1e-5)


def test_rank4_gradient_sums_to_n_timesteps():
    frames4d = _frames((1, 4, 2, 3), seed=22)
    (d_frames,) = gradient(lambda x: resample(x, 44), frames4d)
    assert d_frames.shape == frames4d.shape
    np.testing.assert_allclose(d_frames.sum(axis=1), 44, rtol=1e-5)
