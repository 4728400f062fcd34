"""How the local runner runs a step's process: output relayed on a pipe and on a pseudo-terminal
(progress bars' carriage returns pass), kfp's executor input dropped, Ctrl-C forwarded to the
step's whole process group, a second Ctrl-C killing it, nothing of the group left behind."""

import io
import os
import pty
import signal
import sys
import textwrap
import threading
import time

from pipelines.step_processes import StepProcesses, WithoutExecutorInput


def _python(code):
    return [sys.executable, "-c", textwrap.dedent(code)]


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # A zombie is dead too.
        with open(f"/proc/{pid}/stat") as file:
            return file.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _ended(pid, within_s=2.0):
    """Whether the process is gone within `within_s` (a SIGKILL sent to its group takes effect
    a moment after killpg returns, on a busy machine)."""
    deadline = time.monotonic() + within_s
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_output_is_relayed_without_the_executor_input():
    output = io.StringIO()
    code = """
        import sys
        print("before")
        print("Got executor_input: {")
        print('    "inputs": {"x": 1}')
        print("}")
        print("after", file=sys.stderr)
    """
    status = StepProcesses(output=output).run(_python(code))
    assert status == 0
    assert output.getvalue().splitlines() == ["before", "after"]


def test_the_step_gets_the_runs_environment():
    output = io.StringIO()
    code = "import os; print(os.environ['DDSP_TEST_VALUE'], os.environ['FROM_KFP'])"
    status = StepProcesses(output=output, env={"DDSP_TEST_VALUE": "run"}).run(_python(code), {"FROM_KFP": "kfp"})
    assert status == 0 and output.getvalue().strip() == "run kfp"


def test_on_a_terminal_the_step_sees_one_and_its_bar_redraws_pass():
    master, slave = pty.openpty()
    terminal = os.fdopen(slave, "w")
    code = """
        import sys, time
        print("tty" if sys.stderr.isatty() else "pipe", flush=True)
        for i in range(3):
            sys.stderr.write(f"\\rbar {i}/3"); sys.stderr.flush(); time.sleep(0.05)
        sys.stderr.write("\\n")
    """
    status = StepProcesses(output=terminal).run(_python(code))
    terminal.flush()
    received = b""
    os.set_blocking(master, False)
    try:
        while True:
            received += os.read(master, 4096)
    except (BlockingIOError, OSError):
        pass
    terminal.close()
    os.close(master)
    text = received.decode()
    assert status == 0
    assert text.startswith("tty")
    assert "\rbar 0/3" in text and "\rbar 2/3" in text


def test_on_a_pipe_the_step_sees_no_terminal():
    output = io.StringIO()
    StepProcesses(output=output).run(_python("import sys; print(sys.stderr.isatty(), sys.stdout.isatty())"))
    assert output.getvalue().strip() == "False False"


def _signal_later(processes, times, delay_s, gap_s=0.3, ready=None):
    """Ctrl-C `times` times, `delay_s` after the start (or after the file `ready` appears: a loaded
    machine can take longer than delay_s to start the step's interpreter)."""
    def send():
        deadline = time.monotonic() + 60
        while ready is not None and not os.path.exists(ready) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay_s)
        for _ in range(times):
            processes._on_signal(signal.SIGINT, None)
            time.sleep(gap_s)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def test_ctrl_c_reaches_the_step_and_the_workers_it_started(tmp_path):
    """The step starts a worker (as Beam does); both get the SIGINT; the step ends with 130."""
    pid_file = tmp_path / "worker.pid"
    code = f"""
        import signal, subprocess, sys, time
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(worker.pid))
        print("started", flush=True)
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            print("step got SIGINT", flush=True)
            worker.wait(timeout=10)
            print("worker ended with", worker.returncode, flush=True)
            sys.exit(130)
    """
    output = io.StringIO()
    processes = StepProcesses(output=output)
    _signal_later(processes, times=1, delay_s=0.5, ready=pid_file)
    started = time.monotonic()
    status = processes.run(_python(code))
    assert status == 130
    assert time.monotonic() - started < 30
    assert "step got SIGINT" in output.getvalue()
    assert f"worker ended with -{int(signal.SIGINT)}" in output.getvalue()
    assert not _alive(int(pid_file.read_text()))


