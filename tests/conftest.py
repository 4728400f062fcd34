"""Shared pytest fixtures: a real GCS emulator (see tests/gcs_emulator.py); the `rehearsal`
marker's switch (`--rehearsal`: run the pipeline rehearsals in podman, skipped by default)."""

import pytest

from tests.gcs_emulator import gcs_bucket, gcs_emulator  # noqa: F401


def pytest_addoption(parser):
    parser.addoption("--rehearsal", action="store_true", default=False,
                     help="Run the tests marked `rehearsal` (the compiled pipeline in podman containers, "
                          "minutes; see pipelines/REHEARSAL.md).")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--rehearsal"):
        return
    skip = pytest.mark.skip(reason="a rehearsal in podman (minutes): run with --rehearsal")
    for item in items:
        if "rehearsal" in item.keywords:
            item.add_marker(skip)
