"""Directed acyclic graphs (DAGs) of modules, wired by the keys of a nested dict of outputs.

A DAG is a list of nodes, run in order:

    (module, ['input_key', ...])                      # the module returns a dict
    (module, ['input_key', ...], ['output_key', ...])  # names what the module returns

`module` is a Keras layer, or the name of a layer given to the DAG by keyword. Input keys
are paths into the outputs so far (see `core.nested_lookup`): the DAG's inputs, under
'inputs/<key>' and also directly as '<key>', and every earlier node's outputs under its
name, e.g. 'encoder/z' or 'harmonic/controls/f0_hz'. A processor (anything with
`get_controls` and `get_signal`) is called with return_outputs_dict=True, so it adds
{'signal', 'controls'}; a loss (anything with `get_losses_dict`) adds its losses. The last
node's outputs are also stored under 'out'. Configured with gin, e.g.

    DAGLayer.dag = [('encoder', ['inputs/x'], ['z']), ('decoder', ['encoder/z'], ['x_hat'])]
    DAGLayer.encoder = @encoder/Dense()
    DAGLayer.decoder = @decoder/Dense()

`run_nodes` does the evaluation for `DAGLayer` and for `processors.ProcessorGroup`.
"""

import logging

import gin
import keras

from ddsp_core.core.nesting import map_shape, nested_keys, nested_lookup, to_dict

KERAS_CALL_KWARGS = ("training", "mask", "name")


def filter_by_value(d, cond):
    """The entries of dict `d` whose value satisfies `cond`."""
    return {key: value for key, value in d.items() if cond(value)}


def is_module(value):
    """Whether `value` can be a node of a DAG: a Keras layer (or model)."""
    return isinstance(value, keras.layers.Layer)


def is_loss(value):
    """Duck typing: losses have `get_losses_dict`."""
    return hasattr(value, "get_losses_dict")


def is_processor(value):
    """Duck typing: processors have `get_controls` and `get_signal`."""
    return hasattr(value, "get_signal") and hasattr(value, "get_controls")


def split_keras_kwargs(kwargs):
    """(Keras' own keyword arguments 'training', 'mask', 'name' that are not None, the rest).

    The input dict is left unchanged.
    """
    keras_kwargs = {key: kwargs[key] for key in KERAS_CALL_KWARGS if kwargs.get(key) is not None}
    rest = {key: value for key, value in kwargs.items() if key not in keras_kwargs}
    return keras_kwargs, rest


def _is_key_list(keys):
    return isinstance(keys, (list, tuple)) and all(isinstance(key, str) for key in keys)


def format_nodes(dag, named_modules=None, owner="DAGLayer", role="module"):
    """Checks a DAG and resolves module names: (nodes, modules).

    Args:
        dag: Sequence of nodes (module or name, [input keys]) or
            (module or name, [input keys], [output keys]).
        named_modules: {name: module} given by keyword; nodes may refer to them by name.
        owner: Class name used in error messages.
        role: What a module is called in error messages ('module', 'processor').

    Returns:
        nodes: [(name, module, input_keys, output_keys or None)], in the DAG's order.
        modules: {name: module}, the named modules first, then the DAG's own (by layer name).

    Raises:
        ValueError: for a malformed node, an unknown module name, or two nodes with the same name.
    """
    modules = dict(named_modules or {})
    for name, module in modules.items():
        if not is_module(module):
            raise ValueError(f"{owner}: {role} '{name}' must be a Keras layer, got {type(module).__name__}.")
    nodes = []
    for index, node in enumerate(dag):
        node = tuple(node) if isinstance(node, (list, tuple)) else (node,)
        module = node[0] if node else None
        well_formed = len(node) in (2, 3) and all(_is_key_list(keys) for keys in node[1:])
        if well_formed and isinstance(module, str):
            if module not in modules:
                raise ValueError(
                    f"{owner}.dag[{index}] names the {role} '{module}', which was not given "
                    f"(given by keyword: {sorted(modules)})."
                )
            name, module = node[0], modules[module]
        elif well_formed and is_module(module):
            name = module.name
            modules.setdefault(name, module)
        else:
            raise ValueError(
                f"{owner}.dag[{index}] must be ({role}, [input keys]) or ({role}, [input keys], [output keys]), "
                f"got {node!r}."
            )
        output_keys = list(node[2]) if len(node) == 3 else None
        nodes.append((name, module, list(node[1]), output_keys))
    names = [name for name, _, _, _ in nodes]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{owner}: {role} names must be unique in the dag, repeated: {repeated}.")
    return nodes, modules


