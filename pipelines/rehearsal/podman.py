"""A task's container, run with podman as the service would start it.

The task's `command` replaces the image's entrypoint and its `args` follow the image name, as
in a Kubernetes pod; the CPU and memory limits become cgroup limits (`--cpus`, `--memory`,
no swap on top); the container shares the host's network (the storage emulator listens on
127.0.0.1). A limit above what this machine has is lowered to it (podman refuses more CPUs
than there are), and the summary says so.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import time

# podman's --memory takes bytes; below this a TensorFlow process does not even start.
_MIN_MEMORY = 256 * 2 ** 20


class PodmanError(RuntimeError):
    """podman is missing or cannot run a container; the message says what to do."""


def check_podman(engine="podman"):
    """The engine's path; PodmanError saying how to install it when missing."""
    path = shutil.which(engine)
    if not path:
        raise PodmanError(f"{engine} is not installed: the rehearsal runs each task in a container. Install it "
                          "(as root: docker/setup_podman.sh; see docker/README.md).")
    return path


def image_exists(image, engine="podman"):
    return subprocess.run([engine, "image", "exists", image], capture_output=True, check=False).returncode == 0


@dataclasses.dataclass(frozen=True)
class Mount:
    """A host folder (or file) at a container path."""

    host: str
    container: str
    read_only: bool = False

    def flag(self):
        return f"--volume={self.host}:{self.container}:{'ro' if self.read_only else 'rw'}"


def cpus_here(cpu_limit, host_cpus=None):
    """The --cpus value for a task's CPU limit: the limit, at most this machine's cores; None for no limit."""
    if cpu_limit is None:
        return None
    host_cpus = host_cpus or os.cpu_count() or 1
    return round(min(float(cpu_limit), float(host_cpus)), 2)


def memory_here(memory_limit):
    """The --memory value in bytes for a task's memory limit (None for no limit)."""
    if memory_limit is None:
        return None
    return max(int(memory_limit), _MIN_MEMORY)


def run_argv(image, command, args, name, environment=None, user=None, cpus=None, memory=None, mounts=(),
             workdir=None, engine="podman"):
    """The `podman run` command line of a task's container (not removed, so that its state can
    be read: `inspect` then `remove`)."""
    argv = [engine, "run", f"--name={name}", "--network=host", "--pull=never"]
    if command:
        argv.append(f"--entrypoint={json.dumps(list(command))}")
    if user:
        argv.append(f"--user={user}")
    if cpus is not None:
        argv.append(f"--cpus={cpus}")
    if memory is not None:
        argv += [f"--memory={memory}", f"--memory-swap={memory}"]
    if workdir:
        argv.append(f"--workdir={workdir}")
    for key, value in sorted((environment or {}).items()):
        argv.append(f"--env={key}={value}")
    argv += [mount.flag() for mount in mounts]
    argv.append(image)
    argv += list(args)
    return argv


@dataclasses.dataclass
class ContainerResult:
    """How a container ended: rc (its exit status; 124 when the rehearsal stopped it at its time
    limit), seconds, oom_killed (the memory limit killed it), log (its output, from a file)."""

    rc: int
    seconds: float
    oom_killed: bool
    log_path: str

    def log_tail(self, lines=30):
        try:
            with open(self.log_path, errors="replace") as file:
                return "".join(file.readlines()[-lines:])
        except OSError:
            return "(no log)"


def run(argv, name, log_path, timeout=None, engine="podman"):
    """Runs the container of `argv` (run_argv, with --name=name) to its end, its output to log_path."""
    start = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        try:
            rc = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            subprocess.run([engine, "kill", name], capture_output=True, check=False)
            process.wait()
            rc = 124
    seconds = time.monotonic() - start
    state = inspect_state(name, engine)
    subprocess.run([engine, "rm", "--force", name], capture_output=True, check=False)
    return ContainerResult(rc=rc, seconds=seconds, oom_killed=bool(state.get("OOMKilled")), log_path=log_path)


def inspect_state(name, engine="podman"):
    """The container's State (a dict; {} when it is gone)."""
    result = subprocess.run([engine, "inspect", "--format={{json .State}}", name], capture_output=True, text=True,
                            check=False)
    try:
        return json.loads(result.stdout) if result.returncode == 0 else {}
    except ValueError:
        return {}


def run_quick(image, script, user=None, environment=None, mounts=(), engine="podman", timeout=120):
    """Runs `python3 -c script` in `image` (removed after); returns (rc, output)."""
    argv = [engine, "run", "--rm", "--network=host", "--pull=never"]
    if user:
        argv.append(f"--user={user}")
    for key, value in sorted((environment or {}).items()):
        argv.append(f"--env={key}={value}")
    argv += [mount.flag() for mount in mounts]
    argv += [image, "python3", "-c", script]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    return result.returncode, result.stdout + result.stderr
