"""components/eval: the Metrics it logs and the JSON record and logs it writes."""

import glob
import json
import math
import os

import pytest

from ddsp_core.steps import steps
from tests.components.conftest import NUM_STEPS, as_input, call, output

# What eval/basic_f0_ld.gin measures (F0LoudnessMetrics and the model's losses); silent_level_db is
# None (not logged) when the examples have no silent frames.
METRICS = {"spectral_loss", "total_loss", "loudness_l1_db", "quiet_loudness_l1_db", "onset_lag_median_ms",
           "f0_l1_cents", "f0_outlier_ratio", "n_confident_frames", "n_quiet_frames", "n_onsets"}


def read_json(path):
    with open(path) as file:
        return json.load(file)


def test_metrics_metadata_are_the_records_metrics(evaluated):
    metrics, _ = evaluated
    record = read_json(metrics.path)  # The artifact's file is the JSON record.
    logged = {name for name, value in record["metrics"].items() if value is not None}
    assert METRICS <= logged
    assert set(metrics.metadata) == logged | {"step", "n_examples", "measured_on_training_data"}
    assert metrics.metadata["n_examples"] == record["n_examples"] == 6
    assert metrics.metadata["step"] == record["step"] == NUM_STEPS
    # The held-out note was given: measured on the eval split.
    assert record["split"] == "eval" and metrics.metadata["measured_on_training_data"] == 0
    for name in METRICS:
        value = metrics.metadata[name]
        assert isinstance(value, float) and math.isfinite(value), name
        assert value == pytest.approx(record["metrics"][name]), name
    assert record["metrics"]["silent_level_db"] is None


def test_every_held_out_example_is_measured(prepared, evaluated):
    metrics, _ = evaluated
    # The quick preset's 40 batches of 8 are more than the 6 held-out examples: all of them, once.
    assert read_json(metrics.path)["n_examples"] == prepared.metadata["eval_examples"] == 6


def test_eval_logs_hold_the_record_and_the_summaries(evaluated):
    metrics, eval_logs = evaluated
    assert read_json(os.path.join(eval_logs.path, steps.METRICS_FILE)) == read_json(metrics.path)
    assert read_json(os.path.join(eval_logs.path, "eval", f"metrics-{NUM_STEPS}.json")) == read_json(metrics.path)
    assert glob.glob(os.path.join(eval_logs.path, "summaries", "eval", "events.out.tfevents.*"))
    assert eval_logs.metadata == {}


def test_a_model_without_a_checkpoint_fails_the_step(prepared, tmp_path):
    from kfp.dsl import Artifact, Metrics, Model

    from components.eval.component import eval as eval_component

    metrics, eval_logs = output(Metrics, tmp_path, "metrics"), output(Artifact, tmp_path, "eval_logs")
    (tmp_path / "model").mkdir()
    with pytest.raises(steps.StepError, match=r"^step 'eval' failed: No checkpoint \(ckpt-N\.weights\.h5\) in "):
        call(eval_component, dataset=as_input(prepared), model=Model(name="model", uri=str(tmp_path / "model")),
             metrics=metrics, eval_logs=eval_logs)
    assert metrics.metadata == {}
    assert not os.path.exists(metrics.path)
