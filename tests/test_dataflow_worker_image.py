"""The Dataflow worker image (docker/dataflow-worker.Dockerfile): the CPU step image (tag T-cpu)
plus Beam's boot entrypoint, and the step image left as it was.

Beam's SDK image (where the real `boot` comes from) cannot be pulled here, so the image tests
build the worker image with a stand-in for it: an image holding only /opt/apache/beam/boot, a
shell script that reports the user, its arguments and the environment, then imports Beam's SDK
harness and the project the way boot would start them. Skipped without podman or without the
CPU image (DDSP_TEST_CPU_IMAGE, default localhost/ddsp-pipeline:0.1.0-cpu;
`TARGET=cpu docker/podman_run_component.sh` builds it); the images they build are removed afterwards.
"""

import os
import re
import shutil
import subprocess
import tomllib
import uuid

import pytest

from ddsp_core.steps import dataflow

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKERFILE = os.path.join(REPO_DIR, "docker", "dataflow-worker.Dockerfile")
IMAGE = os.environ.get("DDSP_TEST_CPU_IMAGE", "localhost/ddsp-pipeline:0.1.0-cpu")
STAND_IN_BOOT = """#!/bin/sh
echo "boot uid=$(id -u) default_env=${RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT:-} args=$*"
exec python3 -c "import apache_beam.runners.worker.sdk_worker_main, \
ddsp_core.prepare.prepare_tfrecord_lib; print('harness and project importable')"
"""


def _read(path):
    with open(path) as file:
        return file.read()


def _arg(name):
    match = re.search(rf"^ARG {name}=(.*)$", _read(DOCKERFILE), re.MULTILINE)
    assert match, f"no 'ARG {name}=' default in {DOCKERFILE}"
    return match.group(1).strip()


def test_the_worker_image_extends_the_step_image_with_beams_boot_entrypoint():
    text = _read(DOCKERFILE)
    assert re.search(r"^FROM \$\{BEAM_SDK_IMAGE\} AS beam-sdk$", text, re.MULTILINE)
    assert re.search(r"^FROM \$\{IMAGE\}$", text, re.MULTILINE)
    assert "COPY --from=beam-sdk /opt/apache/beam /opt/apache/beam" in text
    assert re.search(r'^ENTRYPOINT \["/opt/apache/beam/boot"\]$', text, re.MULTILINE)
    assert re.search(r"^CMD \[\]$", text, re.MULTILINE)  # Not the step image's `bash`, which boot would get.
    assert re.search(r"^ENV RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1$", text, re.MULTILINE)
    assert _arg("BEAM_SDK_IMAGE") == "docker.io/apache/beam_python3.11_sdk:${BEAM_VERSION}"


def test_the_worker_image_is_built_from_the_cpu_image():
    """Defect 10: the workers ran the 8 GB CUDA image; now the CPU image (tag T-cpu), as build-image builds it."""
    from components.image import CPU_TAG_SUFFIX

    assert _arg("IMAGE").endswith(f":0.1.0{CPU_TAG_SUFFIX}")
    assert "FROM the CPU image" in _read(os.path.join(REPO_DIR, "docker", "README.md"))


def test_the_boot_entrypoints_beam_version_is_the_one_the_project_pins():
    with open(os.path.join(REPO_DIR, "pyproject.toml"), "rb") as file:
        requirements = [req for group in tomllib.load(file)["project"]["optional-dependencies"].values()
                        for req in group if req.startswith("apache-beam")]
    pins = {re.search(r"==(\d+\.\d+)\.", req + ".").group(1) for req in requirements}
    assert pins == {".".join(_arg("BEAM_VERSION").split(".")[:2])}, (requirements, _arg("BEAM_VERSION"))


def test_the_step_dockerfile_keeps_no_entrypoint():
    """kfp sets each step's command; compose and `podman run IMAGE CMD` rely on the plain CMD."""
    text = _read(os.path.join(REPO_DIR, "Dockerfile"))
    assert "ENTRYPOINT" not in text
    assert re.search(r'^CMD \["bash"\]$', text, re.MULTILINE)


def test_the_docs_name_the_worker_tag_the_pipeline_passes():
    suffix = dataflow.WORKER_TAG_SUFFIX
    assert dataflow.worker_image_for("localhost/ddsp-pipeline:0.1.0") == f"localhost/ddsp-pipeline:0.1.0{suffix}"
    for path in ("docker/README.md", "docs/pipeline.md"):
        text = _read(os.path.join(REPO_DIR, path))
        assert "dataflow-worker.Dockerfile" in text and f"0.1.0{suffix}" in text, path


