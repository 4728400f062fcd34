"""GPU set-up shared by the steps: memory growth instead of taking all GPU memory at start,
the devices a step trains on, and a check that a requested GPU is visible (which says so when
the node's driver library is there but off the loader's path)."""

import collections
import ctypes
import dataclasses
import logging
import os

# The NVIDIA driver's user-space library, which CUDA (TensorFlow, JAX) loads by this name.
DRIVER_LIBRARY = "libcuda.so.1"
# Where GKE (and so Vertex AI) nodes mount the driver's libraries into a GPU container. Nothing
# puts them on the loader's path there: the image must (the CUDA image's LD_LIBRARY_PATH).
NODE_DRIVER_FOLDERS = ("/usr/local/nvidia/lib64", "/usr/local/nvidia/lib")


def allow_memory_growth():
    """Let the active Keras backend take GPU memory as it needs it.

    TensorFlow: `set_memory_growth` on every visible GPU (must run before the GPU is
    first used). JAX: no preallocation (XLA_PYTHON_CLIENT_PREALLOCATE=false), which
    only takes effect if set before JAX starts its GPU backend. Safe to call on a
    machine without a GPU.
    """
    import keras

    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if keras.backend.backend() != "tensorflow":
        return
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as error:  # The GPU was already initialised.
            logging.warning("Could not enable memory growth on %s: %s", gpu.name, error)


