"""The whole rehearsal: compile the pipeline for a target, then run its tasks one after another in
podman containers, each given what the service gives it (services.py), with the gs:// bucket
played by the storage emulator (bucket.py). Stops at the first task that fails (or would not
be scheduled) and says which, why, and the end of its log.
"""

import dataclasses
import glob
import json
import os
import random
import shutil
import tempfile
import time

from pipelines.rehearsal import bucket as bucket_lib
from pipelines.rehearsal import driver_stub, executor_input, podman
from pipelines.rehearsal.plan import read_plan
from pipelines.rehearsal.services import GCS_MOUNT, OUTPUT_METADATA, Node, Service

REPO_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# The tiny run: four bundled notes to train on, two held-out validation notes, tiny CREPE, a
# tiny model for two steps (as tests/pipelines/test_local_run.py).
TRAIN_AUDIO = os.path.join(REPO_DIR, "data", "clarinet", "notes", "clarinet_m05[0-3]_*.flac")
EVAL_AUDIO = os.path.join(REPO_DIR, "data", "clarinet", "validation", "*.flac")
TINY_GIN_PARAMS = ("RnnFcDecoder.rnn_channels=32", "RnnFcDecoder.ch=32", "RnnFcDecoder.layers_per_stack=1",
                   "Reverb.reverb_length=1600")
CREDENTIALS_IN_CONTAINER = "/var/run/rehearsal/credentials.json"
# The GPU is not here: the train task runs with accelerator '' (its GPU check would stop it).
NO_GPU_PARAMETER = ("accelerator", "")


class RehearsalError(RuntimeError):
    """A task failed or would not start; the message names it and says why (with its log's tail)."""


@dataclasses.dataclass(frozen=True)
class RehearsalSettings:
    """What a rehearsal runs.

    target: 'vertex' or 'kubeflow'. image: the pipeline's --image (the train step's, CUDA);
    cpu_image: the other steps' (None: the pipeline's default, the image's tag + '-cpu').
    work_dir: where task folders and logs go (None: a temporary folder, removed unless keep).
    user: the containers' user (None: the service's default: the image's on Vertex AI, an
    arbitrary uid on Kubeflow; 'image' for the image's on both). kfp_version: the Kubeflow
    backend rehearsed. node: the Kubeflow node pods must fit. tasks: run only these (and stop
    after them); () for all. task_timeout: seconds per task.
    """

    target: str
    image: str
    cpu_image: str = None
    work_dir: str = None
    keep: bool = False
    user: str = None
    kfp_version: tuple = (2, 5)
    node: Node = Node()
    num_steps: int = 2
    batch_size: int = 2
    crepe_capacity: str = "tiny"
    gin_params: tuple = TINY_GIN_PARAMS
    seed: int = 7
    train_audio: str = TRAIN_AUDIO
    eval_audio: str = EVAL_AUDIO
    tasks: tuple = ()
    task_timeout: int = 1800
    engine: str = "podman"


@dataclasses.dataclass
class TaskRow:
    """A line of the summary table."""

    task: str
    image: str
    limits: str
    seconds: float = 0.0
    rc: object = None
    note: str = ""


@dataclasses.dataclass
class RehearsalResult:
    target: str
    rows: list
    pipeline_root: str
    artifacts: dict  # task -> {output: uri}
    probes: dict  # task -> probe sentence
    work_dir: str
    failure: str = ""

    @property
    def ok(self):
        return not self.failure


def compile_for(settings, path):
    """Compiles the pipeline for the rehearsal's target and images as `ddsp_pipeline compile|submit`
    does (with the target's project-ID setting); returns the YAML's path."""
    from pipelines.clarinet import PipelineSettings, compile_pipeline

    # As compile and submit: the target's project-ID setting (PipelineSettings' default).
    given = {"image": settings.image, "target": settings.target}
    if settings.cpu_image:
        given["cpu_image"] = settings.cpu_image
    return compile_pipeline(path, PipelineSettings(**given))


def _upload_audio(emulator, pattern, uri_folder):
    files = sorted(glob.glob(pattern))
    if not files:
        raise RehearsalError(f"No audio file matches {pattern!r} (the rehearsal's material).")
    for path in files:
        emulator.upload_file(path, f"{uri_folder}/{os.path.basename(path)}")
    return f"{uri_folder}/*{os.path.splitext(files[0])[1]}"


