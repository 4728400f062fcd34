"""Tests for ddsp_core.core.arrays against NumPy (pad, diff, crop, nan_to_num) and gradient reversal."""

import numpy as np
import pytest
from keras import ops

from ddsp_core.core import arrays
from tests.gradients import gradient

pytestmark = pytest.mark.dsp


def _np(x):
    return ops.convert_to_numpy(x)


X = np.arange(2 * 5 * 3, dtype=np.float32).reshape(2, 5, 3) ** 1.5


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_diff_matches_np_diff(axis):
    np.testing.assert_allclose(_np(arrays.diff(X, axis=axis)), np.diff(X, axis=axis), rtol=1e-6)


def test_diff_twice_shrinks_twice():
    assert tuple(arrays.diff(arrays.diff(X, axis=1), axis=1).shape) == (2, 3, 3)


@pytest.mark.parametrize("axis", [3, -4])
def test_diff_axis_out_of_range(axis):
    with pytest.raises(ValueError, match=f"diff: axis {axis} is out of range for a tensor of rank 3"):
        arrays.diff(X, axis=axis)


@pytest.mark.parametrize("padding, axis, kwargs", [((1, 2), 1, {}), ((0, 3), -1, {"constant_values": 7.0}),
                                                   ((2, 1), 1, {"mode": "REFLECT"})],
                         ids=["zeros", "constant", "reflect"])
def test_pad_axis_matches_np_pad(padding, axis, kwargs):
    widths = [(0, 0)] * 3
    widths[axis] = padding
    np_kwargs = {"mode": kwargs.get("mode", "constant").lower()}
    if "constant_values" in kwargs:
        np_kwargs["constant_values"] = kwargs["constant_values"]
    np.testing.assert_allclose(_np(arrays.pad_axis(X, padding, axis=axis, **kwargs)), np.pad(X, widths, **np_kwargs))


def test_pad_axis_bad_padding():
    with pytest.raises(ValueError, match=r"padding must be \(before, after\)"):
        arrays.pad_axis(X, (-1, 0), axis=1)


@pytest.mark.parametrize("frame_size, expected", [(4, slice(2, -2)), (5, slice(2, -2)), (1, slice(None))],
                         ids=["even", "odd", "one"])
def test_center_crop(frame_size, expected):
    audio = np.arange(20, dtype=np.float32).reshape(2, 10)
    np.testing.assert_array_equal(_np(arrays.center_crop(audio, frame_size)), audio[:, expected])


def test_nan_to_num_keeps_infinities():
    x = np.array([1.0, np.nan, np.inf, -np.inf], np.float32)
    np.testing.assert_array_equal(_np(arrays.nan_to_num(x, value=-5.0)), [1.0, -5.0, np.inf, -np.inf])


def test_gradient_reversal_is_identity_forward_negated_backward():
    x = np.array([[0.5, -2.0, 3.0]], np.float32)
    np.testing.assert_allclose(_np(arrays.gradient_reversal(x)), x)
    weights = np.array([[1.0, 2.0, -3.0]], np.float32)
    (grad,) = gradient(lambda v: arrays.gradient_reversal(v) * weights, x)
    np.testing.assert_allclose(grad, -weights)


def test_gradients_of_diff_pad_and_crop():
    weights = np.random.default_rng(0).normal(size=(2, 4, 3)).astype(np.float32)
    (grad,) = gradient(lambda v: arrays.diff(v, axis=1) * weights, X)
    expected = np.zeros_like(X)  # d/dx_i of sum_j w_j (x_{j+1} - x_j) = w_{i-1} - w_i
    expected[:, 1:] += weights
    expected[:, :-1] -= weights
    np.testing.assert_allclose(grad, expected, atol=1e-6)
    (grad,) = gradient(lambda v: arrays.pad_axis(v, (1, 1), axis=1) ** 2, X)
    np.testing.assert_allclose(grad, 2 * X, rtol=1e-6)
    (grad,) = gradient(lambda v: arrays.center_crop(v, 2), X)
    assert grad[:, 0].sum() == 0 and grad[:, -1].sum() == 0 and np.all(grad[:, 1:-1] == 1)
    (grad,) = gradient(lambda v: arrays.nan_to_num(v) * 2.0, X)
    np.testing.assert_allclose(grad, 2.0)
