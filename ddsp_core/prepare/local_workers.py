"""How many worker processes the prepare job's local Beam runner starts: as many as this process
may use, not as many as the machine has.

In a container the node's core count (`os.cpu_count()`) says nothing about the step's share: a
Kubernetes pod limited to 8 CPUs and 16G on a 64-core node would start 64 workers, each loading
TensorFlow and CREPE, and be OOMKilled. `local_worker_count` takes the fewest of:

- the node's cores (`os.cpu_count()`), never exceeded;
- the CPUs the process may run on (`os.sched_getaffinity`, e.g. a cpuset);
- the cgroup's CPU quota: cgroup v2 `cpu.max` ("QUOTA PERIOD", or "max"), v1
  `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1: none), rounded down, at least 1;
- the cgroup's memory limit: v2 `memory.max`, v1 `memory.limit_in_bytes` (a huge number: none),
  less the launching process's share, divided by a worker's peak memory (WORKER_MEMORY_BYTES).

The cgroup files are read in the process's own cgroup (from /proc/self/cgroup) and each folder
above it up to the hierarchy's root, the tightest limit winning; in a container with its own
cgroup namespace that is the root itself. Everything takes its paths and counts as arguments,
so tests give it fake cgroup folders.
"""

import dataclasses
import math
import os

CGROUP_ROOT = "/sys/fs/cgroup"
PROC_SELF_CGROUP = "/proc/self/cgroup"
GIB = 1 << 30
# A prepare worker's peak resident memory: Beam's SDK harness with TensorFlow, the full CREPE model
# and a file's audio and features. Measured here (2 cores, tensorflow-cpu, the full preset, 13-26 s
# clarinet files, 2026-12-06): each of 2 worker processes peaked at 1.9 GiB resident (VmHWM), the
# launching process at 0.74 GiB; the whole job in one process (--num_workers=1) at 2.0 GiB.
# 2.5 GiB a worker and 1 GiB for the launcher leave headroom for longer files.
WORKER_MEMORY_BYTES = int(2.5 * GIB)
# The launching process (Beam's FnApiRunner, the step's own imports) beside its workers.
MAIN_PROCESS_MEMORY_BYTES = 1 * GIB
# At or above this a cgroup v1 memory limit means none (the kernel writes about 2**63 there).
_NO_LIMIT = 1 << 60


@dataclasses.dataclass(frozen=True)
class WorkerCount:
    """The number of local workers and why: `reason` names each limit found and which one set it."""

    count: int
    reason: str

    def __str__(self):
        return f"{self.count} worker process{'es' if self.count != 1 else ''} ({self.reason})"


def _read(path):
    try:
        with open(path) as file:
            return file.read().strip()
    except OSError:
        return None


def own_cgroups(proc_self_cgroup=PROC_SELF_CGROUP):
    """{controller: path} of /proc/self/cgroup ('' for cgroup v2's unified line); {} when unreadable.
    A v1 line naming several controllers ('cpu,cpuacct') gives each of them."""
    text = _read(proc_self_cgroup) or ""
    found = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for controller in parts[1].split(",") if parts[1] else [""]:
            found[controller] = parts[2] or "/"
    return found


def _folders(mount, path):
    """`mount`/`path` and each folder above it up to `mount` (those that exist), deepest first."""
    folders, relative = [], (path or "/").strip("/")
    while True:
        folder = os.path.join(mount, relative) if relative else mount
        if os.path.isdir(folder):
            folders.append(folder)
        if not relative:
            return folders
        relative = os.path.dirname(relative)


def _v1_mounts(cgroup_root, controller):
    """The v1 hierarchy folders that hold `controller` ('cpu' is also mounted as 'cpu,cpuacct')."""
    try:
        names = os.listdir(cgroup_root)
    except OSError:
        return []
    return [os.path.join(cgroup_root, name) for name in sorted(names) if controller in name.split(",")]


