"""Progress of a long step (prepare, train, eval, sample): a bar on a terminal, a line now and then elsewhere.

    with Progress("train", total=600, unit="steps") as progress:
        for ...:
            progress.update(total_loss=4.321)

The mode is chosen when the Progress is made, from its stream (sys.stderr by default):

- a terminal (`stream.isatty()`): a tqdm bar redrawn in place, with the rate, the ETA and
  the values given to `update`; log lines written meanwhile are printed above it
  (`tqdm.contrib.logging.logging_redirect_tqdm`), so they do not shred it;
- anything else (a pipe: kfp logs, CI, docker compose; a file): a compact line when the
  work starts, then at most one every `interval_s` seconds (written by an `update`), and
  one at the end:

      train: 0/600 steps (0%), started
      train: 200/600 steps (33%), 2.1 steps/s, ETA 3m10s, total_loss 4.3210
      train: 600/600 steps (100%), 2.1 steps/s, done in 4m46s, total_loss 3.2100

  (the last says `stopped after` when the work ended before the total).

`set_verbose(True)` (`ddsp_run --verbose`, `ddsp_prepare_tfrecord --verbose`) asks the long
steps for their per-item lines as well, e.g. magenta's `step: N  total_loss: ...` while
training; they read it with `verbose()`. `with verbose_as(flag):` sets it for one piece of work
and then puts the earlier setting back (a pipeline step, `steps.run_step`). Progress itself
does not depend on it.
"""

import contextlib
import os
import sys
import threading
import time

_verbose = False


def set_verbose(flag):
    """Turns the per-item log lines of the long steps on (True) or off (False, the default)."""
    global _verbose
    _verbose = bool(flag)


def verbose():
    """Whether the long steps log a line per item (per step, per file) besides their progress."""
    return _verbose


@contextlib.contextmanager
def verbose_as(flag):
    """`set_verbose(flag)` inside the `with` block; the setting from before it once the block ends."""
    before = _verbose
    set_verbose(flag)
    try:
        yield
    finally:
        set_verbose(before)


def format_duration(seconds):
    """4.2 -> '4.2s', 42 -> '42s', 190 -> '3m10s', 7500 -> '2h05m'."""
    seconds = max(0.0, float(seconds))
    if seconds < 9.95:
        return f"{seconds:.1f}s"
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    hours, minutes = divmod(int(round(seconds / 60)), 60)
    return f"{hours}h{minutes:02d}m"


def format_rate(rate):
    """Units per second to 3 significant digits, without an exponent: 0.0523, 2.1, 48.7, 17100."""
    return f"{rate:.0f}" if rate >= 100 else f"{rate:.3g}"


def format_value(value):
    """A value shown next to the progress: floats with 4 decimals, anything else as str."""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


class Progress:
    """Progress of `total` units of work; see the module's docstring for what it shows.

    Args:
        what: The step's name, first on the bar or line ('train', 'prepare', ...).
        total: Units of work in all (an int >= 0).
        unit: The units, plural ('steps', 'files', 'batches', 'examples').
        initial: Units already done before (a resumed training run's start step).
        stream: Where to write; sys.stderr (of the moment) by default.
        interval_s: Not on a terminal: the least seconds between two progress lines.

    `update` may be called from any thread (the prepare job's worker-log relay calls it
    from its own).
    """

    def __init__(self, what, total, unit, initial=0, stream=None, interval_s=30.0):
        self.what, self.total, self.unit = what, int(total), unit
        self.initial = self.done = int(initial)
        self.stream = sys.stderr if stream is None else stream
        self.interval_s = float(interval_s)
        self.values = {}
        self._lock = threading.Lock()
        self._started = self._last_line = time.monotonic()
        self._closed = False
        self._exit_stack = contextlib.ExitStack()
        self._bar = None
        if _isatty(self.stream):
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            columns, lines = _terminal_size(self.stream)  # 0 when not set (some containers, `script`).
            sized = columns > 0 and lines > 0  # tqdm would draw nothing on a terminal of 0 lines.
            self._bar = self._exit_stack.enter_context(
                tqdm(total=self.total, initial=self.initial, desc=what, unit=unit, file=self.stream,
                     dynamic_ncols=sized, ncols=None if sized else columns or 80,
                     nrows=None if sized else lines or 24, disable=False))
            self._exit_stack.enter_context(logging_redirect_tqdm())
        else:
            self._write(f"{self._head()}, started")

    def update(self, n=1, **values):
        """Counts n more units done; `values` (e.g. total_loss=4.32) are shown from now on."""
        with self._lock:
            if self._closed:
                return
            self.done += n
            self.values.update(values)
            if self._bar is not None:
                if values:
                    self._bar.set_postfix({name: format_value(value) for name, value in self.values.items()},
                                          refresh=False)
                self._bar.update(n)
            elif self.done < self.total and time.monotonic() - self._last_line >= self.interval_s:
                self._write(self.line())

    def line(self, final=False):
        """The compact line of the moment (or, with final, the last one)."""
        elapsed = time.monotonic() - self._started
        rate = (self.done - self.initial) / elapsed if elapsed > 0 else 0.0
        parts = [self._head(), f"{format_rate(rate)} {self.unit}/s"]
        if final:
            parts.append(f"{'done in' if self.done >= self.total else 'stopped after'} {format_duration(elapsed)}")
        else:
            parts.append(f"ETA {format_duration((self.total - self.done) / rate) if rate > 0 else '?'}")
        parts += [f"{name} {format_value(value)}" for name, value in self.values.items()]
        return ", ".join(parts)

    def close(self):
        """Ends the bar (it stays on screen), or writes the last line. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._bar is None:
                self._write(self.line(final=True))
        self._exit_stack.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _head(self):
        percent = 100 * self.done // self.total if self.total > 0 else 100
        return f"{self.what}: {self.done}/{self.total} {self.unit} ({percent}%)"

    def _write(self, line):
        self._last_line = time.monotonic()
        self.stream.write(line + "\n")
        self.stream.flush()


def _terminal_size(stream):
    """(columns, lines) of the terminal `stream` writes to; (0, 0) if unknown."""
    try:
        return tuple(os.get_terminal_size(stream.fileno()))
    except (AttributeError, ValueError, OSError):
        return 0, 0


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # No isatty, or a closed stream.
        return False
