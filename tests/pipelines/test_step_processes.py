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
    assert not _alive(int(pid_file.read_text()))


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
