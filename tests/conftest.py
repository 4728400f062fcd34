"""Shared pytest fixtures: a real GCS emulator (see tests/gcs_emulator.py)."""

from tests.gcs_emulator import gcs_bucket, gcs_emulator  # noqa: F401
