"""Tests for ddsp_core.effects: reverbs, FIR filter and modulated delay, against NumPy and closed forms."""

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


# ------------------------------------------------------------------------------------------
# Impulse response shapes magenta's callers pass: [batch, ir_size, 1] and [ir_size].


def test_reverb_accepts_ir_with_channel_axis_and_1d():
    audio = _audio()
    ir = np.random.default_rng(2).normal(size=(2, 300)).astype(np.float32) * 0.1
    expected = ops.convert_to_numpy(ddsp.effects.Reverb()(audio, ir))
    with_channel = ops.convert_to_numpy(ddsp.effects.Reverb()(audio, ir[:, :, None]))
    np.testing.assert_allclose(with_channel, expected, atol=1e-6)
    one_d = ops.convert_to_numpy(ddsp.effects.Reverb()(audio, ir[0]))
    np.testing.assert_allclose(one_d[0], expected[0], atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(ddsp.effects.Reverb().get_signal(audio, ir[:, :, None])),
                               expected, atol=1e-6)


def test_reverb_ir_with_two_channels_raises():
    with pytest.raises(ValueError, match=r"ir must have shape \[batch, ir_size, 1\]"):
        ddsp.effects.Reverb()(_audio(), np.zeros((2, 300, 2)))


# ------------------------------------------------------------------------------------------
# ExpDecayReverb: ir(t) = scale_fn(gain) * exp(-(2 + exp(decay)) t) * noise(t).


def _identity(x):
    return x


def _exp_decay_ir(reverb, gain, decay):
    return ops.convert_to_numpy(reverb.get_controls(_audio(batch=len(gain)), np.asarray(gain, np.float32)[:, None],
                                                    np.asarray(decay, np.float32)[:, None])["ir"])


def test_exp_decay_ir_follows_its_formula():
    length = 2000
    reverb = ddsp.effects.ExpDecayReverb(reverb_length=length, scale_fn=_identity)
    ir = _exp_decay_ir(reverb, [1.0, 2.0, 1.0], [0.0, 0.0, 1.5])
    time = np.linspace(0.0, 1.0, length)
    noise = ir[0] / np.exp(-3.0 * time)  # decay 0: envelope exp(-(2 + 1) t)
    assert np.all(np.abs(noise) <= 1.0 + 1e-5)
    assert abs(noise.mean()) < 0.05 and abs(noise.std() - 1 / np.sqrt(3)) < 0.02  # uniform in [-1, 1]
    np.testing.assert_allclose(ir[1], 2.0 * ir[0], rtol=1e-5)  # gain is linear
    np.testing.assert_allclose(ir[2], ir[0] * np.exp(-(np.exp(1.5) - 1.0) * time), rtol=1e-4, atol=1e-7)


def test_exp_decay_noise_is_fixed_by_seed():
    first = _exp_decay_ir(ddsp.effects.ExpDecayReverb(reverb_length=500, seed=3), [0.0], [0.0])
    again = _exp_decay_ir(ddsp.effects.ExpDecayReverb(reverb_length=500, seed=3), [0.0], [0.0])
    other = _exp_decay_ir(ddsp.effects.ExpDecayReverb(reverb_length=500, seed=4), [0.0], [0.0])
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3


def test_exp_decay_reverb_output_is_causal_convolution_plus_dry():
    audio = _audio(n_samples=3000)
    reverb = ddsp.effects.ExpDecayReverb(reverb_length=400)
    gain, decay = np.array([[0.5], [-1.0]], np.float32), np.array([[1.0], [2.0]], np.float32)
    ir = ops.convert_to_numpy(reverb.get_controls(audio, gain, decay)["ir"])
    np.testing.assert_allclose(ir[0] / ir[1], (ops.convert_to_numpy(ddsp.core.exp_sigmoid(0.5))
                                               / ops.convert_to_numpy(ddsp.core.exp_sigmoid(-1.0)))
                               * np.exp(-(np.exp(1.0) - np.exp(2.0)) * np.linspace(0, 1, 400)), rtol=1e-3)
    ir[:, 0] = 0.0
    expected = np.stack([np.convolve(a, h)[:3000] for a, h in zip(audio, ir)]) + audio
    np.testing.assert_allclose(ops.convert_to_numpy(reverb(audio, gain, decay)), expected, atol=1e-4)


def test_trainable_exp_decay_reverb_starts_from_its_initial_gain_and_decay():
    reverb = ddsp.effects.ExpDecayReverb(trainable=True, reverb_length=300)
    assert sorted((w.name, tuple(w.shape)) for w in reverb.trainable_weights) == [("decay", (1,)), ("gain", (1,))]
    assert reverb.non_trainable_weights == []
    learned = ops.convert_to_numpy(reverb.get_controls(_audio())["ir"])
    given = _exp_decay_ir(ddsp.effects.ExpDecayReverb(reverb_length=300), [2.0], [4.0])
    np.testing.assert_allclose(learned, given, rtol=1e-6)


