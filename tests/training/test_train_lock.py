"""The training lock (ddsp_core/training/train_lock.py): one run at a time in a save_dir; a second
is refused naming the first; released however the block ends; a dead run's lock on this host is
taken over, another host's never; waiting; and on gs:// (the storage emulator)."""

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from ddsp_core.io import storage
from ddsp_core.training import train_lock


def _dead_pid():
    """The pid of a child process that has finished (and been reaped): no process has it."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True).stdout)


def _write_lock(folder, **holder):
    path = storage.join(folder, train_lock.LOCK_FILE)
    storage.write_json(path, {"started": "2026-12-01T10:00:00+00:00", "command": "ddsp_run --mode=train", **holder})
    return path


def test_the_lock_file_names_its_holder_and_is_removed_at_the_end(tmp_path):
    with train_lock.held(str(tmp_path / "run")) as path:
        assert path == str(tmp_path / "run" / "train.lock")
        record = json.loads(open(path).read())
        assert (record["host"], record["pid"]) == (socket.gethostname(), os.getpid())
        assert record["started"].endswith("+00:00") and record["command"]
    assert not os.path.exists(path)


def test_a_second_holder_is_refused_naming_the_first(tmp_path):
    with train_lock.held(str(tmp_path)) as path:
        with pytest.raises(train_lock.LockHeld) as refused:
            with train_lock.held(str(tmp_path)):
                pytest.fail("two holders")
        assert os.path.exists(path)  # The refused one leaves the first's lock alone.
    message = str(refused.value)
    for text in (f"pid {os.getpid()} on host {socket.gethostname()}, since ", f"holds the lock {path}",
                 "Wait for that run to end", f"delete {path}"):
        assert text in message, message
    assert isinstance(refused.value, RuntimeError) and refused.value.holder["pid"] == os.getpid()


@pytest.mark.parametrize("error", [RuntimeError("diverged"), KeyboardInterrupt()])
def test_the_lock_is_released_when_the_block_fails_or_is_interrupted(error, tmp_path):
    with pytest.raises(type(error)):
        with train_lock.held(str(tmp_path)):
            raise error
    assert not os.path.exists(tmp_path / "train.lock")
    with train_lock.held(str(tmp_path)):  # Free again.
        pass


def test_a_dead_runs_lock_on_this_host_is_taken_over(tmp_path, caplog):
    pid = _dead_pid()
    _write_lock(str(tmp_path), host=socket.gethostname(), pid=pid, token="old")
    with caplog.at_level(logging.WARNING):
        with train_lock.held(str(tmp_path)) as path:
            assert json.loads(open(path).read())["pid"] == os.getpid()
    assert f"Taking over the stale training lock {path}: pid {pid} on host" in caplog.text
    assert not os.path.exists(path)


def test_another_hosts_lock_is_never_taken_over(tmp_path):
    path = _write_lock(str(tmp_path), host="trainer-elsewhere", pid=_dead_pid(), token="theirs")
    with pytest.raises(train_lock.LockHeld, match=r"on host trainer-elsewhere, since 2026-12-01T10:00:00\+00:00 "
                                                  r"\(command: ddsp_run --mode=train\)"):
        with train_lock.held(str(tmp_path)):
            pass
    assert json.loads(open(path).read())["token"] == "theirs"


def test_an_unreadable_lock_is_held_by_an_unknown_run(tmp_path):
    (tmp_path / "train.lock").write_bytes(b"")
    with pytest.raises(train_lock.LockHeld, match="a run that left no details"):
        with train_lock.held(str(tmp_path)):
            pass


def test_waiting_takes_the_lock_once_the_first_run_releases_it(tmp_path):
    acquired, release = threading.Event(), threading.Event()

    def first():
        with train_lock.held(str(tmp_path)):
            acquired.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert acquired.wait(10)
        threading.Timer(0.3, release.set).start()
        started = time.monotonic()
        with train_lock.held(str(tmp_path), wait_secs=10, poll_secs=0.05):
            waited = time.monotonic() - started
        assert 0.25 <= waited < 5
    finally:
        release.set()
        thread.join(10)


def test_waiting_gives_up_after_wait_secs(tmp_path):
    with train_lock.held(str(tmp_path)):
        started = time.monotonic()
        with pytest.raises(train_lock.LockHeld, match=r"\(waited 0\.\d s\)"):
            with train_lock.held(str(tmp_path), wait_secs=0.3, poll_secs=0.05):
                pass
        assert time.monotonic() - started >= 0.3


@pytest.fixture
def gcs_preconditions(gcs_emulator, monkeypatch):
    """gcp-storage-emulator ignores Cloud Storage's ifGenerationMatch precondition; this enforces
    it as Cloud Storage does (a 412 PreconditionFailed), checked before each call (not atomically,
    which one test process does not need), so the lock's create-if-absent path is exercised."""
    from google.api_core import exceptions
    from google.cloud.storage import Blob

    def generation(blob):
        found = blob.bucket.get_blob(blob.name)
        return 0 if found is None else found.generation

    upload, delete = Blob.upload_from_string, Blob.delete

    def checked_upload(self, data, *args, if_generation_match=None, **kwargs):
        if if_generation_match is not None and generation(self) != if_generation_match:
            raise exceptions.PreconditionFailed("ifGenerationMatch")
        return upload(self, data, *args, **kwargs)

    def checked_delete(self, *args, if_generation_match=None, **kwargs):
        if if_generation_match is not None and generation(self) not in (if_generation_match, 0):
            raise exceptions.PreconditionFailed("ifGenerationMatch")
        return delete(self, *args, **kwargs)

    monkeypatch.setattr(Blob, "upload_from_string", checked_upload)
    monkeypatch.setattr(Blob, "delete", checked_delete)
    return gcs_emulator


def test_on_object_storage(gcs_preconditions, gcs_bucket, caplog):
    folder = f"{gcs_bucket}/runs/checkpoints/quick-1"
    with train_lock.held(folder) as path:
        assert path == f"{folder}/train.lock"
        assert json.loads(gcs_preconditions.download(path))["pid"] == os.getpid()
        with pytest.raises(train_lock.LockHeld, match=f"pid {os.getpid()} on host .* holds the lock {path}"):
            with train_lock.held(folder):
                pass
        assert gcs_preconditions.list(f"{folder}/") == [path]
    assert gcs_preconditions.list(f"{folder}/") == []
    # A dead run's lock (this host) is taken over; another host's is not.
    _write_lock(folder, host=socket.gethostname(), pid=_dead_pid(), token="old")
    with caplog.at_level(logging.WARNING), train_lock.held(folder):
        assert json.loads(gcs_preconditions.download(path))["pid"] == os.getpid()
    assert "Taking over the stale training lock" in caplog.text
    _write_lock(folder, host="trainer-elsewhere", pid=_dead_pid(), token="theirs")
    with pytest.raises(train_lock.LockHeld, match="on host trainer-elsewhere"):
        with train_lock.held(folder):
            pass
