"""How `ddsp_pipeline run` runs each step's process, and stops it on Ctrl-C.

kfp's local SubprocessRunner starts a step with a plain Popen, reads its output a line at a
time and leaves Ctrl-C to chance (a SIGINT sent to the runner alone left training going).
While a local run lasts, `StepProcesses.running()` puts its own `run` in place of kfp's
`run_local_subprocess`, which:

- starts the step in a process group of its own (the step and the Beam workers it starts),
  so that a signal reaches all of them and none is left behind: what is left of the group
  when the step exits is killed;
- relays its output as it comes, through a pseudo-terminal when the runner's output is a
  terminal (so the step draws progress bars) and through a pipe otherwise (the step then
  writes compact progress lines), without the executor input kfp prints at each start;
- on the first Ctrl-C (or SIGTERM) sends SIGINT to the step's group: the train step saves a
  checkpoint and stops, other steps stop; no further step starts. The second Ctrl-C, or
  `grace_s` seconds without the step ending, kills the group at once.

Each step is given `env` (e.g. where to write its status) on top of this environment. The
values do not enter kfp's cache key: they say how to run and report, not what to compute.

`run_local_subprocess` is private to kfp. The replacement relies on three things, checked for
kfp 2.14.1, 2.16.1 and 2.17.3 and pinned by tests/pipelines/test_step_processes.py: the
function is `kfp.local.subprocess_task_handler.run_local_subprocess(full_command, env_vars=None)`
(2.14 to 2.16: `(full_command)`), and `SubprocessTaskHandler.run` calls it by that global name
with keyword arguments only, so a replaced module attribute is what it calls. `running()`
refuses other kfp versions (`check_kfp_version`, `SUPPORTED_KFP`).
"""

import codecs
import contextlib
import importlib.metadata
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time

INTERRUPTED_EXIT_STATUS = 130
# kfp releases whose run_local_subprocess `StepProcesses.running()` may replace: (lowest, first not
# supported), as (major, minor). Widen it only after the tests in test_step_processes.py pass on the new one.
SUPPORTED_KFP = ((2, 14), (2, 18))
KFP_MODULE = "kfp.local.subprocess_task_handler"
KFP_FUNCTION = "run_local_subprocess"


class UnsupportedKfpError(RuntimeError):
    """The installed kfp is not one whose private step runner this module knows how to replace."""


def supported_kfp_range():
    """'>=2.14,<2.18': SUPPORTED_KFP as a pip version specifier."""
    (low_major, low_minor), (high_major, high_minor) = SUPPORTED_KFP
    return f">={low_major}.{low_minor},<{high_major}.{high_minor}"


def check_kfp_version(version=None):
    """Raises UnsupportedKfpError unless kfp `version` (default: the installed one) is in SUPPORTED_KFP.

    Returns the version checked.
    """
    version = version or importlib.metadata.version("kfp")
    found = re.match(r"(\d+)\.(\d+)", version)
    release = (int(found.group(1)), int(found.group(2))) if found else None
    if release is None or not SUPPORTED_KFP[0] <= release < SUPPORTED_KFP[1]:
        raise UnsupportedKfpError(
            f"kfp {version} is installed, but the local runner (pipelines/step_processes.py) replaces kfp's private "
            f"{KFP_MODULE}.{KFP_FUNCTION}, known to work with kfp{supported_kfp_range()}. Install one of those "
            f"(pip install 'kfp{supported_kfp_range()}'), or, to support kfp {version}, run "
            "tests/pipelines/test_step_processes.py against it and widen SUPPORTED_KFP in pipelines/step_processes.py "
            "once they pass.")
    return version


EXECUTOR_INPUT_MARKER = "Got executor_input:"


def _may_be_marker(partial):
    """Whether a line begun as `partial` holds, or may go on into, EXECUTOR_INPUT_MARKER."""
    return EXECUTOR_INPUT_MARKER in partial or any(EXECUTOR_INPUT_MARKER.startswith(partial[start:])
                                                   for start in range(len(partial)))


class WithoutExecutorInput:
    """A text stream that drops the JSON dump kfp's executor prints at the start of every step
    ("Got executor_input: {...}", ~100 lines); everything else passes through. A partial
    line holding a carriage return (a progress bar being redrawn) is passed on at once."""

    def __init__(self, stream):
        self._stream = stream
        self._skipping = False
        self._indent = 0  # The marker line's: the dump ends with "}" at that indent.
        self._partial = ""

    def write(self, text):
        # Lines end at "\n" only: a "\r" inside one is a bar redrawing itself.
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            indent = len(line) - len(line.lstrip())
            if EXECUTOR_INPUT_MARKER in line:
                self._skipping, self._indent = True, indent
            elif self._skipping:
                self._skipping = not (line.strip() == "}" and indent <= self._indent)
            else:
                self._stream.write(line + "\n")
        if "\r" in self._partial and not self._skipping:
            self._stream.write(self._partial)
            self._partial = ""
        return len(text)

    def flush(self):
        # A partial line that is, or may grow into, the marker line waits for its end: passed on
        # now, the marker would never be seen whole (the relay flushes after every read, and an
        # unbuffered step writes print's text and its "\n" apart).
        if self._partial and not self._skipping and self._partial.strip() and not _may_be_marker(self._partial):
            self._stream.write(self._partial)
            self._partial = ""
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


