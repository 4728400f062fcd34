"""The CUDA image finds the NVIDIA driver library the node mounts (issue 24, defect 1), and the
train step's GPU check says so when it does not.

On GKE, and so on Vertex AI, a GPU container gets the driver's libraries (libcuda.so.1, ...)
mounted at /usr/local/nvidia/lib64 (and .../lib), and nothing puts that folder on the loader's
path: the image must. This machine has no GPU, no driver and no podman, so the loader is shown
with a stand-in: a `libcuda.so.1` built here with gcc (one function, cuDriverGetVersion, like the
driver's), in a temporary folder standing for /usr/local/nvidia (the image's paths are moved
there: the loader searches LD_LIBRARY_PATH's folders the same wherever they are). A Python
process with the environment the CUDA image sets (read from the Dockerfile) loads it by name, as
CUDA does; one with the CPU image's environment, or the image's before the fix, does not.
Where podman and the built image are present, the same is shown in the image itself.
"""

import os
import shutil
import subprocess
import sys

import pytest

from ddsp_core import accelerators
from tests import dockerfile_stages

REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NODE_NVIDIA = "/usr/local/nvidia"
IMAGE = os.environ.get("DDSP_TEST_IMAGE", "localhost/ddsp-pipeline:0.1.0")
STAND_IN_SOURCE = "int cuDriverGetVersion(int *version) { *version = 12040; return 0; }\n"
LOAD_BY_NAME = ("import ctypes\n"
                "version = ctypes.c_int()\n"
                "ctypes.CDLL('libcuda.so.1').cuDriverGetVersion(ctypes.byref(version))\n"
                "print('driver', version.value)\n")
