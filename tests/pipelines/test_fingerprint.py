"""`pipelines.fingerprint.audio_fingerprint`: the digest of audio inputs in kfp's cache key.

Local globs against files in tmp_path; gs:// globs against a real Cloud Storage emulator
(tests/gcs_emulator.py), listed through google-cloud-storage.
"""

import os

import pytest

from pipelines import fingerprint, local
from pipelines.fingerprint import FingerprintError, audio_fingerprint


@pytest.fixture
def audio(gcs_emulator, gcs_bucket):
    """Two matching objects, one deeper (matched by '**' only) and one of another type."""
    for name, data in (("audio/a.wav", b"a" * 10), ("audio/b.wav", b"b" * 20), ("audio/low/c.wav", b"c" * 5),
                       ("audio/notes.txt", b"text")):
        gcs_emulator.upload_bytes(data, f"{gcs_bucket}/{name}")
    return gcs_bucket


def test_gs_listing_matches_as_beam_does(gcs_emulator, audio):
    listing = fingerprint.gs_listing
    client = gcs_emulator.client
    assert [url for url, _, _ in listing(f"{audio}/audio/*.wav", client)] == [f"{audio}/audio/a.wav",
                                                                             f"{audio}/audio/b.wav"]
    assert [url for url, _, _ in listing(f"{audio}/audio/**.wav", client)] == [
        f"{audio}/audio/a.wav", f"{audio}/audio/b.wav", f"{audio}/audio/low/c.wav"]
    assert [url for url, _, _ in listing(f"{audio}/audio/[ab].wa?", client)] == [f"{audio}/audio/a.wav",
                                                                                f"{audio}/audio/b.wav"]
    [(url, size, generation)] = listing(f"{audio}/audio/a.wav", client)
    assert (url, size) == (f"{audio}/audio/a.wav", 10) and generation
    assert listing(f"{audio}/audio/a.wa", client) == [], "a name without glob characters is matched whole"


def test_gs_digest_changes_when_a_matching_object_is_rewritten(gcs_emulator, audio):
    pattern = f"{audio}/audio/*.wav"
    before = audio_fingerprint(pattern)
    assert audio_fingerprint(pattern) == before
    gcs_emulator.upload_bytes(b"B" * 20, f"{audio}/audio/b.wav")  # Same name and size: a new generation.
    assert audio_fingerprint(pattern) != before


def test_gs_digest_changes_when_a_matching_object_is_added_or_removed(gcs_emulator, audio):
    pattern = f"{audio}/audio/*.wav"
    before = audio_fingerprint(pattern)
    gcs_emulator.upload_bytes(b"d", f"{audio}/audio/d.wav")
    added = audio_fingerprint(pattern)
    assert added != before
    gcs_emulator.client.bucket(audio[len("gs://"):]).blob("audio/a.wav").delete()
    assert audio_fingerprint(pattern) not in (before, added)


def test_gs_digest_ignores_objects_the_glob_does_not_match(gcs_emulator, audio):
    pattern = f"{audio}/audio/*.wav"
    before = audio_fingerprint(pattern)
    gcs_emulator.upload_bytes(b"more text", f"{audio}/audio/notes.txt")
    gcs_emulator.upload_bytes(b"C" * 5, f"{audio}/audio/low/c.wav")  # '*' stays within a folder.
    gcs_emulator.upload_bytes(b"e", f"{audio}/other/e.wav")
    assert audio_fingerprint(pattern) == before
    assert audio_fingerprint(f"{audio}/audio/**") != before


def test_gs_and_local_globs_are_digested_together(gcs_emulator, audio, tmp_path):
    (tmp_path / "x.wav").write_bytes(b"x")
    both = f"{tmp_path}/*.wav,{audio}/audio/*.wav"
    before = audio_fingerprint(both, client=gcs_emulator.client)
    gcs_emulator.upload_bytes(b"A" * 10, f"{audio}/audio/a.wav")
    assert audio_fingerprint(both, client=gcs_emulator.client) != before


def test_unlistable_gs_glob_is_named(gcs_emulator):
    with pytest.raises(FingerprintError, match=r"cannot list gs://no-such-bucket-for-ddsp/audio/\*\.wav"):
        audio_fingerprint("gs://no-such-bucket-for-ddsp/audio/*.wav")


def test_local_digest_follows_sizes_times_and_the_file_set(tmp_path):
    for name in ("a.wav", "b.wav", "low/c.wav", "notes.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    pattern = str(tmp_path / "*.wav")
    before = audio_fingerprint(pattern)
    assert local.audio_fingerprint is audio_fingerprint
    (tmp_path / "notes.txt").write_bytes(b"changed")
    (tmp_path / "low" / "c.wav").write_bytes(b"changed")
    assert audio_fingerprint(pattern) == before, "files the glob does not match are ignored"
    assert audio_fingerprint(str(tmp_path / "**" / "*.wav")) != before
    stat = os.stat(tmp_path / "a.wav")
    os.utime(tmp_path / "a.wav", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    touched = audio_fingerprint(pattern)
    assert touched != before
    (tmp_path / "b.wav").unlink()
    assert audio_fingerprint(pattern) not in (before, touched)


def test_other_urls_add_only_their_text():
    assert audio_fingerprint("s3://bucket/a/*.wav") == audio_fingerprint("s3://bucket/a/*.wav")
    assert audio_fingerprint("s3://bucket/a/*.wav") != audio_fingerprint("s3://bucket/b/*.wav")
