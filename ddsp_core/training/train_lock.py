"""One training run at a time in a folder: a lock file, `<save_dir>/train.lock`.

    from ddsp_core.training import train_lock

    with train_lock.held(save_dir):            # LockHeld if another run trains there now
        ...                                    # train into save_dir
    with train_lock.held(save_dir, wait_secs=600):   # or wait up to 10 min for it to end

Two runs that share a save_dir (or a pipeline's resume folder) would otherwise both write
checkpoints into it. The lock is a file created only where none exists, in one atomic step:

- a local folder (or a FUSE mount such as /gcs/...): `os.open` with O_CREAT | O_EXCL;
- gs://: an object written with the precondition ifGenerationMatch=0, which Cloud Storage
  refuses (412) when the object exists;
- other URLs (Beam's other filesystems): a check, then a write; not atomic, and logged so.

It holds JSON naming its holder, which the refusal quotes:

    {"host": "trainer-1", "pid": 4242, "started": "2026-12-01T10:00:00+00:00",
     "command": "ddsp_run --mode=train --save_dir=...", "token": "<random, this holder's>"}

A lock left by a run that died without removing it (kill -9, a crash of the machine) is
stale when it was written on this host by a process that is no longer running: it is taken
over, with a warning. A lock written on another host is never judged stale (its process
cannot be seen from here): the message says to delete the file if that run is gone.

The lock is removed when the `with` block ends, however it ends (an exception, Ctrl-C,
SIGTERM turned into KeyboardInterrupt), and only if it is still this holder's.
"""

import contextlib
import datetime
import json
import logging
import os
import shlex
import socket
import sys
import time
import uuid

from ddsp_core.io import storage

LOCK_FILE = "train.lock"
# How often a waiting run looks at the lock again (never past its deadline).
POLL_SECS = 2.0


class LockHeld(RuntimeError):
    """Another run holds the folder's training lock; `path` is the lock file, `holder` its record
    ({'host', 'pid', 'started', 'command'}; {} when the file could not be read)."""

    def __init__(self, path, holder, waited_secs=0):
        self.path = path
        self.holder = dict(holder or {})
        folder = path.rsplit("/", 1)[0]
        waited = f" (waited {waited_secs:g} s)" if waited_secs else ""
        super().__init__(
            f"{folder} is in use by another training run{waited}: {describe(self.holder)} holds the lock {path}. "
            f"Wait for that run to end (two runs training into one folder would overwrite each other's "
            f"checkpoints), or, if it is no longer running (it crashed, or its machine is gone), delete {path} "
            "and start again.")


def describe(holder):
    """'pid 4242 on host trainer-1, since 2026-12-01T10:00:00+00:00 (command: ddsp_run ...)'."""
    if not holder.get("pid") and not holder.get("host"):
        return "a run that left no details (the lock file is empty or unreadable: it may be being written)"
    text = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}, since {holder.get('started', '?')}"
    return text + (f" (command: {holder['command']})" if holder.get("command") else "")


@contextlib.contextmanager
def held(save_dir, wait_secs=0, poll_secs=POLL_SECS):
    """Holds `<save_dir>/train.lock` for the `with` block; yields the lock file's path.

    Args:
        save_dir: The training folder, local or gs:// (created if absent).
        wait_secs: 0: refuse at once when another run holds the lock; > 0: look again every
            poll_secs until it is free, for at most this long.
        poll_secs: Seconds between looks while waiting.

    Raises:
        LockHeld: another run holds the lock (after wait_secs, if given); the message names it
            (host, pid, since when, its command), the lock file and what to do.
    """
    lock = _lock_file(storage.join(save_dir, LOCK_FILE))
    token = uuid.uuid4().hex
    started, said = time.monotonic(), False
    while True:
        holder = _acquire(lock, _record(token), token)
        if holder is None:
            break
        waited = time.monotonic() - started
        if waited >= wait_secs:
            raise LockHeld(lock.path, holder, waited_secs=round(waited, 1) if wait_secs > 0 else 0)
        if not said:
            logging.info("Waiting up to %g s for the training lock %s, held by %s.", wait_secs, lock.path,
                         describe(holder))
            said = True
        time.sleep(max(0.0, min(poll_secs, wait_secs - waited)))
    logging.info("Holding the training lock %s.", lock.path)
    try:
        yield lock.path
    finally:
        try:
            if not lock.remove_if_ours(token):
                logging.warning("The training lock %s was no longer this run's when it ended (deleted by hand, or "
                                "taken over): left as it is.", lock.path)
        except Exception as error:  # Never hide the block's own exception.
            logging.warning("Could not remove the training lock %s (%s: %s): delete it before the next run.",
                            lock.path, type(error).__name__, error)



def _record(token):
    """The lock file's contents for this process, as of now: JSON bytes."""
    record = {"host": socket.gethostname(), "pid": os.getpid(),
              "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": shlex.join(sys.argv), "token": token}
    return (json.dumps(record, indent=1) + "\n").encode("utf-8")


