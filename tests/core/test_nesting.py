"""Tests for ddsp_core.core.nesting: paths into nested dicts and list <-> dict conversions."""

import numpy as np
import pytest
from keras import ops

from ddsp_core.core import nesting

pytestmark = pytest.mark.dsp

TREE = {"f0_hz": 1, "harmonic": {"signal": 2, "controls": {"amplitudes": 3, "f0_hz": 4}}, "empty": {}}


def test_nested_keys_lists_leaves_in_order():
    assert nesting.nested_keys(TREE) == ["f0_hz", "harmonic/signal", "harmonic/controls/amplitudes",
                                         "harmonic/controls/f0_hz"]
    assert nesting.nested_keys({"a": {"b": 1}}, delimiter=".") == ["a.b"]


@pytest.mark.parametrize("key, value", [("f0_hz", 1), ("harmonic/controls/f0_hz", 4), ("harmonic/signal", 2),
                                        ("empty", {})], ids=["top", "deep", "middle", "dict_value"])
def test_nested_lookup(key, value):
    assert nesting.nested_lookup(key, TREE) == value


@pytest.mark.parametrize("key", ["harmonic/controls/gain", "noise/signal", "f0_hz/signal"],
                         ids=["missing_leaf", "missing_branch", "past_a_leaf"])
def test_nested_lookup_missing_key_lists_available_keys(key):
    with pytest.raises(KeyError, match=r"is not in the nested dict. Available keys: \['f0_hz', 'harmonic/controls"):
        nesting.nested_lookup(key, TREE)


def test_leaf_key():
    assert nesting.leaf_key("harmonic/controls/f0_hz") == "f0_hz"
    assert nesting.leaf_key("a.b", delimiter=".") == "b"


def test_make_iterable_wraps_tensors_and_scalars():
    tensor = ops.ones((3, 2))
    array = np.ones((3, 2))
    assert nesting.make_iterable(None) == []
    assert len(nesting.make_iterable(tensor)) == 1 and nesting.make_iterable(tensor)[0] is tensor
    assert len(nesting.make_iterable(array)) == 1
    assert nesting.make_iterable(5) == [5]
    assert nesting.make_iterable([1, 2]) == [1, 2]


def test_to_dict():
    tensor = ops.ones((4, 2))
    assert nesting.to_dict({"a": 1}, ["b"]) == {"a": 1}
    assert nesting.to_dict([1, 2], ["a", "b"]) == {"a": 1, "b": 2}
    assert nesting.to_dict(tensor, ["z"])["z"] is tensor  # the batch is not split
    with pytest.raises(ValueError, match=r"one key per value: got 1 keys \['a'\] for 2 value"):
        nesting.to_dict([1, 2], ["a"])


def test_copy_if_tf_function_is_a_shallow_copy():
    inputs = {"a": [1]}
    copied = nesting.copy_if_tf_function(inputs)
    copied["b"] = 2
    assert "b" not in inputs and copied["a"] is inputs["a"]


def test_map_shape():
    shapes = nesting.map_shape({"a": ops.ones((2, 3)), "b": {"c": np.zeros(5)}, "d": [ops.ones(())]})
    assert shapes == {"a": [2, 3], "b": {"c": [5]}, "d": [[]]}
