"""Tests for ddsp_core.processors: Processor, Add, and the ProcessorGroup DAG (also built from gin)."""

import numpy as np
import pytest
from keras import ops

import ddsp_core as ddsp
from tests.gin_helpers import build_from_gin
from tests.gradients import gradient

pytestmark = pytest.mark.dsp

N_FRAMES, N_SAMPLES = 100, 6400


def _inputs(batch=2):
    rng = np.random.default_rng(0)
    return {
        "amps": rng.normal(size=(batch, N_FRAMES, 1)).astype(np.float32),
        "harmonic_distribution": rng.normal(size=(batch, N_FRAMES, 10)).astype(np.float32),
        "f0_hz": np.full((batch, N_FRAMES, 1), 330.0, np.float32),
        "noise_magnitudes": rng.normal(size=(batch, N_FRAMES, 33)).astype(np.float32),
    }


def _solo_dag(reverb_length=1000):
    return [
        (ddsp.synths.Harmonic(n_samples=N_SAMPLES), ["amps", "harmonic_distribution", "f0_hz"]),
        (ddsp.synths.FilteredNoise(n_samples=N_SAMPLES, seed=3), ["noise_magnitudes"]),
        (ddsp.processors.Add(), ["filtered_noise/signal", "harmonic/signal"]),
        (ddsp.effects.Reverb(trainable=True, reverb_length=reverb_length), ["add/signal"]),
    ]


def test_processor_returns_signal_or_outputs_dict():
    synth = ddsp.synths.Harmonic(n_samples=N_SAMPLES)
    inputs = _inputs()
    outputs = synth(inputs["amps"], inputs["harmonic_distribution"], inputs["f0_hz"], return_outputs_dict=True)
    assert set(outputs) == {"signal", "controls"}
    assert set(outputs["controls"]) == {"amplitudes", "harmonic_distribution", "f0_hz"}
    signal = synth(inputs["amps"], inputs["harmonic_distribution"], inputs["f0_hz"])
    np.testing.assert_allclose(ops.convert_to_numpy(signal), ops.convert_to_numpy(outputs["signal"]), atol=1e-6)


def test_add_sums_signals():
    total = ddsp.processors.Add()(np.ones((2, 5)), np.full((2, 5), 2.0))
    np.testing.assert_allclose(ops.convert_to_numpy(total), 3.0)


def test_processor_group_runs_the_dag():
    group = ddsp.processors.ProcessorGroup(dag=_solo_dag())
    result = group(_inputs(), return_outputs_dict=True)
    assert set(result) == {"signal", "controls"}
    outputs = result["controls"]
    harmonic = ops.convert_to_numpy(outputs["harmonic"]["signal"])
    noise = ops.convert_to_numpy(outputs["filtered_noise"]["signal"])
    np.testing.assert_allclose(ops.convert_to_numpy(outputs["add"]["signal"]), harmonic + noise, atol=1e-6)
    final = ops.convert_to_numpy(outputs["out"]["signal"])
    assert final.shape == (2, N_SAMPLES)
    np.testing.assert_array_equal(final, ops.convert_to_numpy(result["signal"]))
    np.testing.assert_array_equal(final, ops.convert_to_numpy(outputs["reverb"]["signal"]))
    # The reverb's impulse response is a weight of the group.
    assert [tuple(w.shape) for w in group.trainable_weights] == [(1000,)]


def test_processor_group_missing_key_lists_available_keys():
    dag = [(ddsp.synths.Harmonic(n_samples=N_SAMPLES), ["amplitudes", "harmonic_distribution", "f0_hz"])]
    with pytest.raises(KeyError, match=r"processor 'harmonic' needs input 'amplitudes'.*Available keys: \['amps'"):
        ddsp.processors.ProcessorGroup(dag=dag)(_inputs())


@pytest.mark.parametrize("dag", [[(42, ["amps"])], [(ddsp.processors.Add(), "amps")],
                                 [(ddsp.processors.Add(), ["a"], "signal")]],
                         ids=["not_a_layer", "keys_not_a_list", "output_keys_not_a_list"])