class StepProcesses:
    """Runs the steps of one local run (see the module docstring).

    Attributes:
        signals: How many Ctrl-C/SIGTERM this run has received.
    """

    def __init__(self, output=None, env=None, show_executor_input=False, grace_s=60.0):
        self.output = output or sys.stdout
        self.env = dict(env or {})
        self.show_executor_input = show_executor_input
        self.grace_s = grace_s
        self.signals = 0
        self._first_signal_at = None
        self._process = None

    # -- what kfp calls -------------------------------------------------------------------

    def run(self, full_command, env_vars=None):
        """Runs one step's command to its end; returns its exit status (130: not started, or
        stopped, after Ctrl-C). Signature of kfp's `run_local_subprocess`."""
        if self.signals:
            return INTERRUPTED_EXIT_STATUS
        env = {**os.environ, **(env_vars or {}), **self.env}
        terminal = _is_terminal(self.output)
        if terminal:
            import pty

            reader, writer = pty.openpty()
            _copy_window_size(self.output, writer)
        else:
            reader, writer = os.pipe()
        try:
            process = subprocess.Popen(full_command, stdin=subprocess.DEVNULL, stdout=writer, stderr=writer, env=env,
                                       start_new_session=True, preexec_fn=_default_interrupt)
        finally:
            os.close(writer)
        self._process = process
        try:
            self._relay(reader, process)
            return process.wait()
        finally:
            self._process = None
            os.close(reader)
            _kill_group(process.pid, signal.SIGKILL)  # Whatever of the step's group outlived it.

    # -- signals --------------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self):
        """Within: kfp runs steps through `run`, and Ctrl-C/SIGTERM stop them as described.

        Raises:
            UnsupportedKfpError: the installed kfp is outside SUPPORTED_KFP, or lacks the function.
        """
        import importlib

        version = check_kfp_version()
        subprocess_task_handler = importlib.import_module(KFP_MODULE)
        original = getattr(subprocess_task_handler, KFP_FUNCTION, None)
        if original is None:
            raise UnsupportedKfpError(
                f"kfp {version} has no {KFP_MODULE}.{KFP_FUNCTION}, which the local runner "
                "(pipelines/step_processes.py) replaces: reinstall kfp (pip install --force-reinstall "
                f"'kfp{supported_kfp_range()}').")
        setattr(subprocess_task_handler, KFP_FUNCTION, self.run)
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {}
        if threading.current_thread() is threading.main_thread():
            previous = {number: signal.signal(number, self._on_signal) for number in handled}
        try:
            yield self
        finally:
            setattr(subprocess_task_handler, KFP_FUNCTION, original)
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _on_signal(self, signum, frame):
        self.signals += 1
        process = self._process
        if self.signals == 1:
            self._first_signal_at = time.monotonic()
            what = "the running step saves what it can and stops" if process else "no further step starts"
            _say(f"\nddsp_pipeline run: {signal.Signals(signum).name}: stopping ({what}); "
                 "Ctrl-C again to end it at once.\n")
            if process is not None:
                _kill_group(process.pid, signal.SIGINT)
        else:
            _say("\nddsp_pipeline run: ending the running step now.\n")
            if process is not None:
                _kill_group(process.pid, signal.SIGKILL)

    # -- output ---------------------------------------------------------------------------

    def _relay(self, reader, process):
        """Copies the step's output to self.output until it ends (or its group is killed)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        sink = self.output if self.show_executor_input else WithoutExecutorInput(self.output)
        exited_at = None
        while True:
            if self._first_signal_at is not None and time.monotonic() - self._first_signal_at > self.grace_s:
                _say(f"\nddsp_pipeline run: the step did not stop within {self.grace_s:.0f} s: ending it.\n")
                _kill_group(process.pid, signal.SIGKILL)
                self._first_signal_at = None
            try:
                ready, _, _ = select.select([reader], [], [], 0.2)
            except InterruptedError:  # A signal came in: look again.
                continue
            if ready:
                try:
                    data = os.read(reader, 65536)
                except OSError:  # EIO: the pseudo-terminal's other side is closed.
                    data = b""
                if data:
                    sink.write(decoder.decode(data))
                    sink.flush()
                    continue
                break
            if process.poll() is not None:
                # Exited; a worker it started may hold the output open: give it a moment.
                exited_at = exited_at or time.monotonic()
                if time.monotonic() - exited_at > 1.0:
                    break
        sink.write(decoder.decode(b"", final=True))
        sink.flush()


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _copy_window_size(stream, terminal_fd):
    """Gives the step's pseudo-terminal the size of ours, so its bars fit the width."""
    try:
        import fcntl
        import termios

        size = fcntl.ioctl(stream.fileno(), termios.TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(terminal_fd, termios.TIOCSWINSZ, size)
    except (OSError, AttributeError, ValueError):
        pass


def _default_interrupt():
    """In a step's process before it starts: SIGINT back to its default. A run started where SIGINT
    is ignored (a shell's background job, `nohup`, some CI runners) would pass the ignoring on,
    and Python sets up KeyboardInterrupt only when SIGINT is not ignored: the step would never
    see the Ctrl-C this module forwards."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _kill_group(pid, number):
    try:
        os.killpg(pid, number)
    except (ProcessLookupError, PermissionError):
        pass


def _say(text):
    """Writes to stderr from a signal handler (no buffered stream that may be mid-write)."""
    try:
        os.write(sys.stderr.fileno(), text.encode())
    except (OSError, AttributeError, ValueError):
        pass