def test_ctrl_c_reaches_the_step_when_the_run_was_started_with_sigint_ignored(tmp_path):
    """As when `make test` or `ddsp_pipeline run` is started as a background job (the shell ignores
    SIGINT there, and children inherit that): the step must still get the forwarded SIGINT."""
    ready = tmp_path / "ready"
    code = f"""
        import sys, time
        open({str(ready)!r}, "w").write("up")
        try:
            time.sleep(60)
        except KeyboardInterrupt:
            print("step got SIGINT", flush=True)
            sys.exit(130)
    """
    output = io.StringIO()
    processes = StepProcesses(output=output)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _signal_later(processes, times=1, delay_s=0.5, ready=ready)
        started = time.monotonic()
        status = processes.run(_python(code))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert status == 130, output.getvalue()
    assert time.monotonic() - started < 30
    assert "step got SIGINT" in output.getvalue()


def test_a_second_ctrl_c_kills_a_step_that_does_not_stop(tmp_path):
    pid_file = tmp_path / "worker.pid"
    code = f"""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        worker = subprocess.Popen([sys.executable, "-c",
                                   "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(worker.pid))
        print("started", flush=True)
        time.sleep(60)
    """
    processes = StepProcesses(output=io.StringIO())
    _signal_later(processes, times=2, delay_s=2.0)
    started = time.monotonic()
    status = processes.run(_python(code))
    assert status == -signal.SIGKILL
    assert time.monotonic() - started < 8
    assert _ended(int(pid_file.read_text()))


def test_no_step_starts_after_ctrl_c():
    processes = StepProcesses(output=io.StringIO())
    processes._on_signal(signal.SIGINT, None)
    output = io.StringIO()
    processes.output = output
    assert processes.run(_python("print('ran')")) == 130
    assert output.getvalue() == ""


def test_a_worker_left_behind_is_ended(tmp_path):
    """A step that exits leaving a process of its group running (holding the output open)."""
    pid_file = tmp_path / "worker.pid"
    code = f"""
        import subprocess, sys
        worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open({str(pid_file)!r}, "w").write(str(worker.pid))
    """
    started = time.monotonic()
    assert StepProcesses(output=io.StringIO()).run(_python(code)) == 0
    assert time.monotonic() - started < 10
    time.sleep(0.2)
    assert not _alive(int(pid_file.read_text()))


def test_the_executor_input_filter_passes_partial_bar_lines_at_once():
    output = io.StringIO()
    stream = WithoutExecutorInput(output)
    stream.write("\rtrain:  10%|#    | 1/10")
    assert output.getvalue() == "\rtrain:  10%|#    | 1/10"
    stream.write("\rtrain: 100%|#####| 10/10\n")
    assert output.getvalue().endswith("10/10\n")


# -- what the replacement of kfp's private run_local_subprocess relies on -------------------------
# These fail when a kfp release changes it; then adapt StepProcesses.running() and SUPPORTED_KFP.


def test_the_installed_kfp_is_supported_and_others_are_refused_with_what_to_do():
    import kfp
    import pytest

    from pipelines import step_processes

    assert kfp.__version__.startswith("2.17."), kfp.__version__  # What these pins were written against.
    assert step_processes.check_kfp_version() == kfp.__version__
    assert step_processes.supported_kfp_range() == ">=2.14,<2.18"
    for accepted in ("2.14.1", "2.16.1", "2.17.3"):
        assert step_processes.check_kfp_version(accepted) == accepted
    for refused in ("2.13.0", "2.18.0", "3.0.0", "nightly"):
        with pytest.raises(step_processes.UnsupportedKfpError) as raised:
            step_processes.check_kfp_version(refused)
        message = str(raised.value)
        assert f"kfp {refused} is installed" in message
        assert "kfp>=2.14,<2.18" in message and "pip install" in message
        assert "pipelines/step_processes.py" in message and "SUPPORTED_KFP" in message


