"""Tests for ddsp_core.models.nn and .decoders: shapes, parameter counts (closed form), errors."""

import keras
import numpy as np
import pytest
from keras import ops

from ddsp_core.models import decoders, nn
from tests.gradients import gradient

pytestmark = pytest.mark.dsp

SOLO_SPLITS = (("amps", 1), ("harmonic_distribution", 60), ("noise_magnitudes", 65))
SOLO_REVERB_LENGTH = 48000
SOLO_PARAMETERS = 4_849_150  # The figure in models/solo_instrument.gin and the README.


def _dense(n_in, n_out):
    return n_in * n_out + n_out


def _fc_stack(n_in, ch, layers):
    """Dense + LayerNorm (gamma, beta) per layer."""
    return _dense(n_in, ch) + 2 * ch + (layers - 1) * (_dense(ch, ch) + 2 * ch)


def _rnn(n_in, units, rnn_type):
    """Keras GRU (reset_after=True: two bias vectors per gate) or LSTM."""
    if rnn_type == "gru":
        return 3 * (n_in * units + units * units + 2 * units)
    return 4 * (n_in * units + units * units + units)


def expected_decoder_parameters(rnn_channels, rnn_type, ch, layers_per_stack, n_inputs, n_outputs):
    stacks_out = n_inputs * ch
    return (n_inputs * _fc_stack(1, ch, layers_per_stack) + _rnn(stacks_out, rnn_channels, rnn_type)
            + _fc_stack(rnn_channels + stacks_out, ch, layers_per_stack) + _dense(ch, n_outputs))


def _conditioning(batch=2, n_frames=16, seed=0):
    rng = np.random.default_rng(seed)
    return {"f0_scaled": rng.uniform(0.3, 0.7, [batch, n_frames, 1]).astype(np.float32),
            "ld_scaled": rng.uniform(0.0, 1.0, [batch, n_frames]).astype(np.float32)}  # 2-D is accepted too.


def _n_parameters(layer):
    return int(sum(np.prod(weight.shape) for weight in layer.trainable_weights))


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_outputs_are_the_named_splits(rnn_type):
    splits = (("amps", 1), ("harmonic_distribution", 8), ("noise_magnitudes", 9))
    decoder = decoders.RnnFcDecoder(rnn_channels=16, rnn_type=rnn_type, ch=16, layers_per_stack=1,
                                    output_splits=splits)
    outputs = decoder(_conditioning(batch=3, n_frames=16))
    assert list(outputs) == ["amps", "harmonic_distribution", "noise_magnitudes"]
    assert {key: tuple(value.shape) for key, value in outputs.items()} == {
        "amps": (3, 16, 1), "harmonic_distribution": (3, 16, 8), "noise_magnitudes": (3, 16, 9)}
    assert all(np.all(np.isfinite(ops.convert_to_numpy(value))) for value in outputs.values())


@pytest.mark.parametrize("rnn_type, rnn_channels, ch, layers, splits", [
    pytest.param("gru", 16, 16, 1, (("amps", 1), ("harmonic_distribution", 8)), id="tiny_gru"),
    pytest.param("lstm", 12, 8, 2, (("amps", 1), ("noise_magnitudes", 5)), id="small_lstm"),
])
def test_parameter_count_matches_closed_form(rnn_type, rnn_channels, ch, layers, splits):
    decoder = decoders.RnnFcDecoder(rnn_channels=rnn_channels, rnn_type=rnn_type, ch=ch, layers_per_stack=layers,
                                    output_splits=splits)
    decoder(_conditioning(batch=1, n_frames=4))
    n_outputs = sum(size for _, size in splits)
    assert _n_parameters(decoder) == expected_decoder_parameters(rnn_channels, rnn_type, ch, layers, 2, n_outputs)


