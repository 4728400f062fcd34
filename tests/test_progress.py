"""Tests of ddsp_core.progress: a tqdm bar on a pseudo-terminal, compact lines on a pipe.

The terminal and pipe cases run a child Python process that loads progress.py on its own
(not the package, which imports TensorFlow), so each takes well under a second.
"""

import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time

import pytest

from ddsp_core import progress

PROGRESS_PY = progress.__file__
STEPS, INTERVAL_S = 40, 0.1
# 40 steps of >= 20 ms: a log line halfway, total_loss 4.00, 3.99, ... 3.61.
CHILD = r"""
import importlib.util, logging, sys, time
spec = importlib.util.spec_from_file_location("progress", sys.argv[1])
progress = importlib.util.module_from_spec(spec)
spec.loader.exec_module(progress)
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
steps, interval_s = int(sys.argv[2]), float(sys.argv[3])
started = time.monotonic()
with progress.Progress("train", steps, "steps", interval_s=interval_s) as shown:
    for step in range(steps):
        time.sleep(0.02)
        if step == steps // 2:
            logging.info("a log line in the middle")
        shown.update(total_loss=4.0 - step / 100)
print(time.monotonic() - started)
"""
COMMAND = [sys.executable, "-c", CHILD, PROGRESS_PY, str(STEPS), str(INTERVAL_S)]
PERIODIC = re.compile(r"train: (\d+)/40 steps \((\d+)%\), ([\d.]+) steps/s, ETA ([\dhms.]+), total_loss (\d\.\d{4})")


def run_on_pty(columns=100, lines=30):
    """Runs the child with stderr on a pseudo-terminal of that size; returns what it drew there."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    child = subprocess.Popen(COMMAND, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child exited and closed the terminal.
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    child.communicate(timeout=30)
    assert child.returncode == 0, drawn
    return drawn.decode("utf-8", "replace")


@pytest.mark.parametrize("columns, lines", [(100, 30), (0, 0)], ids=["sized", "no_size"])
def test_on_a_terminal_a_bar_is_redrawn_with_rate_eta_and_loss(columns, lines):
    drawn = run_on_pty(columns, lines)

    assert "\r" in drawn
    bars = re.findall(r"train: +(\d+)%\|[^|]*\| +(\d+)/40 \[(\d\d:\d\d)<(\d\d:\d\d), +([\d.]+)steps/s, "
                      r"total_loss=(\d\.\d{4})\]", drawn)
    assert len(bars) >= 3, drawn  # Redrawn in place, not one line per step ...
    assert len(bars) <= STEPS + 2, drawn
    done = [int(n) for _, n, _, _, _, _ in bars]
    assert done == sorted(done) and done[-1] == STEPS
    assert all(0 < float(rate) <= 60 for *_, rate, _ in bars[1:])  # >= 20 ms a step: at most ~50/s.
    assert bars[-1][-1] == "3.6100"
    # ... and the log line printed meanwhile stands whole on its own line, the bar redrawn after it.
    assert re.search(r"\rINFO a log line in the middle\r\n\r?train: ", drawn), drawn
    assert "steps/s, ETA" not in drawn  # No compact lines on a terminal.


def test_on_a_pipe_compact_lines_at_most_every_interval():
    child = subprocess.run(COMMAND, capture_output=True, text=True, timeout=30)
    assert child.returncode == 0, child.stderr
    elapsed = float(child.stdout)

    assert "\r" not in child.stderr
    lines = [line for line in child.stderr.splitlines() if line.startswith("train: ")]
    assert lines[0] == "train: 0/40 steps (0%), started"
    final = re.fullmatch(r"train: 40/40 steps \(100%\), ([\d.]+) steps/s, done in ([\d.]+)s, total_loss 3\.6100",
                         lines[-1])
    assert final, lines[-1]
    assert 0 < float(final.group(1)) <= 60 and float(final.group(2)) == pytest.approx(elapsed, abs=0.6)
    periodic = [PERIODIC.fullmatch(line) for line in lines[1:-1]]
    assert all(periodic), lines
    assert 2 <= len(periodic) and len(lines) <= elapsed / INTERVAL_S + 2, (elapsed, lines)
    done = [int(match.group(1)) for match in periodic]
    assert done == sorted(done) and done[-1] < STEPS
    for match in periodic:  # The loss of the step shown, and an ETA of what is left at the rate shown.
        n, rate = int(match.group(1)), float(match.group(3))
        assert match.group(2) == str(100 * n // STEPS)
        assert match.group(5) == f"{4.0 - (n - 1) / 100:.4f}"
        assert float(match.group(4).rstrip("s")) == pytest.approx((STEPS - n) / rate, rel=0.05, abs=0.06)
    assert "INFO a log line in the middle" in child.stderr.splitlines()


def test_rate_counts_only_the_work_done_here_and_an_early_end_says_stopped():
    stream = io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        with progress.Progress("train", 200, "steps", initial=100, stream=stream, interval_s=0.0) as shown:
            for _ in range(10):
                time.sleep(0.01)
                shown.update(total_loss=1.5)
            raise KeyboardInterrupt
    lines = stream.getvalue().splitlines()
    assert lines[0] == "train: 100/200 steps (50%), started"
    assert len(lines) == 12  # Started, one per update (interval 0), the last.
    last = re.fullmatch(r"train: 110/200 steps \(55%\), ([\d.]+) steps/s, stopped after [\d.]+s, total_loss 1\.5000",
                        lines[-1])
    assert last, lines[-1]
    assert 0 < float(last.group(1)) <= 101  # 10 steps of >= 10 ms; 1100/s if the 100 before were counted.


def test_close_twice_and_update_after_close_write_nothing_more():
    stream = io.StringIO()
    shown = progress.Progress("eval", 2, "batches", stream=stream)
    shown.update(2)
    shown.close()
    written = stream.getvalue()
    shown.close()
    shown.update()
    assert stream.getvalue() == written
    assert written.splitlines()[-1].startswith("eval: 2/2 batches (100%), ")
    assert shown.done == 2


@pytest.mark.parametrize("seconds, expected", [
    (0.04, "0.0s"), (4.25, "4.2s"), (9.96, "10s"), (42.4, "42s"), (190, "3m10s"), (3599.6, "1h00m"),
    (7500, "2h05m"), (-1, "0.0s"),
], ids=["zero", "seconds", "rounds_to_ten", "tens", "minutes", "rounds_up", "hours", "negative"])
def test_format_duration(seconds, expected):
    assert progress.format_duration(seconds) == expected


@pytest.mark.parametrize("rate, expected", [
    (0.052345, "0.0523"), (2.1, "2.1"), (48.66, "48.7"), (17123.4, "17123"), (0.0, "0"),
], ids=["slow", "units", "tens", "fast", "none"])
def test_format_rate(rate, expected):
    assert progress.format_rate(rate) == expected


def test_verbose_is_off_by_default_and_switchable():
    assert progress.verbose() is False
    try:
        progress.set_verbose(1)
        assert progress.verbose() is True
    finally:
        progress.set_verbose(False)
    assert progress.verbose() is False


def test_verbose_as_sets_it_for_the_block_and_puts_the_earlier_setting_back():
    assert progress.verbose() is False
    with progress.verbose_as(True):
        assert progress.verbose() is True
        with progress.verbose_as(0):
            assert progress.verbose() is False
        assert progress.verbose() is True
    assert progress.verbose() is False
    with pytest.raises(RuntimeError, match="boom"):
        with progress.verbose_as(True):
            raise RuntimeError("boom")
    assert progress.verbose() is False
