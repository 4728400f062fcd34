"""Files in local folders or object storage (gs://, and whatever Beam's FileSystems knows).

Beam's FileSystems reads and writes gs:// through google-cloud-storage, which honours
STORAGE_EMULATOR_HOST, so the same code runs against a local emulator in tests.
"""

import json


def _filesystems():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def match(patterns):
    """Files matching any of `patterns` (globs), sorted, without duplicates.

    Args:
        patterns: A list of glob patterns (local paths or URLs such as gs://bucket/dir/*.wav).

    Returns:
        A list of (path, size_in_bytes).

    Raises:
        FileNotFoundError: naming each pattern that matched nothing.
    """
    filesystems = _filesystems()
    found = {}
    empty = []
    for pattern in patterns:
        try:
            results = filesystems.match([pattern])[0].metadata_list
        except Exception as error:  # Beam raises BeamIOError with per-pattern details.
            raise FileNotFoundError(f"Cannot list {pattern!r}: {error}") from None
        files = [m for m in results if not m.path.endswith("/")]
        if not files:
            empty.append(pattern)
        for metadata in files:
            found[metadata.path] = metadata.size_in_bytes
    if empty:
        raise FileNotFoundError(f"No files match {', '.join(map(repr, empty))}. Check the path and the glob "
                                "(quote it so your shell does not expand it), and that the files exist.")
    return sorted(found.items())


def exists(path):
    return _filesystems().exists(path)


def read_bytes(path):
    with _filesystems().open(path) as handle:
        return handle.read()


def write_bytes(path, data):
    """Writes `data` to `path`, creating parent folders of local paths."""
    filesystems = _filesystems()
    parent = filesystems.split(path)[0]
    if parent and "://" not in path and not filesystems.exists(parent):
        filesystems.mkdirs(parent)
    with filesystems.create(path) as handle:
        handle.write(data)


def read_json(path):
    return json.loads(read_bytes(path).decode("utf-8"))


def write_json(path, value):
    write_bytes(path, (json.dumps(value, indent=2, sort_keys=False) + "\n").encode("utf-8"))


def delete(paths):
    if paths:
        _filesystems().delete(list(paths))
