"""Files in local folders or object storage (gs://, and whatever Beam's FileSystems knows).

Beam's FileSystems reads and writes gs:// through google-cloud-storage, which honours
STORAGE_EMULATOR_HOST, so the same code runs against a local emulator in tests.
"""

import json
import os


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


def is_url(path):
    """Whether `path` names object storage (gs://...) rather than a local file."""
    return "://" in str(path)


def exists(path):
    if not is_url(path):
        return os.path.exists(path)
    return _filesystems().exists(path)


def read_bytes(path):
    with open_read(path) as handle:
        return handle.read()


def open_read(path):
    """A binary file object of `path` (local or URL) for reading, seekable: a long file can be
    read a part at a time (`ddsp_core.io.audio_io.read_part`). Close it (use `with`)."""
    if not is_url(path):
        return open(path, "rb")
    return _filesystems().open(path)


class _LocalWholeFile:
    """A local file written under a temporary name and renamed to its own when closed without error."""

    def __init__(self, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path, self.temporary = path, f"{path}.tmp-{os.getpid()}-{id(self)}"
        self.handle = open(self.temporary, "wb")

    def write(self, data):
        return self.handle.write(data)

    def close(self, keep=True):
        if self.handle.closed:
            return
        self.handle.close()
        if keep:
            os.replace(self.temporary, self.path)
        else:
            os.remove(self.temporary)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc_info):
        self.close(keep=exc_type is None)


def open_write(path):
    """A binary file object writing `path` (local or URL) a part at a time; it appears whole when
    closed (locally: a temporary name renamed; object stores show an object once complete).
    Local parent folders are created."""
    if not is_url(path):
        return _LocalWholeFile(path)
    return _filesystems().create(path)


def remove_tree(folder):
    """Deletes `folder` and everything under it (local or URL); nothing if it is absent."""
    if not is_url(folder):
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        return
    delete([join(folder, relative) for relative in list_tree(folder)])


def write_bytes(path, data):
    """Writes `data` to `path`, creating parent folders of local paths.

    A local file is written under a temporary name and renamed, so a reader (or a
    crash) never sees it half-written. Object stores make a new object visible only
    once it is complete.
    """
    with open_write(path) as handle:
        handle.write(data)


def join(base, *parts):
    """Joins path parts with '/', for local paths and URLs alike."""
    path = str(base)
    for part in parts:
        path = path.rstrip("/") + "/" + str(part).lstrip("/")
    return path


def list_glob(pattern):
    """Paths matching a glob (local or URL), sorted; [] when nothing matches."""
    if not is_url(pattern):
        import glob

        return sorted(glob.glob(pattern))
    try:
        return sorted(m.path for m in _filesystems().match([pattern])[0].metadata_list)
    except Exception:  # Beam raises when nothing matches.
        return []


def read_json(path):
    return json.loads(read_bytes(path).decode("utf-8"))


def write_json(path, value):
    write_bytes(path, (json.dumps(value, indent=2, sort_keys=False) + "\n").encode("utf-8"))


def delete(paths):
    paths = list(paths or ())
    local = [p for p in paths if not is_url(p)]
    for path in local:
        os.remove(path)
    remote = [p for p in paths if is_url(p)]
    if remote:
        _filesystems().delete(remote)


def list_tree(folder):
    """Paths of every file under `folder` (local or URL), relative to it, sorted; [] if it is absent."""
    folder = str(folder).rstrip("/")
    if not is_url(folder):
        found = []
        for parent, _, names in os.walk(folder):
            found += [os.path.relpath(os.path.join(parent, name), folder) for name in names]
        return sorted(path.replace(os.sep, "/") for path in found)
    prefix = folder + "/"
    return sorted(path[len(prefix):] for path in list_glob(prefix + "**") if path.startswith(prefix)
                  and not path.endswith("/"))


def copy_files(source_folder, destination_folder, relative_paths):
    """Copies `relative_paths` from one folder to another (local or URL, either way); each file is
    written whole (`write_bytes`), so a reader never sees a part of one."""
    for relative in relative_paths:
        write_bytes(join(destination_folder, relative), read_bytes(join(source_folder, relative)))


def move_folder(source, destination):
    """Moves a folder: a rename locally; file by file (copy, then delete) on object storage.

    Raises:
        FileExistsError: `destination` exists already (nothing is moved).
    """
    if exists(destination) or list_tree(destination):
        raise FileExistsError(f"Cannot move {source} to {destination}: the destination exists already.")
    if not is_url(source) and not is_url(destination):
        os.makedirs(os.path.dirname(os.path.abspath(destination)), exist_ok=True)
        os.rename(source, destination)
        return
    files = list_tree(source)
    copy_files(source, destination, files)
    delete([join(source, relative) for relative in files])
