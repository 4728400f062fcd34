"""For tests that interrupt a child process: start it with SIGINT at its default disposition.

A test run started where SIGINT is ignored (a shell's background job, `nohup`) passes the
ignoring on to every child, and Python sets up KeyboardInterrupt only when SIGINT is not
ignored: a child would sleep through the test's SIGINT. `Popen(..., preexec_fn=default_sigint)`
makes such tests independent of the disposition they inherit.
"""

import signal


def default_sigint():
    """In the child, before it starts: SIGINT back to its default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