def test_processor_group_rejects_malformed_dag(dag):
    with pytest.raises(ValueError, match=r"dag\[0\] must be \(processor, \[input keys\]\)"):
        ddsp.processors.ProcessorGroup(dag=dag)


def test_processor_group_rejects_duplicate_names():
    dag = [(ddsp.processors.Add(), ["a", "b"]), (ddsp.processors.Add(), ["add/signal", "b"])]
    with pytest.raises(ValueError, match=r"repeated: \['add'\]"):
        ddsp.processors.ProcessorGroup(dag=dag)


def test_processor_group_from_gin():
    config = f"""
    ProcessorGroup.dag = [
        (@synths.Harmonic(), ['amps', 'harmonic_distribution', 'f0_hz']),
        (@synths.FilteredNoise(), ['noise_magnitudes']),
        (@processors.Add(), ['filtered_noise/signal', 'harmonic/signal']),
        (@effects.Reverb(), ['add/signal']),
    ]
    Harmonic.n_samples = {N_SAMPLES}
    Harmonic.scale_fn = @core.exp_sigmoid
    FilteredNoise.n_samples = {N_SAMPLES}
    Reverb.trainable = True
    Reverb.reverb_length = 500
    """
    group = build_from_gin("ProcessorGroup", config)
    assert [processor.name for processor, _ in group.dag] == ["harmonic", "filtered_noise", "add", "reverb"]
    # gin hands over a wrapper of the registered function: it computes the same.
    assert float(group.dag[0][0].scale_fn(0.0)) == pytest.approx(float(ddsp.core.exp_sigmoid(0.0)))
    audio = ops.convert_to_numpy(group(_inputs()))
    assert audio.shape == (2, N_SAMPLES) and np.all(np.isfinite(audio)) and np.abs(audio).max() > 0


def test_processor_group_takes_processors_by_name_and_inputs_namespace():
    harmonic = ddsp.synths.Harmonic(n_samples=N_SAMPLES, name="tone")
    dag = [("tone", ["inputs/amps", "harmonic_distribution", "inputs/f0_hz"]),
           (ddsp.synths.TensorToAudio(), ["inputs/samples"]),
           (ddsp.processors.Add(), ["tone/signal", "tensor_to_audio/signal"])]
    group = ddsp.processors.ProcessorGroup(dag=dag, tone=harmonic)
    assert group.processor_names == ["tone", "tensor_to_audio", "add"]
    assert group.dag[0][0] is harmonic
    inputs = dict(_inputs(), samples=np.ones((2, N_SAMPLES, 1), np.float32))
    outputs = group.get_controls(inputs)
    tone = ops.convert_to_numpy(outputs["tone"]["signal"])
    np.testing.assert_allclose(ops.convert_to_numpy(group.get_signal(outputs)), tone + 1.0, atol=1e-6)
    np.testing.assert_array_equal(ops.convert_to_numpy(outputs["inputs"]["amps"]), inputs["amps"])


def test_processor_group_unknown_processor_name():
    with pytest.raises(ValueError, match=r"dag\[0\] names the processor 'tone', which was not given"):
        ddsp.processors.ProcessorGroup(dag=[("tone", ["amps"])])


def test_processor_group_nests_as_a_processor():
    inner = ddsp.processors.ProcessorGroup(dag=[(ddsp.processors.Add(), ["a", "b"])], name="inner")
    outer = ddsp.processors.ProcessorGroup(dag=[(inner, ["inputs"]), (ddsp.processors.Add(name="twice"),
                                                                     ["inner/signal", "inner/signal"])])
    total = outer({"a": np.ones((1, 4)), "b": np.full((1, 4), 2.0)})
    np.testing.assert_allclose(ops.convert_to_numpy(total), 6.0)


