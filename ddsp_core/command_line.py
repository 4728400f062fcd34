"""What the command-line programs (ddsp_run, ddsp_play, ddsp_export) share: boolean flags, logging."""

import argparse
import logging
import sys


def bool_flag(parser, name, default, help_text):
    """--name and absl's --noname for a boolean setting."""
    parser.add_argument(f"--{name}", dest=name, action="store_true", default=default, help=help_text)
    parser.add_argument(f"--no{name}", dest=name, action="store_false", help=argparse.SUPPRESS)


class _StderrHandler(logging.StreamHandler):
    """Writes to the sys.stderr of the moment (one a caller or a test swapped in), not to the one
    that was current when the handler was made."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def setup_logging(verbosity="info"):
    """Log lines to stderr: adds one handler (once), keeping any the calling program set up."""
    root = logging.getLogger()
    if not any(isinstance(handler, _StderrHandler) for handler in root.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname).1s %(message)s", datefmt="%H:%M:%S"))
        root.addHandler(handler)
    root.setLevel(getattr(logging, verbosity.upper()))
    for noisy in ("absl", "tensorflow", "h5py", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
