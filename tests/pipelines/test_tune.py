"""`ddsp_pipeline tune`'s quick parts: the search-space file, the trials drawn from it, the trial
container's command line and metric report, the trials' table, the best model's copy, and the
Vertex AI tuning pipeline compiled by the real kfp compiler. The local 2-trial tune end to end
is in test_tune_local.py (minutes: run with pytest --slow)."""

import json
import os

import pytest
import yaml

from ddsp_core.steps import search_space, trial, tuning_table
from pipelines import cli, tune

EXAMPLE = os.path.join(os.path.dirname(tune.__file__), "search_spaces", "learning_rate.yaml")


def _write(tmp_path, data, name="space.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False) if not isinstance(data, str) else data)
    return str(path)


LR = {"binding": "learning_rate", "type": "double", "min": 1e-4, "max": 1e-2, "scale": "log"}


def test_the_example_file_loads_with_its_bindings():
    space = search_space.load(EXAMPLE)
    assert (space.metric, space.goal, space.algorithm) == ("loudness_l1_db", "minimize", "random")
    assert [(parameter.id, parameter.binding) for parameter in space.parameters] == [
        ("learning_rate", "learning_rate"), ("gain_min_db", "GainAugmentation.min_db")]
    assert space.trials >= space.parallel_trials == 2


@pytest.mark.parametrize("data, key, says", [
    ({"parameters": {"lr": {**LR, "min": 0}}}, "parameters.lr.min", "log scale needs min above 0"),
    ({"parameters": {"lr": {**LR, "max": 1e-5}}}, "parameters.lr.max", "must be above min"),
    ({"parameters": {"lr": {**LR, "type": "float"}}}, "parameters.lr.type", "give one of double"),
    ({"parameters": {"lr": {**LR, "scael": "log"}}}, "parameters.lr.scael", "unknown key"),
    ({"parameters": {"learning.rate": LR}}, "parameters.learning.rate", "plain name"),
    ({"parameters": {"lr": {"type": "discrete", "values": [1, 1]}}}, "parameters.lr.values", "listed twice"),
    ({"parameters": {"lr": LR}, "algorithm": "grid"}, "parameters.lr.type", "grid search takes"),
    ({"parameters": {"lr": LR}, "objective": {"goal": "lower"}}, "objective.goal", "minimize or maximize"),
    ({"parameters": {"lr": LR}, "trials": 2, "parallel_trials": 3}, "parallel_trials", "more than trials"),
    ({"parameters": {"lr": LR}, "trails": 2}, "trails", "unknown key"),
    ({"parameters": {}}, "parameters", "at least one parameter"),
])
def test_a_bad_file_is_refused_naming_the_file_and_the_key(tmp_path, data, key, says):
    path = _write(tmp_path, data)
    with pytest.raises(search_space.SearchSpaceError) as error:
        search_space.load(path)
    assert str(error.value).startswith(f"{path}: {key}: ") and says in str(error.value)


def test_the_cli_refuses_a_bad_file_with_status_2(tmp_path, capsys):
    path = _write(tmp_path, "parameters: [learning_rate\n")
    assert cli.main(["tune", "--search-space", path]) == 2
    assert f"{path}: not valid YAML" in capsys.readouterr().err


def test_random_trials_are_reproducible_distinct_and_inside_the_range(tmp_path):
    space = search_space.load(_write(tmp_path, {"trials": 5, "algorithm": "random", "parameters": {
        "lr": LR, "steps": {"binding": "train.num_steps", "type": "integer", "min": 2, "max": 4},
        "schedule": {"binding": "Trainer.lr_schedule", "type": "categorical", "values": ["cosine", "exponential"]}}}))
    trials = search_space.draw_trials(space, seed=3)
    assert trials == search_space.draw_trials(space, seed=3) != search_space.draw_trials(space, seed=4)
    assert len({tuple(space.bindings(values)) for values in trials}) == 5
    for values in trials:
        assert 1e-4 <= values["lr"] <= 1e-2 and values["steps"] in (2, 3, 4)
        assert space.bindings(values)[1:] == [f"train.num_steps = {values['steps']}",
                                              f"Trainer.lr_schedule = '{values['schedule']}'"]


def test_grid_trials_walk_the_grid_and_discrete_whole_numbers_stay_whole(tmp_path):
    space = search_space.load(_write(tmp_path, {"algorithm": "grid", "parameters": {
        "batch": {"binding": "batch_size", "type": "discrete", "values": [16, 8]},
        "min_db": {"binding": "GainAugmentation.min_db", "type": "discrete", "values": [-40, -20.5]}}}))
    assert space.trials == 4  # The grid's size by default.
    trials = search_space.draw_trials(space)
    assert [space.bindings(values) for values in trials][:2] == [
        ["batch_size = 8", "GainAugmentation.min_db = -40.0"], ["batch_size = 8", "GainAugmentation.min_db = -20.5"]]


def test_a_trial_reads_the_values_vertex_appends_as_its_bindings():
    space = search_space.load(EXAMPLE)
    arguments = trial.trial_arguments("gs://b/root/prepare/dataset", space, preset="quick", num_steps=30,
                                      gin_params=["RnnFcDecoder.ch=32"], seed=5, accelerator="NVIDIA_L4")
    args, rest = trial.build_parser().parse_known_args([*arguments, "--learning_rate=0.0012", "--gain_min_db", "-20.0"])
    assert (args.dataset, args.num_steps, args.seed, args.gin_param) == (
        "gs://b/root/prepare/dataset", 30, 5, ["RnnFcDecoder.ch=32"])
    received = search_space.from_json(args.search_space_json)
    values, unknown = search_space.parse_trial_values(received, rest)
    assert unknown == [] and received.bindings(values) == ["learning_rate = 0.0012", "GainAugmentation.min_db = -20"]
    with pytest.raises(search_space.SearchSpaceError, match=r"--learning_rate=0.5: not a value of parameter"):
        search_space.parse_trial_values(received, ["--learning_rate=0.5", "--gain_min_db=-20"])
    with pytest.raises(search_space.SearchSpaceError, match=r"given no --gain_min_db"):
        search_space.parse_trial_values(received, ["--learning_rate=0.001"])
    assert trial.main([*arguments, "--learning_rate=0.001"]) == 2  # Refused before any training.


def test_the_trial_reports_its_metric_as_the_hypertune_library_does(tmp_path):
    environ = {trial.METRIC_FILE_ENV: str(tmp_path / "hypertune" / "output.metrics"), trial.TRIAL_ID_ENV: "7"}
    trial.report_metric("loudness_l1_db", 4.5, 600, environ)
    path = trial.report_metric("loudness_l1_db", 4.25, 700, environ)
    lines = [json.loads(line) for line in open(path).read().splitlines()]
    assert [{key: value for key, value in line.items() if key != "timestamp"} for line in lines] == [
        {"global_step": "600", "loudness_l1_db": "4.5", "trial": "7"},
        {"global_step": "700", "loudness_l1_db": "4.25", "trial": "7"}]
    assert list(lines[0]) == sorted(lines[0]) and isinstance(lines[0]["timestamp"], float)
    assert trial.output_dir_for("", {trial.MODEL_DIR_ENV: "gs://b/tune/job/3/model/"}) == "gs://b/tune/job/3"


def test_the_table_of_a_vertex_job_stars_the_best_done_trial():
    space = search_space.load(EXAMPLE)
    # A hand-written stand-in for the API's HyperparameterTuningJob (no Vertex AI here).
    job = {"trials": [
        {"id": "1", "state": "SUCCEEDED", "parameters": [{"parameter_id": "learning_rate", "value": 0.001},
                                                         {"parameter_id": "gain_min_db", "value": -40.0}],
         "final_measurement": {"metrics": [{"metric_id": "loudness_l1_db", "value": 5.5}]}},
        {"id": "2", "state": "SUCCEEDED", "parameters": [{"parameter_id": "learning_rate", "value": 0.0005},
                                                         {"parameter_id": "gain_min_db", "value": -20.0}],
         "final_measurement": {"metrics": [{"metric_id": "loudness_l1_db", "value": 4.0}]}},
        {"id": "3", "state": "INFEASIBLE", "parameters": [{"parameter_id": "learning_rate", "value": 0.003},
                                                          {"parameter_id": "gain_min_db", "value": -20.0}],
         "infeasible_reason": "The replica workerpool0-0 exited with a non-zero status of 1."}]}
    rows = tuning_table.rows_from_vertex_job(job, space, "gs://b/tune/job")
    best = tuning_table.best_row(rows, space)
    assert best["trial"] == "2" and best["model"] == "gs://b/tune/job/2/model"
    assert best["bindings"] == ["learning_rate = 0.0005", "GainAugmentation.min_db = -20"]
    table = tuning_table.markdown(rows, space, best)
    assert "| 2 * | 0.0005 | -20 | 4 | infeasible" not in table and "| 2 * | 0.0005 | -20 | 4 | done |" in table
    assert "| 3 | 0.003 | -20 |  | infeasible |" in table and "- trial 3: The replica workerpool0-0" in table


def test_the_best_export_replaces_the_old_one_whole(tmp_path):
    exported = tmp_path / "run" / "exported"
    (exported / "saved_model").mkdir(parents=True)
    (exported / "saved_model" / "saved_model.pb").write_text("new")
    best = tmp_path / "tune" / "best"
    best.mkdir(parents=True)
    (best / "stale.txt").write_text("old")
    tune.publish_best(str(exported), str(best), {"trial": "2"})
    assert sorted(os.listdir(best)) == ["saved_model", "trial.json"]
    assert json.loads((best / "trial.json").read_text()) == {"trial": "2"}
    assert os.listdir(tmp_path / "tune") == ["best"], "no staging or old folder is left"


def test_a_misspelt_binding_stops_the_tune_before_any_trial(tmp_path):
    space = search_space.load(_write(tmp_path, {"parameters": {
        "min_db": {"binding": "GainAugmentation.min_dB", "type": "discrete", "values": [-40, -20]}}}))
    with pytest.raises(ValueError, match=r"space.yaml: its bindings do not parse .*min_dB"):
        tune.check_bindings(space, search_space.draw_trials(space)[0])
    tune.check_bindings(search_space.load(EXAMPLE), search_space.draw_trials(search_space.load(EXAMPLE))[0])


def _task_inputs(spec, task):
    return spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"]


def test_the_vertex_tuning_pipeline_compiles_with_the_files_study(tmp_path, capsys):
    output = tmp_path / "tune.yaml"
    status = cli.main(["tune", "--search-space", EXAMPLE, "--vertex", "--compile-only", "--output", str(output),
                       "--image", "reg.example/p/ddsp-pipeline:0.1.0"])
    assert status == 0, capsys.readouterr().err
    spec = yaml.safe_load(output.read_text())
    tuning = _task_inputs(spec, "hyperparameter-tuning-job")
    metrics = tuning["study_spec_metrics"]["runtimeValue"]["constant"]
    parameters = tuning["study_spec_parameters"]["runtimeValue"]["constant"]
    assert [metric["metric_id"] for metric in metrics] == ["loudness_l1_db"]
    assert {parameter["parameter_id"] for parameter in parameters} == {"learning_rate", "gain_min_db"}
    learning_rate = next(parameter for parameter in parameters if parameter["parameter_id"] == "learning_rate")
    assert learning_rate["double_value_spec"] == {"min_value": 3e-4, "max_value": 3e-3}
    assert tuning["study_spec_algorithm"]["runtimeValue"]["constant"] == "RANDOM_SEARCH"
    assert tuning["max_trial_count"]["runtimeValue"]["constant"] == 4
    assert tuning["parallel_trial_count"]["runtimeValue"]["constant"] == 2
    assert tuning["worker_pool_specs"]["taskOutputParameter"]["producerTask"] == "trial-worker-pool-specs"
    assert tuning["service_account"]["componentInputParameter"] == "service_account"  # Not the service agent.
    # Dataflow gets the project ID (the step's environment holds the project number).
    assert _task_inputs(spec, "prepare-tfrecord")["project_id"]["runtimeValue"]["constant"] == (
        "{{$.pipeline_google_cloud_project_id}}")
    # The trials' container: the CUDA image on a machine with the L4, running the trial module.
    specs = _task_inputs(spec, "trial-worker-pool-specs")
    assert specs["image"]["runtimeValue"]["constant"] == "reg.example/p/ddsp-pipeline:0.1.0"
    assert specs["machine_type"]["runtimeValue"]["constant"] == "g2-standard-8"
    assert specs["accelerator_type"]["runtimeValue"]["constant"] == "NVIDIA_L4"
    assert search_space.from_json(specs["search_space_json"]["runtimeValue"]["constant"]) == search_space.from_dict(
        search_space.load(EXAMPLE).to_dict())
    images = {name: executor["container"]["image"] for name, executor in spec["deploymentSpec"]["executors"].items()
              if "container" in executor}  # The importer has none.
    assert images["exec-prepare-tfrecord"] == images["exec-export"] == "reg.example/p/ddsp-pipeline:0.1.0-cpu"
    assert "trial_worker_pool_specs" in " ".join(spec["deploymentSpec"]["executors"]["exec-trial-worker-pool-specs"]
                                                  ["container"]["command"])
    # ... which the component builds like this (the same function, here without kfp):
    pool = trial.worker_pool_specs("reg.example/p/ddsp-pipeline:0.1.0", "g2-standard-8", ["--dataset", "gs://d"],
                                   "NVIDIA_L4", 1)
    assert pool[0]["container_spec"]["command"] == ["python", "-m", "ddsp_core.steps.trial"]
    assert pool[0]["machine_spec"] == {"machine_type": "g2-standard-8", "accelerator_type": "NVIDIA_L4",
                                       "accelerator_count": 1}
    # The best trial's model is imported and exported.
    assert "exec-importer" in spec["deploymentSpec"]["executors"] and "export" in spec["root"]["dag"]["tasks"]


def test_vertex_flags_without_vertex_are_refused(capsys):
    assert cli.main(["tune", "--search-space", EXAMPLE, "--compile-only"]) == 2
    assert "are for --vertex" in capsys.readouterr().err


@pytest.mark.parametrize("flags, expected", [
    ([], None),                                                        # the compiled default (bundled validation)
    (["--audio", "gs://b/cello/*.wav"], ""),                           # own audio: its own split, not the clarinet
    (["--audio", "gs://b/cello/*.wav", "--eval-audio", "gs://b/v/*.wav"], "gs://b/v/*.wav"),
])
def test_a_vertex_tune_measures_on_the_held_out_set_submit_would_use(flags, expected):
    args = cli.build_parser().parse_args(["tune", "--search-space", EXAMPLE, "--vertex", *flags])
    assert tune._vertex_parameter_values(args).get("eval_audio_pattern") == expected


def test_a_vertex_tune_refuses_an_image_no_cluster_can_pull(tmp_path, capsys):
    status = cli.main(["tune", "--search-space", EXAMPLE, "--vertex", "--project", "p", "--region", "us-central1",
                       "--pipeline-root", "gs://b/ddsp", "--output", str(tmp_path / "tune.yaml")])
    assert status == 2
    assert "--image" in capsys.readouterr().err
