"""Effects: processors that transform audio.

Reverbs (a given or learned impulse response, or one made of decaying or filtered noise), a
time-varying FIR filter and a modulated delay (chorus, flanger, vibrato).
"""

import gin
import keras
import numpy as np
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.convolution import fft_convolve, frequency_filter
from ddsp_core.core.delay import variable_length_delay
from ddsp_core.core.units import exp_sigmoid, float32
from ddsp_core.processors import Processor


def _impulse_response_2d(ir):
    """An impulse response as [batch, ir_size], from [ir_size], [batch, ir_size] or [batch, ir_size, 1]."""
    ir = float32(ir)
    checks.check_rank("ir", ir, (1, 2, 3), "[batch, ir_size], [batch, ir_size, 1] or [ir_size]")
    if len(ir.shape) == 1:
        return ir[None, :]
    if len(ir.shape) == 3:
        checks.check_dim("ir", ir, -1, 1, "[batch, ir_size, 1]")
        return ir[:, :, 0]
    return ir


@gin.register
class Reverb(Processor):
    """Convolution reverb, with a given or a trainable impulse response.

    The impulse response's first sample is zeroed (the dry signal is added separately
    when `add_dry`), and the convolution is causal (no delay compensation). Subclasses
    make the response from other controls (`get_controls`) and other learned weights
    (`_add_response_weights`).
    """

    def __init__(self, trainable=False, reverb_length=48000, add_dry=True, name="reverb"):
        super().__init__(name=name, trainable=trainable)
        checks.check_positive_int("reverb_length", reverb_length)
        self.reverb_length = int(reverb_length)
        self.add_dry = add_dry
        self._ir = None
        if trainable:
            self._add_response_weights()

    def _add_response_weights(self):
        """Creates the learned weights of a trainable reverb: here the impulse response itself."""
        self._ir = self.add_weight(
            name="ir", shape=(self.reverb_length,),
            initializer=keras.initializers.RandomNormal(mean=0.0, stddev=1e-6), trainable=True,
        )

    def get_controls(self, audio, ir=None):
        """Pairs audio with its impulse response.

        Args:
            audio: Dry audio, [batch, n_samples].
            ir: Impulse response, [batch, ir_size] or [batch, ir_size, 1] (a batch of 1,
                or [ir_size], applies to every example). Required when the reverb is not
                trainable; ignored (the learned one is used) when it is.

        Returns:
            {'audio', 'ir'}.
        """
        audio = float32(audio)
        checks.check_rank("audio", audio, 2, "[batch, n_samples]")
        checks.check_finite("audio", audio)
        if self._ir is not None:
            ir = ops.expand_dims(ops.convert_to_tensor(self._ir), 0)  # [1, reverb_length]
        elif ir is None:
            raise ValueError("Reverb(trainable=False) needs an impulse response: call it with (audio, ir).")
        return {"audio": audio, "ir": _impulse_response_2d(ir)}

    @staticmethod
    def wet_impulse_response(ir):
        """The response convolved with the audio: `ir` [batch, ir_size] with its first sample zeroed
        (the dry path is added separately)."""
        return ops.concatenate([ops.zeros_like(ir[:, :1]), ir[:, 1:]], axis=1)

    def get_signal(self, audio, ir):
        """Wet (+ dry) audio, [batch, n_samples], from audio [batch, n_samples] and ir
        [batch, ir_size] (or [batch, ir_size, 1])."""
        wet = fft_convolve(audio, self.wet_impulse_response(_impulse_response_2d(ir)), padding="same",
                           delay_compensation=0)
        return wet + audio if self.add_dry else wet