def _podman(*args, timeout=300, check=True):
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check:
        assert result.returncode == 0, f"podman {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def _image_present():
    if shutil.which("podman") is None:
        return False
    return subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True, check=False).returncode == 0


needs_image = pytest.mark.skipif(not _image_present(), reason=f"needs podman and the image {IMAGE} "
                                                              "(docker/podman_run_component.sh builds it)")


@pytest.fixture(scope="module")
def worker_image(tmp_path_factory):
    """The worker image built from IMAGE with the stand-in boot; removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    stand_in, worker = f"localhost/ddsp-test-beam-sdk-stand-in:{tag}", f"localhost/ddsp-test-dataflow-worker:{tag}"
    folder = tmp_path_factory.mktemp("beam-sdk")
    boot = folder / "opt" / "apache" / "beam" / "boot"
    boot.parent.mkdir(parents=True)
    boot.write_text(STAND_IN_BOOT)
    boot.chmod(0o755)
    (folder / "Containerfile").write_text("FROM scratch\nCOPY opt /opt\n")
    # An image built before the tree changed lacks what the worker Dockerfile checks for: say so, not fail.
    current = _podman("run", "--rm", "--entrypoint", "python3", IMAGE, "-c",
                      "import ddsp_core.prepare.prepare_tfrecord_lib", check=False, timeout=600)
    if current.returncode != 0:
        pytest.skip(f"{IMAGE} was built from an older tree (no ddsp_core.prepare): rebuild it with "
                    f"docker/podman_run_component.sh to run this test")
    try:
        _podman("build", "-q", "-t", stand_in, str(folder))
        _podman("build", "-q", "-f", DOCKERFILE, "--build-arg", f"IMAGE={IMAGE}", "--build-arg",
                f"BEAM_SDK_IMAGE={stand_in}", "-t", worker, os.path.dirname(DOCKERFILE))
        yield {"worker": worker, "stand_in": stand_in}
    finally:
        _podman("rmi", "-f", worker, stand_in, check=False)


@needs_image
def test_dataflow_starts_the_worker_image_with_boots_flags(worker_image):
    """Dataflow runs the image with boot's flags as arguments: they reach boot, as root, with the
    harness in the image's own environment, where Beam and the project import."""
    flags = ["--id=1-1", "--logging_endpoint=localhost:12370", "--artifact_endpoint=localhost:12371",
             "--provision_endpoint=localhost:12372", "--control_endpoint=localhost:12373"]
    result = _podman("run", "--rm", worker_image["worker"], *flags)
    assert f"boot uid=0 default_env=1 args={' '.join(flags)}" in result.stdout
    assert "harness and project importable" in result.stdout


@needs_image
def test_a_kfp_command_overrides_the_workers_entrypoint(worker_image):
    """kfp (Kubernetes' `command`, Vertex AI's containerSpec.command) replaces the ENTRYPOINT, so
    even the worker image runs a step's `sh -c ... python3 -m kfp.dsl.executor_main ...`."""
    result = _podman("run", "--rm", "--entrypoint", "sh", worker_image["worker"], "-c",
                     "python3 -m kfp.dsl.executor_main --help")
    assert "--executor_input" in result.stdout and "boot uid" not in result.stdout


@needs_image
def test_the_step_image_is_unchanged():
    entrypoint, cmd, user = _podman("image", "inspect", "--format",
                                    "{{json .Config.Entrypoint}}|{{json .Config.Cmd}}|{{.Config.User}}",
                                    IMAGE).stdout.strip().split("|")
    assert entrypoint in ("null", "[]") and cmd == '["bash"]' and user == "ddsp"
    result = _podman("run", "--rm", IMAGE, "sh", "-c", "python3 -m kfp.dsl.executor_main --help; id -u")
    assert "--executor_input" in result.stdout and result.stdout.split()[-1] == "1000"


@needs_image
def test_a_worker_image_of_another_beam_version_is_refused(worker_image):
    result = _podman("build", "-q", "-f", DOCKERFILE, "--build-arg", f"IMAGE={IMAGE}", "--build-arg",
                     f"BEAM_SDK_IMAGE={worker_image['stand_in']}", "--build-arg", "BEAM_VERSION=2.76.0",
                     os.path.dirname(DOCKERFILE), check=False)
    assert result.returncode != 0
    message = "but the boot entrypoint is Beam 2.76.0: build with --build-arg BEAM_VERSION=2.77"
    assert message in result.stderr + result.stdout
