"""The clarinet pipeline: prepare_tfrecord -> train -> eval, sample, export.

    audio files --prepare_tfrecord--> Dataset --train--> Model --eval--> Metrics (+ eval logs)
                                         |                 |---sample--> HTML page (+ WAV/PNG files)
                                         `---------------------^---------^
                                                           `---export--> exported Model (SavedModel, .tflite)

One definition runs locally (`ddsp_pipeline run`, kfp.local) and, compiled to YAML, on
Vertex AI Pipelines or Kubeflow (`ddsp_pipeline compile|submit`). What differs between those
is passed explicitly to the factory `make_pipeline(PipelineSettings(...))`: the images, the
target, each step's CPU and memory, and the train task's GPU request, which each target spells
its own way:

- Vertex AI: a machine accelerator type (`NVIDIA_L4`, `NVIDIA_TESLA_T4`, `NVIDIA_H100_80GB`, ...);
- Kubeflow: a Kubernetes extended resource (`nvidia.com/gpu`), plus, optionally, a node
  selector (e.g. cloud.google.com/gke-accelerator=nvidia-l4) and tolerations for GPU nodes.

On Vertex AI the train step can also run on several machines (`train_replicas` > 1): it then
runs as a Vertex AI custom job of that many replicas (one chief, the others workers; each a
machine with accelerator_count GPUs) that train together with TensorFlow's
MultiWorkerMirroredStrategy, as magenta's AI Platform recipe did with 4 VMs x 2 GPUs. Being a
job's shape rather than a value, it is fixed when the pipeline is compiled.

Images per job: only train runs the CUDA image (`image`, tag T); prepare_tfrecord, eval, sample
and export run the CPU image (`cpu_image`, tag T-cpu), and Dataflow's workers the worker image
built from it (`dataflow_worker_image`, tag T-dataflow). An image pinned by digest has no tag to
derive the other two from: they must then be given (`ddsp_pipeline build-image` prints all three).

CPU and memory (DEFAULT_RESOURCES, `--resources`): each step has a limit and, on Kubeflow, a
request below it. Kubernetes schedules a pod by its requests (a pod with limits only requests its
limits); the defaults fit one GPU node of the usual size, a g2-standard-8 (8 vCPU, 32 GB, of
which GKE keeps about 0.1 vCPU and 3.6 GB for itself and some more for its daemons): train asks
for 4 vCPU and 16G and may use up to 7 vCPU and 28G. Vertex AI sizes each step's machine from the
limits (and the accelerator) alone, so the requests are compiled for Kubeflow only.
"""

import dataclasses
import os
import re
from typing import List, NamedTuple

from kfp import compiler, dsl
from kfp.dsl import HTML, Artifact, Dataset, Metrics, Model

from components.eval.component import eval as eval_step
from components.export.component import export as export_step
from components.image import (BUNDLED_AUDIO_IN_IMAGE, BUNDLED_EVAL_AUDIO_IN_IMAGE, DEFAULT_IMAGE, cpu_image_for,
                              make_component)
from components.prepare_tfrecord.component import prepare_tfrecord as prepare_step
from components.sample.component import sample as sample_step
from components.train.component import train as train_step
from ddsp_core.steps.dataflow import worker_image_for
from ddsp_core.steps.steps import STEPS

