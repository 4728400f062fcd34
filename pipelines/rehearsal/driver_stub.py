"""The node's GPU driver as GKE (and Vertex AI) lay it out: /usr/local/nvidia/lib64 holding
libcuda.so.1, mounted into a GPU task's container by the node, not installed in the image.

The rehearsal has no GPU: it builds a stand-in libcuda.so.1 with gcc (cuInit answers
CUDA_ERROR_NO_DEVICE; it has a marker symbol of its own), mounts it at /usr/local/nvidia/lib64
in the train task's container, and probes, as the task's user and with its environment,
whether the dynamic loader finds it by its bare name the way TensorFlow asks for it
(dlopen("libcuda.so.1")). A loader path without /usr/local/nvidia/lib64 is what made the GPU
invisible on GKE and Vertex AI (the train step's GPU check then stops the run).
"""

import json
import os
import subprocess

DRIVER_ROOT = "/usr/local/nvidia"
LIBRARY_DIR = f"{DRIVER_ROOT}/lib64"
MARKER = "ddsp_rehearsal_stub_libcuda"

_SOURCE = r"""
/* A stand-in for the NVIDIA driver library: enough for a loader-path check, no GPU. */
int cuInit(unsigned int flags) { (void)flags; return 100; /* CUDA_ERROR_NO_DEVICE */ }
int cuDriverGetVersion(int *version) { if (version) *version = 12040; return 0; }
int cuDeviceGetCount(int *count) { if (count) *count = 0; return 0; }
int cuGetErrorName(int error, const char **name) { (void)error; if (name) *name = "CUDA_ERROR_NO_DEVICE"; return 0; }
int cuGetErrorString(int error, const char **text) {
  (void)error; if (text) *text = "no CUDA-capable device is detected (rehearsal stand-in)"; return 0; }
const char *%(marker)s(void) { return "stand-in libcuda.so.1 of ddsp_pipeline rehearse"; }
"""

# Run in the task's container: where the loader finds libcuda.so.1, or why not.
PROBE = r"""
import ctypes, json, os, importlib.metadata as md
result = {"LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH", ""), "uid": os.getuid()}
try:
    md.distribution("tensorflow"); result["cuda_tensorflow"] = True
except md.PackageNotFoundError:
    result["cuda_tensorflow"] = False
try:
    lib = ctypes.CDLL("libcuda.so.1")
    getattr(lib, "%(marker)s")
    result["loaded"] = True
    with open("/proc/self/maps") as maps:
        result["path"] = next((line.split()[-1] for line in maps if "libcuda.so" in line), "")
except (OSError, AttributeError) as error:
    result["loaded"] = False
    result["error"] = str(error)
print("PROBE " + json.dumps(result))
""" % {"marker": MARKER}


class StubError(RuntimeError):
    """gcc is missing or could not build the stand-in."""


def build(folder, compiler="gcc"):
    """Builds <folder>/lib64/libcuda.so.1 (the stand-in); returns <folder>, to mount at DRIVER_ROOT."""
    lib64 = os.path.join(folder, "lib64")
    os.makedirs(lib64, exist_ok=True)
    source = os.path.join(folder, "libcuda_stub.c")
    with open(source, "w") as file:
        file.write(_SOURCE % {"marker": MARKER})
    target = os.path.join(lib64, "libcuda.so.1")
    try:
        subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-Wl,-soname,libcuda.so.1", "-o", target, source],
                       check=True, capture_output=True, text=True)
    except FileNotFoundError:
        raise StubError(f"{compiler} is not installed: it builds the stand-in libcuda.so.1 (apt-get install gcc).")
    except subprocess.CalledProcessError as error:
        raise StubError(f"{compiler} could not build the stand-in libcuda.so.1: {error.stderr}")
    os.chmod(folder, 0o755)
    os.chmod(lib64, 0o755)
    return folder


def parse_probe(output):
    """The probe's result (a dict) from the container's output; {'loaded': False, 'error': ...} if absent."""
    for line in output.splitlines():
        if line.startswith("PROBE "):
            return json.loads(line[len("PROBE "):])
    return {"loaded": False, "error": f"the probe printed no result: {output[-500:]}"}


def verdict(result):
    """(ok, sentence) of a probe result. A CPU image (tensorflow-cpu) never loads libcuda: not a failure."""
    if result.get("loaded"):
        return True, f"libcuda.so.1 found by the loader at {result.get('path') or LIBRARY_DIR}"
    where = result.get("LD_LIBRARY_PATH") or "(unset)"
    if result.get("cuda_tensorflow") is False:
        return True, (f"not found (LD_LIBRARY_PATH {where}), but the image has tensorflow-cpu, which never loads "
                      "the driver: give the CUDA image with --image to check the loader path")
    return False, (f"the loader does not find libcuda.so.1 mounted at {LIBRARY_DIR} (LD_LIBRARY_PATH {where}; "
                   f"{result.get('error', '')}): on a GPU node TensorFlow would see no GPU. Put {LIBRARY_DIR} on "
                   "the image's LD_LIBRARY_PATH.")