def has_gpu():
    """Whether the active Keras backend sees a GPU."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return any(device.platform == "gpu" for device in jax.devices())
    return False


def cpu_has_bfloat16_units(cpuinfo_path="/proc/cpuinfo"):
    """Whether the CPU computes bfloat16 natively (x86 AMX-BF16 or AVX512-BF16 flags)."""
    try:
        with open(cpuinfo_path) as handle:
            flags = next((line.split(":", 1)[1].split() for line in handle if line.startswith("flags")), [])
    except OSError:
        return False
    return bool({"amx_bf16", "avx512_bf16"} & set(flags))


def fast_precision():
    """'bfloat16' where it is fast (a GPU, or a CPU with bfloat16 units), else 'float32'."""
    return "bfloat16" if has_gpu() or cpu_has_bfloat16_units() else "float32"


class AcceleratorError(RuntimeError):
    """A GPU was requested but the Keras backend sees none; the message says what to check."""


@dataclasses.dataclass(frozen=True)
class TrainingDevices:
    """What the active Keras backend trains on.

    Attributes:
        backend: The Keras backend's name ('tensorflow', 'jax').
        gpus: One description per visible GPU, e.g. 'NVIDIA H200, compute capability 9.0';
            empty when it trains on the CPU.
    """

    backend: str
    gpus: tuple = ()

    @property
    def line(self):
        """E.g. 'Training on 1 GPU (NVIDIA H200, compute capability 9.0), tensorflow backend'."""
        if not self.gpus:
            return f"Training on the CPU (no GPU visible), {self.backend} backend"
        kinds = collections.Counter(self.gpus)  # Identical GPUs once, with their count.
        names = "; ".join(kind if count == 1 else f"{count} x {kind}" for kind, count in kinds.items())
        plural = "s" if len(self.gpus) > 1 else ""
        return f"Training on {len(self.gpus)} GPU{plural} ({names}), {self.backend} backend"

    def __str__(self):
        return self.line


def _tensorflow_gpus():
    """Descriptions of the GPUs TensorFlow sees (without initialising them: memory growth can still be set)."""
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            details = tf.config.experimental.get_device_details(gpu)
        except (ValueError, RuntimeError):
            details = {}
        name = details.get("device_name") or gpu.name
        capability = details.get("compute_capability")
        found.append(f"{name}, compute capability {'.'.join(map(str, capability))}" if capability else name)
    return tuple(found)


def _jax_gpus():
    """Descriptions of the GPUs JAX sees (this starts JAX's backends: call allow_memory_growth first)."""
    import jax

    found = []
    for device in jax.devices():
        if device.platform not in ("gpu", "cuda", "rocm"):
            continue
        capability = getattr(device, "compute_capability", None)
        found.append(f"{device.device_kind}, compute capability {capability}" if capability else device.device_kind)
    return tuple(found)


def training_devices():
    """The devices the active Keras backend trains on, as a `TrainingDevices` (`.line` to log it)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return TrainingDevices(backend, _tensorflow_gpus())
    if backend == "jax":
        return TrainingDevices(backend, _jax_gpus())
    return TrainingDevices(backend)


def requests_gpu(requested):
    """Whether an accelerator name, as the pipeline gives it, asks for a GPU.

    '' (or None): nothing asked. TPU names (Vertex AI 'TPU_V3', Kubernetes
    'cloud-tpus.google.com/v3', 'google.com/tpu'): no, not a GPU. Anything else is a GPU:
    Vertex AI 'NVIDIA_L4', 'NVIDIA_TESLA_T4', Kubernetes 'nvidia.com/gpu', or simply 'gpu'.
    """
    name = (requested or "").strip().lower()
    return bool(name) and "tpu" not in name


def _build_note(backend):
    """What the installed backend was built for, when it explains a missing GPU ('' otherwise)."""
    if backend == "tensorflow":
        import tensorflow as tf

        if not tf.sysconfig.get_build_info().get("is_cuda_build", False):
            return f" This TensorFlow ({tf.__version__}) is a build without CUDA (tensorflow-cpu?)."
    return ""


def _loads(library):
    """Whether the dynamic loader finds `library` by name (LD_LIBRARY_PATH, ld.so.cache, /lib...)."""
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def driver_off_loader_path(folders=NODE_DRIVER_FOLDERS, environ=None, loads=_loads):
    """The folders of `folders` that hold the driver library (libcuda.so.1) where the loader does
    not look: not listed in LD_LIBRARY_PATH, and the library cannot be loaded by name. Empty when
    there is none (no driver mounted, or it is found).

    Args:
        folders: where a node mounts the driver (NODE_DRIVER_FOLDERS).
        environ: the environment whose LD_LIBRARY_PATH the loader read (None: os.environ).
        loads: library name -> whether the loader finds it (this process's loader by default).
    """
    environ = os.environ if environ is None else environ
    found = [folder for folder in folders if os.path.exists(os.path.join(folder, DRIVER_LIBRARY))]
    if not found:
        return []
    searched = {os.path.normpath(entry) for entry in environ.get("LD_LIBRARY_PATH", "").split(":") if entry}
    off_path = [folder for folder in found if os.path.normpath(folder) not in searched]
    if not off_path or loads(DRIVER_LIBRARY):
        return []
    return off_path


def _driver_note(folders, environ):
    """What to do when the node's driver library is off the loader's path ('' when it is not)."""
    off_path = driver_off_loader_path(folders, environ)
    if not off_path:
        return ""
    current = environ.get("LD_LIBRARY_PATH")
    said = "unset" if current is None else repr(current)
    value = ":".join(off_path + ([current] if current else []))
    return (f" The NVIDIA driver library {DRIVER_LIBRARY} is in {' and '.join(off_path)} (mounted by the node) but "
            f"not on the loader's path (LD_LIBRARY_PATH is {said} here), so CUDA cannot start: set "
            f"LD_LIBRARY_PATH={value} in the image or in the container's environment. The CUDA image built from the "
            "repository's Dockerfile (its default target, `cuda`) sets it; the CPU image (tag T-cpu) has no CUDA "
            "at all and must not run the train step.")


def check_requested_accelerator(requested, devices=None, driver_folders=NODE_DRIVER_FOLDERS, environ=None):
    """Fails fast when a GPU was requested and the Keras backend sees none.

    Args:
        requested: The accelerator the pipeline asked for: '' for none (nothing is
            checked), else a name as in `requests_gpu` ('NVIDIA_L4', 'nvidia.com/gpu', 'gpu').
        devices: A `TrainingDevices`; None: `training_devices()`.
        driver_folders: Where the node may have mounted the driver library
            (NODE_DRIVER_FOLDERS); the message says when it is there but off the loader's path.
        environ: The process's environment (None: os.environ).

    Returns:
        The `TrainingDevices`, to log.

    Raises:
        AcceleratorError: a GPU was requested and none is visible; the message names the
            request, what the backend sees, the driver library found off the loader's path
            (and the LD_LIBRARY_PATH to set), and the driver/CUDA checks to do on the node.
    """
    environ = os.environ if environ is None else environ
    devices = training_devices() if devices is None else devices
    if not requests_gpu(requested):
        if (requested or "").strip():
            logging.info("Accelerator %r is not a GPU: only GPU requests are checked.", requested)
        return devices
    if devices.gpus:
        return devices
    if devices.backend == "jax":
        image = ("JAX with CUDA (jax[cuda12]): `python -c \"import jax; print(jax.devices())\"` lists a "
                 "CudaDevice")
    else:
        image = ("GPU TensorFlow (tensorflow[and-cuda], the `tf-gpu` extra): `python -c \"import tensorflow as tf; "
                 "print(tf.config.list_physical_devices('GPU'))\"` lists it")
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    visible = "unset here" if visible is None else f"{visible!r} here"
    raise AcceleratorError(
        f"A GPU was requested ({requested!r}) but the {devices.backend} backend sees no GPU: it would train on "
        f"the CPU, many times slower, so training was not started.{_driver_note(driver_folders, environ)}"
        f"{_build_note(devices.backend)} Check on the node: "
        f"`nvidia-smi` lists the GPU (the NVIDIA driver is loaded and the GPU attached to the container); the "
        f"image has {image}; CUDA_VISIBLE_DEVICES is not empty or -1 (it is {visible}); on Kubernetes, the pod "
        "requests the GPU resource (nvidia.com/gpu) and the node runs the NVIDIA device plugin. To train on the "
        "CPU on purpose, request no accelerator ('')."
    )
