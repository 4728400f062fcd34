"""render_rooms.py: the synthetic room impulse responses decay as asked (Schroeder T30 per band),
have the asked direct-to-reverberant ratio and are seeded; convolution and peak normalisation are
right; the CLI writes atomically and refuses to overwrite; the committed validation_room files are
exactly what the script makes from seed 0."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

CLARINET = Path(__file__).resolve().parents[2] / "data" / "clarinet"
sys.path.insert(0, str(CLARINET))

import render_rooms as rr  # noqa: E402

pytestmark = pytest.mark.dsp

SR = 16000
ROOM = CLARINET / "validation_room"
DRY = CLARINET / "validation"


def _band(h, btype, cutoff_hz):
    """8th-order Butterworth (causal, so its own ringing dies in a few ms)."""
    return signal.sosfilt(signal.butter(8, cutoff_hz, btype, fs=SR, output="sos"), h)


def _drr_db(h, predelay_s=rr.PREDELAY_S):
    n_pre = round(predelay_s * SR)
    return 10 * np.log10(np.sum(h[:n_pre] ** 2) / np.sum(h[n_pre:] ** 2))


@pytest.mark.parametrize("rt60_s", [0.3, 0.6, 0.9])
def test_rt60_one_band(rt60_s):
    """Without frequency-dependent decay, the broadband T30 is the asked RT60."""
    for seed in (0, 1):
        h = rr.room_impulse_response(rt60_s, SR, seed, hf_rt60_ratio=1.0)
        assert rr.schroeder_rt60(h, SR) == pytest.approx(rt60_s, rel=0.10)


@pytest.mark.parametrize("rt60_s", [0.3, 0.6, 0.9])
def test_rt60_two_bands(rt60_s):
    """By default rt60_s holds below the 4 kHz crossover, 0.7 * rt60_s above it."""
    h = rr.room_impulse_response(rt60_s, SR, seed=7)
    assert rr.schroeder_rt60(_band(h, "lowpass", 3000), SR) == pytest.approx(rt60_s, rel=0.10)
    assert rr.schroeder_rt60(_band(h, "highpass", 5000), SR) == pytest.approx(
        rr.HF_RT60_RATIO * rt60_s, rel=0.10)
    # Broadband, the faster highs shorten the T30 a little (documented: about 5-8 %).
    assert 0.85 * rt60_s < rr.schroeder_rt60(h, SR) < rt60_s


def test_schroeder_rt60_of_a_pure_exponential():
    t = np.arange(SR) / SR
    assert rr.schroeder_rt60(np.exp(-rr.LN_1000 * t / 0.5), SR) == pytest.approx(0.5, rel=1e-3)


@pytest.mark.parametrize("drr_db", [-3.0, 3.0, 10.0])
def test_direct_to_reverberant_ratio(drr_db):
    h = rr.room_impulse_response(0.6, SR, seed=3, drr_db=drr_db)
    assert _drr_db(h) == pytest.approx(drr_db, abs=0.5)


def test_shape_direct_path_and_predelay():
    rt60_s = 0.5
    h = rr.room_impulse_response(rt60_s, SR, seed=0)
    n_pre = round(rr.PREDELAY_S * SR)
    assert h.shape == (n_pre + int(np.ceil(rr.TAIL_DB / 60 * rt60_s * SR)),)
    assert h[0] == 1.0 and np.all(h[1:n_pre] == 0) and h[n_pre] != 0
    # The tail's last 10 ms are more than 70 dB below its first 10 ms (80 dB by construction).
    n = SR // 100
    assert 10 * np.log10(np.mean(h[-n:] ** 2) / np.mean(h[n_pre:n_pre + n] ** 2)) < -70


def test_seeded():
    a = rr.room_impulse_response(0.4, SR, seed=5)
    assert np.array_equal(a, rr.room_impulse_response(0.4, SR, seed=5))
    assert not np.allclose(a, rr.room_impulse_response(0.4, SR, seed=6))


def test_file_seed_and_rt60_draw():
    # Known answers: crc32 does not change across machines or Python versions.
    assert rr.file_seed(0, "gmbank_glide_00.flac") == 809193569
    assert rr.file_seed(1, "gmbank_glide_00.flac") != 809193569
    draws = [rr.draw_rt60(rr.file_seed(0, f"f{i}.flac")) for i in range(200)]
    assert 0.3 <= min(draws) < 0.35 and 0.85 < max(draws) <= 0.9
    assert all(0.5 <= rr.draw_rt60(s, (0.5, 0.6)) <= 0.6 for s in range(20))


def test_impulse_in_gives_the_impulse_response_out():
    ir = rr.room_impulse_response(0.3, SR, seed=1)
    x = np.zeros(1000)
    x[10] = 1.0
    y = rr.convolve(x, ir)
    assert y.shape == (len(x) + len(ir) - 1,)
    np.testing.assert_allclose(y[10:10 + len(ir)], ir, atol=1e-12)
    assert np.max(np.abs(y[:10])) < 1e-12 and np.max(np.abs(y[10 + len(ir):])) < 1e-12
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(300), rng.standard_normal(77)
    np.testing.assert_allclose(rr.convolve(a, b), np.convolve(a, b), atol=1e-10)


@pytest.mark.parametrize("peak_int", [32767, 12000])
def test_output_peak_is_the_dry_peak(tmp_path, peak_int):
    t = np.arange(SR) / SR
    dry = np.sin(2 * np.pi * 440 * t) * np.minimum(1, 20 * t) * (t < 0.6)
    pcm = np.round(dry / np.max(np.abs(dry)) * peak_int).astype(np.int16)
    src = tmp_path / "tone.flac"
    sf.write(str(src), pcm, SR, format="FLAC", subtype="PCM_16")
    out, sr, sidecar = rr.reverberate_file(src, master_seed=0, rt60_range_s=(0.9, 0.9))
    assert sr == SR and out.dtype == np.int16
    assert len(out) == len(pcm) + sidecar["ir_samples"] - 1 == sidecar["samples"]
    assert np.max(np.abs(out.astype(np.int32))) == peak_int  # never past full scale (32767)
    assert sidecar["source_sidecar"] is None and sidecar["rt60_s"] == 0.9
    # The reverb is there: 0.2 s after the tone stops it is still well above silence.
    assert np.max(np.abs(out[int(0.8 * SR):int(0.85 * SR)])) > peak_int * 10 ** (-40 / 20)


def test_committed_files_match_their_sidecars():
    flacs = sorted(ROOM.glob("*.flac"))
    assert [f.name for f in flacs] == sorted(f.name for f in DRY.glob("*.flac"))
    for flac in flacs:
        side = json.loads(flac.with_suffix(".json").read_text())
        dry, sr = sf.read(str(DRY / flac.name), dtype="int16")
        wet, wet_sr = sf.read(str(flac), dtype="int16")
        assert side["format"] == rr.FORMAT and side["source_file"] == flac.name
        assert side["seed"] == rr.file_seed(0, flac.name) and side["master_seed"] == 0
        assert side["rt60_s"] == rr.draw_rt60(side["seed"], (0.3, 0.9))
        assert side["source_sidecar"] == json.loads((DRY / flac.name).with_suffix(".json").read_text())
        assert wet_sr == sr == SR and len(wet) == len(dry) + side["ir_samples"] - 1 == side["samples"]
        assert np.max(np.abs(wet.astype(np.int32))) == np.max(np.abs(dry.astype(np.int32)))


def test_committed_file_is_reproduced(tmp_path):
    """The script, run as documented (seed 0), makes the committed file: the same 16-bit samples."""
    name = "gmbank_glide_00"  # the shortest file, 10.8 s
    args = ["--input", str(DRY / f"{name}.flac"), "--output", str(tmp_path), "--seed", "0", "-q"]
    assert rr.main(args) == 0
    made, _ = sf.read(str(tmp_path / f"{name}.flac"), dtype="int16")
    committed, _ = sf.read(str(ROOM / f"{name}.flac"), dtype="int16")
    assert made.shape == committed.shape
    diff = np.flatnonzero(made != committed)
    assert diff.size == 0, f"{diff.size} samples differ, first at {diff[:5]}"
    assert (tmp_path / f"{name}.json").read_text() == (ROOM / f"{name}.json").read_text()


def test_cli_refuses_to_overwrite_and_writes_atomically(tmp_path, capsys):
    src_dir = tmp_path / "dry"
    src_dir.mkdir()
    noise = (np.random.default_rng(0).standard_normal(800) * 3000).astype(np.int16)
    sf.write(str(src_dir / "a.flac"), noise, SR, format="FLAC", subtype="PCM_16")
    out = tmp_path / "room"
    args = ["--input", str(src_dir / "*.flac"), "--output", str(out), "--rt60-range", "0.3,0.3", "-q"]
    assert rr.main(args) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.flac", "a.json"]  # no temporary files left
    first = (out / "a.flac").read_bytes()
    (out / "a.json").write_text("{}")
    assert rr.main(args) == 1
    err = capsys.readouterr().err
    assert "a.flac exists" in err and "pass --overwrite" in err
    assert (out / "a.json").read_text() == "{}"  # nothing touched
    assert rr.main(args + ["--overwrite"]) == 0
    assert (out / "a.flac").read_bytes() == first and json.loads((out / "a.json").read_text())["rt60_s"] == 0.3


def test_cli_errors_say_what_to_do(tmp_path, capsys):
    assert rr.main(["--input", str(tmp_path / "*.flac"), "--output", str(tmp_path / "o")]) == 1
    assert "no files match" in capsys.readouterr().err
    (tmp_path / "x.flac").write_bytes(b"not audio")
    assert rr.main(["--input", str(tmp_path / "*.flac"), "--output", str(tmp_path)]) == 1
    assert "is the input folder" in capsys.readouterr().err
    assert rr.main(["--input", str(tmp_path / "*.flac"), "--output", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "x.flac: cannot read it as audio" in err and "matches audio files only" in err
    assert not list((tmp_path / "o").glob("*"))
    with pytest.raises(SystemExit):
        rr.main(["--input", "a", "--output", "b", "--rt60-range", "0.9,0.3"])
