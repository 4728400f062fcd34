"""`ddsp_pipeline submit`'s Cloud Storage side: the pipeline root's write check, and the
upload of local audio so that the remote steps can read it.

Local files named by --audio are copied to `<pipeline root>/inputs/audio/<folder>-<digest of
the file list>/` (their layout below the pattern's folder kept), skipping files already there
with the same MD5 (or CRC32C); the pipeline gets a gs:// glob of exactly those copies and a
digest of their names and checksums (`UploadReport.fingerprint`). The same files go to the same
folder; a different set of files goes to a new folder, so a folder never mixes sets and
nothing is ever deleted. gs:// globs are passed through (checked to match some file).
"""

import base64
import concurrent.futures
import dataclasses
import glob
import hashlib
import os
import re
import uuid

from ddsp_core.steps.steps import split_commas as split_patterns
from ddsp_core.io.storage import is_url, join

from pipelines.submit_errors import SubmitError, api_error, bad_input

UPLOAD_THREADS = 8
_GLOB_CHARS = re.compile(r"[*?\[]")


def split_gs_url(url):
    """'gs://bucket/a/b' -> ('bucket', 'a/b')."""
    if not url.startswith("gs://") or not url[len("gs://"):].split("/")[0]:
        raise bad_input("check flags", f"{url!r} is not a gs://BUCKET/PATH url.")
    bucket, _, name = url[len("gs://"):].partition("/")
    return bucket, name


def storage_client(project=None):
    """A google-cloud-storage client (honours STORAGE_EMULATOR_HOST); StepError without credentials."""
    from google.cloud import storage

    try:
        return storage.Client(project=project)
    except Exception as error:  # google.auth's DefaultCredentialsError, mostly.
        raise SubmitError("check pipeline root", f"cannot reach Cloud Storage: {error}. Log in with `gcloud auth "
                          "application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS).") from None


def check_pipeline_root(pipeline_root, client):
    """Proves a gs:// pipeline root writable by writing and deleting a small object under it."""
    bucket, name = split_gs_url(pipeline_root)
    probe = join(name, f".ddsp_pipeline_write_test_{uuid.uuid4().hex}").lstrip("/")
    blob = client.bucket(bucket).blob(probe)
    try:
        blob.upload_from_string(b"ok")
    except Exception as error:
        raise bad_input("check pipeline root", f"cannot write to {pipeline_root} ({api_error(error)}). Check that "
                        f"the bucket gs://{bucket} exists (gcloud storage buckets create gs://{bucket}) and that your "
                        "account may write to it, or give another --pipeline-root.") from None
    try:
        blob.delete()
    except Exception:  # A write-only account: the probe stays, harmless.
        pass


@dataclasses.dataclass
class UploadReport:
    """What upload_audio did; `lines()` is what the command prints."""

    destination: str = ""  # gs:// folder holding the uploaded copies ('' when nothing was local).
    uploaded: int = 0
    uploaded_bytes: int = 0
    skipped: int = 0  # Already there with the same checksum.
    skipped_bytes: int = 0
    passed_through: list = dataclasses.field(default_factory=list)  # gs:// globs used as they are.
    fingerprint: str = ""  # Digest of the copies' names and MD5s ('' when nothing was local).

    @property
    def files(self):
        return self.uploaded + self.skipped

    def lines(self):
        lines = []
        if self.files:
            lines.append(f"upload audio: {self.files} local files -> {self.destination}: uploaded {self.uploaded} "
                         f"({_size(self.uploaded_bytes)}), skipped {self.skipped} already there with the same "
                         f"checksum ({_size(self.skipped_bytes)}).")
        for pattern in self.passed_through:
            lines.append(f"upload audio: {pattern} is used as it is.")
        return lines


def _size(n_bytes):
    for unit in ("B", "kB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000.0


def pattern_base(pattern):
    """The folder part of a glob before its first wildcard: 'a/b/*/c*.wav' -> 'a/b'; 'a/x.wav' -> 'a'."""
    parts = pattern.split(os.sep)
    for index, part in enumerate(parts):
        if _GLOB_CHARS.search(part):
            return os.sep.join(parts[:index]) or os.sep
    return os.path.dirname(pattern) or "."


def match_local(patterns):
    """Files matched by local globs (recursive '**'), as sorted absolute paths.

    Returns (files, base): base is the deepest folder holding every pattern's non-glob part.
    Raises StepError naming the patterns that match no file.
    """
    files, bases, empty = set(), [], []
    for pattern in patterns:
        absolute = os.path.abspath(os.path.expanduser(pattern))
        matched = [path for path in glob.glob(absolute, recursive=True) if os.path.isfile(path)]
        if not matched:
            empty.append(pattern)
        files.update(matched)
        bases.append(pattern_base(absolute))
    if empty:
        raise bad_input("upload audio", f"no file matches {', '.join(map(repr, empty))}. Check the path and quote "
                        "the glob so that your shell does not expand it (--audio 'folder/*.wav').")
    return sorted(files), os.path.commonpath(bases)


def _file_checksum(path, checksum, chunk_bytes=1 << 20):
    """Base64 of `checksum` (a hashlib-like object) over the file's bytes, as Cloud Storage writes them."""
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(chunk_bytes), b""):
            checksum.update(chunk)
    return base64.b64encode(checksum.digest()).decode("ascii")


def file_md5(path, chunk_bytes=1 << 20):
    """Base64 MD5 of a file, as Cloud Storage reports it (blob.md5_hash)."""
    return _file_checksum(path, hashlib.md5(), chunk_bytes)


def file_crc32c(path, chunk_bytes=1 << 20):
    """Base64 CRC32C of a file, as Cloud Storage reports it (blob.crc32c; composite objects have no MD5)."""
    import google_crc32c

    return _file_checksum(path, google_crc32c.Checksum(), chunk_bytes)


