"""Effects: processors that transform audio. Reverb, with a learnable impulse response."""

import gin
import keras
from keras import ops

from ddsp_core.core import checks
from ddsp_core.core.convolution import fft_convolve
from ddsp_core.core.units import float32
from ddsp_core.processors import Processor


@gin.register
class Reverb(Processor):
    """Convolution reverb, with a given or a trainable impulse response.

    The impulse response's first sample is zeroed (the dry signal is added separately
    when `add_dry`), and the convolution is causal (no delay compensation).
    """

    def __init__(self, trainable=False, reverb_length=48000, add_dry=True, name="reverb"):
        super().__init__(name=name, trainable=trainable)
        checks.check_positive_int("reverb_length", reverb_length)
        self.reverb_length = int(reverb_length)
        self.add_dry = add_dry
        self._ir = None
        if trainable:
            self._ir = self.add_weight(
                name="ir", shape=(self.reverb_length,),
                initializer=keras.initializers.RandomNormal(mean=0.0, stddev=1e-6), trainable=True,
            )

    def get_controls(self, audio, ir=None):
        """Pairs audio with its impulse response.

        Args:
            audio: Dry audio, [batch, n_samples].
            ir: Impulse response, [batch, ir_size] (or [1, ir_size]). Required when the
                reverb is not trainable; ignored (the learned one is used) when it is.

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
        ir = float32(ir)
        checks.check_rank("ir", ir, 2, "[batch, ir_size]")
        return {"audio": audio, "ir": ir}

    @staticmethod
    def wet_impulse_response(ir):
        """The response convolved with the audio: `ir` [batch, ir_size] with its first sample zeroed
        (the dry path is added separately)."""
        return ops.concatenate([ops.zeros_like(ir[:, :1]), ir[:, 1:]], axis=1)

    def get_signal(self, audio, ir):
        """Wet (+ dry) audio, [batch, n_samples]."""
        wet = fft_convolve(audio, self.wet_impulse_response(ir), padding="same", delay_compensation=0)
        return wet + audio if self.add_dry else wet
