"""What Vertex AI Pipelines and Kubeflow Pipelines give a task, as the rehearsal gives it.

Vertex AI (each task is a Vertex AI custom job of one replica):
- environment: CLOUD_ML_PROJECT_ID holds the project *number*, CLOUD_ML_REGION the region,
  CLOUD_ML_JOB_ID the custom job's numeric id, CLUSTER_SPEC the (one-replica) cluster. No
  GOOGLE_CLOUD_PROJECT. TF_CONFIG only on jobs of several replicas (not rehearsed);
- placeholders resolved: kfp's {{$.pipeline_root}}, job name and ids, and the ones
  google-cloud-pipeline-components defines ({{$.pipeline_google_cloud_project_id}} = the
  project id, {{$.pipeline_google_cloud_location}}, {{$.pipeline_service_account}});
- artifacts: gs://BUCKET/ROOT/<project number>/<job>/<task>_<id>/<output>, seen by the step at
  /gcs/BUCKET/... (Cloud Storage FUSE): whatever the step writes under /gcs lands in the bucket;
- the image's own user (the Dockerfile's `ddsp`, uid 1000).

Kubeflow Pipelines (each task a pod; the KFP launcher wraps the command in the same container):
- environment: KFP_POD_NAME, KFP_POD_UID, NAMESPACE, KUBERNETES_SERVICE_HOST/PORT; no
  CLOUD_ML_* (project and region come from nowhere);
- placeholders: {{$.pipeline_root}} and gcpc's Vertex-only placeholders stay as they are
  (unresolved text reaches the step);
- artifacts: gs://BUCKET/ROOT/<pipeline>/<run id>/<task>/<output>; the launcher downloads
  the inputs to /gcs/BUCKET/... before the command and uploads the outputs after it (only
  the output artifacts: anything else written under /gcs is lost). KFP >= 2.3 mounts emptyDir
  volumes at /gcs, /minio, /s3, /.local and /.cache so that a non-root user can write there;
  before 2.3 it does not, and the launcher's mkdir fails for a non-root image;
- a user: an arbitrary uid with gid 0 (OpenShift's restricted SCC; HOME=/), unless the image's;
- scheduling: the pod's requests (the limits, where no request is set) must fit a node.
"""

import dataclasses
import json
import uuid

TARGETS = ("vertex", "kubeflow")
# Where kfp's executor expects an artifact of a gs:// URI (kfp.dsl.types.artifact_types).
GCS_MOUNT = "/gcs"
# Where the launcher tells the executor to write its output metadata (Vertex AI and KFP alike).
OUTPUT_METADATA = "/tmp/kfp_outputs/output_metadata.json"
# The emptyDir volumes KFP >= 2.3 mounts in every task pod (kubeflow/pipelines#10857).
KFP_EMPTY_DIRS = ("/gcs", "/minio", "/s3", "/.local", "/.cache")
# The first KFP backend version with those volumes.
KFP_NON_ROOT_VERSION = (2, 3)
# An OpenShift-style arbitrary uid (restricted SCC: a uid from the namespace's range, gid 0).
ARBITRARY_UID = "1000680000:0"
# Placeholders google-cloud-pipeline-components defines (resolved by Vertex AI only).
GCPC_PROJECT_ID = "{{$.pipeline_google_cloud_project_id}}"
GCPC_LOCATION = "{{$.pipeline_google_cloud_location}}"
GCPC_SERVICE_ACCOUNT = "{{$.pipeline_service_account}}"
PIPELINE_ROOT = "{{$.pipeline_root}}"


@dataclasses.dataclass(frozen=True)
class Node:
    """A Kubernetes node's allocatable resources (what pods' requests may add up to).

    The default is GKE's g2-standard-8 (8 vCPU, 32 GB, one L4): GKE reserves 6% of the first
    core, 1% of the second, 0.5% of the next two and 0.25% of the rest (7.91 cores left), and
    25/20/10/6% of the memory's first 4/next 4/next 8/next 112 GiB plus 100 MiB for eviction
    (28.3 GiB left). DaemonSets' own requests (logging, kube-proxy, the GPU plugin) take a little
    more on a real node.
    """

    name: str = "g2-standard-8"
    cpu: float = 7.91
    memory: float = 28.3 * 2 ** 30
    gpus: int = 1

    def problems(self, resources):
        """Why a pod of `resources` (plan.Resources) stays Pending on this node ([] when it fits)."""
        problems = []
        cpu, memory = resources.scheduled_cpu, resources.scheduled_memory
        if cpu is not None and cpu > self.cpu:
            problems.append(f"requests {cpu:g} CPUs, the node has {self.cpu:g} allocatable")
        if memory is not None and memory > self.memory:
            problems.append(f"requests {memory / 2 ** 30:.1f} GiB of memory, the node has "
                            f"{self.memory / 2 ** 30:.1f} GiB allocatable")
        if resources.accelerator and resources.accelerator_count > self.gpus:
            problems.append(f"requests {resources.accelerator_count} GPUs, the node has {self.gpus}")
        if resources.request_above_limit():
            problems.append(resources.request_above_limit())
        return problems