PIPELINE_NAME = "ddsp-clarinet"
PACKAGE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clarinet.yaml")
TARGETS = ("vertex", "kubeflow")
# The train task's GPU by default, for each target.
DEFAULT_ACCELERATORS = {"vertex": "NVIDIA_L4", "kubeflow": "nvidia.com/gpu"}
# Where the compiled YAML expects the bundled material when no audio_pattern is given: inside
# the project's image (see Dockerfile). Locally, `ddsp_pipeline run` passes the checkout's path.
DEFAULT_AUDIO_PATTERN = BUNDLED_AUDIO_IN_IMAGE
# The bundled validation clarinet (another soundfont), held out: eval and sample measure on it.
DEFAULT_EVAL_AUDIO_PATTERN = BUNDLED_EVAL_AUDIO_IN_IMAGE
_VERTEX_ACCELERATOR = re.compile(r"^(NVIDIA_[A-Z0-9_]+|TPU_[A-Z0-9_]+)$")
_K8S_RESOURCE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_TOLERATION_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
# Vertex AI machine types with room for 1, 2, 4 or 8 GPUs of a type, for the train step's
# replicas when it runs as a custom job (which names a machine type; the pipeline's own tasks
# get one from the accelerator). Others: PipelineSettings.train_machine_type.
_GPU_MACHINE_TYPES = {
    "NVIDIA_L4": {1: "g2-standard-8", 2: "g2-standard-24", 4: "g2-standard-48", 8: "g2-standard-96"},
    "NVIDIA_TESLA_A100": {n: f"a2-highgpu-{n}g" for n in (1, 2, 4, 8)},
    "NVIDIA_A100_80GB": {n: f"a2-ultragpu-{n}g" for n in (1, 2, 4, 8)},
    "NVIDIA_H100_80GB": {n: f"a3-highgpu-{n}g" for n in (1, 2, 4, 8)},
    **{name: {n: "n1-standard-8" for n in (1, 2, 4)} for name in ("NVIDIA_TESLA_T4", "NVIDIA_TESLA_V100",
                                                                  "NVIDIA_TESLA_P100", "NVIDIA_TESLA_P4")},
}
_CPU_MACHINE_TYPE = "n1-standard-8"
# Vertex AI's placeholder for the project ID the pipeline runs in (the service fills it in; the
# steps' $CLOUD_ML_PROJECT_ID holds the project number). google_cloud_pipeline_components spells
# it the same (_placeholders.PROJECT_ID_PLACEHOLDER; tests/pipelines/test_dataflow.py checks).
# kfp's local runner cannot take it (it fails on any {{$.name}} it does not know), so it is a
# setting (PipelineSettings.project_id): by default the target's (`cloud_project_id`), and ''
# in the pipeline `ddsp_pipeline run` builds for the local runner.
VERTEX_PROJECT_ID_PLACEHOLDER = "{{$.pipeline_google_cloud_project_id}}"


def default_train_machine_type(accelerator, accelerator_count):
    """A Vertex AI machine type holding `accelerator_count` GPUs of type `accelerator` ('' for
    none), or None when _GPU_MACHINE_TYPES has none."""
    if not accelerator:
        return _CPU_MACHINE_TYPE
    return _GPU_MACHINE_TYPES.get(accelerator, {}).get(int(accelerator_count))


def cloud_project_id(target):
    """The PipelineSettings.project_id of a pipeline compiled to run on `target`: Vertex AI's
    project-ID placeholder for 'vertex' (the service fills it in), '' for 'kubeflow'."""
    return VERTEX_PROJECT_ID_PLACEHOLDER if target == "vertex" else ""


class SettingsError(ValueError):
    """Pipeline settings that cannot work; the message says what to give instead."""


@dataclasses.dataclass(frozen=True)
class Toleration:
    """A Kubernetes toleration of the train pod: key, value ('' with operator Exists), effect."""

    key: str
    value: str = ""
    effect: str = "NoSchedule"

    @classmethod
    def parse(cls, text):
        """'KEY=VALUE:EFFECT', 'KEY:EFFECT', 'KEY=VALUE' or 'KEY' (effect NoSchedule)."""
        head, _, effect = text.partition(":")
        key, _, value = head.partition("=")
        toleration = cls(key.strip(), value.strip(), effect.strip() or "NoSchedule")
        if not toleration.key or toleration.effect not in _TOLERATION_EFFECTS:
            raise SettingsError(f"Toleration {text!r} is not KEY[=VALUE][:EFFECT] with EFFECT one of "
                                f"{', '.join(_TOLERATION_EFFECTS)}, e.g. nvidia.com/gpu=present:NoSchedule.")
        return toleration


