"""How much of magenta's own DSP test suite passes on ddsp_core, with only the imports changed.

Takes magenta ddsp 3.7.0's test files for the DSP modules (core, synths, effects,
processors, spectral_ops, losses, dags) from its venv (conformance/magenta_venv.py,
created when missing), copies them into a temporary folder with `ddsp` replaced by
`ddsp_core` in their import lines, and runs each file with this interpreter's pytest (the
project's .venv) in its own process. magenta's test helper `ddsp.test_util` (a sinusoid
generator, not DSP code under test) is copied next to them and imported from there.

Prints one row per file (passed, failed, skipped, errors; "cannot import" when pytest could
not collect the file), the pass rate of the tests that ran (passed / (passed + failed +
errors); skipped tests and files that cannot import are left out), then every failing test
id with the start of its message. Counts come from pytest's JUnit XML report.

magenta's core_test imports librosa (its reference STFT); when this venv lacks it, it is
installed here first, pinned so that no installed package changes version (`--no-install`
refuses and lets the file fail to import instead).

    python -m conformance.magenta_dsp_compat --markdown
    python -m conformance.magenta_dsp_compat --files spectral_ops_test,losses_test --keep /tmp/compat
"""

import argparse
import datetime
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree

from benchmarks import common  # Stdlib-only: machine and code descriptions.
from conformance import magenta_venv

ROOT = magenta_venv.ROOT

TEST_FILES = ("core_test", "synths_test", "effects_test", "processors_test", "spectral_ops_test", "losses_test",
              "dags_test")
# Third-party modules magenta's test files import -> the distribution that provides each.
TEST_REQUIREMENTS = {"absl": "absl-py", "librosa": "librosa", "scipy": "scipy"}
# `from ddsp import x`, `import ddsp.core`, ...: the package name right after from/import.
_DDSP_IMPORT = re.compile(r"^(\s*(?:from|import)\s+)ddsp(?=[\s.])", re.MULTILINE)
_TEST_UTIL_IMPORT = re.compile(r"^(\s*from\s+)ddsp\.test_util(?=\s)", re.MULTILINE)
MESSAGE_CHARS = 200


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--magenta-venv", default=None,
                        help="venv holding ddsp==3.7.0, created when missing (default: $DDSP_MAGENTA_VENV or "
                             "~/.cache/ddsp-pipeline/magenta-ddsp-3.7.0-venv; conformance/magenta_venv.py)")
    parser.add_argument("--files", default=",".join(TEST_FILES), help="comma-separated test modules to run")
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax"),
                        help="KERAS_BACKEND for ddsp_core (magenta's tests themselves use TensorFlow)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per test file")
    parser.add_argument("--keep", help="write the ported tests and JUnit reports here instead of a temp folder")
    parser.add_argument("--no-install", action="store_true", help="do not pip-install missing test imports")
    parser.add_argument("--markdown", action="store_true", help="print Markdown tables")
    args = parser.parse_args(argv)
    args.files = [name.strip() for name in args.files.split(",") if name.strip()]
    unknown = sorted(set(args.files) - set(TEST_FILES))
    if unknown:
        parser.error(f"unknown test files {unknown}; choose from {list(TEST_FILES)}")
    return args


def magenta_package_dir(python):
    """Folder of the installed `ddsp` package of the interpreter `python` (without importing it)."""
    code = "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('ddsp').origin))"
    return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def port_source(text):
    """magenta test source -> the same test against ddsp_core: only import lines change."""
    text = _TEST_UTIL_IMPORT.sub(r"\1test_util", text)
    return _DDSP_IMPORT.sub(r"\1ddsp_core", text)


def ensure_test_requirements(install):
    """pip-installs the test files' third-party imports that this interpreter lacks, pinning what is installed."""
    missing = [dist for module, dist in TEST_REQUIREMENTS.items() if importlib.util.find_spec(module) is None]
    if not missing or not install:
        return missing
    print(f"[compat] installing magenta's test imports into {sys.prefix}: {' '.join(missing)}", file=sys.stderr,
          flush=True)
    frozen = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable"], capture_output=True,
                            text=True, check=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as constraints:
        constraints.write("\n".join(line for line in frozen.splitlines() if "==" in line))
    try:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-c", constraints.name, *missing], check=True)
    finally:
        os.unlink(constraints.name)
    return []


def port_tests(package_dir, names, folder):
    """Writes the ported test files (and magenta's test_util helper) into `folder`; returns their paths."""
    shutil.copy(os.path.join(package_dir, "test_util.py"), os.path.join(folder, "test_util.py"))
    paths = []
    for name in names:
        with open(os.path.join(package_dir, f"{name}.py")) as handle:
            source = handle.read()
        path = os.path.join(folder, f"{name}.py")
        with open(path, "w") as handle:
            handle.write(port_source(source))
        paths.append(path)
    return paths


def _outcome(testcase):
    """('passed' | 'failed' | 'error' | 'skipped', the start of the message) of a JUnit testcase."""
    for tag, outcome in (("failure", "failed"), ("error", "error"), ("skipped", "skipped")):
        element = testcase.find(tag)
        if element is not None:
            lines = [line.strip() for line in (element.get("message") or element.text or "").splitlines()]
            return outcome, " / ".join(line for line in lines if line)[:MESSAGE_CHARS]
    return "passed", ""