def _white_noise(n_samples, seed):
    """Uniform white noise in [-1, 1), [1, n_samples] float32, drawn once from `seed` with NumPy."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=(1, n_samples)).astype("float32")


@gin.register
class ExpDecayReverb(Reverb):
    """Reverb whose impulse response is white noise under an exponential decay.

    ir(t) = scale_fn(gain) * exp(-(2 + exp(decay)) * t) * noise(t), with t going from 0 to 1
    over the reverb_length samples. The noise is drawn once, from `seed`, when the layer
    is made, so the response is a deterministic function of gain and decay (and a restored
    model sounds as it did); magenta draws new noise at every call.
    """

    def __init__(self, trainable=False, reverb_length=48000, scale_fn=exp_sigmoid, add_dry=True,
                 name="exp_decay_reverb", seed=0):
        self.scale_fn = scale_fn
        self._gain = self._decay = None
        super().__init__(trainable=trainable, reverb_length=reverb_length, add_dry=add_dry, name=name)
        self._noise = _white_noise(self.reverb_length, seed)
        self._time = np.linspace(0.0, 1.0, self.reverb_length, dtype="float32")[None, :]  # [1, reverb_length]

    def _add_response_weights(self):
        """A learned gain (initially 2.0, before scale_fn) and decay (initially 4.0), each [1]."""
        self._gain = self.add_weight(name="gain", shape=(1,), initializer=keras.initializers.Constant(2.0))
        self._decay = self.add_weight(name="decay", shape=(1,), initializer=keras.initializers.Constant(4.0))

    def get_controls(self, audio, gain=None, decay=None):
        """The impulse response from gain and decay.

        Args:
            audio: Dry audio, [batch, n_samples].
            gain: Linear gain of the response before `scale_fn`, [batch, 1]. Required
                unless the reverb is trainable (then the learned one is used).
            decay: Decay control: the envelope is exp(-(2 + exp(decay)) * t), t in [0, 1]
                over the response, [batch, 1]. Required unless the reverb is trainable.

        Returns:
            {'audio', 'ir'}: ir [batch, reverb_length] ([1, reverb_length] when trainable).
        """
        audio = float32(audio)
        checks.check_rank("audio", audio, 2, "[batch, n_samples]")
        checks.check_finite("audio", audio)
        if self._gain is not None:
            gain, decay = ops.convert_to_tensor(self._gain)[None, :], ops.convert_to_tensor(self._decay)[None, :]
        elif gain is None or decay is None:
            raise ValueError("ExpDecayReverb(trainable=False) needs gain and decay: call it with (audio, gain, decay).")
        gain, decay = float32(gain), float32(decay)
        for name, value in (("gain", gain), ("decay", decay)):
            checks.check_rank(name, value, 2, "[batch, 1]")
            checks.check_dim(name, value, -1, 1, "[batch, 1]")
            checks.check_finite(name, value)
        envelope = ops.exp(-(2.0 + ops.exp(decay)) * ops.convert_to_tensor(self._time))  # [batch, reverb_length]
        ir = self.scale_fn(gain) * envelope * ops.convert_to_tensor(self._noise)
        return {"audio": audio, "ir": ir}


@gin.register
class FilteredNoiseReverb(Reverb):
    """Reverb whose impulse response is white noise through a time-varying FIR filter.

    The response is what `synths.FilteredNoise` makes from the magnitudes: reverb_length
    samples of noise, filtered frame by frame (n_frames frames) with the linear-phase
    filters of `core.frequency_filter`, after magnitudes -> scale_fn(magnitudes +
    initial_bias). As in `ExpDecayReverb`, the noise is drawn once from `seed`.
    """

    def __init__(self, trainable=False, reverb_length=48000, window_size=257, n_frames=1000, n_filter_banks=16,
                 scale_fn=exp_sigmoid, initial_bias=-3.0, add_dry=True, name="filtered_noise_reverb", seed=0):
        checks.check_positive_int("n_frames", n_frames)
        checks.check_positive_int("n_filter_banks", n_filter_banks)
        self.window_size = window_size
        self.n_frames = int(n_frames)
        self.n_filter_banks = int(n_filter_banks)
        self.scale_fn = scale_fn
        self.initial_bias = initial_bias
        self._magnitudes = None
        super().__init__(trainable=trainable, reverb_length=reverb_length, add_dry=add_dry, name=name)
        self._noise = _white_noise(self.reverb_length, seed)

    def _add_response_weights(self):
        """Learned magnitudes [n_frames, n_filter_banks], initially N(0, 0.01^2) (before the bias and scale_fn)."""
        self._magnitudes = self.add_weight(
            name="magnitudes", shape=(self.n_frames, self.n_filter_banks),
            initializer=keras.initializers.RandomNormal(mean=0.0, stddev=1e-2))

    def get_controls(self, audio, magnitudes=None):
        """The impulse response from filter magnitudes.

        Args:
            audio: Dry audio, [batch, n_samples].
            magnitudes: Filter magnitudes before `initial_bias` and `scale_fn`, bands spaced
                linearly from 0 Hz to Nyquist, [batch, n_frames, n_filter_banks]; reverb_length
                must be a multiple of n_frames. Required unless the reverb is trainable.

        Returns:
            {'audio', 'ir'}: ir [batch, reverb_length] ([1, reverb_length] when trainable).
        """
        audio = float32(audio)
        checks.check_rank("audio", audio, 2, "[batch, n_samples]")
        checks.check_finite("audio", audio)
        if self._magnitudes is not None:
            magnitudes = ops.convert_to_tensor(self._magnitudes)[None, :, :]  # [1, n_frames, n_filter_banks]
        elif magnitudes is None:
            raise ValueError("FilteredNoiseReverb(trainable=False) needs magnitudes: call it with (audio, magnitudes).")
        magnitudes = float32(magnitudes)
        checks.check_rank("magnitudes", magnitudes, 3, "[batch, n_frames, n_filter_banks]")
        checks.check_finite("magnitudes", magnitudes)
        if self.scale_fn is not None:
            magnitudes = self.scale_fn(magnitudes + self.initial_bias)
        batch_size = magnitudes.shape[0] if magnitudes.shape[0] is not None else ops.shape(magnitudes)[0]
        noise = ops.broadcast_to(ops.convert_to_tensor(self._noise), (batch_size, self.reverb_length))
        ir = frequency_filter(noise, magnitudes, window_size=self.window_size)  # [batch, reverb_length]
        return {"audio": audio, "ir": ir}


@gin.register
class FIRFilter(Processor):
    """Time-varying linear-phase FIR filter, designed per frame from magnitude responses.

    Each frame of audio is filtered with the filter of `core.frequency_impulse_response`
    (odd length, delay compensated, so an all-ones response passes audio unchanged).
    """

    def __init__(self, window_size=257, scale_fn=exp_sigmoid, name="fir_filter"):
        super().__init__(name=name)
        self.window_size = window_size
        self.scale_fn = scale_fn

    def get_controls(self, audio, magnitudes):
        """Scales raw magnitudes with `scale_fn`.

        Args:
            audio: Dry audio, [batch, n_samples].
            magnitudes: Magnitude responses before `scale_fn`, bands spaced linearly from 0 Hz
                to Nyquist, [batch, n_frames, n_filter_banks]; n_samples must be a multiple
                of n_frames.

        Returns:
            {'audio', 'magnitudes'}, same shapes.
        """
        audio, magnitudes = float32(audio), float32(magnitudes)
        checks.check_rank("audio", audio, 2, "[batch, n_samples]")
        checks.check_rank("magnitudes", magnitudes, 3, "[batch, n_frames, n_filter_banks]")
        checks.check_finite("magnitudes", magnitudes)
        if self.scale_fn is not None:
            magnitudes = self.scale_fn(magnitudes)
        return {"audio": audio, "magnitudes": magnitudes}

    def get_signal(self, audio, magnitudes):
        """Filtered audio, [batch, n_samples], from audio and linear magnitudes (>= 0)."""
        return frequency_filter(audio, magnitudes, window_size=self.window_size)


@gin.register
class ModDelay(Processor):
    """Modulated delay: chorus, flanger and vibrato.

    The delay moves within center_ms +- depth_ms as the phase control goes from 0 to 1
    (delays below 0 are clipped to 0); the delayed (wet) audio is scaled by the gain
    control and added to the dry audio when `add_dry`. magenta's docstring says the same,
    but its code maps the phase to [center_ms, center_ms + depth_ms]; this follows the
    docstring, so a phase of 0.5 (a raw phase of 0 through the sigmoid) is center_ms.
    """

    def __init__(self, center_ms=15.0, depth_ms=10.0, sample_rate=16000, gain_scale_fn=exp_sigmoid,
                 phase_scale_fn=ops.sigmoid, add_dry=True, name="mod_delay"):
        super().__init__(name=name)
        checks.check_positive("sample_rate", sample_rate)
        if center_ms < 0 or depth_ms < 0 or center_ms + depth_ms <= 0:
            raise ValueError(f"center_ms and depth_ms must be >= 0 with a positive sum, got {center_ms}, {depth_ms}.")
        self.center_ms = center_ms
        self.depth_ms = depth_ms
        self.sample_rate = sample_rate
        self.gain_scale_fn = gain_scale_fn
        self.phase_scale_fn = phase_scale_fn
        self.add_dry = add_dry

    def get_controls(self, audio, gain, phase):
        """Scales raw gain and phase.

        Args:
            audio: Dry audio, [batch, n_samples].
            gain: Gain of the delayed audio before `gain_scale_fn`, [batch, n_samples, 1].
            phase: Position of the delay within [center_ms - depth_ms, center_ms + depth_ms],
                before `phase_scale_fn` (which should map to [0, 1]), [batch, n_samples, 1].

        Returns:
            {'audio', 'gain', 'phase'}, same shapes.
        """
        audio, gain, phase = float32(audio), float32(gain), float32(phase)
        checks.check_rank("audio", audio, 2, "[batch, n_samples]")
        for name, value in (("gain", gain), ("phase", phase)):
            checks.check_rank(name, value, 3, "[batch, n_samples, 1]")
            checks.check_dim(name, value, -1, 1, "[batch, n_samples, 1]")
            checks.check_finite(name, value)
        checks.check_same_dims([("audio", audio), ("gain", gain), ("phase", phase)], axes=(1,),
                               expected_shape="audio [batch, n_samples], gain and phase [batch, n_samples, 1]")
        if self.gain_scale_fn is not None:
            gain = self.gain_scale_fn(gain)
        if self.phase_scale_fn is not None:
            phase = self.phase_scale_fn(phase)
        return {"audio": audio, "gain": gain, "phase": phase}

    def get_signal(self, audio, gain, phase):
        """Dry + gain * delayed audio, [batch, n_samples].

        Args:
            audio: [batch, n_samples].
            gain: Linear gain of the delayed audio, [batch, n_samples, 1].
            phase: In [0, 1]: 0 is a delay of center_ms - depth_ms, 1 of center_ms + depth_ms,
                [batch, n_samples, 1].
        """
        max_delay_ms = self.center_ms + self.depth_ms
        max_length = max(1, int(self.sample_rate / 1000.0 * max_delay_ms))  # samples at phase 1
        # Delay as a fraction of max_length: (center_ms + depth_ms * (2 phase - 1)) / max_delay_ms.
        phase = (self.center_ms + self.depth_ms * (2.0 * phase - 1.0)) / max_delay_ms
        wet = variable_length_delay(phase, audio, max_length=max_length) * gain[:, :, 0]
        return wet + audio if self.add_dry else wet
