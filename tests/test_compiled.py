"""The DSP runs compiled (tf.function / jax.jit), as training will run it, and matches eager results."""

import keras
import numpy as np
import pytest
from keras import ops

import ddsp_core as ddsp

pytestmark = pytest.mark.dsp


def _compile(fn):
    """fn compiled by the active backend: tf.function on TensorFlow, jax.jit on JAX."""
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    import jax

    return jax.jit(fn)


def _controls():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(2, 100, 1)).astype(np.float32), rng.normal(size=(2, 100, 12)).astype(np.float32),
            np.full((2, 100, 1), 261.6, np.float32))


def test_compiled_synth_reverb_and_loss_match_eager():
    synth = ddsp.synths.Harmonic(n_samples=6400)
    reverb = ddsp.effects.Reverb()
    loss = ddsp.losses.SpectralLoss(logmag_weight=1.0)
    ir = np.random.default_rng(1).normal(size=(1, 500)).astype(np.float32) * 0.01
    target = np.random.default_rng(2).normal(size=(2, 6400)).astype(np.float32) * 0.1

    def render(amps, distribution, f0):
        audio = reverb(synth(amps, distribution, f0), ir)
        return audio, loss(target, audio)

    eager_audio, eager_loss = render(*_controls())
    compiled_audio, compiled_loss = _compile(render)(*_controls())
    np.testing.assert_allclose(ops.convert_to_numpy(compiled_audio), ops.convert_to_numpy(eager_audio), atol=1e-5)
    assert float(compiled_loss) == pytest.approx(float(eager_loss), rel=1e-5)


def test_value_checks_are_skipped_while_tracing():
    # NaN checks need concrete values: while tracing they are skipped, not a crash.
    synth = ddsp.synths.Harmonic(n_samples=6400)
    amps, distribution, f0 = _controls()
    audio = _compile(lambda a, d, f: synth(a, d, f))(amps, distribution, f0)
    assert ops.convert_to_numpy(audio).shape == (2, 6400)