_CPU_QUANTITY = re.compile(r"^(\d+(\.\d+)?|\.\d+|\d+m)$")
_MEMORY_QUANTITY = re.compile(r"^(\d+)(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki)?$")
_MEMORY_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
                 "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def cpu_cores(quantity):
    """A Kubernetes CPU quantity ('4', '0.5', '500m') in cores; SettingsError if it is none."""
    text = str(quantity).strip()
    if not _CPU_QUANTITY.match(text):
        raise SettingsError(f"CPU {quantity!r} is not a number of cores: give e.g. 4, 0.5 or 500m.")
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_bytes(quantity):
    """A Kubernetes memory quantity ('16G', '512Mi') in bytes; SettingsError if it is none."""
    match = _MEMORY_QUANTITY.match(str(quantity).strip())
    if not match:
        raise SettingsError(f"Memory {quantity!r} is not a whole number with a unit: give e.g. 16G, 512M or "
                            "16Gi (G is 10^9 bytes, Gi 2^30).")
    return int(match.group(1)) * _MEMORY_UNITS[match.group(2) or ""]


@dataclasses.dataclass(frozen=True)
class StepResources:
    """A step's CPU and memory: Kubernetes quantities, each request at most its limit.

    The limit caps what the step's container may use (and sizes its machine on Vertex AI); the
    request is what Kubernetes reserves for it when it schedules the pod (Kubeflow only).
    """

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str

    def check(self, step):
        """SettingsError, naming the step, for a quantity that is none or a request above its limit."""
        for kind, measure in (("cpu", cpu_cores), ("memory", memory_bytes)):
            request, limit = getattr(self, f"{kind}_request"), getattr(self, f"{kind}_limit")
            if measure(request) <= 0 or measure(request) > measure(limit):
                raise SettingsError(f"The {step} step's {kind} request {request} must be above 0 and at most its "
                                    f"limit {limit}: give --resources {step}={kind}:REQUEST/LIMIT with "
                                    "REQUEST <= LIMIT.")

    @classmethod
    def parse(cls, text, base=None):
        """(step, StepResources) of 'STEP=cpu:R/L,memory:R/L' (either part may be left out; 'cpu:N'
        is request and limit N); what is not given is `base`'s, else DEFAULT_RESOURCES[step]'s."""
        step, sign, body = str(text).partition("=")
        step = step.strip()
        usage = (f"--resources {text!r} is not STEP=cpu:REQUEST/LIMIT,memory:REQUEST/LIMIT (STEP one of "
                 f"{', '.join(STEPS)}), e.g. train=cpu:4/7,memory:16G/28G.")
        if not sign or step not in DEFAULT_RESOURCES or not body.strip():
            raise SettingsError(usage)
        values = dataclasses.asdict(base or DEFAULT_RESOURCES[step])
        for part in body.split(","):
            kind, colon, quantities = part.strip().partition(":")
            request, slash, limit = quantities.partition("/")
            if kind.strip() not in ("cpu", "memory") or not colon or not request.strip():
                raise SettingsError(usage)
            values[f"{kind.strip()}_request"] = request.strip()
            values[f"{kind.strip()}_limit"] = (limit if slash else request).strip()
        resources = cls(**values)
        resources.check(step)
        return step, resources

    def describe(self):
        """'cpu 4/7, memory 16G/28G' (request/limit)."""
        return (f"cpu {self.cpu_request}/{self.cpu_limit}, memory {self.memory_request}/{self.memory_limit}")


# Each step's CPU and memory by default (request/limit), chosen so that train fits a g2-standard-8
# node with its L4 (allocatable about 7.9 vCPU and 28 GiB, less GKE's daemons) and the others a
# node of that size too, even all three of eval, sample and export at once (6 vCPU, 24G requested).
DEFAULT_RESOURCES = {
    "prepare_tfrecord": StepResources(cpu_request="4", cpu_limit="8", memory_request="8G", memory_limit="16G"),
    "train": StepResources(cpu_request="4", cpu_limit="7", memory_request="16G", memory_limit="28G"),
    "eval": StepResources(cpu_request="2", cpu_limit="4", memory_request="8G", memory_limit="16G"),
    "sample": StepResources(cpu_request="2", cpu_limit="4", memory_request="8G", memory_limit="16G"),
    "export": StepResources(cpu_request="2", cpu_limit="4", memory_request="8G", memory_limit="16G"),
}