def test_solo_decoder_plus_reverb_is_the_published_parameter_count():
    decoder = decoders.RnnFcDecoder(rnn_channels=512, ch=512, layers_per_stack=3, output_splits=SOLO_SPLITS)
    decoder(_conditioning(batch=1, n_frames=4))
    assert _n_parameters(decoder) == expected_decoder_parameters(512, "gru", 512, 3, 2, 126) == 4_801_150
    assert _n_parameters(decoder) + SOLO_REVERB_LENGTH == SOLO_PARAMETERS


def test_unknown_rnn_type_raises():
    with pytest.raises(ValueError, match=r"rnn_type.*'transformer'"):
        decoders.RnnFcDecoder(rnn_type="transformer")


def test_empty_input_keys_raise():
    with pytest.raises(ValueError, match="input_keys"):
        decoders.RnnFcDecoder(input_keys=())


# Keras warns that a layer whose first call failed "has unbuilt state"; the error is what is tested.
@pytest.mark.filterwarnings("ignore:.*unbuilt state")
def test_missing_conditioning_key_raises_key_error_naming_it():
    decoder = decoders.RnnFcDecoder(rnn_channels=4, ch=4, layers_per_stack=1)
    with pytest.raises(KeyError, match="ld_scaled"):
        decoder({"f0_scaled": np.zeros([1, 4, 1], np.float32)})


def test_outputs_depend_on_every_input_key():
    decoder = decoders.RnnFcDecoder(rnn_channels=8, ch=8, layers_per_stack=1, output_splits=(("amps", 1),))
    conditioning = _conditioning(batch=1, n_frames=8)
    decoder(conditioning)  # Build the weights outside the differentiated function.
    d_f0, d_ld = gradient(lambda f0, ld: decoder({"f0_scaled": f0, "ld_scaled": ld})["amps"],
                          conditioning["f0_scaled"], conditioning["ld_scaled"])
    for name, grad in (("f0_scaled", d_f0), ("ld_scaled", d_ld)):
        assert np.all(np.isfinite(grad)), name
        assert np.all(np.abs(grad) > 0.0), name  # Through the GRU every frame reaches later outputs.


def test_fc_stack_matches_numpy():
    rng = np.random.default_rng(1)
    x = rng.normal(size=[2, 5, 3]).astype(np.float32)
    stack = nn.FcStack(ch=4, layers=2, negative_slope=0.2)
    stack(x)
    weights = [rng.normal(size=w.shape).astype(np.float32) for w in stack.get_weights()]
    stack.set_weights(weights)
    # Weight order: dense_0 kernel, bias, dense_1 kernel, bias, then the norms' gamma, beta.
    by_path = {w.path.split("/", 1)[1]: value for w, value in zip(stack.weights, weights)}

    expected = x
    for i in range(2):
        y = expected @ by_path[f"dense_{i}/kernel"] + by_path[f"dense_{i}/bias"]
        mean, var = y.mean(-1, keepdims=True), y.var(-1, keepdims=True)
        y = (y - mean) / np.sqrt(var + 1e-3) * by_path[f"layer_norm_{i}/gamma"] + by_path[f"layer_norm_{i}/beta"]
        expected = np.where(y > 0, y, 0.2 * y)
    np.testing.assert_allclose(ops.convert_to_numpy(stack(x)), expected, rtol=1e-4, atol=1e-5)


def test_split_to_dict_slices_the_last_axis_in_order():
    tensor = np.arange(2 * 3 * 6, dtype=np.float32).reshape([2, 3, 6])
    parts = nn.split_to_dict(tensor, (("a", 1), ("b", 3), ("c", 2)))
    assert list(parts) == ["a", "b", "c"]
    np.testing.assert_array_equal(ops.convert_to_numpy(parts["a"]), tensor[..., 0:1])
    np.testing.assert_array_equal(ops.convert_to_numpy(parts["b"]), tensor[..., 1:4])
    np.testing.assert_array_equal(ops.convert_to_numpy(parts["c"]), tensor[..., 4:6])


@pytest.mark.parametrize("splits", [(("a", 1), ("b", 3)), (("a", 4), ("b", 3))], ids=["too_few", "too_many"])
def test_split_to_dict_size_mismatch_raises(splits):
    with pytest.raises(ValueError, match="last axis 6"):
        nn.split_to_dict(np.zeros([2, 3, 6], np.float32), splits)