def test_exp_decay_reverb_gradients():
    reverb = ddsp.effects.ExpDecayReverb(reverb_length=200, add_dry=False)
    d_gain, d_decay = gradient(lambda g, d: reverb(_audio(batch=1, n_samples=1000), g, d) ** 2,
                               np.array([[0.3]]), np.array([[0.5]]))
    assert np.isfinite(d_gain).all() and np.isfinite(d_decay).all()
    assert d_gain[0, 0] > 0 and d_decay[0, 0] < 0  # louder with more gain, quieter with faster decay


def test_exp_decay_reverb_without_controls_explains_itself():
    with pytest.raises(ValueError, match="needs gain and decay"):
        ddsp.effects.ExpDecayReverb(reverb_length=100)(_audio())
    with pytest.raises(ValueError, match=r"gain must have shape \[batch, 1\]"):
        ddsp.effects.ExpDecayReverb(reverb_length=100)(_audio(), np.zeros((2, 2)), np.zeros((2, 1)))


# ------------------------------------------------------------------------------------------
# FilteredNoiseReverb: noise through the linear-phase filters of frequency_filter.


def test_filtered_noise_ir_with_flat_response_is_the_noise_scaled():
    reverb = ddsp.effects.FilteredNoiseReverb(reverb_length=1000, n_frames=10, scale_fn=None, initial_bias=0.0)
    magnitudes = np.ones((2, 10, 33), np.float32)
    magnitudes[1] *= 0.25
    ir = ops.convert_to_numpy(reverb.get_controls(_audio(), magnitudes)["ir"])
    # An all-ones magnitude response passes the noise through unchanged (away from the ends).
    noise = ir[0]
    assert np.all(np.abs(noise[200:-200]) <= 1.0 + 1e-4) and abs(noise.std() - 1 / np.sqrt(3)) < 0.05
    np.testing.assert_allclose(ir[1], 0.25 * ir[0], rtol=1e-4, atol=1e-6)


def test_filtered_noise_ir_matches_frequency_filter_of_seeded_noise():
    reverb = ddsp.effects.FilteredNoiseReverb(reverb_length=1200, n_frames=12, window_size=65, seed=7)
    flat = ops.convert_to_numpy(ddsp.effects.FilteredNoiseReverb(
        reverb_length=1200, n_frames=12, scale_fn=None, initial_bias=0.0, seed=7).get_controls(
        _audio(batch=1), np.ones((1, 12, 16)))["ir"])
    magnitudes = np.random.default_rng(1).normal(size=(1, 12, 16)).astype(np.float32)
    ir = ops.convert_to_numpy(reverb.get_controls(_audio(batch=1), magnitudes)["ir"])
    # The flat response returns the noise itself, except that frequency_filter's delay
    # compensation zero-pads at the ends; refilter that noise by hand.
    scaled = ddsp.core.exp_sigmoid(magnitudes - 3.0)
    noise = np.random.default_rng(7).uniform(-1.0, 1.0, size=(1, 1200)).astype(np.float32)
    np.testing.assert_allclose(flat, noise, atol=1e-4)
    expected = ops.convert_to_numpy(ddsp.core.frequency_filter(noise, scaled, window_size=65))
    np.testing.assert_allclose(ir, expected, atol=1e-6)


def test_trainable_filtered_noise_reverb_has_its_magnitudes():
    reverb = ddsp.effects.FilteredNoiseReverb(trainable=True, reverb_length=100, n_frames=10, n_filter_banks=20)
    assert [tuple(w.shape) for w in reverb.trainable_weights] == [(10, 20)]
    assert reverb.non_trainable_weights == []
    assert ops.convert_to_numpy(reverb(_audio())).shape == (2, 4000)


def test_filtered_noise_reverb_gradient_wrt_magnitudes():
    reverb = ddsp.effects.FilteredNoiseReverb(reverb_length=200, n_frames=4, add_dry=False)
    (d_magnitudes,) = gradient(lambda m: reverb(_audio(batch=1, n_samples=800), m) ** 2, np.zeros((1, 4, 8)))
    assert np.isfinite(d_magnitudes).all() and np.abs(d_magnitudes).min() > 0


def test_filtered_noise_reverb_bad_magnitudes_raise():
    with pytest.raises(ValueError, match="needs magnitudes"):
        ddsp.effects.FilteredNoiseReverb(reverb_length=100, n_frames=10)(_audio())
    with pytest.raises(ValueError, match=r"magnitudes must have shape \[batch, n_frames, n_filter_banks\]"):
        ddsp.effects.FilteredNoiseReverb(reverb_length=100, n_frames=10)(_audio(), np.zeros((2, 10)))


# ------------------------------------------------------------------------------------------
# FIRFilter.


