"""Processors: Keras layers that turn network outputs into controls, then controls into signals.

A `Processor` splits its work in two: `get_controls` maps raw inputs (e.g. network
outputs) to synthesizer controls (e.g. positive amplitudes), and `get_signal` renders
audio from the controls. A `ProcessorGroup` wires processors into a DAG; `Add`, `Mix` and
`Crop` route signals inside one.
"""

import gin
import keras
from keras import ops

from ddsp_core import dags
from ddsp_core.core import checks
from ddsp_core.core.resampling import resample
from ddsp_core.core.units import float32


class Processor(keras.layers.Layer):
    """Base class of synths and effects: call = get_signal(**get_controls(*inputs))."""

    def __init__(self, name=None, trainable=True, **kwargs):
        super().__init__(name=name, trainable=trainable, **kwargs)

    def call(self, *args, return_outputs_dict=False, **kwargs):
        """Computes controls from the inputs, then the signal from the controls.

        Args:
            *args, **kwargs: Inputs of `get_controls`.
            return_outputs_dict: If True, return {'signal': signal, 'controls': controls}.

        Returns:
            The signal, or the dict above.
        """
        for keras_only in ("training", "mask"):  # Keras' call arguments; processors take neither
            kwargs.pop(keras_only, None)
        controls = self.get_controls(*args, **kwargs)
        signal = self.get_signal(**controls)
        if return_outputs_dict:
            return {"signal": signal, "controls": controls}
        return signal

    def get_controls(self, *args, **kwargs):
        """Maps inputs to a dict of controls (the keyword arguments of `get_signal`)."""
        raise NotImplementedError

    def get_signal(self, *args, **kwargs):
        """Renders a signal from controls."""
        raise NotImplementedError


@gin.register
class ProcessorGroup(Processor):
    """Runs processors as a DAG, each reading its inputs by key from earlier outputs.

    The DAG is a list of (processor, [input keys]) pairs, in order (the DAG format of
    `ddsp_core.dags`; a processor may also be named by a string and given by keyword).
    Keys name entries of the input dict ('f0_hz', also 'inputs/f0_hz') or outputs of
    earlier processors: 'harmonic/signal', 'harmonic/controls/amplitudes'. The output is
    the signal of the last processor. In gin:

        ProcessorGroup.dag = [
            (@synths.Harmonic(), ['amps', 'harmonic_distribution', 'f0_hz']),
            (@synths.FilteredNoise(), ['noise_magnitudes']),
            (@processors.Add(), ['filtered_noise/signal', 'harmonic/signal']),
        ]
    """

    def __init__(self, dag=(), name="processor_group", **kwarg_processors):
        super().__init__(name=name)
        self._nodes, processors = dags.format_nodes(dag, kwarg_processors, owner="ProcessorGroup", role="processor")
        # The dag with every processor in place of its name: [(processor, [input keys]), ...].
        self.dag = [(module, keys) + ((outs,) if outs is not None else ()) for _, module, keys, outs in self._nodes]
        # Track the processors (and their weights) as sublayers.
        self.processors = list(processors.values())
        self._processor_names = list(processors)

    @property
    def processor_names(self):
        """Names of the processors, in the order of `processors`."""
        return list(self._processor_names)

    def build(self, input_shape=None):
        """Nothing to build: each processor builds itself when first called."""
        self.built = True

    def call(self, inputs, return_outputs_dict=False, **kwargs):
        """Runs the DAG.

        Args:
            inputs: Dict of tensors named by the DAG's input keys.
            return_outputs_dict: If True, return {'signal': final signal, 'controls': the
                outputs of `get_controls`}.
            **kwargs: Passed to every processor.

        Returns:
            The last processor's signal, or the dict above.
        """
        outputs = self.get_controls(inputs, **kwargs)
        signal = self.get_signal(outputs)
        return {"signal": signal, "controls": outputs} if return_outputs_dict else signal

    def get_controls(self, inputs, **kwargs):
        """All outputs of the DAG: {'inputs': inputs, **inputs, name: {'signal', 'controls'}, ...,
        'out': the last processor's outputs} (see `dags.run_nodes`)."""
        self.built = True
        return dags.run_nodes(self._nodes, inputs, owner="ProcessorGroup", **kwargs)

    def get_signal(self, dag_outputs):
        """The final signal from the outputs of `get_controls`."""
        return dag_outputs["out"]["signal"]


