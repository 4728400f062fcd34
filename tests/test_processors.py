"""Tests for ddsp_core.processors: Processor, Add, and the ProcessorGroup DAG (also built from gin)."""

import numpy as np
import pytest
from keras import ops

import ddsp_core as ddsp
from tests.gin_helpers import build_from_gin

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
    outputs = group(_inputs(), return_outputs_dict=True)
    harmonic = ops.convert_to_numpy(outputs["harmonic"]["signal"])
    noise = ops.convert_to_numpy(outputs["filtered_noise"]["signal"])
    np.testing.assert_allclose(ops.convert_to_numpy(outputs["add"]["signal"]), harmonic + noise, atol=1e-6)
    final = ops.convert_to_numpy(outputs["out"]["signal"])
    assert final.shape == (2, N_SAMPLES)
    np.testing.assert_array_equal(final, ops.convert_to_numpy(outputs["reverb"]["signal"]))
    # The reverb's impulse response is a weight of the group.
    assert [tuple(w.shape) for w in group.trainable_weights] == [(1000,)]


def test_processor_group_missing_key_lists_available_keys():
    dag = [(ddsp.synths.Harmonic(n_samples=N_SAMPLES), ["amplitudes", "harmonic_distribution", "f0_hz"])]
    with pytest.raises(KeyError, match=r"processor 'harmonic' needs input 'amplitudes'.*Available keys: \['amps'"):
        ddsp.processors.ProcessorGroup(dag=dag)(_inputs())


@pytest.mark.parametrize("dag", [[("not a processor", ["amps"])], [(ddsp.processors.Add(), "amps")]],
                         ids=["not_a_layer", "keys_not_a_list"])
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
