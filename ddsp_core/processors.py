"""Processors: Keras layers that turn network outputs into controls, then controls into signals.

A `Processor` splits its work in two: `get_controls` maps raw inputs (e.g. network
outputs) to synthesizer controls (e.g. positive amplitudes), and `get_signal` renders
audio from the controls. A `ProcessorGroup` wires processors into a DAG.
"""

import gin
import keras
from keras import ops


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


def _lookup(outputs, key, processor_name):
    """outputs['a/b/c'] -> outputs['a']['b']['c'], with an error listing what exists."""
    value = outputs
    for part in key.split("/"):
        if not isinstance(value, dict) or part not in value:
            available = sorted(_flat_keys(outputs))
            raise KeyError(
                f"ProcessorGroup: processor '{processor_name}' needs input '{key}', which is not available. "
                f"Available keys: {available}."
            )
        value = value[part]
    return value


def _flat_keys(tree, prefix=""):
    for key, value in tree.items():
        yield prefix + key
        if isinstance(value, dict):
            yield from _flat_keys(value, prefix + key + "/")


@gin.register
class ProcessorGroup(Processor):
    """Runs processors as a DAG, each reading its inputs by key from earlier outputs.

    The DAG is a list of (processor, [input keys]) pairs, in order. Keys name entries
    of the input dict ('f0_hz') or outputs of earlier processors: 'harmonic/signal',
    'harmonic/controls/amplitudes'. The output is the signal of the last processor.
    In gin:

        ProcessorGroup.dag = [
            (@synths.Harmonic(), ['amps', 'harmonic_distribution', 'f0_hz']),
            (@synths.FilteredNoise(), ['noise_magnitudes']),
            (@processors.Add(), ['filtered_noise/signal', 'harmonic/signal']),
        ]
    """

    def __init__(self, dag=(), name="processor_group"):
        super().__init__(name=name)
        self.dag = [tuple(node) for node in dag]
        for index, node in enumerate(self.dag):
            if len(node) != 2 or not isinstance(node[0], keras.layers.Layer) or isinstance(node[1], str):
                raise ValueError(
                    f"ProcessorGroup.dag[{index}] must be (processor, [input keys]), got {node!r}."
                )
        names = [processor.name for processor, _ in self.dag]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"ProcessorGroup: processor names must be unique, repeated: {duplicates}.")
        # Track the processors (and their weights) as sublayers.
        self.processors = [processor for processor, _ in self.dag]

    def build(self, input_shape=None):
        """Nothing to build: each processor builds itself when first called."""
        self.built = True

    def call(self, inputs, return_outputs_dict=False):
        """Runs the DAG.

        Args:
            inputs: Dict of tensors named by the DAG's input keys.
            return_outputs_dict: If True, return every processor's outputs, plus
                'out': {'signal': final signal}.

        Returns:
            The last processor's signal, or the dict of all outputs.
        """
        outputs = self.get_controls(inputs)
        return outputs if return_outputs_dict else self.get_signal(outputs)

    def get_controls(self, inputs):
        """All processors' outputs: {name: {'signal', 'controls'}, ..., 'out': {'signal'}}."""
        if not self.dag:
            raise ValueError("ProcessorGroup has an empty dag: give it at least one (processor, [keys]).")
        outputs = dict(inputs)
        for processor, keys in self.dag:
            arguments = [_lookup(outputs, key, processor.name) for key in keys]
            outputs[processor.name] = processor(*arguments, return_outputs_dict=True)
        outputs["out"] = {"signal": outputs[self.dag[-1][0].name]["signal"]}
        return outputs

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
