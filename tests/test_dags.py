"""Tests for ddsp_core.dags: DAGLayer wiring by nested keys, module kinds, gin configuration, errors."""

import logging

import gin
import keras
import numpy as np
import pytest
from keras import ops

import ddsp_core as ddsp
from ddsp_core import dags
from tests.gin_helpers import build_from_gin
from tests.gradients import gradient

pytestmark = pytest.mark.dsp

# Dense layers by a short name, for the gin configurations below.
gin.external_configurable(keras.layers.Dense, "keras.layers.Dense")


def _x(batch=4, dims=5):
    return np.random.default_rng(0).normal(size=(batch, dims)).astype(np.float32)


class Scale(keras.layers.Layer):
    """Multiplies by a constant; returns a tuple, records the `training` flag it got."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor
        self.seen_training = None

    def call(self, x, training=None):
        self.seen_training = training
        return x * self.factor, x


class SquaredError(keras.layers.Layer):
    """A loss module: has get_losses_dict."""

    def get_losses_dict(self, target, value, **kwargs):
        return {"squared_error": ops.mean(ops.square(target - value))}


def _autoencoder(**layer_kwargs):
    dag = [("encoder", ["inputs/x"], ["z"]),
           ("decoder", ["encoder/z"], ["reconstruction"])]
    return dags.DAGLayer(dag, encoder=keras.layers.Dense(2), decoder=keras.layers.Dense(5), **layer_kwargs)


def test_named_modules_with_output_keys():
    layer = _autoencoder(name="ae")
    outputs = layer({"x": _x()})
    assert layer.name == "ae" and layer.module_names == ["encoder", "decoder"]
    assert layer.modules == [layer.encoder, layer.decoder]
    assert layer.dag == [["encoder", ["inputs/x"], ["z"]], ["decoder", ["encoder/z"], ["reconstruction"]]]
    # Inputs appear both under 'inputs' and at the top level; 'out' is the last node's outputs.
    np.testing.assert_array_equal(ops.convert_to_numpy(outputs["inputs"]["x"]), _x())
    np.testing.assert_array_equal(ops.convert_to_numpy(outputs["x"]), _x())
    assert tuple(outputs["encoder"]["z"].shape) == (4, 2)
    z = ops.convert_to_numpy(outputs["encoder"]["z"])
    kernel, bias = (ops.convert_to_numpy(w) for w in layer.decoder.weights)
    np.testing.assert_allclose(ops.convert_to_numpy(outputs["out"]["reconstruction"]), z @ kernel + bias, atol=1e-5)
    assert outputs["out"] is outputs["decoder"]
    assert len(layer.trainable_variables) == 4  # two kernels, two biases


def test_modules_inside_the_dag_and_module_kinds():
    scale = Scale(3.0, name="scale")
    dag = [(scale, ["inputs/x"], ["tripled", "original"]),
           (ddsp.processors.Add(), ["scale/tripled", "scale/original"]),
           (SquaredError(name="error"), ["add/signal", "x"])]
    layer = dags.DAGLayer(dag)
    outputs = layer({"x": _x()}, training=True)
    np.testing.assert_allclose(ops.convert_to_numpy(outputs["add"]["signal"]), 4 * _x(), rtol=1e-6)
    assert set(outputs["add"]) == {"signal", "controls"}  # a processor's outputs dict
    np.testing.assert_allclose(float(outputs["out"]["squared_error"]), np.mean((3 * _x()) ** 2), rtol=1e-5)
    assert scale.seen_training is True  # keyword arguments reach every module
    assert layer.scale is scale and layer.module_names == ["scale", "add", "error"]


def test_format_dag_replaces_modules_by_names():
    add = ddsp.processors.Add()
    dag, modules = dags.DAGLayer.format_dag([(add, ["a", "b"])])
    assert dag == [["add", ["a", "b"]]] and modules == {"add": add}


@pytest.mark.parametrize("kwarg_modules", [True, False], ids=["kwarg_modules", "dag_modules"])
def test_built_from_gin(kwarg_modules):
    if kwarg_modules:
        config = """
        DAGLayer.dag = [('encoder', ['inputs/x'], ['z']), ('decoder', ['encoder/z'], ['reconstruction'])]
        DAGLayer.encoder = @encoder/keras.layers.Dense()
        encoder/keras.layers.Dense.units = 2
        DAGLayer.decoder = @decoder/keras.layers.Dense()
        decoder/keras.layers.Dense.units = 5
        """
    else:
        config = """
        DAGLayer.dag = [(@encoder/keras.layers.Dense(), ['inputs/x'], ['z']),
                        (@decoder/keras.layers.Dense(), ['encoder/z'], ['reconstruction'])]
        encoder/keras.layers.Dense.units = 2
        encoder/keras.layers.Dense.name = 'encoder'
        decoder/keras.layers.Dense.units = 5
        decoder/keras.layers.Dense.name = 'decoder'
        """
    layer = build_from_gin("DAGLayer", config)
    outputs = layer({"x": _x()})
    assert tuple(outputs["out"]["reconstruction"].shape) == (4, 5)
    assert len(layer.trainable_variables) == 4


def test_verbose_logs_shapes(caplog):
    with caplog.at_level(logging.INFO):
        _autoencoder(name="ae").run_dag({"x": _x()}, verbose=True)
    assert "ae: Dense 'encoder' gets ['inputs/x']: [[4, 5]]" in caplog.text
    assert "ae: 'decoder' gives {'reconstruction': [4, 5]}" in caplog.text


def test_missing_input_key_lists_available_keys():
    layer = dags.DAGLayer([("encoder", ["inputs/y"], ["z"])], encoder=keras.layers.Dense(2), name="ae")
    with pytest.raises(KeyError, match=r"ae: module 'encoder' needs input 'inputs/y', which is not available. "
                                       r"Available keys: \['inputs/x', 'x'\]"):
        layer({"x": _x()})


def test_non_dict_output_needs_output_keys():
    layer = dags.DAGLayer([("encoder", ["x"])], encoder=keras.layers.Dense(2))
    with pytest.raises(ValueError, match=r"'encoder' returned a .*not a dict; name its outputs"):
        layer({"x": _x()})


@pytest.mark.parametrize(
    "dag, kwargs, message",
    [([("encoder", ["x"])], {}, r"dag\[0\] names the module 'encoder', which was not given"),
     ([(keras.layers.Dense(2), "x")], {}, r"dag\[0\] must be \(module, \[input keys\]\)"),
     ([(np.ones(3), ["x"])], {}, r"dag\[0\] must be \(module, \[input keys\]\)"),
     ([("a", ["x"]), ("a", ["a/y"])], {"a": keras.layers.Dense(2)}, r"repeated: \['a'\]"),
     ([("trainable_weights", ["x"])], {"trainable_weights": keras.layers.Dense(2)}, "a Keras layer attribute")],
    ids=["unknown_name", "keys_not_a_list", "not_a_layer", "repeated", "clashing_name"])
def test_malformed_dags_are_refused(dag, kwargs, message):
    with pytest.raises(ValueError, match=message):
        dags.DAGLayer(dag, **kwargs)


def test_empty_dag_is_refused_when_run():
    with pytest.raises(ValueError, match="has an empty dag"):
        dags.DAGLayer([])({"x": _x()})


def test_helpers():
    assert dags.filter_by_value({"a": 1, "b": "x"}, lambda v: isinstance(v, int)) == {"a": 1}
    kwargs = {"name": "n", "training": None, "encoder": 3}
    assert dags.split_keras_kwargs(kwargs) == ({"name": "n"}, {"training": None, "encoder": 3})
    assert kwargs == {"name": "n", "training": None, "encoder": 3}
    assert dags.is_processor(ddsp.processors.Add()) and not dags.is_processor(keras.layers.Dense(2))
    assert dags.is_loss(SquaredError()) and dags.is_module(keras.layers.Dense(2)) and not dags.is_module("dense")


def test_gradients_flow_through_the_dag():
    layer = _autoencoder()
    layer({"x": _x()})  # build the weights
    (d_x,) = gradient(lambda x: layer({"x": x})["out"]["reconstruction"], _x())
    encoder_kernel, _ = (ops.convert_to_numpy(w) for w in layer.encoder.weights)
    decoder_kernel, _ = (ops.convert_to_numpy(w) for w in layer.decoder.weights)
    # d sum(x W1 W2 + ...) / dx = W1 W2 1: the same row for every example.
    np.testing.assert_allclose(d_x, np.tile(encoder_kernel @ decoder_kernel.sum(axis=1), (4, 1)), rtol=1e-4,
                               atol=1e-5)
