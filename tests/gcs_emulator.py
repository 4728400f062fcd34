"""A real Google Cloud Storage emulator for tests (no mocks).

Runs the pure-Python ``gcp-storage-emulator`` package in a subprocess on
127.0.0.1 and points google-cloud-storage and Apache Beam's ``gs://``
filesystem at it through environment variables, which Beam's
multi-processing SDK workers inherit.

Usage in a test::

    def test_something(gcs_emulator, gcs_bucket):      # gcs_bucket == "gs://<fresh bucket>"
        gcs_emulator.upload_bytes(b"data", f"{gcs_bucket}/in/a.bin")
        ...  # run Beam / FileSystems against f"{gcs_bucket}/..."
        assert gcs_emulator.download(f"{gcs_bucket}/out/x") == b"..."
        assert gcs_emulator.list(f"{gcs_bucket}/out/") == [f"{gcs_bucket}/out/x"]

Environment set while the emulator runs (previous values restored on exit):

* ``STORAGE_EMULATOR_HOST=http://127.0.0.1:<port>``: google-cloud-storage
  (which Beam's GcsIO uses) sends every request there.
* ``GOOGLE_APPLICATION_CREDENTIALS``: a dummy ``authorized_user`` file holding
  a static token that expires in 2999. Beam's GcsIO always asks
  ``google.auth.default()`` for credentials and, when none are found, retries
  with exponential backoff for ~25 s *in every process* (the driver and each
  SDK worker) before falling back to anonymous access. With the dummy file
  ``google.auth.default()`` succeeds at once and, as the token never expires,
  no refresh (network) call is ever made; the emulator ignores the token.
* ``GOOGLE_CLOUD_PROJECT`` / ``CLOUDSDK_CORE_PROJECT=test-project``,
  ``NO_GCE_CHECK=True`` (never probe the GCE metadata server).

TensorFlow's own gs:// client has no endpoint setting: it reaches the emulator only
through the HTTPS relay of ``tests/tf_gcs_relay.py`` (as the TensorBoard test does).
Elsewhere, do not read gs:// paths through ``tf.io.gfile`` in tests; download and parse
locally.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from typing import Iterator, List, Optional, Tuple

import pytest

DEFAULT_PROJECT = "test-project"
_HOST = "127.0.0.1"


class GcsEmulatorError(RuntimeError):
    """The emulator could not be started (message holds its stderr)."""


def split_gs_url(gs_url: str) -> Tuple[str, str]:
    """'gs://bucket/a/b' -> ('bucket', 'a/b')."""
    if not gs_url.startswith("gs://"):
        raise ValueError(f"not a gs:// url: {gs_url!r}")
    bucket, _, name = gs_url[len("gs://"):].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {gs_url!r}")
    return bucket, name


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((_HOST, 0))
        return s.getsockname()[1]


def port_is_open(port: int, host: str = _HOST, timeout: float = 0.5) -> bool:
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _reset_beam_credentials_cache() -> None:
    """Beam caches the result of google.auth.default() per process; forget it
    so this process picks up (or drops) the dummy credentials."""
    try:
        from apache_beam.internal.gcp import auth
    except Exception:  # pragma: no cover - beam[gcp] missing
        return
    cls = getattr(auth, "_Credentials", None)
    if cls is not None and hasattr(cls, "_credentials_init"):
        with cls._credentials_lock:
            cls._credentials_init = False
            cls._credentials = None


class GcsEmulator:
    """Context manager running ``python -m gcp_storage_emulator start``.

    Attributes after ``start()``: ``host``, ``port``, ``url``, ``project``,
    ``client`` (a google.cloud.storage.Client bound to the emulator).
    """

    def __init__(
        self,
        project: str = DEFAULT_PROJECT,
        port: Optional[int] = None,
        startup_timeout: float = 30.0,
        buckets: Tuple[str, ...] = (),
    ):
        self.host = _HOST
        self._fixed_port = port  # None: pick a free one
        self.port: Optional[int] = port
        self.project = project
        self.startup_timeout = startup_timeout
        self._initial_buckets = tuple(buckets)
        self._proc: Optional[subprocess.Popen] = None
        self._tmpdir: Optional[str] = None
        self._log_path: Optional[str] = None
        self._saved_env: dict = {}
        self._client = None

    # ----------------------------------------------------------- lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> "GcsEmulator":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "GcsEmulator":
        if self._proc is not None:
            raise GcsEmulatorError("emulator already started")
        self._tmpdir = tempfile.mkdtemp(prefix="gcs-emulator-")
        try:
            last_error = None
            for _ in range(3):  # retry if another process grabbed the port
                try:
                    self._launch(self._fixed_port or _free_port())
                    break
                except GcsEmulatorError as e:
                    last_error = e
                    self._kill()
                    if self._fixed_port or "Address already in use" not in str(e):
                        raise
            else:
                raise last_error
            self._set_env()
            _reset_beam_credentials_cache()
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import storage

            self._client = storage.Client(
                project=self.project,
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": self.url},
            )
            for name in self._initial_buckets:
                self.create_bucket(name)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, port: int) -> None:
        self.port = port
        self._log_path = os.path.join(self._tmpdir, f"emulator-{port}.log")
        cmd = [
            sys.executable, "-m", "gcp_storage_emulator", "start",
            f"--host={self.host}", f"--port={port}", "--in-memory", "--quiet",
        ]
        env = dict(os.environ)
        env["STORAGE_BASE"] = self._tmpdir  # keep any on-disk state out of cwd
        with open(self._log_path, "wb") as log:
            self._proc = subprocess.Popen(
                cmd,
                cwd=self._tmpdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in pytest doesn't hit it first
            )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            if self._proc.poll() is not None:
                raise GcsEmulatorError(
                    f"gcp-storage-emulator exited with code {self._proc.returncode} "
                    f"on port {port}; command {cmd}; output:\n{self.log_text()}"
                )
            # A failed bind happens in the emulator's server thread: the process
            # then stays alive but never serves, so watch its output too.
            output = self.log_text()
            if "Traceback" in output or "Address already in use" in output:
                raise GcsEmulatorError(
                    f"gcp-storage-emulator failed on port {port}; command {cmd}; "
                    f"output:\n{output}"
                )
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1) as r:
                    if r.status == 200 and r.read() == b"OK":
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise GcsEmulatorError(
                    f"gcp-storage-emulator did not answer on {self.url} within "
                    f"{self.startup_timeout}s; output:\n{self.log_text()}"
                )
            time.sleep(0.05)

    def _set_env(self) -> None:
        creds_path = os.path.join(self._tmpdir, "dummy_adc.json")
        with open(creds_path, "w") as f:
            json.dump(
                {
                    "type": "authorized_user",
                    "client_id": "gcs-emulator",
                    "client_secret": "gcs-emulator",
                    "refresh_token": "gcs-emulator",
                    "token": "gcs-emulator-token",
                    "expiry": "2999-01-01T00:00:00Z",
                    "quota_project_id": self.project,
                },
                f,
            )
        new_env = {
            "STORAGE_EMULATOR_HOST": self.url,
            "GOOGLE_APPLICATION_CREDENTIALS": creds_path,
            "GOOGLE_CLOUD_PROJECT": self.project,
            "CLOUDSDK_CORE_PROJECT": self.project,
            "NO_GCE_CHECK": "True",
        }
        for key, value in new_env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env = {}

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def stop(self) -> None:
        """Kill the emulator, free its port, restore the environment."""
        self._client = None
        self._kill()
        self._restore_env()
        _reset_beam_credentials_cache()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_text(self) -> str:
        try:
            with open(self._log_path, "rb") as f:
                return f.read()[-20000:].decode("utf-8", "replace")
        except (OSError, TypeError):
            return "<no emulator output>"

    # ------------------------------------------------------------- helpers
    @property
    def client(self):
        if self._client is None:
            raise GcsEmulatorError("emulator not running")
        return self._client

    def create_bucket(self, name: Optional[str] = None) -> str:
        """Create a bucket (random name if None); returns 'gs://name'."""
        name = name or f"test-{uuid.uuid4().hex[:16]}"
        self.client.create_bucket(name)
        return f"gs://{name}"

    def upload_bytes(self, data: bytes, gs_url: str) -> str:
        bucket, name = split_gs_url(gs_url)
        self.client.bucket(bucket).blob(name).upload_from_string(data)
        return gs_url

    def upload_file(self, local_path: str, gs_url: str) -> str:
        bucket, name = split_gs_url(gs_url)
        self.client.bucket(bucket).blob(name).upload_from_filename(str(local_path))
        return gs_url

    def download(self, gs_url: str) -> bytes:
        bucket, name = split_gs_url(gs_url)
        return self.client.bucket(bucket).blob(name).download_as_bytes()

    def download_to(self, gs_url: str, local_path: str) -> str:
        with open(local_path, "wb") as f:
            f.write(self.download(gs_url))
        return str(local_path)

    def list(self, gs_prefix: str) -> List[str]:
        """Sorted gs:// urls of all objects whose name starts with the prefix."""
        bucket, prefix = split_gs_url(gs_prefix)
        return sorted(
            f"gs://{bucket}/{b.name}"
            for b in self.client.list_blobs(bucket, prefix=prefix or None)
        )


@contextlib.contextmanager
def gcs_emulator_running(**kwargs) -> Iterator[GcsEmulator]:
    """Context-manager form: ``with gcs_emulator_running() as emu: ...``."""
    with GcsEmulator(**kwargs) as emu:
        yield emu


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[GcsEmulator]:
    """One emulator for the whole session; env vars set while it runs.

    Fails (not skips) with the emulator's output if it cannot start.
    """
    emu = GcsEmulator()
    error = None
    try:
        emu.start()
    except GcsEmulatorError as e:
        error = str(e)
    if error is not None:
        pytest.fail(f"GCS emulator failed to start: {error}", pytrace=False)
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def gcs_bucket(gcs_emulator: GcsEmulator) -> str:
    """A fresh, empty bucket per test, as 'gs://<name>'."""
    if not gcs_emulator.running:
        pytest.fail(
            f"GCS emulator died; output:\n{gcs_emulator.log_text()}", pytrace=False
        )
    return gcs_emulator.create_bucket()
