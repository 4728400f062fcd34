"""Helpers shared by the benchmarks (standard library only, so any worker may import them).

Load sampling on a shared machine (`busy_cpu_s`, `own_cpu_s`, `other_load`, `wait_for_idle`), one
timed row (`time_case`), peak RSS, the machine and code descriptions printed above every table,
the flags every benchmark takes (`add_common_flags`), and `module_command`, which re-runs a
benchmark module in a fresh process (a worker with its own KERAS_BACKEND, its own peak RSS).

Benchmarks are modules of the `benchmarks` package, run from the repository root:

    python -m benchmarks.bench_dsp --smoke
"""

import hashlib
import importlib.metadata
import os
import platform
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # The repository root.


def module_command(module, *args):
    """The command running `python -m module args...` with this interpreter; run it with cwd=ROOT.

    Args:
        module: Dotted module name, e.g. 'benchmarks.bench_dsp' (a worker re-running its own module).
        *args: Its command-line arguments, as strings.
    """
    return [sys.executable, "-m", module, *args]


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB.


def busy_cpu_s():
    """CPU seconds the whole machine has spent busy since boot (from /proc/stat), or None."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(value) for value in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait are busy.
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu_s():
    times = os.times()
    return times.user + times.system


def other_load(busy, own, wall):
    """Cores busy with other processes since (busy, own, wall) = (busy_cpu_s(), own_cpu_s(), perf_counter())."""
    elapsed = time.perf_counter() - wall
    if busy is None or elapsed < 0.5:  # /proc/stat counts in 10 ms ticks: too coarse for less.
        return None
    return max(0.0, (busy_cpu_s() - busy) - (own_cpu_s() - own)) / elapsed


def wait_for_idle(threshold, max_wait):
    """Sleeps (1 s samples, at most max_wait s) until other processes use <= threshold cores; returns s waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait:
        mark = (busy_cpu_s(), own_cpu_s(), time.perf_counter())
        time.sleep(1.0)
        other = other_load(*mark)
        if other is None or other <= threshold:
            break
    return time.perf_counter() - start


def source_digest(package):
    """Short SHA-1 of the package's .py sources as imported, to spot code that changed between workers."""
    root = os.path.dirname(os.path.abspath(package.__file__))
    digest = hashlib.sha1()
    for directory, subdirectories, files in sorted(os.walk(root)):
        subdirectories.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(directory, name)
                digest.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as handle:
                    digest.update(handle.read())
    return digest.hexdigest()[:10]


def time_case(build, repeats, idle_threshold, max_wait, retries):
    """Compiles and times one row.

    Waits (up to max_wait s) for the machine to be idle before the timed runs; if other
    processes still used more than idle_threshold cores during them, times again, up to
    `retries` more times, and keeps the attempt with the least interference.

    Returns:
        {'first_s', 'times_s', 'other_load', 'attempts', 'waited_s'}.
    """
    start = time.perf_counter()
    run = build()
    run()  # Trace + compile + first run: not in the timed repeats.
    first = time.perf_counter() - start
    best, waited = None, 0.0
    for attempt in range(1 + max(0, retries)):
        if idle_threshold >= 0 and max_wait > 0:
            waited += wait_for_idle(idle_threshold, max_wait)
        times = []
        mark = (busy_cpu_s(), own_cpu_s(), time.perf_counter())
        for _ in range(repeats):
            start = time.perf_counter()
            run()
            times.append(time.perf_counter() - start)
        other = other_load(*mark)
        if best is None or (other is not None and (best["other_load"] is None or other < best["other_load"])):
            best = {"times_s": times, "other_load": other}
        if idle_threshold < 0 or other is None or other <= idle_threshold:
            break
    return dict(best, first_s=first, attempts=attempt + 1, waited_s=waited)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(*names):
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def machine_description():
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    try:
        with open("/proc/meminfo") as handle:
            mem_gb = int(handle.readline().split()[1]) / 1024 ** 2
        memory = f", {mem_gb:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        memory = ""
    return (f"{cpu_model()}, {usable} cores usable ({os.cpu_count()} logical){memory}; "
            f"Python {platform.python_version()}, tensorflow {package_version('tensorflow-cpu', 'tensorflow')}, "
            f"keras {package_version('keras')}, jax {package_version('jax')} (jaxlib {package_version('jaxlib')})")


def code_description():
    """'ddsp_core at <commit>' (+ whether ddsp_core/ has uncommitted changes), from git, if available."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "ddsp_core"], cwd=root, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "ddsp_core (no git information)"
    return f"ddsp_core at commit {commit}" + (" + uncommitted changes in ddsp_core/" if dirty else "")


def load_average():
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def format_number(value, digits=3):
    return "-" if value is None else f"{value:.{digits}f}"


def add_common_flags(parser, max_wait):
    """--idle-threshold, --max-wait, --markdown and --json, shared by every benchmark here."""
    parser.add_argument("--idle-threshold", type=float, default=0.3,
                        help="before timing, wait until other processes use at most this many cores "
                             "(default 0.3; negative: never wait)")
    parser.add_argument("--max-wait", type=float, default=max_wait,
                        help=f"longest wait for an idle machine, in s (default {max_wait:g})")
    parser.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    parser.add_argument("--json", metavar="PATH", help="also write all results, with every timing, to PATH")