@dataclasses.dataclass(frozen=True)
class PipelineSettings:
    """What the compiled pipeline depends on besides its parameters.

    image: the train step's image, with CUDA (your registry's copy of the repository's Dockerfile).
    cpu_image: the image of prepare_tfrecord, eval, sample and export (no CUDA); None: the
        image's tag + '-cpu' (components.image.cpu_image_for).
    target: 'vertex' or 'kubeflow': how the train task asks for its GPU.
    accelerator: the train task's GPU: a Vertex AI accelerator type for 'vertex', a Kubernetes
        resource name for 'kubeflow'; None for the target's default (DEFAULT_ACCELERATORS),
        '' for no GPU.
    accelerator_count: GPUs for the train task.
    node_selector: Kubeflow: ((label, value), ...) the train pod must run on.
    tolerations: Kubeflow: Toleration's of the train pod (GPU nodes are often tainted).
    dataflow_worker_image: the prepare job's Dataflow worker image (None: derived from image).
        An image pinned by digest has no tag to derive cpu_image and dataflow_worker_image from:
        both must then be given (SettingsError otherwise).
    resources: ((step, StepResources), ...): CPU and memory of the steps named, replacing
        DEFAULT_RESOURCES' (`resources_for`).
    project_id: the project ID the prepare step gives a Dataflow job (--project) before the
        environment's: for Vertex AI, VERTEX_PROJECT_ID_PLACEHOLDER, which the service fills in
        None (the default): the target's, `cloud_project_id(target)`; '' for none (the step's
        environment, or --beam-option=--project=ID), as the local run passes, because kfp's
        local runner fails on the placeholder.
    train_replicas: Vertex AI: machines the train step runs on; > 1 makes it a custom job of
        that many replicas, each with accelerator_count accelerators (the global batch is split
        among all their GPUs).
    train_machine_type: Vertex AI, with train_replicas > 1: each replica's machine type; None
        for one that holds accelerator_count of the accelerator (default_train_machine_type).
    """

    image: str = DEFAULT_IMAGE
    target: str = "vertex"
    accelerator: str = None
    accelerator_count: int = 1
    node_selector: tuple = ()
    tolerations: tuple = ()
    # The image Dataflow workers run for the prepare job (docker/dataflow-worker.Dockerfile);
    # None: the step image's tag + '-dataflow' (dataflow.worker_image_for).
    dataflow_worker_image: str = None
    train_replicas: int = 1
    train_machine_type: str = None
    cpu_image: str = None
    resources: tuple = ()
    project_id: str = None

    def __post_init__(self):
        if self.target not in TARGETS:
            raise SettingsError(f"Unknown target {self.target!r}: give one of {', '.join(TARGETS)}.")
        if self.project_id is None:
            object.__setattr__(self, "project_id", cloud_project_id(self.target))
        if self.accelerator is None:
            object.__setattr__(self, "accelerator", DEFAULT_ACCELERATORS[self.target])
        accelerator = self.accelerator
        if accelerator and self.target == "vertex" and not _VERTEX_ACCELERATOR.match(accelerator):
            raise SettingsError(
                f"{accelerator!r} is not a Vertex AI accelerator type: give one such as NVIDIA_L4, NVIDIA_TESLA_T4 "
                "or NVIDIA_H100_80GB (a Kubernetes resource like nvidia.com/gpu is for --target kubeflow).")
        if accelerator and self.target == "kubeflow" and not _K8S_RESOURCE.match(accelerator):
            raise SettingsError(
                f"{accelerator!r} is not a Kubernetes resource name: Kubeflow schedules GPUs as a resource such as "
                "nvidia.com/gpu (or amd.com/gpu). Choose the GPU model with a node selector, e.g. "
                "--node-selector cloud.google.com/gke-accelerator=nvidia-l4.")
        if int(self.accelerator_count) < 1:
            raise SettingsError(f"accelerator_count must be at least 1, got {self.accelerator_count}.")
        if self.target != "kubeflow" and (self.node_selector or self.tolerations):
            raise SettingsError("Node selectors and tolerations are for --target kubeflow; Vertex AI picks the "
                                "machine from the accelerator type.")
        if not self.image or not str(self.image).strip():
            raise SettingsError("The image is empty: give the components' image, e.g. "
                                "us-docker.pkg.dev/PROJECT/ddsp/ddsp-pipeline:0.1.0.")
        self._derive_images()
        for step, resources in self.resources:
            if step not in DEFAULT_RESOURCES:
                raise SettingsError(f"No step {step!r} to give resources to: the steps are {', '.join(STEPS)}.")
            resources.check(step)
        self._check_train_replicas()

    def _derive_images(self):
        """Fills in cpu_image and dataflow_worker_image from image's tag when not given; refuses an
        image pinned by digest without them (Dataflow would run Beam's image, without ddsp_core)."""
        image = str(self.image).strip()
        derived = {"cpu_image": cpu_image_for(image), "dataflow_worker_image": worker_image_for(image)}
        for field, value in derived.items():
            if not getattr(self, field):
                object.__setattr__(self, field, value)
        missing = [f"--{field.replace('_', '-')}" for field in derived if not getattr(self, field)]
        if missing:
            raise SettingsError(
                f"The image {image} is pinned by digest, so the CPU image and the Dataflow worker image cannot be "
                f"derived from its tag: give {' and '.join(missing)} too (`ddsp_pipeline build-image` prints all "
                "three pinned references).")

    def resources_for(self, step):
        """The StepResources of `step`: the one given in `resources`, else DEFAULT_RESOURCES'."""
        return dict(self.resources).get(step, DEFAULT_RESOURCES[step])

    def _check_train_replicas(self):
        replicas = self.train_replicas
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
            raise SettingsError(f"train_replicas must be a whole number of machines, at least 1, got {replicas!r}.")
        if replicas == 1:
            if self.train_machine_type:
                raise SettingsError("train_machine_type is for training on several machines (train_replicas > 1); "
                                    "on one, Vertex AI picks the machine from the accelerator.")
            return
        if self.target != "vertex":
            raise SettingsError(f"Training on several machines (train_replicas={replicas}) runs as a Vertex AI "
                                "custom job: it is for --target vertex. On Kubeflow, train on one machine with "
                                "several GPUs (accelerator_count).")
        if self.train_machine_type is None:
            machine_type = default_train_machine_type(self.accelerator, self.accelerator_count)
            if machine_type is None:
                raise SettingsError(
                    f"No default machine type for {self.accelerator_count} x {self.accelerator}: give the replicas' "
                    "Vertex AI machine type (train_machine_type, e.g. g2-standard-24 for 2 x NVIDIA_L4).")
            object.__setattr__(self, "train_machine_type", machine_type)


