"""The container files agree with the project: the Dockerfile's extras and copied folders,
.dockerignore, the compose file, the scripts' syntax; and, where podman and a built image
are on the machine, facts about the image itself (user, Python, venv).

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

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCKER_DIR = os.path.join(REPO_DIR, "docker")
IMAGE = os.environ.get("DDSP_TEST_IMAGE", "localhost/ddsp-pipeline:0.1.0")


def _read(*parts):
    with open(os.path.join(REPO_DIR, *parts)) as f:
        return f.read()


def _pyproject():
    return tomllib.loads(_read("pyproject.toml"))


def _dockerfile_arg(name):
    match = re.search(rf"^ARG {name}=(.*)$", _read("Dockerfile"), re.MULTILINE)
    assert match, f"Dockerfile has no 'ARG {name}=' default"
    return match.group(1).strip()


def test_dockerfile_extras_exist_and_are_gpu_capable_without_dev():
    extras = _dockerfile_arg("EXTRAS").split(",")
    defined = _pyproject()["project"]["optional-dependencies"]
    assert set(extras) <= set(defined), f"Dockerfile EXTRAS {extras} not all in pyproject's {sorted(defined)}"
    assert {"tf-gpu", "prepare", "pipeline"} <= set(extras)
    assert "dev" not in extras and "tf" not in extras
    assert any(req.startswith("tensorflow[and-cuda]") for req in defined["tf-gpu"])


def test_dockerfile_copies_every_package_and_dockerignore_lets_them_through():
    dockerfile = _read("Dockerfile")
    include = _pyproject()["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = sorted({pattern.rstrip("*") for pattern in include})
    allowed = [line[1:] for line in _read(".dockerignore").splitlines() if line.startswith("!")]
    for package in packages:
        assert re.search(rf"^COPY {package} ", dockerfile, re.MULTILINE), f"Dockerfile does not copy {package}/"
        assert package in allowed, f".dockerignore excludes {package}/"
    for name in ("pyproject.toml", "README.md", "data/clarinet/train", "data/clarinet/validation"):
        assert name in allowed
    # The data the image bakes in is there.
    for folder in ("train", "validation"):
        assert glob.glob(os.path.join(REPO_DIR, "data", "clarinet", folder, "*.flac"))


def test_dockerfile_runs_as_non_root_with_the_venv_first_on_path():
    dockerfile = _read("Dockerfile")
    users = re.findall(r"^USER (\S+)", dockerfile, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    path = re.search(r"PATH=(\S+)", dockerfile).group(1)
    assert path.split(":")[0] == "/opt/venv/bin"
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
    assert "COPY data/clarinet/train ./data/clarinet/train" in _read("Dockerfile")
    assert "COPY data/clarinet/validation ./data/clarinet/validation" in _read("Dockerfile")
    assert "WORKDIR /opt/ddsp-pipeline" in _read("Dockerfile")


@pytest.mark.parametrize("script", ["setup_podman.sh", "make_base_image.sh", "podman_run_component.sh"])
def test_scripts_parse_and_are_executable(script):
    path = os.path.join(DOCKER_DIR, script)
    assert os.access(path, os.X_OK), f"{path} is not executable (chmod +x)"
    result = subprocess.run(["bash", "-n", path], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def _image_present():
    if shutil.which("podman") is None:
        return False
    return subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _image_present(), reason=f"needs podman and the image {IMAGE} "
                                                 "(docker/podman_run_component.sh builds it)")
def test_image_user_python_and_entry_points():
    script = ("import sys, os, shutil; print(os.getuid(), sys.prefix, '%d.%d' % sys.version_info[:2], "
              "shutil.which('python3'), shutil.which('ddsp_pipeline'), shutil.which('tensorboard'))")
    result = subprocess.run(["podman", "run", "--rm", IMAGE, "python3", "-c", script],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    uid, prefix, version, python3, ddsp_pipeline, tensorboard = result.stdout.split()
    assert uid == "1000"
    assert prefix == "/opt/venv" and version == "3.11"
    assert python3 == "/opt/venv/bin/python3"
    assert ddsp_pipeline == "/opt/venv/bin/ddsp_pipeline" and tensorboard == "/opt/venv/bin/tensorboard"
