"""`ddsp_pipeline tune` end to end here: two trials of the clarinet pipeline (four bundled notes,
tiny CREPE, a tiny model trained for two steps), then one Vertex AI-style trial on the dataset
they prepared. Minutes on 2 cores (each trial runs train, eval, sample and export): skipped unless
pytest --slow (`make test-slow`)."""

import glob
import json
import os
import pathlib

import pytest

from ddsp_core.steps import trial
from pipelines import cli
from tests.training_runs import NOTES_PATTERN, TINY_MODEL_PARAMS

pytestmark = pytest.mark.slow

SPACE = """\
objective: {metric: loudness_l1_db, goal: minimize}
trials: 2
algorithm: grid
parameters:
  learning_rate:
    type: discrete
    values: [0.0001, 0.01]
"""
TINY = ["--num-steps", "2", "--batch-size", "2", "--eval-audio", "",
        *[arg for param in TINY_MODEL_PARAMS for arg in ("--gin-param", param)]]


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tune")
    space = folder / "space.yaml"
    space.write_text(SPACE)
    root = folder / "root"
    status = cli.main(["tune", "--search-space", str(space), "--audio", NOTES_PATTERN, *TINY,
                       "--pipeline-root", str(root)])
    assert status == 0
    return root, space


def _operative(model_dir):
    return pathlib.Path(sorted(glob.glob(os.path.join(model_dir, "operative_config-*.gin")))[-1]).read_text()


def test_two_trials_each_train_with_its_binding_and_the_best_is_exported(tuned):
    root, _ = tuned
    record = json.loads((root / "tune" / "trials.json").read_text())
    rows = record["trials"]
    assert [row["bindings"] for row in rows] == [["learning_rate = 0.0001"], ["learning_rate = 0.01"]]
    assert all(row["status"] == "done" and row["objective"] == row["metrics"]["loudness_l1_db"] for row in rows)
    for row in rows:  # The binding took effect: each trial's model was trained with its learning rate.
        assert f"\n{row['bindings'][0]}\n" in _operative(row["model"])
    assert rows[0]["model"] != rows[1]["model"]
    best = min(rows, key=lambda row: row["objective"])
    assert record["best"] == best["trial"]
    best_dir = root / "tune" / "best"
    assert json.loads((best_dir / "trial.json").read_text())["trial"] == best["trial"]
    checkpoint = os.path.basename(sorted(glob.glob(os.path.join(best["exported"], "model", "ckpt-*.weights.h5")))[-1])
    assert (best_dir / "model" / checkpoint).read_bytes() == (
        pathlib.Path(best["exported"]) / "model" / checkpoint).read_bytes()
    assert (best_dir / "saved_model" / "saved_model.pb").exists()
    table = (root / "tune" / "trials.md").read_text()
    assert f"| {best['trial']} * |" in table and table.count("| done |") == 2


def test_a_vertex_trial_on_the_prepared_dataset_reports_its_objective(tuned, tmp_path, monkeypatch):
    """The trial container's command, as Vertex AI runs it (parameters appended as --ID=VALUE)."""
    root, space_path = tuned
    from ddsp_core.steps import search_space

    space = search_space.load(str(space_path))
    dataset = json.loads((root / "tune" / "trials.json").read_text())["trials"][0]["dataset"]
    metric_file = tmp_path / "hypertune" / "output.metrics"
    monkeypatch.setenv(trial.METRIC_FILE_ENV, str(metric_file))
    monkeypatch.setenv(trial.TRIAL_ID_ENV, "3")
    monkeypatch.setenv(trial.MODEL_DIR_ENV, str(tmp_path / "job" / "3" / "model"))
    arguments = trial.trial_arguments(dataset, space, num_steps=2, batch_size=2, gin_params=TINY_MODEL_PARAMS, seed=1)
    assert trial.main([*arguments, "--learning_rate=0.01"]) == 0
    report = json.loads(metric_file.read_text().splitlines()[-1])
    record = json.loads((tmp_path / "job" / "3" / trial.TRIAL_RECORD).read_text())
    assert report["trial"] == "3" and float(report["loudness_l1_db"]) == record["objective"]["loudness_l1_db"]
    assert "\nlearning_rate = 0.01\n" in _operative(tmp_path / "job" / "3" / "model")
