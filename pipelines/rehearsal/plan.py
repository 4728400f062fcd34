"""The compiled pipeline YAML as a plan: its tasks in dependency order, each with its image,
command, resources and where each input comes from.

Only what the clarinet pipeline uses is read: one DAG (no sub-DAGs, loops or conditions),
container executors, inputs from the pipeline's parameters, constants and upstream output
artifacts. Anything else is refused with a PlanError naming the task.
"""

import dataclasses
import re
from typing import Dict, List, Optional, Tuple

# Kubernetes quantity suffixes (decimal and binary), as kfp writes them ('16G', '500m', '2Gi').
_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*$")
_SUFFIXES = {"": 1, "m": 1e-3, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
             "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30, "Ti": 2 ** 40}


class PlanError(ValueError):
    """The YAML holds something the rehearsal cannot run; the message names the task."""


def quantity(text):
    """A Kubernetes quantity ('8', '500m', '16G', '2Gi') as a float (cores or bytes); None for ''/None."""
    if text is None or str(text).strip() == "":
        return None
    match = _QUANTITY.match(str(text))
    if not match or match.group(2) not in _SUFFIXES:
        raise PlanError(f"{text!r} is not a Kubernetes quantity such as '8', '500m', '16G' or '2Gi'.")
    return float(match.group(1)) * _SUFFIXES[match.group(2)]


@dataclasses.dataclass(frozen=True)
class Resources:
    """A task's resources as the YAML asks for them: CPUs (cores), memory (bytes), GPUs.
    A request that is not set is None (Kubernetes then takes the limit as the request)."""

    cpu_limit: Optional[float] = None
    memory_limit: Optional[float] = None
    cpu_request: Optional[float] = None
    memory_request: Optional[float] = None
    accelerator: str = ""
    accelerator_count: int = 0

    @classmethod
    def from_yaml(cls, resources):
        """From a container's `resources` in deploymentSpec (kfp 2.x writes resource* strings and
        older float fields in GB; the strings win)."""
        resources = resources or {}

        def pick(name):
            text = resources.get(f"resource{name[0].upper()}{name[1:]}")
            if text not in (None, ""):
                return quantity(text)
            value = resources.get(name)
            if value in (None, ""):
                return None
            return float(value) * (1e9 if name.startswith("memory") else 1)

        accelerator = resources.get("accelerator") or {}
        count = accelerator.get("resourceCount", accelerator.get("count", 0))
        return cls(cpu_limit=pick("cpuLimit"), memory_limit=pick("memoryLimit"), cpu_request=pick("cpuRequest"),
                   memory_request=pick("memoryRequest"),
                   accelerator=str(accelerator.get("resourceType") or accelerator.get("type") or ""),
                   accelerator_count=int(count or 0))

    @property
    def scheduled_cpu(self):
        """The CPUs Kubernetes reserves on a node: the request, else the limit (copied into it)."""
        return self.cpu_request if self.cpu_request is not None else self.cpu_limit

    @property
    def scheduled_memory(self):
        return self.memory_request if self.memory_request is not None else self.memory_limit

    def request_above_limit(self):
        """A sentence when a request exceeds its limit (Kubernetes refuses such a pod), else ''."""
        for what, request, limit in (("CPU", self.cpu_request, self.cpu_limit),
                                     ("memory", self.memory_request, self.memory_limit)):
            if request is not None and limit is not None and request > limit:
                return f"its {what} request ({request:g}) is above its limit ({limit:g})"
        return ""

    def describe(self):
        """'cpu 4-7, mem 16G-28G, 1 x nvidia.com/gpu' (request-limit)."""
        def span(request, limit, unit):
            if limit is None and request is None:
                return "-"
            low, high = (request if request is not None else limit), (limit if limit is not None else request)
            text = lambda value: f"{value / unit:g}"  # noqa: E731
            return text(high) if low == high else f"{text(low)}-{text(high)}"

        parts = [f"cpu {span(self.cpu_request, self.cpu_limit, 1)}",
                 f"mem {span(self.memory_request, self.memory_limit, 1e9)}G"]
        if self.accelerator:
            parts.append(f"{self.accelerator_count} x {self.accelerator}")
        return ", ".join(parts)


@dataclasses.dataclass(frozen=True)
class TaskPlan:
    """One task of the DAG.

    name: the task's key in the DAG (kfp's task name, e.g. 'prepare-tfrecord').
    display_name: taskInfo.name ('prepare TFRecords').
    component: the component's spec (a dict from the YAML) for the executor input.
    image, command, args: the container.
    resources: Resources.
    parameters: {input: ('pipeline', name) | ('constant', value) | ('task', (task, output))}.
    artifacts: {input: (producer task, output key)}.
    outputs: {output artifact: schema title}.
    node_selector: {label: value} of the Kubernetes platform spec ({} for none).
    """

    name: str
    display_name: str
    component: dict
    image: str
    command: Tuple[str, ...]
    args: Tuple[str, ...]
    resources: Resources
    parameters: Dict[str, tuple]
    artifacts: Dict[str, Tuple[str, str]]
    outputs: Dict[str, str]
    depends_on: Tuple[str, ...] = ()
    node_selector: Dict[str, str] = dataclasses.field(default_factory=dict)


def _documents(path):
    import yaml

    with open(path) as file:
        documents = [document for document in yaml.safe_load_all(file) if document]
    if not documents or "root" not in documents[0]:
        raise PlanError(f"{path} is not a compiled kfp pipeline (no 'root' DAG): compile it with "
                        "`ddsp_pipeline compile`.")
    platform = documents[1].get("platforms", {}) if len(documents) > 1 else {}
    return documents[0], platform


def _parameters(name, spec):
    sources = {}
    for key, value in (spec.get("inputs", {}).get("parameters") or {}).items():
        if "componentInputParameter" in value:
            sources[key] = ("pipeline", value["componentInputParameter"])
        elif "runtimeValue" in value:
            sources[key] = ("constant", value["runtimeValue"].get("constant"))
        elif "taskOutputParameter" in value:
            output = value["taskOutputParameter"]
            sources[key] = ("task", (output["producerTask"], output["outputParameterKey"]))
        else:
            raise PlanError(f"Task {name!r}: input parameter {key!r} comes from {sorted(value)}, which the rehearsal "
                            "does not run (only pipeline parameters, constants and task outputs).")
    return sources


def _artifacts(name, spec):
    sources = {}
    for key, value in (spec.get("inputs", {}).get("artifacts") or {}).items():
        if "taskOutputArtifact" not in value:
            raise PlanError(f"Task {name!r}: input artifact {key!r} is not an upstream task's output "
                            f"({sorted(value)}); the rehearsal runs only those.")
        output = value["taskOutputArtifact"]
        sources[key] = (output["producerTask"], output["outputArtifactKey"])
    return sources


def order(tasks):
    """Task names in dependency order (a task after all it depends on; ties by name).

    Args:
        tasks: {name: set of names it depends on}.

    Raises:
        PlanError: a dependency on a task that is not there, or a cycle.
    """
    for name, needs in tasks.items():
        unknown = sorted(set(needs) - set(tasks))
        if unknown:
            raise PlanError(f"Task {name!r} depends on {unknown}, which the DAG does not hold.")
    done, ordered = set(), []
    while len(ordered) < len(tasks):
        ready = sorted(name for name, needs in tasks.items() if name not in done and set(needs) <= done)
        if not ready:
            raise PlanError(f"The DAG has a cycle among {sorted(set(tasks) - done)}.")
        ordered.extend(ready)
        done.update(ready)
    return ordered


def read_plan(path):
    """The compiled pipeline at `path` as (pipeline_parameters, [TaskPlan, ...] in run order).

    pipeline_parameters: {name: default value or None} of the pipeline's inputs.
    """
    spec, platform = _documents(path)
    components = spec.get("components", {})
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    k8s_executors = platform.get("kubernetes", {}).get("deploymentSpec", {}).get("executors", {})
    dag = spec["root"].get("dag", {}).get("tasks", {})
    plans = {}
    for name, task in dag.items():
        component_name = task["componentRef"]["name"]
        component = components.get(component_name, {})
        if "dag" in component:
            raise PlanError(f"Task {name!r} is a sub-DAG ({component_name}); the rehearsal runs a flat DAG only.")
        label = component.get("executorLabel")
        container = executors.get(label, {}).get("container")
        if not container:
            raise PlanError(f"Task {name!r}: executor {label!r} is not a container (e.g. an importer).")
        needs = set(task.get("dependentTasks") or ())
        artifacts = _artifacts(name, task)
        parameters = _parameters(name, task)
        needs |= {producer for producer, _ in artifacts.values()}
        needs |= {source[1][0] for source in parameters.values() if source[0] == "task"}
        outputs = {key: value["artifactType"]["schemaTitle"]
                   for key, value in (component.get("outputDefinitions", {}).get("artifacts") or {}).items()}
        selector = k8s_executors.get(label, {}).get("nodeSelector", {}).get("labels", {})
        plans[name] = TaskPlan(
            name=name, display_name=task.get("taskInfo", {}).get("name", name), component=component,
            image=container["image"], command=tuple(container.get("command") or ()),
            args=tuple(container.get("args") or ()), resources=Resources.from_yaml(container.get("resources")),
            parameters=parameters, artifacts=artifacts, outputs=outputs, depends_on=tuple(sorted(needs)),
            node_selector=dict(selector))
    names = order({name: set(plan.depends_on) for name, plan in plans.items()})
    defaults = {key: value.get("defaultValue")
                for key, value in (spec["root"].get("inputDefinitions", {}).get("parameters") or {}).items()}
    return defaults, [plans[name] for name in names]