@gin.register
class Add(Processor):
    """Sums two signals of the same shape."""

    def __init__(self, name="add"):
        super().__init__(name=name)

    def get_controls(self, signal_one, signal_two):
        return {"signal_one": signal_one, "signal_two": signal_two}

    def get_signal(self, signal_one, signal_two):
        return ops.add(signal_one, signal_two)


def _sqrt_with_finite_gradient(x):
    """sqrt(x) for x >= 0, with gradient 0 instead of infinity at x = 0 (a saturated mix level)."""
    positive = x > 0.0
    return ops.where(positive, ops.sqrt(ops.where(positive, x, 1.0)), 0.0)


@gin.register
class Mix(Processor):
    """Constant-power crossfade between two signals, its level set by a network output."""

    def __init__(self, name="mix"):
        super().__init__(name=name)

    def get_controls(self, signal_one, signal_two, nn_out_mix_level):
        """Maps the network output to a mix level in [0, 1] at the signals' rate.

        Args:
            signal_one, signal_two: Signals of the same shape, [batch, n_samples] or
                [batch, n_samples, n_channels].
            nn_out_mix_level: Network output, [batch, n_frames, 1]; passed through a
                sigmoid and resampled (linearly) to n_samples.

        Returns:
            {'signal_one', 'signal_two', 'mix_level' [batch, n_samples, 1] in [0, 1]}.
        """
        signal_one, signal_two, nn_out_mix_level = map(float32, (signal_one, signal_two, nn_out_mix_level))
        for name, signal in (("signal_one", signal_one), ("signal_two", signal_two)):
            checks.check_rank(name, signal, (2, 3), "[batch, n_samples] or [batch, n_samples, n_channels]")
        checks.check_rank("nn_out_mix_level", nn_out_mix_level, 3, "[batch, n_frames, 1]")
        checks.check_dim("nn_out_mix_level", nn_out_mix_level, -1, 1, "[batch, n_frames, 1]")
        if tuple(signal_one.shape) != tuple(signal_two.shape):
            raise ValueError(f"Mix needs two signals of the same shape, got {tuple(signal_one.shape)} and "
                             f"{tuple(signal_two.shape)}.")
        mix_level = resample(ops.sigmoid(nn_out_mix_level), signal_one.shape[1])
        return {"signal_one": signal_one, "signal_two": signal_two, "mix_level": mix_level}

    def get_signal(self, signal_one, signal_two, mix_level):
        """sqrt(m) * signal_one + sqrt(1 - m) * signal_two, m = mix_level [batch, n_samples, 1] in [0, 1].

        The squared gains sum to one, so uncorrelated signals keep their power; m = 1 gives
        signal_one alone, m = 0 signal_two alone. (magenta's gain for signal_two,
        1 - sqrt(1 - m), silences both at m = 0 and plays both fully at m = 1.)
        """
        mix_level_one = _sqrt_with_finite_gradient(ops.abs(mix_level))
        mix_level_two = _sqrt_with_finite_gradient(ops.abs(1.0 - mix_level))
        if len(signal_one.shape) == 2:
            mix_level_one, mix_level_two = mix_level_one[:, :, 0], mix_level_two[:, :, 0]
        return mix_level_one * signal_one + mix_level_two * signal_two


CROP_LOCATIONS = ("front", "center", "back")


@gin.register
class Crop(Processor):
    """Removes the audio made from padding frames: 2 * (frame_size // 2) samples.

    crop_location: 'front' (all from the start), 'center' (half from each end) or 'back'
    (all from the end).
    """

    def __init__(self, frame_size, crop_location="back", name="crop"):
        super().__init__(name=name)
        checks.check_positive_int("frame_size", frame_size)
        if crop_location not in CROP_LOCATIONS:
            raise ValueError(f"crop_location must be one of {CROP_LOCATIONS}, got {crop_location!r}.")
        self.frame_size = int(frame_size)
        self.crop_location = crop_location

    def get_controls(self, audio):
        """audio [batch, n_samples, ...] -> {'audio'}."""
        return {"audio": audio}

    def get_signal(self, audio):
        """[batch, n_samples - 2 * (frame_size // 2), ...]."""
        half = self.frame_size // 2
        if half == 0:
            return audio
        if self.crop_location == "front":
            return audio[:, 2 * half:]
        if self.crop_location == "center":
            return audio[:, half:-half]
        return audio[:, :-2 * half]
