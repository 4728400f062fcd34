"""The rendered clarinet material in data/clarinet/train and data/clarinet/validation agrees with
its scores (pitch, silent rests, level, durations), the two sets come from different SoundFonts,
and render_material.py really renders a phrase with fluidsynth (skipped without fluidsynth or
FluidR3_GM)."""

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

CLARINET = Path(__file__).resolve().parents[2] / "data" / "clarinet"
sys.path.insert(0, str(CLARINET))

import material_score as ms  # noqa: E402
import render_material as rm  # noqa: E402
import verify_material as vm  # noqa: E402

SETS = {"train": "fluidr3", "validation": "gmbank"}
KINDS = {"notes", "swell", "legato", "detached", "vibrato", "glide"}
# Documented in data/clarinet/README.md.
PEAK_RANGE_DBFS = {"train": (-8.5, -4.0), "validation": (-13.5, -4.5)}
DURATION_RANGE_S = {"train": (240.0, 360.0), "validation": (90.0, 155.0)}
TOLERANCE_CENTS = 15.0
SILENCE_DB = -60.0
FLUIDR3 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"


def _flacs(set_name):
    return sorted((CLARINET / set_name).glob("*.flac"))


@pytest.fixture(scope="module")
def analysed():
    """verify_material's analysis of every committed file, by set."""
    return {s: [vm.analyse(f) for f in _flacs(s)] for s in SETS}


@pytest.mark.parametrize("set_name", list(SETS))
def test_every_file_has_its_score(set_name):
    flacs = _flacs(set_name)
    assert len(flacs) >= 6
    jsons = sorted((CLARINET / set_name).glob("*.json"))
    assert [j.stem for j in jsons] == [f.stem for f in flacs], "a FLAC without a score or vice versa"
    kinds = set()
    for f in flacs:
        score = ms.load_score(f.with_suffix(".json"))
        info = sf.info(str(f))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert score["file"] == f.name
        assert score["set"] == set_name
        assert f.name.startswith(SETS[set_name] + "_" + score["kind"] + "_")
        assert score["sample_rate"] == 16000
        assert info.frames == round(score["duration_s"] * 16000)
        assert 8.0 <= score["duration_s"] <= 31.0
        assert (score["program"], score["bank"], score["preset_name"]) == (71, 0, "Clarinet")
        for onset, offset, midi, velocity in score["notes"]:
            assert 0.25 <= onset < offset <= score["duration_s"] - 0.9
            assert 50 <= midi <= 94 and 35 <= velocity <= 120
        kinds.add(score["kind"])
    assert kinds == KINDS


@pytest.mark.parametrize("set_name", list(SETS))
def test_content(set_name):
    """Every pitch alone; soft and loud; CC 7 and CC 11 ramps; bends; whole-window rests."""
    scores = [ms.load_score(f.with_suffix(".json")) for f in _flacs(set_name)]
    alone = [n for s in scores if s["kind"] == "notes" for n in ms.notes_of(s)]
    assert {n["midi"] for n in alone} == set(range(50, 95))
    vels = [n["velocity"] for s in scores for n in ms.notes_of(s)]
    assert min(vels) <= 40 and max(vels) >= 115
    controllers = {key for s in scores for key in ms.controller_tracks(s)}
    assert {"cc7", "cc11", "bend"} <= controllers
    for s in scores:
        rests = ms.rests_of(s)
        middle = [r for r in rests if r["after_note"] and r["end_s"] < s["duration_s"]]
        assert any(r["end_s"] - r["start_s"] >= 1.2 for r in middle), s["file"]
        assert any(r["end_s"] - r["start_s"] >= 0.4 for r in middle), s["file"]
    legato = [s for s in scores if s["kind"] == "legato"]
    touching = sum(1 for s in legato for a, b in zip(ms.notes_of(s), ms.notes_of(s)[1:])
                   if abs(a["offset_s"] - b["onset_s"]) < 1e-9)
    overlapping = sum(1 for s in legato for a, b in zip(ms.notes_of(s), ms.notes_of(s)[1:])
                      if a["offset_s"] > b["onset_s"])
    assert touching >= 5 and overlapping >= 3


@pytest.mark.parametrize("set_name", list(SETS))
def test_pitch_matches_score(analysed, set_name):
    checked = 0
    for r in analysed[set_name]:
        cs = [n["cents"] for n in r["notes"] if n["checked"]]
        assert cs, r["file"]
        assert abs(float(np.median(cs))) <= TOLERANCE_CENTS, r["file"]
        for n in r["notes"]:
            if n["checked"]:
                assert not n["gross"] and abs(n["cents"]) <= TOLERANCE_CENTS, (r["file"], n)
        checked += len(cs)
    total = sum(len(r["notes"]) for r in analysed[set_name])
    assert checked >= 0.7 * total


@pytest.mark.parametrize("set_name", list(SETS))
def test_bends_and_ramps_are_heard(analysed, set_name):
    gains = [r["bend_gain"] for r in analysed[set_name] if r["kind"] in ("vibrato", "glide")]
    assert gains and all(0.9 <= g <= 1.1 for g in gains), gains
    depths = [d for r in analysed[set_name] if r["kind"] == "swell" for d in r["cc_depths_db"]]
    assert depths and min(depths) >= 30.0, depths


