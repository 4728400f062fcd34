"""The conformance suite's own logic, without magenta's venv: porting a test file's imports, and
reading pytest's JUnit report into a row (the run itself needs python3.11 and ddsp==3.7.0)."""

import os
import subprocess
import sys

from conformance import magenta_dsp_compat as compat
from conformance import magenta_venv

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_port_source_changes_only_the_import_lines():
    source = ("from ddsp import core\n"
              "import ddsp.spectral_ops\n"
              "from ddsp.test_util import gen_np_sinusoid\n"
              "    from ddsp import synths  # Indented imports too.\n"
              "import ddspx\n"
              "x = ddsp.core.midi_to_hz(60)\n")
    assert compat.port_source(source) == ("from ddsp_core import core\n"
                                          "import ddsp_core.spectral_ops\n"
                                          "from test_util import gen_np_sinusoid\n"
                                          "    from ddsp_core import synths  # Indented imports too.\n"
                                          "import ddspx\n"
                                          "x = ddsp.core.midi_to_hz(60)\n")


def test_read_junit_counts_outcomes_and_a_module_that_cannot_import(tmp_path):
    report = tmp_path / "core_test.junit.xml"
    report.write_text(
        '<testsuites><testsuite>'
        '<testcase classname="core_test.CoreTest" name="test_a"/>'
        '<testcase classname="core_test.CoreTest" name="test_b"><failure message="AssertionError: 1 != 2"/></testcase>'
        '<testcase classname="core_test.CoreTest" name="test_c"><skipped message="needs a GPU"/></testcase>'
        '<testcase classname="core_test.CoreTest" name="test_d"><error message="boom"/></testcase>'
        '<testcase classname="" name="core_test"><error message="collection failure">'
        'E   ImportError: cannot import name x</error></testcase>'
        '</testsuite></testsuites>')
    row = compat.read_junit(str(report), "core_test")
    assert (row["passed"], row["failed"], row["skipped"], row["errors"]) == (1, 1, 1, 1)
    assert row["cannot_import"] == "ImportError: cannot import name x"
    assert row["failures"] == [("core_test.py::CoreTest::test_b", "AssertionError: 1 != 2"),
                               ("core_test.py::CoreTest::test_d", "boom")]
    assert compat.totals([row])["pass_rate"] == 1 / 3


def test_magenta_side_scripts_are_where_the_benchmarks_run_them():
    for name in ("run_case.py", "generate.py", os.path.join("crepe", "__init__.py")):
        assert os.path.isfile(os.path.join(magenta_venv.SIDE_DIR, name)), name
    env = magenta_venv.magenta_env(magenta_venv.ROOT)
    assert env["PYTHONPATH"].split(os.pathsep)[0] == ROOT
    assert env["TF_USE_LEGACY_KERAS"] == "1"


def test_runs_as_a_module_from_the_repository_root():
    done = subprocess.run([sys.executable, "-m", "conformance.magenta_dsp_compat", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--magenta-venv" in done.stdout
