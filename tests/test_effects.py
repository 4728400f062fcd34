"""Tests for ddsp_core.effects.Reverb against direct convolution."""

import numpy as np
import pytest
from keras import ops

import ddsp_core as ddsp
from tests.gradients import gradient

pytestmark = pytest.mark.dsp


def _audio(batch=2, n_samples=4000, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, n_samples)).astype(np.float32)


def test_reverb_with_given_ir_is_causal_convolution_plus_dry():
    audio = _audio()
    ir = np.random.default_rng(1).normal(size=(2, 300)).astype(np.float32) * 0.1
    wet_and_dry = ops.convert_to_numpy(ddsp.effects.Reverb()(audio, ir))
    ir_without_dry = ir.copy()
    ir_without_dry[:, 0] = 0.0  # the first sample is the dry path, added separately
    expected = np.stack([np.convolve(a, h)[:4000] for a, h in zip(audio, ir_without_dry)]) + audio
    np.testing.assert_allclose(wet_and_dry, expected, atol=1e-4)


def test_reverb_delta_ir_delays_and_wet_only():
    audio = _audio(batch=1)
    ir = np.zeros((1, 100), np.float32)
    ir[0, 37] = 0.5
    wet = ops.convert_to_numpy(ddsp.effects.Reverb(add_dry=False)(audio, ir))
    np.testing.assert_allclose(wet[0, 37:], 0.5 * audio[0, :-37], atol=1e-5)
    np.testing.assert_allclose(wet[0, :37], 0.0, atol=1e-5)


def test_trainable_reverb_starts_near_dry():
    reverb = ddsp.effects.Reverb(trainable=True, reverb_length=1000)
    assert [tuple(w.shape) for w in reverb.trainable_weights] == [(1000,)]
    audio = _audio()
    np.testing.assert_allclose(ops.convert_to_numpy(reverb(audio)), audio, atol=1e-3)


def test_reverb_gradient_wrt_ir_and_audio():
    reverb = ddsp.effects.Reverb(add_dry=True)
    d_audio, d_ir = gradient(lambda a, h: reverb(a, h) ** 2, _audio(batch=1, n_samples=1000), np.full((1, 200), 0.01))
    assert np.all(np.isfinite(d_ir)) and np.abs(d_ir[0, 1:]).min() > 0
    np.testing.assert_array_equal(d_ir[0, 0], 0.0)  # the dry sample of the IR is not used
    assert np.all(np.isfinite(d_audio)) and np.abs(d_audio).max() > 0


def test_reverb_without_ir_explains_itself():
    with pytest.raises(ValueError, match="needs an impulse response"):
        ddsp.effects.Reverb()(_audio())


def test_reverb_bad_audio_rank():
    with pytest.raises(ValueError, match=r"audio must have shape \[batch, n_samples\]"):
        ddsp.effects.Reverb(trainable=True, reverb_length=10)(np.zeros((1, 100, 1)))