@pytest.mark.parametrize("set_name", list(SETS))
def test_rests_are_silent(analysed, set_name):
    n_rests = 0
    for r in analysed[set_name]:
        assert r["rests"], r["file"]
        for rest in r["rests"]:
            assert rest["rms_db_re_peak"] <= SILENCE_DB, (r["file"], rest)
        n_rests += len(r["rests"])
    assert n_rests >= 50


@pytest.mark.parametrize("set_name", list(SETS))
def test_levels(analysed, set_name):
    lo, hi = PEAK_RANGE_DBFS[set_name]
    peaks = []
    for r in analysed[set_name]:
        assert not r["clipped"], r["file"]
        assert lo <= r["peak_dbfs"] <= hi, (r["file"], r["peak_dbfs"])
        peaks.append(r["peak_dbfs"])
    assert -6.0 <= max(peaks) <= -3.0  # the loudest (ff) notes of the set


@pytest.mark.parametrize("set_name", list(SETS))
def test_total_duration_and_size(analysed, set_name):
    lo, hi = DURATION_RANGE_S[set_name]
    assert lo <= sum(r["duration_s"] for r in analysed[set_name]) <= hi
    total_bytes = sum(f.stat().st_size for s in SETS for f in _flacs(s))
    assert total_bytes < 10e6


def test_train_and_validation_are_disjoint():
    meta = {}
    for s in SETS:
        scores = [ms.load_score(f.with_suffix(".json")) for f in _flacs(s)]
        meta[s] = {(sc["soundfont"], sc["soundfont_package"]) for sc in scores}
        assert len(meta[s]) == 1, meta[s]
    (train_sf, train_pkg), = meta["train"]
    (val_sf, val_pkg), = meta["validation"]
    assert train_sf == "FluidR3_GM.sf2" and val_sf == "sf_GMbank.sf2"
    assert train_pkg.split()[0] != val_pkg.split()[0]
    names = [{f.name for f in _flacs(s)} for s in SETS]
    assert not names[0] & names[1]
    digests = [{hashlib.sha256(sf.read(str(f), dtype="int16")[0].tobytes()).hexdigest()
                for f in _flacs(s)} for s in SETS]
    assert not digests[0] & digests[1]


def test_midi_file_follows_the_score():
    """The Standard MIDI File that mido writes for a committed score has the score's notes."""
    mido = pytest.importorskip("mido")
    score = ms.load_score(CLARINET / "train" / "fluidr3_legato_00.json")
    mid = rm.build_midi(score)
    assert mid.ticks_per_beat == 1000
    now, ons, offs, ccs = 0, [], [], 0
    for msg in mido.merge_tracks(mid.tracks):
        now += msg.time
        if msg.type == "note_on" and msg.velocity > 0:
            ons.append((now, msg.note, msg.velocity))
        elif msg.type == "note_off":
            offs.append((now, msg.note))
        elif msg.type == "program_change":
            assert msg.program == 71
    notes = ms.notes_of(score)
    assert sorted(ons) == sorted((ms.tick(n["onset_s"]), n["midi"], n["velocity"]) for n in notes)
    assert sorted(offs) == sorted((ms.tick(n["offset_s"]), n["midi"]) for n in notes)
    assert now == ms.tick(score["duration_s"])


def test_render_tiny_phrase(tmp_path):
    """Two notes and a rest rendered with fluidsynth: pitch, level, and silence in the rest."""
    if shutil.which("fluidsynth") is None or not os.path.isfile(FLUIDR3):
        pytest.skip("fluidsynth or FluidR3_GM missing (apt-get install fluidsynth fluid-soundfont-gm)")
    score = {
        "format": ms.FORMAT, "file": "tiny.flac", "kind": "test", "set": "test",
        "sample_rate": 16000, "duration_s": 3.4, "soundfont": "FluidR3_GM.sf2",
        "program": 71, "bank": 0, "channel": 0, "gain": 1.5,
        "pitch_bend_range_semitones": 2, "release_guard_s": 0.08,
        "note_fields": ms.NOTE_FIELDS,
        "notes": [[0.3, 1.1, 69, 110], [1.9, 2.6, 62, 60]],
        "automation": [],
    }
    flac = tmp_path / "tiny.flac"
    peak = rm.render_score(score, FLUIDR3, 1.5, flac)
    ms.dump_score(score, tmp_path / "tiny.json")
    assert json.loads((tmp_path / "tiny.json").read_text())["notes"] == score["notes"]
    r = vm.analyse(flac)
    assert sf.info(str(flac)).frames == 3.4 * 16000
    assert -8.0 <= 20 * np.log10(peak) <= -3.0 and not r["clipped"]
    assert [n["checked"] for n in r["notes"]] == [True, True]
    assert all(abs(n["cents"]) <= TOLERANCE_CENTS for n in r["notes"])
    assert r["notes"][1]["level_db"] < r["notes"][0]["level_db"] - 6.0  # velocity 60 vs 110
    rests = {round(x["start_s"], 2): x for x in r["rests"]}
    assert 1.18 in rests  # 1.1 s + the 80 ms release guard
    assert all(x["rms_db_re_peak"] <= SILENCE_DB for x in r["rests"])
    # the rest really is there: right after the release guard the audio is silent
    x, sr = sf.read(str(flac))
    assert np.max(np.abs(x[int(1.2 * sr):int(1.85 * sr)])) < 10 ** (-60 / 20) * peak
