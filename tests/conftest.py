"""Shared pytest fixtures: a real GCS emulator (see tests/gcs_emulator.py); small TFRecords and a tiny
training run written once per session (tests/training_runs.py); every test starting from
the same random state; the `rehearsal` and `slow` markers' switches (`--rehearsal`, `--slow`: skipped
by default)."""

import pytest

from tests.gcs_emulator import gcs_bucket, gcs_emulator  # noqa: F401
from tests.training_runs import clean_state, tfrecords_1s, tfrecords_4s, tiny_run  # noqa: F401


@pytest.fixture(autouse=True)
def seeded_random_state():
    """Seed Python's, NumPy's and Keras' global generators (Keras' initializers draw from them) before
    each test, so a test draws the same weights whichever xdist worker runs it and whatever ran before."""
    import keras

    keras.utils.set_random_seed(0)


# Markers whose tests run only when asked for: marker -> (option, why they are left out).
OPT_IN_MARKERS = {
    "rehearsal": ("--rehearsal", "a rehearsal in podman (minutes)"),
    "slow": ("--slow", "minutes on 2 cores"),
}


def pytest_addoption(parser):
    parser.addoption("--rehearsal", action="store_true", default=False,
                     help="Run the tests marked `rehearsal` (the compiled pipeline in podman containers, "
                          "minutes; see pipelines/REHEARSAL.md).")
    parser.addoption("--slow", action="store_true", default=False,
                     help="Run the tests marked `slow` (whole multi-run workflows such as a 2-trial tune).")


def pytest_collection_modifyitems(config, items):
    for marker, (option, why) in OPT_IN_MARKERS.items():
        if config.getoption(option):
            continue
        skip = pytest.mark.skip(reason=f"{why}: run with {option}")
        for item in items:
            if marker in item.keywords:
                item.add_marker(skip)