def test_kfp_has_run_local_subprocess_with_the_signature_run_takes():
    import importlib
    import inspect

    from pipelines import step_processes

    module = importlib.import_module(step_processes.KFP_MODULE)
    assert module.__name__ == "kfp.local.subprocess_task_handler"
    function = getattr(module, step_processes.KFP_FUNCTION)
    parameters = inspect.signature(function).parameters
    assert list(parameters) == ["full_command", "env_vars"]
    assert parameters["env_vars"].default is None
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in parameters.values())
    ours = inspect.signature(StepProcesses().run).parameters
    assert list(ours) == list(parameters) and ours["env_vars"].default is None


def test_kfp_calls_run_local_subprocess_by_its_global_name_with_keywords():
    """SubprocessTaskHandler.run looks the name up in its module at each call (so the replaced
    attribute is what runs) and passes full_command and env_vars by keyword; no other module of
    kfp.local holds a copy of the function under that name."""
    import ast
    import glob
    import importlib
    import inspect
    import os
    import textwrap

    from pipelines import step_processes

    module = importlib.import_module(step_processes.KFP_MODULE)
    tree = ast.parse(textwrap.dedent(inspect.getsource(module.SubprocessTaskHandler.run)))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == step_processes.KFP_FUNCTION]
    assert len(calls) == 1
    assert calls[0].args == []
    assert sorted(keyword.arg for keyword in calls[0].keywords) == ["env_vars", "full_command"]
    assigned = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and node.id == step_processes.KFP_FUNCTION
                and not isinstance(node.ctx, ast.Load)]
    assert assigned == []  # Not rebound locally before the call.
    others = [path for path in glob.glob(os.path.join(os.path.dirname(module.__file__), "*.py"))
              if step_processes.KFP_FUNCTION in open(path).read() and not path.endswith("_test.py")]
    assert [os.path.basename(path) for path in others] == ["subprocess_task_handler.py"]


def test_running_replaces_kfps_function_and_puts_it_back():
    import importlib

    from pipelines import step_processes

    module = importlib.import_module(step_processes.KFP_MODULE)
    original = module.run_local_subprocess
    processes = StepProcesses(output=io.StringIO())
    with processes.running():
        assert module.run_local_subprocess == processes.run
    assert module.run_local_subprocess is original


def test_running_refuses_an_unsupported_kfp_before_replacing_anything(monkeypatch):
    import importlib

    import pytest

    from pipelines import step_processes

    module = importlib.import_module(step_processes.KFP_MODULE)
    original = module.run_local_subprocess
    monkeypatch.setattr(step_processes.importlib.metadata, "version", lambda name: "2.18.0")
    with pytest.raises(step_processes.UnsupportedKfpError, match=r"kfp 2\.18\.0 is installed"):
        with StepProcesses(output=io.StringIO()).running():
            pass
    assert module.run_local_subprocess is original


def test_the_executor_input_is_dropped_when_its_marker_line_comes_in_pieces():
    """An unbuffered step writes print's text and its newline apart, and the relay flushes after
    every read: the marker line must still be seen whole."""
    output = io.StringIO()
    stream = WithoutExecutorInput(output)
    for piece in ["before", "\n", "Got exec", "utor_input: {", "\n", '    "inputs": {"x": 1}', "\n", "}", "\n",
                  "after", "\n"]:
        stream.write(piece)
        stream.flush()
    assert output.getvalue() == "before\nafter\n"
    stream.write("\rtrain:  10%")  # A bar's partial line still passes at once.
    assert output.getvalue().endswith("\rtrain:  10%")
