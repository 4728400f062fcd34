"""The gs:// bucket of a rehearsal: the storage emulator (gcp-storage-emulator, in memory) on
127.0.0.1, and the copies between it and a task's /gcs folder.

No FUSE mount of the emulator is possible here (gcsfuse talks to the real service only), so
Vertex AI's /gcs mount is rehearsed by copying: the task's input artifacts are downloaded into
its /gcs folder before the command, and afterwards every file the command wrote or changed
there is uploaded (`snapshot` / `changed_files`). On Kubeflow the launcher does just that, for
the output artifacts only.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HOST = "127.0.0.1"


class BucketError(RuntimeError):
    """The emulator did not start or answer; the message holds its output."""


def split_uri(uri):
    """'gs://bucket/a/b' -> ('bucket', 'a/b')."""
    if not str(uri).startswith("gs://"):
        raise ValueError(f"{uri!r} is not a gs:// URI.")
    bucket, _, name = uri[len("gs://"):].partition("/")
    return bucket, name


def _free_port():
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


class Emulator:
    """`python -m gcp_storage_emulator start` on a free port of 127.0.0.1, in memory.

    Containers on the host network reach it at `url`; `credentials_file` is a dummy
    authorized-user credential (google.auth then finds credentials at once and never asks the
    metadata server), a stand-in for the service account a task runs as.
    """

    def __init__(self, folder, python=sys.executable, startup_seconds=30):
        self.folder = folder
        self.python = python
        self.startup_seconds = startup_seconds
        self.port = None
        self.process = None
        self._client = None

    @property
    def url(self):
        return f"http://{HOST}:{self.port}"

    @property
    def log_path(self):
        return os.path.join(self.folder, "emulator.log")

    @property
    def credentials_file(self):
        return os.path.join(self.folder, "credentials.json")

    def start(self):
        os.makedirs(self.folder, exist_ok=True)
        self.port = _free_port()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "gcp_storage_emulator", "start", f"--host={HOST}", f"--port={self.port}",
                 "--in-memory", "--quiet"], cwd=self.folder, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "STORAGE_BASE": self.folder})
        deadline = time.monotonic() + self.startup_seconds
        while True:
            if self.process.poll() is not None:
                raise BucketError(f"The storage emulator exited ({self.process.returncode}): {self.log_text()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise BucketError(f"The storage emulator did not answer on {self.url} in {self.startup_seconds} s: "
                                  f"{self.log_text()}")
            time.sleep(0.1)
        with open(self.credentials_file, "w") as file:
            json.dump({"type": "authorized_user", "client_id": "rehearsal", "client_secret": "rehearsal",
                       "refresh_token": "rehearsal", "token": "rehearsal", "expiry": "2999-01-01T00:00:00Z"}, file)
        os.chmod(self.credentials_file, 0o644)
        return self

    def stop(self):
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def log_text(self):
        try:
            with open(self.log_path, "rb") as file:
                return file.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return "(no output)"

    @property
    def client(self):
        if self._client is None:
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            self._client = storage.Client(project="rehearsal", credentials=AnonymousCredentials(),
                                          client_options={"api_endpoint": self.url})
        return self._client

    def container_environment(self, credentials_in_container):
        """What a container needs to reach this emulator as its gs:// (host network)."""
        return {"STORAGE_EMULATOR_HOST": self.url, "GOOGLE_APPLICATION_CREDENTIALS": credentials_in_container,
                "NO_GCE_CHECK": "True"}

    # ------------------------------------------------------------------ copies

    def create_bucket(self, name):
        self.client.create_bucket(name)
        return f"gs://{name}"

    def upload_file(self, path, uri):
        bucket, name = split_uri(uri)
        self.client.bucket(bucket).blob(name).upload_from_filename(path)

    def list(self, prefix_uri):
        """gs:// URIs of the objects under a folder URI, sorted."""
        bucket, prefix = split_uri(prefix_uri.rstrip("/") + "/")
        return sorted(f"gs://{bucket}/{blob.name}" for blob in self.client.list_blobs(bucket, prefix=prefix))

    def exists(self, uri):
        """Whether `uri` is an object, or a folder holding some (an artifact is either)."""
        bucket, name = split_uri(uri)
        return self.client.bucket(bucket).blob(name).exists() or bool(self.list(uri))

    def download_folder(self, uri, mount_root):
        """Copies the object `uri`, or every object under the folder `uri`, to
        <mount_root>/<bucket>/<name>; returns how many."""
        bucket_name, single = split_uri(uri)
        bucket = self.client.bucket(bucket_name)
        count = 0
        for object_uri in ([uri] if bucket.blob(single).exists() else []) + self.list(uri):
            _, name = split_uri(object_uri)
            path = os.path.join(mount_root, bucket_name, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            bucket.blob(name).download_to_filename(path)
            count += 1
        return count

    def upload_files(self, mount_root, relative_paths):
        """Uploads <mount_root>/<bucket>/<name> files (paths relative to mount_root) to gs://bucket/name."""
        for relative in relative_paths:
            self.upload_file(os.path.join(mount_root, relative), "gs://" + relative.replace(os.sep, "/"))
        return len(relative_paths)


def snapshot(mount_root):
    """{relative path: (size, mtime_ns)} of the files under mount_root."""
    state = {}
    for folder, _, files in os.walk(mount_root):
        for name in files:
            path = os.path.join(folder, name)
            stat = os.stat(path)
            state[os.path.relpath(path, mount_root)] = (stat.st_size, stat.st_mtime_ns)
    return state


def changed_files(mount_root, before, under=None):
    """Files under mount_root that are new or changed since `before` (a snapshot), sorted;
    when `under` is given, only those that are one of its relative paths or in one of them (an
    output artifact is a file or a folder)."""
    now = snapshot(mount_root)
    changed = [path for path, state in now.items() if before.get(path) != state]
    if under is not None:
        wanted = [item.rstrip("/") for item in under]
        changed = [path for path in changed if any(path == item or path.startswith(item + "/") for item in wanted)]
    return sorted(changed)


def temporary_folder(prefix):
    return tempfile.mkdtemp(prefix=prefix)
