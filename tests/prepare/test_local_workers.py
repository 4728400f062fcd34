"""The prepare job's local worker count comes from what the process may use (issue 24, defect 4):
the cgroup's CPU quota and memory limit, the CPU affinity, never more than the cores. The cgroup
folders are fakes in tmp_path, laid out as the kernel mounts them (v2 unified, v1 per controller)."""

import logging
import os

import pytest

from ddsp_core.prepare import local_workers
from ddsp_core.prepare import prepare_tfrecord_lib as lib

GIB = 1 << 30


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n")


@pytest.fixture
def v2(tmp_path):
    """A cgroup v2 hierarchy as a container with its own cgroup namespace sees it: its cgroup is
    the root, no limits yet."""
    root = tmp_path / "cgroup"
    _write(root / "cgroup.controllers", "cpuset cpu io memory pids")
    _write(root / "cpu.max", "max 100000")
    _write(root / "memory.max", "max")
    _write(tmp_path / "self_cgroup", "0::/")
    return root, str(tmp_path / "self_cgroup")


def _count(cgroups, cores=64, affinity=None, **kwargs):
    root, self_cgroup = cgroups
    return local_workers.local_worker_count(str(root), self_cgroup, cpu_count=cores, affinity=affinity or cores,
                                            **kwargs)


def test_no_limits_gives_the_cores(v2):
    counted = _count(v2)
    assert counted.count == 64 and counted.reason == "set by 64 cores; also 64 CPUs in the affinity mask"


def test_a_64_core_node_with_a_4_cpu_quota_gives_4(v2):
    _write(v2[0] / "cpu.max", "400000 100000")
    counted = _count(v2)
    assert counted.count == 4
    assert counted.reason.startswith(f"set by a CPU quota of 4 CPUs ({v2[0] / 'cpu.max'})")
    _write(v2[0] / "cpu.max", "250000 100000")  # 2.5 CPUs: 2 workers.
    assert _count(v2).count == 2
    _write(v2[0] / "cpu.max", "50000 100000")  # Half a CPU: still one.
    assert _count(v2).count == 1


def test_a_16g_memory_limit_caps_it(v2):
    """The pod of defect 4: 16G on a 64-core node, no CPU quota (8 CPUs would have allowed 8)."""
    _write(v2[0] / "memory.max", str(16 * GIB))
    counted = _count(v2)
    expected = (16 * GIB - local_workers.MAIN_PROCESS_MEMORY_BYTES) // local_workers.WORKER_MEMORY_BYTES
    assert 1 <= expected < 16 and counted.count == expected
    assert "a memory limit of 16.0 GiB" in counted.reason and counted.reason.startswith("set by a memory limit")
    # A small limit still runs one worker.
    _write(v2[0] / "memory.max", str(1 * GIB))
    assert _count(v2).count == 1


def test_the_affinity_caps_it_and_the_cores_are_never_exceeded(v2):
    assert _count(v2, cores=64, affinity=8).count == 8
    _write(v2[0] / "cpu.max", "10000000 100000")  # A quota of 100 CPUs on an 8-core node.
    assert _count(v2, cores=8).count == 8


def test_the_tightest_limit_above_the_processs_own_cgroup_counts(tmp_path):
    """Without a cgroup namespace the process sees the whole tree: its own cgroup from
    /proc/self/cgroup, and the limits of the pod above it."""
    root = tmp_path / "cgroup"
    _write(root / "kubepods" / "pod1" / "cpu.max", "300000 100000")
    _write(root / "kubepods" / "pod1" / "memory.max", "max")
    _write(root / "kubepods" / "pod1" / "c1" / "cpu.max", "max 100000")
    _write(root / "kubepods" / "pod1" / "c1" / "memory.max", str(8 * GIB))
    _write(tmp_path / "self_cgroup", "0::/kubepods/pod1/c1")
    counted = _count((root, str(tmp_path / "self_cgroup")))
    assert counted.count == 2  # (8 - 1) GiB / 2.5 GiB, tighter than the pod's 3 CPUs.
    assert local_workers.cpu_quota(str(root), str(tmp_path / "self_cgroup"))[0] == 3.0


def test_cgroup_v1_quota_and_memory(tmp_path):
    """v1 (e.g. an older node): a folder per controller ('cpu,cpuacct'), the container's cgroup
    mounted as the root of each, while /proc/self/cgroup names the host's path."""
    root = tmp_path / "cgroup"
    _write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "600000")
    _write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000")
    _write(root / "memory" / "memory.limit_in_bytes", str(9223372036854771712))  # No limit.
    _write(root / "cpuset" / "cpuset.cpus", "0-63")
    _write(tmp_path / "self_cgroup", "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n0::/")
    cgroups = (root, str(tmp_path / "self_cgroup"))
    counted = _count(cgroups)
    assert counted.count == 6 and "cpu.cfs_quota_us" in counted.reason
    _write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "-1")  # No quota.
    _write(root / "memory" / "memory.limit_in_bytes", str(6 * GIB))
    counted = _count(cgroups)
    assert counted.count == 2 and "memory.limit_in_bytes" in counted.reason


def test_no_cgroup_files_at_all(tmp_path):
    counted = local_workers.local_worker_count(str(tmp_path / "none"), str(tmp_path / "none"), cpu_count=4,
                                               affinity=4)
    assert counted.count == 4


def test_the_local_runner_starts_that_many_workers_and_says_why(monkeypatch, caplog):
    from apache_beam.options.pipeline_options import DirectOptions

    monkeypatch.setattr(local_workers, "local_worker_count",
                        lambda: local_workers.WorkerCount(3, "set by a CPU quota of 3 CPUs (cpu.max)"))
    with caplog.at_level(logging.INFO):
        pipeline = lib.pipeline_for([])
    assert pipeline.options.view_as(DirectOptions).direct_num_workers == 3
    assert "The local Beam runner starts 3 worker processes (set by a CPU quota of 3 CPUs (cpu.max))." in caplog.text
    # Given counts win, as before.
    assert lib.pipeline_for([], num_workers=5).options.view_as(DirectOptions).direct_num_workers == 5
    assert lib.pipeline_for(["--direct_num_workers=7"]).options.view_as(DirectOptions).direct_num_workers == 7


def test_this_machine_gets_a_count():
    counted = local_workers.local_worker_count()
    assert 1 <= counted.count <= (os.cpu_count() or 1) and counted.reason