def _gru_pair(n_in=5, units=4, seed=3):
    """keras.layers.GRU and nn.FastGRU built with the same random weights."""
    import keras

    reference = keras.layers.GRU(units, return_sequences=True)
    fast = nn.FastGRU(units, return_sequences=True)
    rng = np.random.default_rng(seed)
    for layer in (reference, fast):
        layer.build((2, 7, n_in))
    weights = [rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in reference.weights]
    reference.set_weights(weights)
    fast.set_weights(weights)
    return reference, fast, weights


def test_fast_gru_matches_keras_gru_outputs_and_gradients():
    reference, fast, weights = _gru_pair()
    x = np.random.default_rng(4).normal(size=(2, 7, 5)).astype(np.float32)
    np.testing.assert_allclose(ops.convert_to_numpy(fast(x)), ops.convert_to_numpy(reference(x)), atol=1e-6)

    def through(layer):
        # Gradients w.r.t. the input and every weight (kernel, recurrent kernel, bias), weighted per output.
        out_weights = np.linspace(-1.0, 1.0, 2 * 7 * 4, dtype=np.float32).reshape(2, 7, 4)
        state = [ops.convert_to_numpy(v) for v in layer.non_trainable_variables]  # the dropout seed
        return gradient(lambda inputs, *w: layer.stateless_call(list(w), state, inputs)[0] * out_weights,
                        x, *weights)

    for got, expected in zip(through(fast), through(reference)):
        assert np.abs(expected).max() > 0.1
        np.testing.assert_allclose(got, expected, atol=2e-5)


def test_fast_gru_checkpoints_are_keras_gru_checkpoints():
    reference, fast, _ = _gru_pair()
    assert [w.path.split("/", 1)[1] for w in fast.weights] == [w.path.split("/", 1)[1] for w in reference.weights]
    assert [tuple(w.shape) for w in fast.weights] == [tuple(w.shape) for w in reference.weights]


def test_decoder_uses_the_fast_gru():
    assert isinstance(decoders.RnnFcDecoder(rnn_channels=4, ch=4, layers_per_stack=1).rnn, nn.FastGRU)


def test_bfloat16_decoder_is_close_to_float32_with_the_same_weights():
    keras.utils.set_random_seed(0)  # the weights: unseeded, one draw in ~30 put a tiny output near its error
    conditioning = _conditioning(batch=2, n_frames=16)
    exact = decoders.RnnFcDecoder(rnn_channels=16, ch=16, layers_per_stack=2, output_splits=SOLO_SPLITS)
    mixed = decoders.RnnFcDecoder(rnn_channels=16, ch=16, layers_per_stack=2, output_splits=SOLO_SPLITS,
                                  precision="bfloat16")
    exact(conditioning)
    mixed(conditioning)
    assert all(w.dtype == "float32" for w in mixed.weights)  # checkpoints are the same either way
    mixed.set_weights(exact.get_weights())
    want = {name: ops.convert_to_numpy(exact(conditioning)[name]) for name, _ in SOLO_SPLITS}
    got = {name: ops.convert_to_numpy(mixed(conditioning)[name]) for name, _ in SOLO_SPLITS}
    # All outputs come out of one Dense over the same bfloat16 features (8 significant bits, ~0.4 % per
    # rounding), so the error scales with the largest output, not with each split's own (a 1-channel split
    # can be tiny). Over 60 weight seeds the worst error was 2.7 % of that scale.
    scale = max(np.abs(values).max() for values in want.values())
    for name, _ in SOLO_SPLITS:
        assert got[name].dtype == np.float32
        np.testing.assert_allclose(got[name], want[name], atol=0.05 * scale, err_msg=name)
        assert not np.array_equal(got[name], want[name])  # it did compute in bfloat16


def test_bad_precision_is_named():
    with pytest.raises(ValueError, match="precision"):
        decoders.RnnFcDecoder(precision="float16")