def cpu_quota(cgroup_root=CGROUP_ROOT, proc_self_cgroup=PROC_SELF_CGROUP):
    """The tightest CPU quota over the process's cgroups, in CPUs (e.g. 4.0), and the file that
    sets it; (None, '') when none is set."""
    cgroups, limits = own_cgroups(proc_self_cgroup), []
    for folder in _folders(cgroup_root, cgroups.get("", "/")):  # cgroup v2
        fields = (_read(os.path.join(folder, "cpu.max")) or "").split()
        if len(fields) == 2 and fields[0] != "max":
            limits.append((int(fields[0]) / int(fields[1]), os.path.join(folder, "cpu.max")))
    for mount in _v1_mounts(cgroup_root, "cpu"):
        for folder in _folders(mount, cgroups.get("cpu", "/")):
            quota, period = (_read(os.path.join(folder, f"cpu.cfs_{name}_us")) for name in ("quota", "period"))
            if quota and period and int(quota) > 0 and int(period) > 0:
                limits.append((int(quota) / int(period), os.path.join(folder, "cpu.cfs_quota_us")))
    return min(limits) if limits else (None, "")


def memory_limit(cgroup_root=CGROUP_ROOT, proc_self_cgroup=PROC_SELF_CGROUP):
    """The tightest memory limit over the process's cgroups, in bytes, and the file that sets it;
    (None, '') when none is set."""
    cgroups, limits = own_cgroups(proc_self_cgroup), []
    for folder in _folders(cgroup_root, cgroups.get("", "/")):  # cgroup v2
        value = _read(os.path.join(folder, "memory.max"))
        if value and value != "max":
            limits.append((int(value), os.path.join(folder, "memory.max")))
    for mount in _v1_mounts(cgroup_root, "memory"):
        for folder in _folders(mount, cgroups.get("memory", "/")):
            value = _read(os.path.join(folder, "memory.limit_in_bytes"))
            if value and 0 < int(value) < _NO_LIMIT:
                limits.append((int(value), os.path.join(folder, "memory.limit_in_bytes")))
    return min(limits) if limits else (None, "")


def local_worker_count(cgroup_root=CGROUP_ROOT, proc_self_cgroup=PROC_SELF_CGROUP, cpu_count=None, affinity=None,
                       worker_memory_bytes=WORKER_MEMORY_BYTES, main_memory_bytes=MAIN_PROCESS_MEMORY_BYTES):
    """How many local workers this process can run (a `WorkerCount`, at least 1, at most the cores).

    Args:
        cgroup_root: where the cgroup hierarchies are mounted (v2 at the root, v1 in a folder
            per controller).
        proc_self_cgroup: the file naming the process's cgroups.
        cpu_count: the node's cores; None: os.cpu_count().
        affinity: how many CPUs the process may run on; None: len(os.sched_getaffinity(0))
            where there is such a call.
        worker_memory_bytes, main_memory_bytes: a worker's peak memory, and the launching
            process's, for the memory limit's share.
    """
    cores = cpu_count or os.cpu_count() or 1
    if affinity is None and hasattr(os, "sched_getaffinity"):
        affinity = len(os.sched_getaffinity(0))
    caps = [(cores, f"{cores} cores")]
    if affinity:
        caps.append((affinity, f"{affinity} CPUs in the affinity mask"))
    quota, quota_file = cpu_quota(cgroup_root, proc_self_cgroup)
    if quota is not None:
        caps.append((max(1, math.floor(quota)), f"a CPU quota of {quota:g} CPUs ({quota_file})"))
    memory, memory_file = memory_limit(cgroup_root, proc_self_cgroup)
    if memory is not None:
        fits = max(1, (memory - main_memory_bytes) // worker_memory_bytes)
        caps.append((fits, f"a memory limit of {memory / GIB:.1f} GiB ({memory_file}), less "
                           f"{main_memory_bytes / GIB:g} GiB for the launcher, at {worker_memory_bytes / GIB:g} GiB a "
                           f"worker: {fits}"))
    count, limiting = min(caps, key=lambda cap: cap[0])
    others = [text for value, text in caps if text != limiting]
    reason = f"set by {limiting}" + (f"; also {', '.join(others)}" if others else "")
    return WorkerCount(count, reason)