def _last_error_line(text):
    """The exception line ('E   ImportError: ...') of a pytest traceback, without its 'E' marker."""
    lines = [line for line in (text or "").splitlines() if line.startswith("E ")]
    return lines[-1][1:].strip()[:MESSAGE_CHARS] if lines else ""


def read_junit(path, name):
    """Per-file counts and failures from a pytest JUnit XML report."""
    row = {"file": name, "passed": 0, "failed": 0, "skipped": 0, "errors": 0, "cannot_import": "", "failures": []}
    for testcase in ElementTree.parse(path).getroot().iter("testcase"):
        outcome, message = _outcome(testcase)
        classname, test = testcase.get("classname", ""), testcase.get("name", "")
        if outcome == "error" and not classname:  # A collection error: the module did not import.
            row["cannot_import"] = _last_error_line(testcase.find("error").text) or message
            continue
        row["errors" if outcome == "error" else outcome] += 1
        if outcome in ("failed", "error"):
            test_class = classname.split(".")[-1]
            row["failures"].append((f"{name}.py::{test_class}::{test}", message))
    return row


def run_file(path, name, folder, args):
    """Runs one ported test file in its own pytest process; returns its row."""
    report = os.path.join(folder, f"{name}.junit.xml")
    env = dict(os.environ, KERAS_BACKEND=args.backend, TF_CPP_MIN_LOG_LEVEL="2",
               PYTHONPATH=os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")])))
    command = [sys.executable, "-m", "pytest", path, "-q", "-p", "no:cacheprovider", "--rootdir", folder,
               f"--junitxml={report}", "-o", "junit_family=xunit1"]
    start = time.perf_counter()
    try:
        completed = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        completed = None
    seconds = time.perf_counter() - start
    if completed is None or not os.path.exists(report):
        why = f"timed out after {args.timeout:.0f} s" if completed is None else (
            f"pytest exited {completed.returncode} without a report: {completed.stderr.strip()[-MESSAGE_CHARS:]}")
        return {"file": name, "passed": 0, "failed": 0, "skipped": 0, "errors": 0, "cannot_import": why,
                "failures": [], "seconds": seconds}
    row = read_junit(report, name)
    row["seconds"] = seconds
    return row


def totals(rows):
    total = {key: sum(row[key] for row in rows) for key in ("passed", "failed", "skipped", "errors")}
    ran = total["passed"] + total["failed"] + total["errors"]
    total["pass_rate"] = total["passed"] / ran if ran else float("nan")
    return total


def format_table(rows, markdown=False):
    headers = ["file", "passed", "failed", "skipped", "errors", "pass rate", "note"]
    lines = []
    for row in rows:
        ran = row["passed"] + row["failed"] + row["errors"]
        rate = f"{row['passed'] / ran:.0%}" if ran else "-"
        note = f"cannot import: {row['cannot_import']}" if row["cannot_import"] else f"{row['seconds']:.0f} s"
        lines.append([row["file"], row["passed"], row["failed"], row["skipped"], row["errors"], rate, note])
    total = totals(rows)
    lines.append(["total", total["passed"], total["failed"], total["skipped"], total["errors"],
                  f"{total['pass_rate']:.1%}", "pass rate = passed / (passed + failed + errors)"])
    lines = [[str(cell) for cell in line] for line in lines]
    if markdown:
        out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        return "\n".join(out + ["| " + " | ".join(line) + " |" for line in lines])
    widths = [max(len(line[i]) for line in [headers] + lines) for i in range(len(headers))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths)) for line in [headers] + lines)


def format_failures(rows, markdown=False):
    failures = [failure for row in rows for failure in row["failures"]]
    if not failures:
        return "No failing tests."
    bullet = "- " if markdown else "  "
    lines = [f"Failing tests ({len(failures)}):"]
    for test_id, message in failures:
        lines.append(f"{bullet}`{test_id}`: {message}" if markdown else f"{bullet}{test_id}: {message}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    started = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    python = magenta_venv.ensure_magenta_venv(args.magenta_venv)
    package_dir = magenta_package_dir(python)
    missing = ensure_test_requirements(install=not args.no_install)
    if missing:
        print(f"[compat] missing test imports (files importing them will fail): {missing}", file=sys.stderr)
    folder = args.keep or tempfile.mkdtemp(prefix="magenta_dsp_compat_")
    os.makedirs(folder, exist_ok=True)
    rows = []
    try:
        for path, name in zip(port_tests(package_dir, args.files, folder), args.files):
            print(f"[compat] {name}", file=sys.stderr, flush=True)
            rows.append(run_file(path, name, folder, args))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"# magenta ddsp 3.7.0's DSP tests on ddsp_core ({args.backend} backend), {started}")
    print(f"# machine: {common.machine_description()}")
    print(f"# code: {common.code_description()}")
    print(format_table(rows, markdown=args.markdown))
    print()
    print(format_failures(rows, markdown=args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