def run_nodes(nodes, inputs, owner="DAGLayer", verbose=False, **kwargs):
    """Runs the nodes of a DAG in order and collects every output.

    Args:
        nodes: From `format_nodes`.
        inputs: Dict of the DAG's inputs (tensors, or nested dicts of them).
        owner: Name used in error and log messages.
        verbose: If True, log each node's input and output shapes (logging.INFO).
        **kwargs: Passed to every module, e.g. training=True.

    Returns:
        {'inputs': inputs, **inputs, <node name>: <its outputs>, ..., 'out': <last node's outputs>}.

    Raises:
        ValueError: for an empty DAG, or a module that returns a non-dict without output keys.
        KeyError: for an input key that is not available when its node runs.
    """
    if not nodes:
        raise ValueError(f"{owner} has an empty dag: give it at least one node, (module, [input keys]).")
    outputs = {"inputs": inputs}
    outputs.update(inputs)
    for name, module, input_keys, output_keys in nodes:
        arguments = []
        for key in input_keys:
            try:
                arguments.append(nested_lookup(key, outputs))
            except KeyError:
                role = "processor" if is_processor(module) else "module"
                raise KeyError(
                    f"{owner}: {role} '{name}' needs input '{key}', which is not available. "
                    f"Available keys: {sorted(nested_keys(outputs))}."
                ) from None
        if verbose:
            logging.info("%s: %s '%s' gets %s: %s", owner, type(module).__name__, name, input_keys,
                         map_shape(arguments))
        if is_processor(module):
            result = module(*arguments, return_outputs_dict=True, **kwargs)
        elif is_loss(module):
            result = module.get_losses_dict(*arguments, **kwargs)
        else:
            result = module(*arguments, **kwargs)
        if not isinstance(result, dict):
            if output_keys is None:
                raise ValueError(
                    f"{owner}: '{name}' returned a {type(result).__name__}, not a dict; name its outputs with a "
                    "third entry in its node, (module, [input keys], [output keys])."
                )
            result = to_dict(result, output_keys)
        if verbose:
            logging.info("%s: '%s' gives %s", owner, name, map_shape(result))
        outputs[name] = result
    outputs["out"] = result
    return outputs


@gin.register
class DAGLayer(keras.layers.Layer):
    """A Keras layer that runs a DAG of modules (see the module docstring).

    Every module becomes an attribute of the layer under its name (`dag_layer.encoder`),
    so its weights are the layer's weights.
    """

    def __init__(self, dag, **kwarg_modules):
        """
        Args:
            dag: List of nodes, (module or name, [input keys]) or
                (module or name, [input keys], [output keys]); topologically sorted.
            **kwarg_modules: Layers the nodes refer to by name; other keyword arguments
                (name, trainable, dtype, ...) go to keras.layers.Layer.
        """
        modules = filter_by_value(kwarg_modules, is_module)
        layer_kwargs = {key: value for key, value in kwarg_modules.items() if key not in modules}
        layer_kwargs.pop("training", None)
        layer_kwargs.pop("mask", None)
        super().__init__(**layer_kwargs)
        nodes, modules = format_nodes(dag, modules, owner=type(self).__name__)
        self._nodes = nodes
        # magenta's form of the dag: module names instead of modules.
        self.dag = [[name, keys] + ([outs] if outs is not None else []) for name, _, keys, outs in nodes]
        self.module_names = list(modules)
        for name, module in modules.items():
            if hasattr(self, name):
                raise ValueError(f"{type(self).__name__}: a module cannot be named '{name}', a Keras layer attribute.")
            setattr(self, name, module)

    @property
    def modules(self):
        """The modules, in the order of `module_names`."""
        return [getattr(self, name) for name in self.module_names]

    @staticmethod
    def format_dag(dag):
        """(dag with each module replaced by its name, {name: module}) for a dag of modules."""
        nodes, modules = format_nodes(dag)
        return [[name, keys] + ([outs] if outs is not None else []) for name, _, keys, outs in nodes], modules

    def build(self, input_shape=None):
        """Nothing to build: each module builds itself when first called."""
        self.built = True

    def call(self, inputs, training=None, **kwargs):
        """Runs the DAG on a dict of inputs; returns the dict of all outputs (see `run_nodes`).

        `training`, when given (or set by an outer Keras call), and other keyword arguments
        are passed to every module.
        """
        if training is not None:
            kwargs["training"] = training
        return self.run_dag(inputs, **kwargs)

    def run_dag(self, inputs, verbose=False, **kwargs):
        """Runs the DAG: the dict of all outputs (see `run_nodes`); verbose logs the shapes."""
        return run_nodes(self._nodes, inputs, owner=self.name, verbose=verbose, **kwargs)
