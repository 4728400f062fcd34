"""Gin configuration of a run: the shipped gin files, the run's operative config, parsing.

`parse_gin` is what `ddsp_run` (and the pipeline steps) call before building anything:
it parses `optimization/base.gin` and `eval/basic.gin`, then the newest
`operative_config-N.gin` of a run folder (eval, sample, resume), then the given files and
bindings. Files are found by path or by name in the package's gin folder; a URL (gs://...)
is read through `storage` (Beam's FileSystems), in `--gin_file`, `include` and run folders alike.
"""

import io
import logging
import os
import re

GIN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "gin")


class GinConfigError(ValueError):
    """A gin file that cannot be found or parsed, or a bad binding (a misspelt name, say)."""


def _quiet_gin_file_lookup(record):
    """Drops gin's log lines about looking for files on the Python path (it finds them on ours)."""
    message = str(record.msg)
    return not (message.startswith("system_path_file_exists") or message.startswith("Path not found:"))


def operative_config(directory):
    """Path of the newest operative_config-N.gin in `directory`, or None."""
    from ddsp_core.io import storage

    def step(path):
        name = path.rsplit("/", 1)[-1]
        try:
            return int(name[len("operative_config-"):-len(".gin")])
        except ValueError:
            return -1

    found = storage.list_glob(storage.join(directory, "operative_config-*.gin"))
    return max(found, key=step) if found else None


# A URL as `storage` reads it: a scheme, then '://' (not a local path that merely holds '://').
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def _url_exists(path):
    """gin's readability check for URLs; local paths are left to gin's own reader (`open`)."""
    from ddsp_core.io import storage

    return bool(_URL.match(path)) and storage.exists(path)


def _open_url(path):
    """gin's reader for URLs: the file's text, as a file-like object."""
    from ddsp_core.io import storage

    return io.StringIO(storage.read_bytes(path).decode("utf-8"))


def _register_url_reader(gin):
    """Lets gin read gin files (and their `include`s) from gs:// and other URLs; gin keeps
    a global list of readers and adds this one once."""
    gin.config.register_file_reader(_open_url, _url_exists)


# Folders already on gin's search path (it keeps a global list).
_SEARCH_PATHS_ADDED = set()
# Paths to the shipped gin files as magenta's commands write them (relative to a checkout).
_PACKAGE_GIN_PREFIXES = ("ddsp_core/training/gin/", "ddsp/training/gin/")


def resolve_gin_file(path):
    """The shipped file for 'ddsp_core/training/gin/X' (or magenta's 'ddsp/training/gin/X') from
    any working directory; other paths unchanged (gin also looks them up on its search path)."""
    if os.path.exists(path) or _URL.match(path):
        return path
    for prefix in _PACKAGE_GIN_PREFIXES:
        if prefix in path:
            candidate = os.path.join(GIN_DIR, path.split(prefix, 1)[1])
            if os.path.exists(candidate):
                return candidate
    return path


def parse_gin(gin_files, gin_params, search_paths=(), operative_config_dir=None, base_files=(), base_params=(),
              base_bindings=None):
    """Parses the default files, the run's operative config, then `gin_files` and `gin_params`.

    A program that configures a run for its user (the pipeline's steps, from a preset) gives
    its own settings as `base_files`, `base_params` (binding strings) and `base_bindings`
    ({'configurable.parameter' or '%macro': Python value}, bound through gin's API), in that
    order, after the operative config and before the user's `gin_files` and `gin_params`,
    which so override them.

    Raises:
        GinConfigError: a file not found, a parse error or a misspelt binding, with the file or param.
    """
    import gin

    import ddsp_core.training  # noqa: F401  Registers every configurable.

    try:
        from ddsp_core.training import data  # noqa: F401  TFRecordProvider (reads with tf.data).
    except ImportError:  # A JAX-only machine can still build and run models from gin.
        logging.debug("TensorFlow is not installed: no TFRecordProvider.")

    _register_url_reader(gin)
    if _quiet_gin_file_lookup not in logging.getLogger().filters:
        logging.getLogger().addFilter(_quiet_gin_file_lookup)
    for path in [GIN_DIR, *search_paths]:
        if path not in _SEARCH_PATHS_ADDED:
            gin.add_config_file_search_path(path)
            _SEARCH_PATHS_ADDED.add(path)
    # Defaults first, as magenta's ddsp_run does: the optimizer and the basic evaluator.
    files = ["optimization/base.gin", "eval/basic.gin"]
    if operative_config_dir:
        previous = operative_config(operative_config_dir)
        if previous:
            logging.info("Using the run's config %s (later --gin_file/--gin_param override it).", previous)
            files.append(previous)
    with gin.unlock_config():
        gin.clear_config()
        _parse_files(gin, [*files, *map(resolve_gin_file, base_files)], search_paths)
        _parse_params(gin, base_params, "binding")
        for key, value in (base_bindings or {}).items():
            try:
                gin.bind_parameter(key, value)
            except Exception as error:
                raise GinConfigError(f"Binding {key} = {value!r}: {_gin_message(error)}") from None
        _parse_files(gin, list(map(resolve_gin_file, gin_files)), search_paths)
        _parse_params(gin, gin_params, "--gin_param")