def same_contents(path, md5, blob):
    """Whether `blob` (listed, or None) holds the bytes of local `path` (whose MD5 is `md5`)."""
    if blob is None or blob.size != os.path.getsize(path):
        return False
    if blob.md5_hash:
        return blob.md5_hash == md5
    return bool(blob.crc32c) and blob.crc32c == file_crc32c(path)


def _folder_name(base, files):
    """'<base folder name>-<12 hex digits of the file list>': one folder per set of local files."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", os.path.basename(base.rstrip(os.sep))).strip("-.") or "audio"
    digest = hashlib.sha256("\0".join(files).encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}"


def upload_audio(pattern, destination_prefix, client=None):
    """Uploads the local files matched by `pattern` to Cloud Storage for a remote pipeline.

    Args:
        pattern: Glob(s), comma-separated; local ones ('**' recursive) are uploaded, gs:// ones
            (or other URLs) are passed through (a gs:// one must match some file).
        destination_prefix: gs://BUCKET/PATH; the files go to
            `<prefix>/<base folder name>-<digest of the file list>/<path below the base>`, where the
            base is the folder holding the patterns' non-glob parts. Files already there with
            the same MD5 (or CRC32C) are skipped, changed ones are uploaded again.
        client: a google.cloud.storage.Client (default: a new one).

    Returns:
        (gs_pattern, UploadReport). gs_pattern (comma-separated if several) matches exactly the
        uploaded copies plus any gs:// globs given.

    Raises:
        SubmitError('upload audio', ...): a local glob matches no file, a gs:// one matches none
        (exit_status 2), or Cloud Storage refused a request (1).
    """
    parts = split_patterns(pattern)
    if not parts:
        raise bad_input("upload audio", "the audio pattern is empty: give a glob of audio files, e.g. "
                        "--audio 'folder/*.wav'.")
    local = [part for part in parts if not is_url(part)]
    remote = [part for part in parts if is_url(part)]
    report = UploadReport(passed_through=remote)
    if local or any(part.startswith("gs://") for part in remote):
        client = client or storage_client()
    for part in remote:
        if part.startswith("gs://"):
            check_gs_pattern(part, client)
    result = list(remote)
    if local:
        files, base = match_local(local)
        folder = join(destination_prefix, _folder_name(base, files))
        result.insert(0, join(folder, "**"))
        _upload(files, base, folder, client, report)
    return ",".join(result), report


def _upload(files, base, folder, client, report):
    bucket_name, prefix = split_gs_url(folder)
    bucket = client.bucket(bucket_name)
    try:
        existing = {blob.name: blob for blob in client.list_blobs(bucket_name, prefix=prefix + "/")}
    except Exception as error:
        raise SubmitError("upload audio", f"cannot list {folder} ({api_error(error)}). Check that the bucket exists "
                          "and that your account may read and write it.") from None
    names = {path: prefix + "/" + os.path.relpath(path, base).replace(os.sep, "/") for path in files}
    checksums = {path: file_md5(path) for path in files}
    to_upload = []
    for path in files:
        if same_contents(path, checksums[path], existing.get(names[path])):
            report.skipped += 1
            report.skipped_bytes += os.path.getsize(path)
        else:
            to_upload.append(path)

    def upload(path):
        bucket.blob(names[path]).upload_from_filename(path)
        return path

    with concurrent.futures.ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
        futures = {pool.submit(upload, path): path for path in to_upload}
        for future in concurrent.futures.as_completed(futures):
            path = futures[future]
            try:
                future.result()
            except Exception as error:
                for other in futures:
                    other.cancel()
                raise SubmitError("upload audio", f"uploading {path} to gs://{bucket_name}/{names[path]} failed "
                                  f"({api_error(error)}); files already uploaded are kept and skipped on the next "
                                  "try.") from None
            report.uploaded += 1
            report.uploaded_bytes += os.path.getsize(path)

    # The folder must hold exactly these files: '**' matches all of it.
    wanted = set(names.values())
    found = {blob.name for blob in client.list_blobs(bucket_name, prefix=prefix + "/") if not blob.name.endswith("/")}
    if found != wanted:
        extra = sorted(found - wanted)[:5]
        missing = sorted(wanted - found)[:5]
        raise SubmitError("upload audio", f"{folder} should hold exactly the {len(wanted)} uploaded files but has "
                          f"others {extra} / lacks {missing}: something else writes there. Remove the others, or "
                          "give another --pipeline-root.")
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{names[path]}\0{checksums[path]}\0".encode("utf-8"))
    report.destination = folder + "/"
    report.fingerprint = digest.hexdigest()[:16]


def check_gs_pattern(pattern, client):
    """StepError unless the gs:// glob matches some object (with the pipeline's matcher, Beam's)."""
    bucket_name, name = split_gs_url(pattern)
    match = _GLOB_CHARS.search(name)
    prefix = name[:match.start()] if match else name
    try:
        from apache_beam.io.filesystem import FileSystem

        regex = re.compile(FileSystem.translate_pattern(pattern))
    except ImportError:  # No Beam here: check that the prefix holds something.
        regex = None
    try:
        for blob in client.list_blobs(bucket_name, prefix=prefix):
            url = f"gs://{bucket_name}/{blob.name}"
            if not blob.name.endswith("/") and (regex is None or regex.match(url)):
                return
    except Exception as error:
        raise SubmitError("upload audio", f"cannot list {pattern} ({api_error(error)}). Check the bucket and your "
                          "access to it.") from None
    raise bad_input("upload audio", f"no file matches {pattern!r}. Check the path ('*' stays within a folder, "
                    "'**' crosses folders).")