class Outputs(NamedTuple):
    dataset: Dataset
    model: Model
    metrics: Metrics
    eval_logs: Artifact
    page: HTML
    samples: Artifact
    exported: Model


def _request_accelerator(task, settings):
    """Asks for the train task's GPU the way the target understands."""
    if not settings.accelerator:
        return
    task.set_accelerator_type(settings.accelerator).set_accelerator_limit(int(settings.accelerator_count))
    if settings.target != "kubeflow" or not (settings.node_selector or settings.tolerations):
        return
    from kfp import kubernetes

    for label, value in settings.node_selector:
        kubernetes.add_node_selector(task, label_key=label, label_value=value)
    for toleration in settings.tolerations:
        kubernetes.add_toleration(task, key=toleration.key, operator="Equal" if toleration.value else "Exists",
                                  value=toleration.value or None, effect=toleration.effect)


def set_resources(task, step, settings):
    """Sets `step`'s CPU and memory limits on `task` and, for Kubeflow, its requests (Vertex AI
    picks a machine from the limits; a Kubernetes pod without requests would request its limits)."""
    resources = settings.resources_for(step)
    task.set_cpu_limit(resources.cpu_limit).set_memory_limit(resources.memory_limit)
    if settings.target == "kubeflow":
        task.set_cpu_request(resources.cpu_request).set_memory_request(resources.memory_request)


