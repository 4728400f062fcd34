"""Tests for ddsp_core.core.framing against NumPy loop references (tf.signal.frame semantics)."""

import numpy as np
import pytest
from keras import ops

from ddsp_core.core.framing import frame, overlap_and_add
from tests.gradients import gradient

pytestmark = pytest.mark.dsp


def _frame_reference(signal, frame_length, frame_step, pad_end):
    """tf.signal.frame on the last axis of a [batch, n_samples] array."""
    n_samples = signal.shape[-1]
    if pad_end:
        n_frames = -(-n_samples // frame_step)
        needed = (n_frames - 1) * frame_step + frame_length
        signal = np.pad(signal, [(0, 0), (0, max(0, needed - n_samples))])
    else:
        n_frames = 1 + (n_samples - frame_length) // frame_step
    return np.stack([signal[:, i * frame_step:i * frame_step + frame_length] for i in range(n_frames)], axis=1)


def _overlap_and_add_reference(frames, frame_step):
    batch, n_frames, frame_length = frames.shape
    out = np.zeros((batch, (n_frames - 1) * frame_step + frame_length))
    for i in range(n_frames):
        out[:, i * frame_step:i * frame_step + frame_length] += frames[:, i]
    return out


# (n_samples, frame_length, frame_step): lengths multiple of the step (fast path) or not,
# steps longer than frames (gaps), signal lengths that do and do not fit whole frames.
FRAME_CASES = [
    (16, 4, 4), (17, 4, 2), (16, 4, 1), (17, 5, 2), (20, 7, 3), (19, 3, 5), (10, 10, 3),
]
FRAME_IDS = [f"n{n}_len{length}_step{step}" for n, length, step in FRAME_CASES]


@pytest.mark.parametrize("pad_end", [False, True], ids=["no_pad", "pad_end"])
@pytest.mark.parametrize("n_samples, frame_length, frame_step", FRAME_CASES, ids=FRAME_IDS)
def test_frame_matches_reference(n_samples, frame_length, frame_step, pad_end):
    signal = np.random.default_rng(n_samples * 7 + frame_length).normal(size=(2, n_samples)).astype(np.float32)
    expected = _frame_reference(signal, frame_length, frame_step, pad_end)
    got = ops.convert_to_numpy(frame(signal, frame_length, frame_step, pad_end=pad_end))
    n_frames = -(-n_samples // frame_step) if pad_end else 1 + (n_samples - frame_length) // frame_step
    assert got.shape == (2, n_frames, frame_length)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("frame_length, frame_step", [(8, 4), (8, 3)], ids=["len8_step4", "len8_step3"])
def test_frame_pad_end_longer_than_signal(frame_length, frame_step):
    signal = np.arange(1, 6, dtype=np.float32)[None]  # 5 samples, shorter than a frame
    got = ops.convert_to_numpy(frame(signal, frame_length, frame_step, pad_end=True))
    expected = _frame_reference(signal, frame_length, frame_step, pad_end=True)
    assert got.shape == (1, 2, frame_length)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(got[0, 0], [1, 2, 3, 4, 5, 0, 0, 0])


def test_frame_without_pad_end_needs_one_frame():
    with pytest.raises(ValueError, match="fewer than one frame"):
        frame(np.zeros((1, 5), np.float32), 8, 4, pad_end=False)


@pytest.mark.parametrize("frame_length, frame_step", [(0, 2), (4, 0), (4, 1.5)], ids=["length0", "step0", "step_float"])
def test_frame_bad_sizes_raise(frame_length, frame_step):
    with pytest.raises(ValueError, match="frame_length|frame_step"):
        frame(np.zeros((1, 16), np.float32), frame_length, frame_step)


def test_frame_needs_rank2():
    with pytest.raises(ValueError, match="signal"):
        frame(np.zeros((16,), np.float32), 4, 2)


OLA_CASES = [(5, 4, 4), (5, 4, 2), (6, 4, 1), (4, 5, 2), (3, 7, 3), (4, 2, 3), (1, 6, 2)]
OLA_IDS = [f"frames{n}_len{length}_step{step}" for n, length, step in OLA_CASES]


@pytest.mark.parametrize("n_frames, frame_length, frame_step", OLA_CASES, ids=OLA_IDS)
def test_overlap_and_add_matches_reference(n_frames, frame_length, frame_step):
    frames = np.random.default_rng(n_frames * 11 + frame_length).normal(
        size=(2, n_frames, frame_length)).astype(np.float32)
    expected = _overlap_and_add_reference(frames, frame_step)
    got = ops.convert_to_numpy(overlap_and_add(frames, frame_step))
    assert got.shape == (2, (n_frames - 1) * frame_step + frame_length)
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("frame_length", [1, 4, 5], ids=["len1", "len4", "len5"])
def test_frame_then_overlap_and_add_without_overlap_is_identity(frame_length):
    signal = np.random.default_rng(frame_length).normal(size=(3, 20)).astype(np.float32)
    frames = frame(signal, frame_length, frame_length, pad_end=True)
    got = ops.convert_to_numpy(overlap_and_add(frames, frame_length))
    np.testing.assert_allclose(got[:, :20], signal, atol=0)
    np.testing.assert_array_equal(got[:, 20:], 0.0)  # the zero padding of the last frame


def test_overlap_and_add_needs_rank3():
    with pytest.raises(ValueError, match="frames"):
        overlap_and_add(np.zeros((4, 8), np.float32), 2)


@pytest.mark.parametrize("frame_length, frame_step", [(6, 2), (5, 2), (2, 3)], ids=["len6_step2", "len5_step2",
                                                                                   "len2_step3"])
def test_gradients_finite_nonzero(frame_length, frame_step):
    # d sum(frame(x)) / d x[n] counts the frames that contain sample n.
    signal = np.random.default_rng(0).normal(size=(2, 17)).astype(np.float32)
    (d_signal,) = gradient(lambda x: frame(x, frame_length, frame_step, pad_end=True), signal)
    sample_numbers = _frame_reference(np.arange(1, 18)[None], frame_length, frame_step, pad_end=True)  # 0: padding
    counts = np.bincount(sample_numbers[sample_numbers > 0] - 1, minlength=17)
    assert np.all(np.isfinite(d_signal)) and np.any(d_signal != 0)  # samples in gaps between frames get 0
    np.testing.assert_array_equal(d_signal, np.broadcast_to(counts, (2, 17)))
    # d sum(w * overlap_and_add(f)) / d f[i, k] = w[i * step + k].
    frames = np.random.default_rng(1).normal(size=(2, 4, frame_length)).astype(np.float32)
    length = 3 * frame_step + frame_length
    weights = np.arange(1, length + 1, dtype=np.float32)
    (d_frames,) = gradient(lambda f: overlap_and_add(f, frame_step) * weights, frames)
    expected = np.stack([weights[i * frame_step:i * frame_step + frame_length] for i in range(4)])
    assert np.all(np.isfinite(d_frames)) and np.all(d_frames != 0)
    np.testing.assert_allclose(d_frames, np.broadcast_to(expected, frames.shape), atol=1e-6)
