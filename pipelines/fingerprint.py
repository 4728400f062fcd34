"""A digest of the files behind audio patterns, for kfp's cache key.

kfp's cache key holds a step's parameters, not the files they name: passing this digest as a
parameter makes a changed, added or removed input file invalidate the cached prepare step.
Local globs are digested by (path, size, modification time); gs:// globs by listing the
matching objects through google-cloud-storage (name, size, generation: an object rewritten
with the same name and size gets a new generation).
"""

import glob
import hashlib
import os
import re

from ddsp_core.steps.steps import StepError, split_commas

_GLOB_CHARS = re.compile(r"[*?\[]")


class FingerprintError(StepError):
    """A gs:// pattern could not be listed (no access, no bucket); the message names it."""

    def __init__(self, cause):
        super().__init__("fingerprint audio", cause)


def audio_fingerprint(pattern, client=None):
    """A 16-hex-digit digest of the files that comma-separated globs match.

    Args:
        pattern: Glob(s), comma-separated. Local ones ('**' recursive) add each matching
            file's path, size and mtime_ns; gs:// ones add each matching object's name, size
            and generation ('*' stays within a folder, '**' crosses folders, as in Beam,
            which reads them); other URLs add only their text.
        client: a google.cloud.storage.Client for gs:// globs (default: a new one, made only
            when there is a gs:// glob).

    Returns:
        The digest, e.g. '3f2a9c0b1d4e5f60'.

    Raises:
        FingerprintError: a gs:// glob could not be listed.
    """
    digest = hashlib.sha256()
    for part in split_commas(pattern):
        digest.update(part.encode())
        if part.startswith("gs://"):
            client = client or _storage_client()
            for name, size, generation in gs_listing(part, client):
                digest.update(f"\0{name}\0{size}\0{generation}".encode())
        elif "://" not in part:
            for path in sorted(glob.glob(part, recursive=True)):
                if os.path.isfile(path):
                    stat = os.stat(path)
                    digest.update(f"\0{path}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def gs_listing(pattern, client):
    """(gs:// url, size, generation) of each object a gs:// glob matches, sorted by url.

    Lists the objects under the pattern's text before its first glob character, then keeps
    those the whole pattern matches; a pattern without glob characters matches one object.
    """
    bucket, _, name = pattern[len("gs://"):].partition("/")
    match = _GLOB_CHARS.search(name)
    prefix = name[:match.start()] if match else name
    regex = re.compile(_translate(name)) if match else None
    try:
        blobs = list(client.list_blobs(bucket, prefix=prefix or None))
    except Exception as error:  # google.api_core errors: NotFound, Forbidden, ...
        reason = getattr(error, "message", None) or str(error)
        raise FingerprintError(f"cannot list {pattern} ({reason}). Check the bucket and your access to it.") from None
    found = [(f"gs://{bucket}/{blob.name}", blob.size, blob.generation) for blob in blobs
             if not blob.name.endswith("/") and (regex.fullmatch(blob.name) if regex else blob.name == name)]
    return sorted(found)


def _translate(glob_pattern):
    """A glob -> a regex, as fnmatch's but '*' and '?' stay within a folder and '**' crosses folders."""
    out, i, n = [], 0, len(glob_pattern)
    while i < n:
        char = glob_pattern[i]
        i += 1
        if char == "*" and glob_pattern.startswith("*", i):
            out.append(".*")
            i += 1
        elif char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = i + 1 if glob_pattern.startswith("!", i) else i
            end = end + 1 if glob_pattern.startswith("]", end) else end
            end = glob_pattern.find("]", end)
            if end < 0:  # No closing bracket: a literal '['.
                out.append(re.escape(char))
                continue
            members = glob_pattern[i:end].replace("\\", "\\\\")
            if members.startswith("!"):
                members = "^" + members[1:]
            elif members.startswith("^"):
                members = "\\" + members
            out.append(f"[{members}]")
            i = end + 1
        else:
            out.append(re.escape(char))
    return "".join(out)


def _storage_client():
    """A google-cloud-storage client (honours STORAGE_EMULATOR_HOST); anonymous without credentials
    (public buckets), as Beam's reader falls back to."""
    from google.cloud import storage

    try:
        return storage.Client()
    except Exception:  # google.auth's DefaultCredentialsError, mostly.
        return storage.Client.create_anonymous_client()
