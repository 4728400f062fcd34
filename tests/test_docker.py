"""The container files agree with the project: the Dockerfile's two targets (the CUDA image for
train, the CPU image for the other steps and the Dataflow worker) with their extras and
environment, the copied folders, .dockerignore, the compose file, the scripts' syntax; and,
where podman and a built image are on the machine, facts about the image itself (user, Python,
venv).

No network and no build: building the image takes many minutes
(docker/podman_run_component.sh does that).
"""

import glob
import os
import re
import shutil
import subprocess
import tomllib

import pytest
import yaml

from tests import dockerfile_stages

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKER_DIR = os.path.join(REPO_DIR, "docker")
IMAGE = os.environ.get("DDSP_TEST_IMAGE", "localhost/ddsp-pipeline:0.1.0")  # The CUDA image.
CPU_IMAGE = os.environ.get("DDSP_TEST_CPU_IMAGE", "localhost/ddsp-pipeline:0.1.0-cpu")


def _read(*parts):
    with open(os.path.join(REPO_DIR, *parts)) as f:
        return f.read()


def _pyproject():
    return tomllib.loads(_read("pyproject.toml"))


def _dockerfile_arg(name):
    match = re.search(rf"^ARG {name}=(.*)$", _read("Dockerfile"), re.MULTILINE)
    assert match, f"Dockerfile has no 'ARG {name}=' default"
    return match.group(1).strip()


def _stage(name):
    return dockerfile_stages.stage(_read("Dockerfile"), name)


def _env(name):
    return dockerfile_stages.environment(_read("Dockerfile"), name)


def test_the_cuda_target_is_the_default_and_gets_gpu_tensorflow():
    defined = _pyproject()["project"]["optional-dependencies"]
    assert dockerfile_stages.stages(_read("Dockerfile"))[-1].name == "cuda"  # `podman build .` gives it.
    extras = _stage("cuda").arg_defaults()["CUDA_EXTRAS"].split(",")
    assert set(extras) <= set(defined), f"Dockerfile CUDA_EXTRAS {extras} not all in pyproject's {sorted(defined)}"
    assert {"tf-gpu", "prepare", "pipeline"} <= set(extras)
    assert "dev" not in extras and "tf" not in extras
    assert any(req.startswith("tensorflow[and-cuda]") for req in defined["tf-gpu"])
    assert any('pip install ".[${CUDA_EXTRAS}]"' in run for run in _stage("cuda").args("RUN"))


def test_the_cpu_target_gets_tensorflow_cpu_and_no_nvidia_settings():
    """Defect 10: the CPU steps pulled the 8 GB CUDA image, with NVIDIA_VISIBLE_DEVICES=all."""
    defined = _pyproject()["project"]["optional-dependencies"]
    extras = _stage("cpu").arg_defaults()["CPU_EXTRAS"].split(",")
    assert set(extras) <= set(defined) and {"tf", "prepare", "pipeline"} <= set(extras)
    assert "tf-gpu" not in extras and "dev" not in extras
    assert any(req.startswith("tensorflow-cpu") for req in defined["tf"])
    assert any('pip install ".[${CPU_EXTRAS}]"' in run for run in _stage("cpu").args("RUN"))
    assert not [key for key in _env("cpu") if key.startswith(("NVIDIA_", "CUDA_"))]
    assert "LD_LIBRARY_PATH" not in _env("cpu")


def test_the_cuda_target_asks_for_the_gpu_and_searches_the_nodes_driver_folders():
    """Defect 1 (tests/test_gpu_driver_path.py loads a stand-in driver with this environment)."""
    env = _env("cuda")
    assert env["NVIDIA_VISIBLE_DEVICES"] == "all" and env["NVIDIA_DRIVER_CAPABILITIES"] == "compute,utility"
    assert env["LD_LIBRARY_PATH"].split(":") == ["/usr/local/nvidia/lib64", "/usr/local/nvidia/lib"]


def test_each_target_refuses_the_other_targets_tensorflow():
    """A CUDA TensorFlow in the CPU image (or the reverse) stops the build."""
    cpu, cuda = " ".join(_stage("cpu").args("RUN")), " ".join(_stage("cuda").args("RUN"))
    assert "is_cuda_build" in cpu and "CPU_EXTRAS must name tf, not tf-gpu" in cpu
    assert "is_cuda_build" in cuda and "CUDA_EXTRAS must name tf-gpu" in cuda