def _acquire(lock, data, token):
    """Creates the lock file; None when this run holds it now, else the holder's record. A stale
    lock (this host, its process gone) is removed, with a warning, and creation tried again. A
    lock with this run's token is its own (a create retried after its answer was lost)."""
    holder = {}
    for _ in range(3):  # A few rounds: the file may vanish or be taken over between the steps.
        if lock.create(data):
            return None
        found = lock.read()
        if found is None:  # Released meanwhile: try again.
            continue
        holder, version = found
        if holder.get("token") == token:
            return None
        if not is_stale(holder):
            return holder
        logging.warning("Taking over the stale training lock %s: %s, and that process is no longer running.",
                        lock.path, describe(holder))
        lock.remove_if(version)
    return holder


def is_stale(holder):
    """Whether a lock record is a dead run's: written on this host by a process that is gone.
    A record from another host, or one without a usable pid, never is."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or isinstance(pid, bool) or not isinstance(pid, int) or pid < 1:
        return False
    try:
        os.kill(pid, 0)  # Signal 0: only asks whether the process exists.
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, as another user's.
        return False
    return False


def _parse(data):
    try:
        record = json.loads(data.decode("utf-8"))
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _lock_file(path):
    if not storage.is_url(path):
        return _LocalLock(path)
    if path.startswith("gs://"):
        return _GcsLock(path)
    return _CheckThenWriteLock(path)


class _LocalLock:
    """A lock file in a local folder: created with O_CREAT | O_EXCL."""

    def __init__(self, path):
        self.path = path

    def create(self, data):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        try:
            descriptor = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        return True

    def read(self):
        """(holder record, version) or None when there is no lock file; the version is its bytes."""
        try:
            with open(self.path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None
        return _parse(data), data

    def remove_if(self, version):
        """Removes the lock file if it still holds `version`: it is first renamed to a name of this
        process's (atomic), so that a lock created meanwhile by another run is never removed;
        such a one is put back."""
        claimed = f"{self.path}.takeover-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.path, claimed)
        except FileNotFoundError:
            return False
        with open(claimed, "rb") as file:
            same = file.read() == version
        if not same:
            try:
                os.link(claimed, self.path)  # Put back, unless a third run has created one meanwhile.
            except OSError:
                logging.warning("The training lock %s changed while it was being taken over, and another run "
                                "created one meanwhile: the one taken by mistake is kept as %s.", self.path, claimed)
                return False
        os.remove(claimed)
        return same

    def remove_if_ours(self, token):
        found = self.read()
        if found is None or found[0].get("token") != token:
            return False
        os.remove(self.path)
        return True


class _GcsLock:
    """A lock object on Cloud Storage: created with ifGenerationMatch=0; removed only at the
    generation read (ifGenerationMatch), so a lock written meanwhile is never removed."""

    def __init__(self, path):
        from google.cloud import storage as gcs

        self.path = path
        bucket, _, self.name = path[len("gs://"):].partition("/")
        try:
            client = gcs.Client()
        except Exception:  # google.auth's DefaultCredentialsError: the create below says what is wrong.
            client = gcs.Client.create_anonymous_client()
        self.bucket = client.bucket(bucket)

    def create(self, data):
        from google.api_core import exceptions

        try:
            self.bucket.blob(self.name).upload_from_string(data, content_type="application/json",
                                                           if_generation_match=0)
        except exceptions.PreconditionFailed:
            return False
        return True

    def read(self):
        """(holder record, generation) or None when there is no lock object."""
        from google.api_core import exceptions

        blob = self.bucket.get_blob(self.name)
        if blob is None:
            return None
        try:
            data = blob.download_as_bytes(if_generation_match=blob.generation)
        except (exceptions.NotFound, exceptions.PreconditionFailed):  # Removed or replaced meanwhile.
            return None
        return _parse(data), blob.generation

    def remove_if(self, version):
        from google.api_core import exceptions

        try:
            self.bucket.blob(self.name).delete(if_generation_match=version)
        except (exceptions.NotFound, exceptions.PreconditionFailed):
            return False
        return True

    def remove_if_ours(self, token):
        found = self.read()
        return found is not None and found[0].get("token") == token and self.remove_if(found[1])


class _CheckThenWriteLock:
    """A lock file on another object store (Beam's filesystems): a check, then a write. Not atomic:
    two runs starting within moments of each other could both take it."""

    def __init__(self, path):
        self.path = path
        logging.warning("The training lock %s is not atomic on this storage (only local folders and gs:// are): "
                        "runs started at the same moment could both take it.", path)

    def create(self, data):
        if storage.exists(self.path):
            return False
        storage.write_bytes(self.path, data)
        return True

    def read(self):
        if not storage.exists(self.path):
            return None
        data = storage.read_bytes(self.path)
        return _parse(data), data

    def remove_if(self, version):
        found = self.read()
        if found is None or found[1] != version:
            return False
        storage.delete([self.path])
        return True

    def remove_if_ours(self, token):
        found = self.read()
        return found is not None and found[0].get("token") == token and self.remove_if(found[1])