def prepare_tfrecord_task(component, settings, *, audio_pattern, preset, crepe_capacity, beam_pipeline_options,
                          audio_fingerprint, eval_audio_pattern, sample_rate, pipeline_root):
    """The prepare step's task in a pipeline being defined (the clarinet pipeline, the tuning
    pipeline): `component` (the prepare component for settings.cpu_image) called with the
    pipeline's parameters and what the settings add (kfp's pipeline-root placeholder beside the
    explicit `pipeline_root` parameter, the Dataflow worker image, Vertex AI's project id), its
    display name, and its CPU and memory."""
    task = component(
        audio_pattern=audio_pattern, preset=preset, crepe_capacity=crepe_capacity,
        beam_pipeline_options=beam_pipeline_options, audio_fingerprint=audio_fingerprint,
        eval_audio_pattern=eval_audio_pattern, pipeline_root=dsl.PIPELINE_ROOT_PLACEHOLDER,
        worker_image=settings.dataflow_worker_image, sample_rate=sample_rate,
        explicit_pipeline_root=pipeline_root, project_id=settings.project_id)
    task.set_display_name("prepare TFRecords")
    set_resources(task, "prepare_tfrecord", settings)
    return task


def _custom_training_job(component, settings):
    """`component` run as a Vertex AI custom job of settings.train_replicas machines.

    Every replica runs the same command; Vertex AI tells each its role (CLUSTER_SPEC, and
    TF_CONFIG), from which training forms its cluster and lets only the chief write files
    (ddsp_core.training.distribution). A replica that restarts restarts the whole job, which
    resumes from the newest checkpoint in checkpoint_dir: the strategy cannot take a worker back.
    The job runs as the service account the pipeline's `service_account` parameter names at run
    time (the task passes it); '' leaves it to Vertex AI (its custom-code service agent).
    """
    from google_cloud_pipeline_components.v1.custom_job import create_custom_training_job_from_component

    accelerator = {"accelerator_type": settings.accelerator,
                   "accelerator_count": int(settings.accelerator_count)} if settings.accelerator else {}
    return create_custom_training_job_from_component(
        component, display_name=f"{PIPELINE_NAME}-train", replica_count=settings.train_replicas,
        machine_type=settings.train_machine_type, restart_job_on_worker_restart=True,
        env=[{"name": "KERAS_BACKEND", "value": "tensorflow"}], **accelerator)


