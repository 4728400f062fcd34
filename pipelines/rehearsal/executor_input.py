"""A task's executor input (the JSON kfp's executor reads from `--executor_input`) and its
command with the placeholders resolved the way the service resolves them.

The executor input is built by kfp.local's own `construct_executor_input` (the one its
SubprocessRunner and DockerRunner use), from the task's parameter values and its input
artifacts as their producers left them (URI and metadata). Only the placeholders the
service knows are replaced (services.Service.placeholders); others stay as text, as
Kubeflow leaves `{{$.pipeline_root}}`. kfp.local's own placeholder resolver is not used: it
fails on a placeholder it does not know.
"""

import json
import re

from pipelines.rehearsal.services import GCS_MOUNT, OUTPUT_METADATA

# {{$.inputs.parameters['name']}}, {{$.outputs.artifacts['name'].path}} and the like.
_IO_PLACEHOLDER = re.compile(r"\{\{\$\.(inputs|outputs)\.(parameters|artifacts)\['([^']+)'\](?:\.(\w+))?\}\}")


def replace_known(value, placeholders):
    """`value` (a str, or a list/dict of them) with each known placeholder replaced."""
    if isinstance(value, str):
        for placeholder, text in placeholders.items():
            value = value.replace(placeholder, text)
        return value
    if isinstance(value, list):
        return [replace_known(item, placeholders) for item in value]
    if isinstance(value, dict):
        return {key: replace_known(item, placeholders) for key, item in value.items()}
    return value


def parameter_values(task, pipeline_arguments, upstream_parameters, placeholders):
    """{input: value} of a task's parameters: pipeline arguments, constants (placeholders the
    service knows resolved) and upstream output parameters."""
    values = {}
    for key, (kind, source) in task.parameters.items():
        if kind == "pipeline":
            values[key] = pipeline_arguments[source]
        elif kind == "constant":
            values[key] = replace_known(source, placeholders)
        else:
            values[key] = upstream_parameters[source]
    return values


def _artifact(name, record):
    """A kfp dsl.Artifact of the producer's output record {'uri', 'schema_title', 'metadata'}."""
    from kfp.dsl.types import artifact_types

    classes = {cls.schema_title: cls for cls in (artifact_types.Artifact, artifact_types.Dataset,
                                                 artifact_types.Model, artifact_types.Metrics,
                                                 artifact_types.HTML, artifact_types.Markdown,
                                                 artifact_types.ClassificationMetrics,
                                                 artifact_types.SlicedClassificationMetrics)}
    cls = classes.get(record["schema_title"], artifact_types.Artifact)
    return cls(name=name, uri=record["uri"], metadata=dict(record.get("metadata") or {}))


def build(task, parameters, input_artifacts, task_root):
    """The executor input (a dict) of `task`.

    Args:
        task: plan.TaskPlan.
        parameters: {input: value} (parameter_values).
        input_artifacts: {input: {'uri', 'schema_title', 'metadata'}} from the producers.
        task_root: gs:// folder of the task's outputs (services.Service.task_root).
    """
    from google.protobuf import json_format
    from kfp.local import executor_input_utils
    from kfp.pipeline_spec import pipeline_spec_pb2

    component = json_format.ParseDict(task.component, pipeline_spec_pb2.ComponentSpec())
    arguments = dict(parameters)
    arguments.update({key: _artifact(key, record) for key, record in input_artifacts.items()})
    message = executor_input_utils.construct_executor_input(component, arguments, task_root=task_root,
                                                            block_input_artifact=False)
    executor_input = executor_input_utils.executor_input_to_dict(message, component)
    executor_input["outputs"]["outputFile"] = OUTPUT_METADATA
    return executor_input


def output_artifacts(executor_input):
    """{output: gs:// URI} of the executor input's output artifacts."""
    return {key: value["artifacts"][0]["uri"]
            for key, value in executor_input.get("outputs", {}).get("artifacts", {}).items()}


def local_path(uri):
    """Where kfp's executor reads and writes a gs:// artifact in the container (/gcs/...)."""
    if not uri.startswith("gs://"):
        raise ValueError(f"The rehearsal keeps artifacts on gs:// only, got {uri!r}.")
    return f"{GCS_MOUNT}/{uri[len('gs://'):]}"


def _io_value(executor_input, match):
    side, kind, name, field = match.groups()
    if side == "inputs" and kind == "parameters":
        value = executor_input["inputs"].get("parameterValues", {}).get(name)
        return value if isinstance(value, str) else json.dumps(value)
    if side == "outputs" and kind == "parameters":
        return executor_input["outputs"]["parameters"][name]["outputFile"]
    artifact = executor_input[side]["artifacts"][name]["artifacts"][0]
    if field == "path":
        return local_path(artifact["uri"])
    if field == "uri":
        return artifact["uri"]
    return match.group(0)


def command(task, executor_input, placeholders):
    """The task's command and args with `{{$}}`, the io placeholders and the service's known
    placeholders replaced (the executor input's own values are not searched again)."""
    resolved = []
    for item in (*task.command, *task.args):
        item = item.replace("{{$}}", "\0EXECUTOR_INPUT\0")
        item = _IO_PLACEHOLDER.sub(lambda match: _io_value(executor_input, match), item)
        item = replace_known(item, placeholders)
        resolved.append(item.replace("\0EXECUTOR_INPUT\0", json.dumps(executor_input)))
    return resolved