def pipeline_arguments(defaults, settings, service, audio, eval_audio):
    """The run's parameter values: the YAML's defaults, the tiny settings, and what `ddsp_pipeline
    submit` passes (pipeline_root and service_account where the template declares them)."""
    arguments = dict(defaults)
    arguments.update({"audio_pattern": audio, "eval_audio_pattern": eval_audio, "num_steps": settings.num_steps,
                      "batch_size": settings.batch_size, "crepe_capacity": settings.crepe_capacity,
                      "gin_params": list(settings.gin_params), "seed": settings.seed})
    if "pipeline_root" in defaults:
        arguments["pipeline_root"] = service.pipeline_root
    if "service_account" in defaults:
        arguments["service_account"] = service.service_account
    return {key: value for key, value in arguments.items() if key in defaults}


def _writable_folder(path):
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)  # An emptyDir's mode: any uid writes there.
    return path


def _open_to_any_user(folder):
    """Lets the task's user write where the inputs were downloaded, as on the services: Vertex
    AI's FUSE mount lets any user write; Kubeflow's launcher downloads as the pod's user."""
    for parent, folders, files in os.walk(folder):
        os.chmod(parent, 0o777)
        for name in files:
            os.chmod(os.path.join(parent, name), 0o666)


class Rehearsal:
    """One rehearsal run (see RehearsalSettings); `run()` returns a RehearsalResult."""

    def __init__(self, settings, log=print):
        self.settings = settings
        self.log = log
        self.work_dir = None
        self.emulator = None
        self.service = None

    # -------------------------------------------------------------------- setup

    def _check_images(self, tasks):
        podman.check_podman(self.settings.engine)
        missing = sorted({task.image for task in tasks if not podman.image_exists(task.image, self.settings.engine)})
        if missing:
            raise RehearsalError(f"Image(s) {', '.join(missing)} not found locally (the rehearsal never pulls): build "
                                 "them (docker/README.md, `ddsp_pipeline build-image --no-push`) or give --image/"
                                 "--cpu-image of images you have (`podman images`).")

    def _service(self, bucket_name):
        settings = self.settings
        user = None if settings.user == "image" else settings.user
        service = Service.for_target(settings.target, bucket_name, user=user, kfp_version=settings.kfp_version,
                                     node=settings.node)
        if settings.user == "image":
            service = dataclasses.replace(service, user=None)
        return service

    # -------------------------------------------------------------------- a task

    def _mounts(self, task, task_dir):
        """The task's folders: /gcs and the service's other writable folders, the output metadata
        folder, the credentials stand-in, and the node's driver folder for a GPU task."""
        mounts = []
        for folder in self.service.writable_folders():
            mounts.append(podman.Mount(_writable_folder(os.path.join(task_dir, "mounts", folder.strip("/"))),
                                       folder))
        mounts.append(podman.Mount(_writable_folder(os.path.join(task_dir, "kfp_outputs")),
                                   os.path.dirname(OUTPUT_METADATA)))
        mounts.append(podman.Mount(self.emulator.credentials_file, CREDENTIALS_IN_CONTAINER, read_only=True))
        if task.resources.accelerator:
            mounts.append(podman.Mount(self.driver_folder, driver_stub.DRIVER_ROOT, read_only=True))
        return mounts

    def _environment(self, task, task_id):
        environment = self.service.environment(task.name, task_id)
        environment.update(self.emulator.container_environment(CREDENTIALS_IN_CONTAINER))
        return environment

    def _launcher_mkdir(self, task, paths):
        """KFP before 2.3: the launcher, as the pod's user, makes the artifacts' local folders
        under /gcs, which is the image's root-owned filesystem. Returns (rc, output)."""
        folders = sorted({os.path.dirname(path) for path in paths})
        script = ("import os\nfor folder in %r:\n    os.makedirs(folder, exist_ok=True)\n" % folders)
        return podman.run_quick(task.image, script, user=self.service.user, engine=self.settings.engine)

    def _probe_driver(self, task, task_id, mounts):
        rc, output = podman.run_quick(task.image, driver_stub.PROBE, user=self.service.user,
                                      environment=self._environment(task, task_id), mounts=mounts,
                                      engine=self.settings.engine)
        return driver_stub.verdict(driver_stub.parse_probe(output))

    def _run_task(self, task, arguments, produced, result):
        settings, service = self.settings, self.service
        task_id = random.randint(10 ** 17, 10 ** 18 - 1)  # Vertex AI's job ids are numbers like this.
        row = TaskRow(task=task.name, image=task.image, limits=task.resources.describe())
        result.rows.append(row)
        unschedulable = service.schedule_problems(task.resources)
        if unschedulable:
            row.rc, row.note = "Pending", "; ".join(unschedulable)
            raise RehearsalError(
                f"Task '{task.name}' would stay Pending on Kubeflow: its pod {'; '.join(unschedulable)} "
                f"(node {service.node.name}). Set requests below the limits (or smaller limits).")
        placeholders = service.placeholders(task.name, task_id)
        parameters = executor_input.parameter_values(task, arguments, {}, placeholders)
        if task.resources.accelerator and NO_GPU_PARAMETER[0] in parameters:
            parameters[NO_GPU_PARAMETER[0]] = NO_GPU_PARAMETER[1]
            row.note = "no GPU here: accelerator ''"
        inputs = {key: produced[producer][output] for key, (producer, output) in task.artifacts.items()}
        task_root = service.task_root(task.name, task_id)
        spec = executor_input.build(task, parameters, inputs, task_root)
        outputs = executor_input.output_artifacts(spec)
        task_dir = os.path.join(self.work_dir, "tasks", task.name)
        mounts = self._mounts(task, task_dir)
        gcs_root = os.path.join(task_dir, "mounts", GCS_MOUNT.strip("/"))
        if GCS_MOUNT not in service.writable_folders():
            rc, output = self._launcher_mkdir(task, [executor_input.local_path(uri) for uri in
                                                     [*outputs.values(), *(record["uri"] for record in inputs.values())]])
            if rc != 0:
                row.rc = rc
                raise RehearsalError(f"Task '{task.name}' failed before its command: KFP {'.'.join(map(str, service.kfp_version))}'s "
                                     f"launcher, as uid {service.user or 'of the image'}, cannot make the artifact "
                                     f"folders under {GCS_MOUNT} (no emptyDir there before KFP 2.3):\n{output[-800:]}")
        for record in inputs.values():
            self.emulator.download_folder(record["uri"], gcs_root)
        _open_to_any_user(gcs_root)
        before = bucket_lib.snapshot(gcs_root)
        if task.resources.accelerator:
            ok, sentence = self._probe_driver(task, task_id, mounts)
            result.probes[task.name] = sentence
            if not ok:
                row.rc = "probe"
                raise RehearsalError(f"Task '{task.name}' (GPU {task.resources.accelerator}): {sentence}")
        command = executor_input.command(task, spec, placeholders)
        cpus, memory = podman.cpus_here(task.resources.cpu_limit), podman.memory_here(task.resources.memory_limit)
        if task.resources.cpu_limit and cpus < task.resources.cpu_limit:
            row.limits += f" (here cpus {cpus:g})"
        name = f"rehearsal-{settings.target}-{task.name}-{task_id}"[:60]
        argv = podman.run_argv(task.image, command[:len(task.command)], command[len(task.command):], name,
                               environment=self._environment(task, task_id), user=service.user, cpus=cpus,
                               memory=memory, mounts=mounts, engine=settings.engine)
        with open(os.path.join(task_dir, "executor_input.json"), "w") as file:
            json.dump(spec, file, indent=1)
        self.log(f"rehearse {settings.target}: task '{task.name}' in {task.image} ({row.limits}) ...")
        ended = podman.run(argv, name, os.path.join(self.work_dir, "logs", f"{task.name}.log"),
                           timeout=settings.task_timeout, engine=settings.engine)
        row.seconds, row.rc = ended.seconds, ended.rc
        if ended.rc != 0:
            why = "killed at its memory limit (OOMKilled)" if ended.oom_killed else f"exit status {ended.rc}"
            raise RehearsalError(f"Task '{task.name}' failed on the rehearsed {settings.target} ({why}); its log "
                                 f"{ended.log_path} ends:\n{ended.log_tail()}")
        changed = bucket_lib.changed_files(
            gcs_root, before, under=None if service.uploads_everything else
            [executor_input.local_path(uri)[len(GCS_MOUNT) + 1:] for uri in outputs.values()])
        self.emulator.upload_files(gcs_root, changed)
        produced[task.name] = self._outputs(task, outputs, os.path.join(task_dir, "kfp_outputs"))
        result.artifacts[task.name] = {key: record["uri"] for key, record in produced[task.name].items()}

    def _outputs(self, task, outputs, metadata_dir):
        """{output: {'uri', 'schema_title', 'metadata'}} from the executor's output metadata."""
        path = os.path.join(metadata_dir, os.path.basename(OUTPUT_METADATA))
        written = {}
        if os.path.exists(path):
            with open(path) as file:
                written = json.load(file).get("artifacts", {})
        records = {}
        for key, uri in outputs.items():
            artifact = (written.get(key, {}).get("artifacts") or [{}])[0]
            records[key] = {"uri": artifact.get("uri", uri), "schema_title": task.outputs[key],
                            "metadata": artifact.get("metadata", {})}
        return records

    # -------------------------------------------------------------------- the run

    def run(self):
        settings = self.settings
        self.work_dir = settings.work_dir or tempfile.mkdtemp(prefix=f"ddsp-rehearsal-{settings.target}-")
        try:
            return self._run()
        except BaseException:
            if not settings.keep and not settings.work_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)
            raise

    def _run(self):
        settings = self.settings
        os.makedirs(os.path.join(self.work_dir, "logs"), exist_ok=True)
        yaml_path = compile_for(settings, os.path.join(self.work_dir, f"pipeline-{settings.target}.yaml"))
        defaults, tasks = read_plan(yaml_path)
        if settings.tasks:
            unknown = sorted(set(settings.tasks) - {task.name for task in tasks})
            if unknown:
                raise RehearsalError(f"No task {unknown} in the pipeline: its tasks are "
                                     f"{', '.join(task.name for task in tasks)}.")
        self._check_images(tasks)
        if any(task.resources.accelerator for task in tasks):
            self.driver_folder = driver_stub.build(os.path.join(self.work_dir, "nvidia"))
        self.emulator = bucket_lib.Emulator(os.path.join(self.work_dir, "emulator"))
        result = None
        try:
            self.emulator.start()
            bucket_name = f"rehearsal-{random.randint(0, 10 ** 8)}"
            self.emulator.create_bucket(bucket_name)
            self.service = self._service(bucket_name)
            result = RehearsalResult(target=settings.target, rows=[], pipeline_root=self.service.pipeline_root,
                                     artifacts={}, probes={}, work_dir=self.work_dir)
            audio = _upload_audio(self.emulator, settings.train_audio, f"{self.service.pipeline_root}/audio/train")
            eval_audio = _upload_audio(self.emulator, settings.eval_audio, f"{self.service.pipeline_root}/audio/eval")
            arguments = pipeline_arguments(defaults, settings, self.service, audio, eval_audio)
            produced = {}
            wanted = set(settings.tasks)
            for task in tasks:
                if wanted and not wanted & ({task.name} | set(self._downstream(tasks, task))):
                    continue
                try:
                    self._run_task(task, arguments, produced, result)
                except RehearsalError as error:
                    result.failure = str(error)
                    break
                if wanted and wanted <= set(produced):
                    break
            if result.ok:
                result.failure = self._check_bucket(result)
        finally:
            self.emulator.stop()
            if result is not None and not settings.keep and not settings.work_dir:
                shutil.rmtree(self.work_dir, ignore_errors=True)
        return result

    @staticmethod
    def _downstream(tasks, task):
        """Tasks that need `task` (directly or not): a task is run when one wanted needs it."""
        needed_by = set()
        changed = True
        while changed:
            changed = False
            for other in tasks:
                if other.name not in needed_by and (task.name in other.depends_on
                                                    or needed_by & set(other.depends_on)):
                    needed_by.add(other.name)
                    changed = True
        return needed_by

    def _check_bucket(self, result):
        """'' when every output artifact of the tasks run is in the bucket, else what is missing."""
        missing = [f"{task}.{key} ({uri})" for task, outputs in result.artifacts.items()
                   for key, uri in outputs.items() if not self.emulator.exists(uri)]
        if missing:
            return ("These artifacts never reached the bucket (written outside what the service uploads?): "
                    + ", ".join(missing))
        return ""


def summary_lines(result):
    """The summary table (task, image, limits, seconds, rc) and the outcome."""
    width = max([len(row.image) for row in result.rows] + [5])
    lines = [f"Rehearsal of a {result.target} run (pipeline root {result.pipeline_root}):",
             f"  {'task':18s} {'image':{width}s} {'limits':42s} {'seconds':>8s} {'rc':>7s}"]
    for row in result.rows:
        seconds = f"{row.seconds:.0f}" if row.seconds else "-"
        lines.append(f"  {row.task:18s} {row.image:{width}s} {row.limits:42s} {seconds:>8s} {str(row.rc):>7s}"
                     + (f"  {row.note}" if row.note else ""))
    for task, sentence in result.probes.items():
        lines.append(f"  {task}: driver probe: {sentence}")
    lines.append("OK: every task succeeded." if result.ok else f"FAILED: {result.failure}")
    if result.work_dir and os.path.isdir(result.work_dir):
        lines.append(f"Task folders and logs: {result.work_dir}")
    return lines


def elapsed(start):
    return time.monotonic() - start