def test_fir_filter_with_flat_response_passes_audio_scaled():
    audio = _audio(n_samples=1600)
    out = ops.convert_to_numpy(ddsp.effects.FIRFilter(scale_fn=None)(audio, np.full((2, 16, 40), 0.5)))
    np.testing.assert_allclose(out[:, 200:-200], 0.5 * audio[:, 200:-200], atol=1e-4)


def test_fir_filter_lowpass_removes_a_high_sine():
    t = np.arange(3200) / 16000.0
    low, high = np.sin(2 * np.pi * 500 * t), np.sin(2 * np.pi * 6000 * t)
    magnitudes = np.zeros((1, 10, 65), np.float32)
    magnitudes[:, :, :17] = 1.0  # pass 0-2 kHz, stop above
    out = ops.convert_to_numpy(ddsp.effects.FIRFilter(scale_fn=None)((low + high)[None, :].astype(np.float32),
                                                                     magnitudes))
    np.testing.assert_allclose(out[0, 400:-400], low[400:-400], atol=2e-2)


def test_fir_filter_scales_then_filters_and_has_gradients():
    audio = _audio(batch=1, n_samples=800)
    raw = np.random.default_rng(3).normal(size=(1, 8, 12)).astype(np.float32)
    fir = ddsp.effects.FIRFilter(window_size=33)
    expected = ddsp.core.frequency_filter(audio, ddsp.core.exp_sigmoid(raw), window_size=33)
    np.testing.assert_allclose(ops.convert_to_numpy(fir(audio, raw)), ops.convert_to_numpy(expected), atol=1e-6)
    d_audio, d_raw = gradient(lambda a, m: fir(a, m) ** 2, audio, raw)
    assert np.isfinite(d_audio).all() and np.isfinite(d_raw).all() and np.abs(d_raw).min() > 0


def test_fir_filter_bad_magnitudes_raise():
    with pytest.raises(ValueError, match=r"magnitudes must have shape"):
        ddsp.effects.FIRFilter()(_audio(), np.zeros((2, 30)))


# ------------------------------------------------------------------------------------------
# ModDelay: delay = center_ms + depth_ms * (2 phase - 1).


def _shift(audio, n):
    return np.concatenate([np.zeros((audio.shape[0], n)), audio[:, :audio.shape[1] - n]], axis=1)


@pytest.mark.parametrize("phase, delay_samples", [(0.0, 80), (0.5, 240), (1.0, 400)],
                         ids=["center_minus_depth", "center", "center_plus_depth"])
def test_mod_delay_constant_phase_shifts_by_the_delay(phase, delay_samples):
    audio = _audio(n_samples=2000)
    mod_delay = ddsp.effects.ModDelay(center_ms=15.0, depth_ms=10.0, sample_rate=16000, gain_scale_fn=None,
                                      phase_scale_fn=None)
    gain = np.full((2, 2000, 1), 0.5, np.float32)
    out = ops.convert_to_numpy(mod_delay(audio, gain, np.full((2, 2000, 1), phase, np.float32)))
    # float32 phase arithmetic leaves up to ~1e-5 of a sample of fractional delay.
    np.testing.assert_allclose(out, audio + 0.5 * _shift(audio, delay_samples), atol=1e-4)


def test_mod_delay_default_scalings_center_the_delay():
    audio = _audio(batch=1, n_samples=1000)
    zeros = np.zeros((1, 1000, 1), np.float32)
    wet = ops.convert_to_numpy(ddsp.effects.ModDelay(add_dry=False)(audio, zeros, zeros))
    gain = float(ops.convert_to_numpy(ddsp.core.exp_sigmoid(0.0)))  # sigmoid(0) = 0.5: the center, 15 ms
    np.testing.assert_allclose(wet, gain * _shift(audio, 240), atol=1e-4)


def test_mod_delay_gradients():
    audio = np.sin(2 * np.pi * 300 * np.arange(800) / 16000.0)[None, :].astype(np.float32)
    mod_delay = ddsp.effects.ModDelay(add_dry=False)
    rng = np.random.default_rng(5)
    d_gain, d_phase = gradient(lambda g, p: mod_delay(audio, g, p) ** 2, rng.normal(size=(1, 800, 1)),
                               rng.normal(size=(1, 800, 1)))
    assert np.isfinite(d_gain).all() and np.isfinite(d_phase).all()
    assert np.abs(d_gain[0, 500:]).min() > 0 and np.abs(d_phase[0, 500:]).max() > 0


def test_mod_delay_bad_controls_raise():
    mod_delay = ddsp.effects.ModDelay()
    with pytest.raises(ValueError, match="axis 1"):
        mod_delay(_audio(), np.zeros((2, 3999, 1)), np.zeros((2, 4000, 1)))
    with pytest.raises(ValueError, match=r"phase must have shape \[batch, n_samples, 1\]"):
        mod_delay(_audio(), np.zeros((2, 4000, 1)), np.zeros((2, 4000)))
    with pytest.raises(ValueError, match="center_ms"):
        ddsp.effects.ModDelay(center_ms=-1.0)
