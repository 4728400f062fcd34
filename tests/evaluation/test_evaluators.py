"""Tests for ddsp_core.evaluation.evaluators: F0LdEvaluator's results, per-pitch table and sample extras,
with and without the synths' audio in the outputs (the generated audio's f0 given, CREPE replaced).

Backend-agnostic (NumPy): marked `dsp`, so CI also runs it on JAX.
"""

import numpy as np
import pytest

from ddsp_core.evaluation import evaluators, pitch_metrics

pytestmark = pytest.mark.dsp

SAMPLE_RATE, FRAME_RATE = 16000, 250
N_SAMPLES, N_FRAMES = SAMPLE_RATE, FRAME_RATE  # 1 s.
C4_HZ = 440.0 * 2.0 ** (-9 / 12)


def _evaluator(monkeypatch):
    """An F0LdEvaluator whose CREPE reads the generated audio's f0 as C4 on every frame."""
    evaluator = evaluators.F0LdEvaluator(SAMPLE_RATE, FRAME_RATE)
    f0 = np.full([2, N_FRAMES + 1], C4_HZ, np.float32)
    monkeypatch.setattr(evaluator.metrics, "_track_f0", lambda audio_gen: (f0[:len(audio_gen)], np.ones_like(f0)))
    return evaluator


def _batch_and_outputs(with_parts):
    audio = (0.3 * np.sin(2 * np.pi * C4_HZ * np.arange(N_SAMPLES) / SAMPLE_RATE)).astype(np.float32)
    batch = {"audio": np.stack([audio, audio]), "f0_hz": np.full([2, N_FRAMES], C4_HZ, np.float32),
             "f0_confidence": np.ones([2, N_FRAMES], np.float32),
             "loudness_db": np.full([2, N_FRAMES], -20.0, np.float32)}
    outputs = {"audio_synth": batch["audio"]}
    if with_parts:  # Harmonic energy 0.09 against noise energy 0.01 on every frame: a share of 0.9.
        outputs.update(harmonic_audio=np.full([2, N_SAMPLES], 0.3, np.float32),
                       noise_audio=np.full([2, N_SAMPLES], 0.1, np.float32))
    return batch, outputs


def test_f0_ld_evaluator_reports_the_table_and_the_new_metrics(monkeypatch):
    evaluator = _evaluator(monkeypatch)
    batch, outputs = _batch_and_outputs(with_parts=True)
    evaluator.update(batch, outputs, {})
    result = evaluator.result()

    assert set(result) == set(evaluators.F0LdEvaluator.RESULT_NAMES)
    assert {f"f0_outliers_{name}" for name in pitch_metrics.OUTLIER_LOCATIONS} | {
        "f0_l1_cents_stable", "f0_outlier_ratio_stable", "lowest_register_loudness_l1_db",
        "middle_register_loudness_l1_db", "lowest_register_harmonic_share"} <= set(result)
    assert result["f0_l1_cents_stable"] == pytest.approx(0.0, abs=1e-3)
    assert result["lowest_register_midi"] == result["middle_register_midi"] == 60
    assert result["lowest_register_harmonic_share"] == pytest.approx(0.9)
    [row] = evaluator.tables()["per_pitch"]
    assert (row["midi"], row["n_frames"]) == (60, 2 * N_FRAMES)
    assert row["harmonic_share"] == pytest.approx(0.9)
    # The CREPE settings go into the record beside the metrics (F0LoudnessMetrics' defaults here).
    assert evaluator.tables()["f0_tracking"] == {
        "crepe_capacity": "full", "crepe_precision": "float32", "crepe_frame_rate": 250.0, "frame_stride": 1,
        "min_f0_confidence": 0.85, "outlier_cents": 50.0, "screen_unreadable_frames": True}


def test_f0_ld_evaluator_works_without_the_synths_audio(monkeypatch):
    evaluator = _evaluator(monkeypatch)
    batch, outputs = _batch_and_outputs(with_parts=False)
    extras = evaluator.sample_extras(batch, outputs)

    [row] = extras["per_pitch"]
    assert row["midi"] == 60 and "harmonic_share" not in row
    assert evaluator.result()["lowest_register_harmonic_share"] is None
    assert "f0_outlier_ratio_stable" in extras["example_metrics"][0]


def test_the_base_evaluator_has_no_tables():
    assert evaluators.BasicEvaluator(SAMPLE_RATE, FRAME_RATE).tables() == {}