@dataclasses.dataclass(frozen=True)
class Service:
    """One service's way of running a task, for one rehearsed run.

    target: 'vertex' or 'kubeflow'.
    bucket: the (emulated) bucket the pipeline root is in; root_path: the root's folder in it.
    project_id, project_number, region: the Google Cloud project (Vertex AI).
    user: the container user: None for the image's own; e.g. ARBITRARY_UID.
    kfp_version: the Kubeflow backend's (major, minor): decides the emptyDir volumes.
    node: the Kubeflow node the pods must fit (Node).
    run_id: this run's id (job name suffix, run uuid).
    """

    target: str
    bucket: str
    root_path: str = "runs"
    project_id: str = "ddsp-rehearsal"
    project_number: str = "123456789012"
    region: str = "us-central1"
    service_account: str = "ddsp-pipeline@ddsp-rehearsal.iam.gserviceaccount.com"
    user: str = None
    kfp_version: tuple = (2, 5)
    node: Node = Node()
    run_id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex[:12])
    pipeline_name: str = "ddsp-clarinet"

    def __post_init__(self):
        if self.target not in TARGETS:
            raise ValueError(f"Unknown target {self.target!r}: give one of {', '.join(TARGETS)}.")

    @classmethod
    def for_target(cls, target, bucket, **overrides):
        """The service's defaults: the image's user on Vertex AI, an arbitrary uid on Kubeflow."""
        defaults = {"user": ARBITRARY_UID if target == "kubeflow" else None}
        defaults.update({key: value for key, value in overrides.items() if value is not None})
        return cls(target=target, bucket=bucket, **defaults)

    @property
    def pipeline_root(self):
        return f"gs://{self.bucket}/{self.root_path}".rstrip("/")

    @property
    def job_name(self):
        return f"{self.pipeline_name}-{self.run_id}"

    def task_root(self, task_name, task_id):
        """The folder of a task's output artifacts (gs://...)."""
        if self.target == "vertex":
            return f"{self.pipeline_root}/{self.project_number}/{self.job_name}/{task_name}_{task_id}"
        return f"{self.pipeline_root}/{self.pipeline_name}/{self.run_id}/{task_name}"

    def placeholders(self, task_name, task_id):
        """{placeholder: value} the service resolves in parameter values and the command; any
        other `{{$....}}` stays as it is (as the service leaves it)."""
        resolved = {"{{$.pipeline_job_name}}": self.job_name, "{{$.pipeline_job_uuid}}": self.run_id,
                    "{{$.pipeline_task_name}}": task_name, "{{$.pipeline_task_uuid}}": str(task_id)}
        if self.target == "vertex":
            resolved.update({PIPELINE_ROOT: self.pipeline_root, GCPC_PROJECT_ID: self.project_id,
                             GCPC_LOCATION: self.region, GCPC_SERVICE_ACCOUNT: self.service_account})
        return resolved

    def environment(self, task_name, task_id):
        """The variables the service sets in the task's container (besides the image's own)."""
        if self.target == "vertex":
            cluster = {"cluster": {"workerpool0": ["workerpool0-0:2222"]}, "environment": "cloud",
                       "task": {"type": "workerpool0", "index": 0}, "job": {"job_name": self.job_name}}
            return {"CLOUD_ML_PROJECT_ID": self.project_number, "CLOUD_ML_REGION": self.region,
                    "CLOUD_ML_JOB_ID": str(task_id), "CLUSTER_SPEC": json.dumps(cluster)}
        pod = f"{self.job_name}-{task_name}-{task_id}"[:63]
        return {"KFP_POD_NAME": pod, "KFP_POD_UID": str(uuid.uuid5(uuid.NAMESPACE_URL, pod)),
                "NAMESPACE": "kubeflow-user", "KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}

    def writable_folders(self):
        """The container folders a non-root user can write besides its home and /tmp: Vertex
        AI's /gcs FUSE mount; KFP's emptyDir volumes (none before 2.3)."""
        if self.target == "vertex":
            return (GCS_MOUNT,)
        return KFP_EMPTY_DIRS if tuple(self.kfp_version) >= KFP_NON_ROOT_VERSION else ()

    @property
    def uploads_everything(self):
        """Whether all a task writes under /gcs reaches the bucket (FUSE), or only its output artifacts."""
        return self.target == "vertex"

    def schedule_problems(self, resources):
        """Why the task would not start (Kubeflow: its pod fits no node); [] on Vertex AI, which
        picks a machine for the task."""
        if self.target != "kubeflow":
            return []
        return self.node.problems(resources)