def make_pipeline(settings=PipelineSettings()):
    """The clarinet pipeline (a kfp pipeline function) for `settings`."""
    prepare_tfrecord = make_component(prepare_step, settings.cpu_image)
    train_component = make_component(train_step, settings.image)
    if settings.train_replicas > 1:
        train_component = _custom_training_job(train_component, settings)
    eval_component = make_component(eval_step, settings.cpu_image)
    sample_component = make_component(sample_step, settings.cpu_image)
    export_component = make_component(export_step, settings.cpu_image)

    @dsl.pipeline(name=PIPELINE_NAME,
                  description="DDSP solo-instrument autoencoder on clarinet notes: prepare -> train -> eval, sample, "
                              "export.")
    def clarinet_pipeline(
        audio_pattern: str = DEFAULT_AUDIO_PATTERN,
        preset: str = "quick",
        num_steps: int = 0,
        batch_size: int = 0,
        crepe_capacity: str = "",
        gin_files: List[str] = [],
        gin_params: List[str] = [],
        beam_pipeline_options: List[str] = [],
        audio_fingerprint: str = "",
        eval_audio_pattern: str = DEFAULT_EVAL_AUDIO_PATTERN,
        checkpoint_dir: str = "",
        restart_id: str = "",
        sample_rate: int = 0,
        seed: int = -1,
        pipeline_root: str = "",
        service_account: str = "",
    ) -> Outputs:
        """The whole experiment. num_steps, batch_size, crepe_capacity: 0/'' for the preset's
        ('quick' or 'full'); gin_files/gin_params apply to train, eval and sample;
        beam_pipeline_options: the prepare job's Beam options, one an item ([]: the local runner
        in the step; e.g. ['--runner=DataflowRunner'] for Dataflow, whose project, region, temp
        location and worker image default to the step's Vertex AI environment, the pipeline root
        and the image's Dataflow worker image); eval_audio_pattern:
        audio held out for eval and sample ('' for the preset's split of audio_pattern);
        checkpoint_dir: a folder under the pipeline root where training writes its checkpoints as
        it goes and resumes from them on a rerun ('' : only the model artifact, no resume across
        runs; `ddsp_pipeline run` and `submit` set it); restart_id: set by --no-resume;
        sample_rate: the examples' and the model's audio rate in Hz (0: the preset's); later
        steps read it from the dataset's manifest; seed: seeds the whole training (weights, data
        order, augmentation, noise; -1: training draws one, recorded in the model's
        train_state.json); pipeline_root: the pipeline root passed explicitly (`submit` sets it from
        --pipeline-root), which the prepare step uses where the backend leaves kfp's
        pipeline-root placeholder unresolved (Kubeflow); service_account: with train_replicas > 1,
        the service account the Vertex AI custom job of the train step runs as ('' : Vertex AI's
        custom-code service agent; `submit` passes its --service-account)."""
        prepare_task = prepare_tfrecord_task(
            prepare_tfrecord, settings, audio_pattern=audio_pattern, preset=preset, crepe_capacity=crepe_capacity,
            beam_pipeline_options=beam_pipeline_options, audio_fingerprint=audio_fingerprint,
            eval_audio_pattern=eval_audio_pattern, sample_rate=sample_rate, pipeline_root=pipeline_root)

        job = {"service_account": service_account} if settings.train_replicas > 1 else {}
        train_task = train_component(
            dataset=prepare_task.outputs["dataset"], preset=preset, num_steps=num_steps, batch_size=batch_size,
            gin_files=gin_files, gin_params=gin_params, checkpoint_dir=checkpoint_dir, restart_id=restart_id,
            accelerator=settings.accelerator, seed=seed, **job)
        train_task.set_display_name("train")
        if settings.train_replicas == 1:  # A custom job's machines are in its worker pools.
            set_resources(train_task, "train", settings)
            _request_accelerator(train_task, settings)

        eval_task = eval_component(
            dataset=prepare_task.outputs["dataset"], model=train_task.outputs["model"], preset=preset,
            gin_files=gin_files, gin_params=gin_params)
        eval_task.set_display_name("eval")
        set_resources(eval_task, "eval", settings)

        sample_task = sample_component(
            dataset=prepare_task.outputs["dataset"], model=train_task.outputs["model"], preset=preset,
            gin_files=gin_files, gin_params=gin_params)
        sample_task.set_display_name("sample")
        set_resources(sample_task, "sample", settings)

        export_task = export_component(model=train_task.outputs["model"])
        export_task.set_display_name("export")
        set_resources(export_task, "export", settings)

        return Outputs(dataset=prepare_task.outputs["dataset"], model=train_task.outputs["model"],
                       metrics=eval_task.outputs["metrics"], eval_logs=eval_task.outputs["eval_logs"],
                       page=sample_task.outputs["page"], samples=sample_task.outputs["samples"],
                       exported=export_task.outputs["exported"])

    return clarinet_pipeline


def compile_pipeline(package_path=PACKAGE_PATH, settings=PipelineSettings()):
    """Writes the pipeline's YAML for `settings` to `package_path`; returns the path."""
    compiler.Compiler().compile(make_pipeline(settings), package_path)
    return package_path