# The base image's own environment (python:3.11-slim sets no LD_LIBRARY_PATH).
BASE_ENV = {"PATH": "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def _dockerfile():
    with open(os.path.join(REPO_DIR, "Dockerfile")) as file:
        return file.read()


def _build_stand_in(folder):
    """A stand-in driver library, `folder`/libcuda.so.1 (soname libcuda.so.1)."""
    folder.mkdir(parents=True, exist_ok=True)
    source = folder.parent / "cuda_stand_in.c"
    source.write_text(STAND_IN_SOURCE)
    subprocess.run(["gcc", "-shared", "-fPIC", "-Wl,-soname,libcuda.so.1", "-o", str(folder / "libcuda.so.1"),
                    str(source)], check=True, capture_output=True)
    return folder / "libcuda.so.1"


needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build the stand-in libcuda.so.1")


@pytest.fixture
def node(tmp_path):
    """A temporary folder standing for the node's /usr/local/nvidia, the stand-in driver in lib64."""
    root = tmp_path / "usr" / "local" / "nvidia"
    _build_stand_in(root / "lib64")
    return root


def _run_with_image_env(stage, node_root):
    """LOAD_BY_NAME in a Python process with the environment of the Dockerfile's `stage`, the
    image's /usr/local/nvidia moved to `node_root`; the process's PATH and Python are this venv's."""
    env = dockerfile_stages.environment(_dockerfile(), stage, BASE_ENV)
    env = {key: value.replace(NODE_NVIDIA, str(node_root)) for key, value in env.items()}
    env["PATH"] = os.path.dirname(sys.executable) + ":" + env.get("PATH", "")
    return subprocess.run([sys.executable, "-c", LOAD_BY_NAME], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


@needs_gcc
def test_the_cuda_image_loads_the_driver_the_node_mounts(node):
    result = _run_with_image_env("cuda", node)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "driver 12040"


@needs_gcc
def test_without_the_images_loader_path_the_driver_is_not_found(node):
    """The control: the CPU image's environment (no LD_LIBRARY_PATH) does not find the same library."""
    result = _run_with_image_env("cpu", node)
    assert result.returncode != 0
    assert "libcuda.so.1: cannot open shared object file" in result.stderr


@needs_gcc
def test_the_cuda_image_also_searches_lib_and_puts_nvidia_smi_on_path(tmp_path):
    root = tmp_path / "usr" / "local" / "nvidia"
    _build_stand_in(root / "lib")  # Some driver installs use lib, not lib64.
    assert _run_with_image_env("cuda", root).stdout.strip() == "driver 12040"
    env = dockerfile_stages.environment(_dockerfile(), "cuda", BASE_ENV)
    assert env["PATH"].split(":")[0] == "/opt/venv/bin" and f"{NODE_NVIDIA}/bin" in env["PATH"].split(":")


@needs_gcc
def test_a_cache_made_at_build_time_does_not_list_a_library_mounted_later(tmp_path):
    """Why the image sets LD_LIBRARY_PATH rather than an /etc/ld.so.conf.d entry: the loader reads
    only ld.so.cache, which ldconfig writes at build time, when the folder is still empty, and
    which the non-root user cannot rewrite at run time. (ldconfig runs on a private cache file
    here, -X: no links are touched.)"""
    if shutil.which("ldconfig") is None and not os.path.exists("/sbin/ldconfig"):
        pytest.skip("needs ldconfig")
    ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
    folder = tmp_path / "usr" / "local" / "nvidia" / "lib64"
    folder.mkdir(parents=True)
    conf, cache = tmp_path / "nvidia.conf", tmp_path / "ld.so.cache"
    conf.write_text(f"{folder}\n")
    subprocess.run([ldconfig, "-X", "-C", str(cache), "-f", str(conf)], check=True, capture_output=True)
    _build_stand_in(folder)  # The node mounts the driver when the container starts.
    listed = subprocess.run([ldconfig, "-p", "-C", str(cache)], capture_output=True, text=True, check=True).stdout
    assert "libcuda.so.1" not in listed


# ---------------------------------------------------------------------------------------------
# The train step's GPU check


def test_the_driver_is_off_the_loader_path_only_when_nothing_finds_it(tmp_path):
    lib64, lib = tmp_path / "lib64", tmp_path / "lib"
    lib64.mkdir()
    (lib64 / "libcuda.so.1").write_bytes(b"")  # Only its presence matters here.
    folders = (str(lib64), str(lib))
    never = lambda name: False  # noqa: E731 - the loader finds nothing by name
    assert accelerators.driver_off_loader_path(folders, {}, loads=never) == [str(lib64)]
    assert accelerators.driver_off_loader_path(folders, {"LD_LIBRARY_PATH": f"/x:{lib64}/"}, loads=never) == []
    # Found by name all the same (e.g. an ld.so.cache made after the mount): nothing to say.
    assert accelerators.driver_off_loader_path(folders, {}, loads=lambda name: True) == []
    assert accelerators.driver_off_loader_path((str(lib),), {}, loads=never) == []  # No driver mounted.


@pytest.mark.skipif(accelerators._loads(accelerators.DRIVER_LIBRARY), reason="a driver library is loadable here")
def test_the_gpu_check_says_the_driver_is_off_the_loader_path_and_what_to_set(tmp_path):
    lib64 = tmp_path / "usr" / "local" / "nvidia" / "lib64"
    lib64.mkdir(parents=True)
    (lib64 / "libcuda.so.1").write_bytes(b"")
    folders = (str(lib64), str(lib64.parent / "lib"))
    devices = accelerators.TrainingDevices("tensorflow", ())
    with pytest.raises(accelerators.AcceleratorError) as raised:
        accelerators.check_requested_accelerator("NVIDIA_L4", devices, driver_folders=folders, environ={})
    message = str(raised.value)
    assert (f"The NVIDIA driver library libcuda.so.1 is in {lib64} (mounted by the node) but not on the loader's "
            f"path (LD_LIBRARY_PATH is unset here), so CUDA cannot start: set LD_LIBRARY_PATH={lib64} ") in message
    assert "CUDA image" in message and "`nvidia-smi` lists the GPU" in message
    # An LD_LIBRARY_PATH of other folders is kept in the value to set.
    with pytest.raises(accelerators.AcceleratorError) as raised:
        accelerators.check_requested_accelerator("gpu", devices, driver_folders=folders,
                                                 environ={"LD_LIBRARY_PATH": "/opt/lib"})
    assert f"(LD_LIBRARY_PATH is '/opt/lib' here)" in str(raised.value)
    assert f"set LD_LIBRARY_PATH={lib64}:/opt/lib " in str(raised.value)
    # On the path (the CUDA image's setting), or no driver there: the message does not say it.
    for environ, where in (({"LD_LIBRARY_PATH": str(lib64)}, folders), ({}, (str(tmp_path / "none"),))):
        with pytest.raises(accelerators.AcceleratorError) as raised:
            accelerators.check_requested_accelerator("gpu", devices, driver_folders=where, environ=environ)
        assert "libcuda.so.1" not in str(raised.value)


def test_the_default_folders_are_the_ones_the_cuda_image_searches():
    env = dockerfile_stages.environment(_dockerfile(), "cuda", BASE_ENV)
    assert env["LD_LIBRARY_PATH"].split(":") == list(accelerators.NODE_DRIVER_FOLDERS)


def _image_present():
    if shutil.which("podman") is None:
        return False
    return subprocess.run(["podman", "image", "exists", IMAGE], capture_output=True, check=False).returncode == 0


@needs_gcc
@pytest.mark.skipif(not _image_present(), reason=f"needs podman and the CUDA image {IMAGE}")
def test_in_the_image_a_driver_mounted_at_usr_local_nvidia_loads(node):
    """The image itself, as its non-root user, with the stand-in mounted where GKE mounts the driver."""
    result = subprocess.run(["podman", "run", "--rm", "-v", f"{node}:{NODE_NVIDIA}:ro", IMAGE, "python3", "-c",
                             LOAD_BY_NAME + "import os; print('uid', os.getuid())"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    assert "driver 12040" in result.stdout and "uid 1000" in result.stdout