def test_dockerfile_copies_every_package_and_dockerignore_lets_them_through():
    dockerfile = _read("Dockerfile")
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = sorted({pattern.rstrip("*") for pattern in include})
    allowed = [line[1:] for line in _read(".dockerignore").splitlines() if line.startswith("!")]
    sources = _stage("sources").args("COPY")
    for package in packages:
        assert f"{package} /src/{package}" in sources, f"Dockerfile does not copy {package}/"
        assert package in allowed, f".dockerignore excludes {package}/"
    for name in ("pyproject.toml", "README.md", "data/clarinet/train", "data/clarinet/validation"):
        assert name in allowed
    for folder in ("data/clarinet/train", "data/clarinet/validation"):
        assert f"{folder} /src/{folder}" in sources
    # Both images install the same sources, into /opt/ddsp-pipeline (WORKDIR of their base stage).
    for target in ("cpu", "cuda"):
        assert _stage(target).base == "base" and "--from=sources /src ./" in _stage(target).args("COPY")
    assert "/opt/ddsp-pipeline" in _stage("base").args("WORKDIR")
    assert "COPY pyproject.toml README.md ./" in dockerfile
    # The data the image bakes in is there.
    for folder in ("train", "validation"):
        assert glob.glob(os.path.join(REPO_DIR, "data", "clarinet", folder, "*.flac"))


@pytest.mark.parametrize("target", ["cpu", "cuda"])
def test_dockerfile_runs_as_non_root_with_the_venv_first_on_path(target):
    dockerfile = _read("Dockerfile")
    users = _stage(target).args("USER")
    assert users and users[-1] not in ("root", "0")
    assert _env(target)["PATH"].split(":")[0] == "/opt/venv/bin"
    assert _stage(target).args("CMD") == ['["bash"]'] and not _stage(target).args("ENTRYPOINT")
    assert "python3 -m venv /opt/venv" in dockerfile
    assert _dockerfile_arg("BASE_IMAGE") == "docker.io/library/python:3.11-slim-bookworm"


def test_compose_runs_the_pipeline_into_the_volume_tensorboard_reads():
    compose = yaml.safe_load(_read("docker", "compose.yaml"))
    pipeline, tensorboard = compose["services"]["pipeline"], compose["services"]["tensorboard"]
    assert pipeline["command"][:2] == ["ddsp_pipeline", "run"]
    root = [arg.split("=", 1)[1] for arg in pipeline["command"] if arg.startswith("--pipeline-root=")]
    assert root == ["/artifacts"]
    assert "artifacts:/artifacts" in pipeline["volumes"]
    assert tensorboard["command"][0] == "tensorboard"
    assert "--logdir=/artifacts" in tensorboard["command"] and "--bind_all" in tensorboard["command"]
    assert "artifacts:/artifacts:ro" in tensorboard["volumes"]
    assert "artifacts" in compose["volumes"]
    # The default audio is where the Dockerfile puts the bundled notes.
    audio = next(arg for arg in pipeline["command"] if arg.startswith("--audio="))
    assert "/opt/ddsp-pipeline/data/clarinet/train/*.flac" in audio
    assert "data/clarinet/train /src/data/clarinet/train" in _stage("sources").args("COPY")
    assert "data/clarinet/validation /src/data/clarinet/validation" in _stage("sources").args("COPY")
    assert "WORKDIR /opt/ddsp-pipeline" in _read("Dockerfile")


@pytest.mark.parametrize("script", ["setup_podman.sh", "make_base_image.sh", "podman_run_component.sh"])
def test_scripts_parse_and_are_executable(script):
    path = os.path.join(DOCKER_DIR, script)
    assert os.access(path, os.X_OK), f"{path} is not executable (chmod +x)"
    result = subprocess.run(["bash", "-n", path], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _image_present(image):
    if shutil.which("podman") is None:
        return False
    return subprocess.run(["podman", "image", "exists", image], capture_output=True, check=False).returncode == 0


# The built images, where podman has them: (image, Dockerfile target).
BUILT = [(image, target) for image, target in ((IMAGE, "cuda"), (CPU_IMAGE, "cpu")) if _image_present(image)]


@pytest.mark.skipif(not BUILT, reason=f"needs podman and the image {IMAGE} or {CPU_IMAGE} "
                                      "(docker/podman_run_component.sh builds them)")
@pytest.mark.parametrize("image, target", BUILT or [("", "")])
def test_image_user_python_entry_points_and_environment(image, target):
    script = ("import sys, os, shutil; print(os.getuid(), sys.prefix, '%d.%d' % sys.version_info[:2], "
              "shutil.which('python3'), shutil.which('ddsp_pipeline'), shutil.which('tensorboard'), "
              "os.environ.get('NVIDIA_VISIBLE_DEVICES', '-'), os.environ.get('LD_LIBRARY_PATH', '-'))")
    result = subprocess.run(["podman", "run", "--rm", image, "python3", "-c", script],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    uid, prefix, version, python3, ddsp_pipeline, tensorboard, visible, library_path = result.stdout.split()
    assert uid == "1000"
    assert prefix == "/opt/venv" and version == "3.11"
    assert python3 == "/opt/venv/bin/python3"
    assert ddsp_pipeline == "/opt/venv/bin/ddsp_pipeline" and tensorboard == "/opt/venv/bin/tensorboard"
    if target == "cpu":
        assert (visible, library_path) == ("-", "-")
    else:
        assert (visible, library_path) == ("all", "/usr/local/nvidia/lib64:/usr/local/nvidia/lib")
