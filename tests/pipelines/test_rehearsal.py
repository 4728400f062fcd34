"""The rehearsals (`ddsp_pipeline rehearse`): the whole clarinet pipeline, tiny, task by task in podman
containers as Vertex AI and as Kubeflow run it, and rehearsals that fail the way the services
would have failed before issue 24's fixes. Minutes each: marked `rehearsal`, run only with
`pytest --rehearsal` (or `make rehearse`), and skipped without podman or the images.

Images (built as docker/README.md says; the rehearsal never pulls):
    DDSP_REHEARSAL_IMAGE      the pipeline's --image, train's (default localhost/ddsp-pipeline:0.1.0)
    DDSP_REHEARSAL_CPU_IMAGE  the other steps' (default localhost/ddsp-pipeline:0.1.0-cpu)
    DDSP_REHEARSAL_CUDA_IMAGE a CUDA image for the driver loader-path check (skipped when unset)
"""

import json
import os
import shutil
import subprocess

import pytest

from pipelines.rehearsal import driver
from pipelines.rehearsal.services import ARBITRARY_UID, Node

# The images to rehearse with (`make rehearse` sets these from its REHEARSAL_* variables).
IMAGE = os.environ.get("DDSP_REHEARSAL_IMAGE", "localhost/ddsp-pipeline:0.1.0")
CPU_IMAGE = os.environ.get("DDSP_REHEARSAL_CPU_IMAGE", "localhost/ddsp-pipeline:0.1.0-cpu")
CUDA_IMAGE = os.environ.get("DDSP_REHEARSAL_CUDA_IMAGE", "")
TASKS = {"prepare-tfrecord", "train", "eval", "sample", "export"}


def _have(image):
    return bool(image) and shutil.which("podman") is not None and subprocess.run(
        ["podman", "image", "exists", image], capture_output=True, check=False).returncode == 0


pytestmark = [
    pytest.mark.rehearsal,
    pytest.mark.skipif(not (_have(IMAGE) and _have(CPU_IMAGE)),
                       reason=f"needs podman and the images {IMAGE}, {CPU_IMAGE} (docker/README.md)"),
]


def _rehearse(tmp_path, target, **settings):
    given = {"image": IMAGE, "cpu_image": CPU_IMAGE, "work_dir": str(tmp_path / target), **settings}
    return driver.Rehearsal(driver.RehearsalSettings(target=target, **given)).run()


def _executor_input(result, task):
    with open(os.path.join(result.work_dir, "tasks", task, "executor_input.json")) as file:
        return json.load(file)


def _lines(result):
    return "\n".join(driver.summary_lines(result))


def _check_images(result):
    """Defect 10: only train runs the (CUDA) --image; the other steps the CPU image."""
    assert {row.task: row.image for row in result.rows if row.task == "train"} == {"train": IMAGE}
    assert {row.image for row in result.rows if row.task != "train"} == {CPU_IMAGE}


def test_vertex_rehearsal_runs_the_whole_pipeline(tmp_path):
    result = _rehearse(tmp_path, "vertex")
    assert result.ok, _lines(result)
    assert {row.task for row in result.rows} == TASKS and all(row.rc == 0 for row in result.rows)
    _check_images(result)
    prepare = _executor_input(result, "prepare-tfrecord")["inputs"]["parameterValues"]
    # Vertex AI's environment has the project number; what reaches Dataflow must be the ID (defect 2).
    if "project_id" in prepare:
        assert prepare["project_id"] and not str(prepare["project_id"]).isdigit()
    assert prepare["pipeline_root"] == result.pipeline_root
    model = result.artifacts["train"]["model"]
    assert model.startswith(result.pipeline_root + "/123456789012/")


def test_kubeflow_rehearsal_runs_the_whole_pipeline_as_an_arbitrary_uid(tmp_path):
    result = _rehearse(tmp_path, "kubeflow")
    assert result.ok, _lines(result)
    assert {row.task for row in result.rows} == TASKS and all(row.rc == 0 for row in result.rows)
    _check_images(result)
    prepare = _executor_input(result, "prepare-tfrecord")["inputs"]["parameterValues"]
    # The placeholder reached the step unresolved; the pipeline's explicit root stands in (defect 9).
    assert "{{$.pipeline_root}}" in json.dumps(prepare)
    explicit = {key: value for key, value in prepare.items() if value == result.pipeline_root}
    assert explicit, f"no parameter gives prepare the pipeline root {result.pipeline_root}: {prepare}"


def test_kubeflow_before_2_3_fails_a_non_root_image(tmp_path):
    """Defect 8: without KFP 2.3's emptyDir volumes the launcher cannot make /gcs/... as a non-root user."""
    result = _rehearse(tmp_path, "kubeflow", kfp_version=(2, 2), tasks=("prepare-tfrecord",))
    assert not result.ok
    assert "cannot make the artifact folders" in result.failure and "Permission denied" in result.failure
    assert result.rows[0].task == "prepare-tfrecord"


def test_a_pod_larger_than_the_node_stays_pending(tmp_path):
    """Defect 3's check: a task whose requests exceed the node's allocatable never starts."""
    result = _rehearse(tmp_path, "kubeflow", node=Node(name="small", cpu=1.0, memory=4 * 2 ** 30, gpus=1),
                       tasks=("prepare-tfrecord",))
    assert not result.ok and "Pending" in result.failure and result.rows[0].rc == "Pending"


@pytest.mark.skipif(not _have(CUDA_IMAGE), reason="needs a CUDA image in DDSP_REHEARSAL_CUDA_IMAGE")
def test_cuda_image_finds_the_nodes_driver(tmp_path):
    """Defect 1: in the train image, as the task's user, libcuda.so.1 under /usr/local/nvidia/lib64 loads."""
    from pipelines.rehearsal import driver_stub, podman

    folder = driver_stub.build(str(tmp_path / "nvidia"))
    for user in (None, ARBITRARY_UID):
        rc, output = podman.run_quick(CUDA_IMAGE, driver_stub.PROBE, user=user,
                                      mounts=[podman.Mount(folder, driver_stub.DRIVER_ROOT, read_only=True)])
        probe = driver_stub.parse_probe(output)
        assert probe["loaded"], (user, probe)
        assert probe["path"].startswith(driver_stub.LIBRARY_DIR)