def _parse_files(gin, paths, search_paths):
    for path in paths:
        try:
            gin.parse_config_file(path)
        except (IOError, OSError) as error:
            raise GinConfigError(_not_found_message(path, error, search_paths)) from None
        except Exception as error:
            raise GinConfigError(f"Gin file {path}: {_gin_message(error)}") from None


def _parse_params(gin, params, what):
    for param in params:
        try:
            gin.parse_config(param)
        except Exception as error:
            raise GinConfigError(f"{what} {param!r}: {_gin_message(error)}") from None


def _not_found_message(path, error, search_paths):
    """What to say when gin cannot open `path`, or a file that `path` includes."""
    if f"Unable to open file: {path}." not in str(error):  # An include (or reading the file) failed.
        return f"Gin file {path}: {error}"
    if _URL.match(path):
        return f"Gin file {path!r} not found ({error}). Check the bucket and path, and your access to them."
    return (f"Gin file {path!r} not found ({error}). Give a path, or a name on the search path: "
            f"{[GIN_DIR, *search_paths]}.")


# gin appends one line per configurable an exception passed through ("  In call to configurable
# 'Trainer' (<class ...>)"): useful in a traceback, noise in a one-line reason.
_GIN_CONTEXT_LINE = "In call to configurable"


def without_gin_context(error):
    """The message of `error` (any exception) without the "In call to configurable ..." lines gin
    appends, stripped: what `ddsp_run` and the pipeline steps print as a failure's reason. ''
    when nothing else is left."""
    return "\n".join(line for line in str(error).splitlines()
                     if not line.strip().startswith(_GIN_CONTEXT_LINE)).strip()


def _gin_message(error):
    text = str(error).strip()
    if "No configurable matching" in text:
        text += " Check the spelling of the name before the dot (configurables are listed in the README)."
    return text


# The gin macros the shipped model files (models/ae.gin) give the synthesizers, reverb and loss.
EXAMPLE_FORMAT_MACROS = ("sample_rate", "n_samples")


def bind_example_format(example_format):
    """Makes the gin-configured model produce the dataset's examples.

    Binds the macros `sample_rate` and `n_samples` (EXAMPLE_FORMAT_MACROS) to the
    `ExampleFormat`'s values, so the synthesizers render `n_samples` samples at its rate and
    the loss measures them at that rate. The data decides: a value the gin files give
    is replaced (and the change logged), as a model of another length could not train on
    these examples. A model whose gin files define no such macro is left as it is.

    Args:
        example_format: The data's `ExampleFormat` (e.g. `TFRecordProvider.example_format`),
            or None (nothing to bind).

    Returns:
        {macro: (old value, new value)} of the macros changed.
    """
    if example_format is None:
        return {}
    import gin

    changed = {}
    for name, value in (("sample_rate", example_format.sample_rate), ("n_samples", example_format.n_samples)):
        try:
            current = gin.query_parameter(f"%{name}")
        except ValueError:  # The model's gin files do not use this macro.
            continue
        if current != value:
            with gin.unlock_config():
                gin.bind_parameter(f"%{name}", value)
            changed[name] = (current, value)
    if changed:
        logging.info("The model is set to the data's examples (%s): %s.", example_format.describe(),
                     ", ".join(f"{name} {old} -> {new}" for name, (old, new) in changed.items()))
    return changed


def check_seed(seed, flag="--seed"):
    """Returns `seed` as an int; ValueError, naming `flag`, unless it is a seed training takes: a
    whole number from 0 to seeding.SEED_LIMIT - 1 (2**31 - 1)."""
    from ddsp_core.training.seeding import SEED_LIMIT

    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < SEED_LIMIT:
        raise ValueError(f"{flag} must be a whole number from 0 to {SEED_LIMIT - 1} (leave it out to have training "
                         f"draw one), not {seed!r}.")
    return seed


def bind_train_seed(seed):
    """Binds `train.seed` to `seed`, on top of the parsed gin files and bindings.

    An explicit seed (a command's --seed) wins over a `train.seed` binding of the gin files or
    params; a different value it replaces is logged. Call it after `parse_gin`.

    Args:
        seed: A whole number from 0 to 2**31 - 1, or None (nothing is bound: the gin config's
            train.seed, if any, is used, else training draws a seed and logs it).

    Returns:
        The seed bound, or None.
    """
    if seed is None:
        return None
    import gin

    seed = check_seed(seed)
    try:
        current = gin.query_parameter("train.seed")
    except ValueError:  # Not bound.
        current = None
    if current is not None and current != seed:
        logging.info("--seed %d replaces train.seed = %r of the gin config.", seed, current)
    with gin.unlock_config():
        gin.bind_parameter("train.seed", seed)
    return seed