@pytest.mark.parametrize("shape", [(2, 400), (2, 400, 3)], ids=["mono", "channels"])
def test_mix_is_a_constant_power_crossfade(shape):
    rng = np.random.default_rng(0)
    one, two = rng.normal(size=shape).astype(np.float32), rng.normal(size=shape).astype(np.float32)
    logits = rng.normal(size=(2, 4, 1)).astype(np.float32)
    outputs = ddsp.processors.Mix()(one, two, logits, return_outputs_dict=True)
    level = ops.convert_to_numpy(outputs["controls"]["mix_level"])
    expected_level = ops.convert_to_numpy(ddsp.core.resample(1 / (1 + np.exp(-logits)), 400))
    np.testing.assert_allclose(level, expected_level, atol=1e-6)
    if len(shape) == 2:
        level = level[:, :, 0]
    expected = np.sqrt(level) * one + np.sqrt(1 - level) * two
    np.testing.assert_allclose(ops.convert_to_numpy(outputs["signal"]), expected, atol=1e-5)
    assert ops.convert_to_numpy(outputs["signal"]).shape == shape


def test_mix_extremes_pick_one_signal():
    one, two = np.ones((1, 8), np.float32), np.full((1, 8), 3.0, np.float32)
    mix = ddsp.processors.Mix()
    np.testing.assert_allclose(ops.convert_to_numpy(mix.get_signal(one, two, np.ones((1, 8, 1)))), 1.0)
    np.testing.assert_allclose(ops.convert_to_numpy(mix.get_signal(one, two, np.zeros((1, 8, 1)))), 3.0)
    # Constant power: the squared gains sum to one at every level.
    levels = np.linspace(0.0, 1.0, 8, dtype=np.float32)[None, :, None]
    gain_one = ops.convert_to_numpy(mix.get_signal(one, 0.0 * two, levels))
    gain_two = ops.convert_to_numpy(mix.get_signal(0.0 * one, two / 3.0, levels))
    np.testing.assert_allclose(gain_one**2 + gain_two**2, 1.0, rtol=1e-6)


def test_mix_bad_input_is_named():
    with pytest.raises(ValueError, match=r"Mix needs two signals of the same shape, got \(1, 8\) and \(1, 9\)"):
        ddsp.processors.Mix()(np.ones((1, 8)), np.ones((1, 9)), np.zeros((1, 2, 1)))
    with pytest.raises(ValueError, match=r"nn_out_mix_level must have shape \[batch, n_frames, 1\]"):
        ddsp.processors.Mix()(np.ones((1, 8)), np.ones((1, 8)), np.zeros((1, 2)))


@pytest.mark.parametrize("location, expected", [("front", slice(4, None)), ("center", slice(2, -2)),
                                                ("back", slice(None, -4))])
def test_crop_removes_padding(location, expected):
    audio = np.arange(20, dtype=np.float32).reshape(2, 10)
    cropped = ddsp.processors.Crop(frame_size=5, crop_location=location)(audio)
    np.testing.assert_array_equal(ops.convert_to_numpy(cropped), audio[:, expected])


def test_crop_bad_arguments():
    with pytest.raises(ValueError, match="crop_location must be one of"):
        ddsp.processors.Crop(frame_size=4, crop_location="middle")
    with pytest.raises(ValueError, match="frame_size must be a positive integer"):
        ddsp.processors.Crop(frame_size=0)


def test_mix_and_crop_gradients():
    rng = np.random.default_rng(1)
    one, two, logits = rng.normal(size=(1, 40)), rng.normal(size=(1, 40)), rng.normal(size=(1, 4, 1))
    for grad in gradient(lambda a, b, m: ddsp.processors.Mix()(a, b, m) ** 2, one, two, logits):
        assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    # A saturated level (sigmoid(40) is 1 in float32) gives finite gradients.
    for grad in gradient(lambda a, b, m: ddsp.processors.Mix()(a, b, m), one, two, np.full((1, 4, 1), 40.0)):
        assert np.all(np.isfinite(grad))
    (grad,) = gradient(lambda a: ddsp.processors.Crop(frame_size=4)(a), one)
    np.testing.assert_array_equal(grad[0], [1.0] * 36 + [0.0] * 4)
