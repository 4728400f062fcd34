"""Training on several machines in the compiled pipeline: with PipelineSettings.train_replicas
N > 1 (Vertex AI), the train task is a Vertex AI custom job of N replicas (one chief pool of
1, one worker pool of N - 1), each a machine with the accelerators asked for, running the same
train component; the rest of the pipeline is wired as with one machine. Compiled only: no
cloud calls."""

import json

import pytest
import yaml

from pipelines import clarinet

IMAGE = "us-docker.pkg.dev/p/ddsp/ddsp-pipeline:0.1.0"


def _compiled(tmp_path, **settings):
    path = clarinet.compile_pipeline(str(tmp_path / "pipeline.yaml"), clarinet.PipelineSettings(image=IMAGE,
                                                                                                 **settings))
    with open(path) as file:
        return yaml.safe_load(file)


def _worker_pools(spec):
    parameters = spec["components"]["comp-train"]["inputDefinitions"]["parameters"]
    return parameters["worker_pool_specs"]["defaultValue"]


@pytest.fixture(scope="module")
def four_machines(tmp_path_factory):
    """The pipeline with the train step on 4 machines x 2 L4 GPUs (magenta's recipe: 4 VMs x 2 GPUs)."""
    return _compiled(tmp_path_factory.mktemp("replicas"), train_replicas=4, accelerator_count=2)


def test_train_is_a_custom_job_of_one_chief_and_three_workers(four_machines):
    chief, workers = _worker_pools(four_machines)
    assert int(chief["replica_count"]) == 1 and int(workers["replica_count"]) == 3
    for pool in (chief, workers):
        machine = pool["machine_spec"]
        assert machine["machine_type"] == "g2-standard-24"
        assert machine["accelerator_type"] == "NVIDIA_L4" and int(machine["accelerator_count"]) == 2
        assert pool["container_spec"]["image_uri"] == IMAGE
        assert {"name": "KERAS_BACKEND", "value": "tensorflow"} in pool["container_spec"]["env"]
    parameters = four_machines["components"]["comp-train"]["inputDefinitions"]["parameters"]
    # MultiWorkerMirroredStrategy cannot take back a restarted worker: the whole job restarts and resumes.
    assert parameters["restart_job_on_worker_restart"]["defaultValue"] is True
    launcher = four_machines["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert launcher["command"][-1] == "google_cloud_pipeline_components.container.v1.custom_job.launcher"
    assert "CustomJob" in launcher["args"]


def test_every_replica_runs_the_train_component(four_machines, tmp_path):
    one_machine = _compiled(tmp_path)
    container = one_machine["deploymentSpec"]["executors"]["exec-train"]["container"]
    for pool in _worker_pools(four_machines):
        assert pool["container_spec"]["command"] == container["command"]
        # The executor input is spliced into the job's JSON payload, hence escaped.
        assert pool["container_spec"]["args"] == [
            "{{$.json_escape[1]}}" if arg == "{{$}}" else arg for arg in container["args"]]
    # The train component's own interface (its inputs and its model) is kept...
    for direction in ("input", "output"):
        definitions = one_machine["components"]["comp-train"][f"{direction}Definitions"]
        wrapped = four_machines["components"]["comp-train"][f"{direction}Definitions"]
        assert wrapped.get("artifacts") == definitions.get("artifacts")
        assert set(definitions.get("parameters", {})) <= set(wrapped.get("parameters", {}))
    # ... and the pipeline around it is unchanged: the same tasks, fed the same way.
    tasks, single_tasks = four_machines["root"]["dag"]["tasks"], one_machine["root"]["dag"]["tasks"]
    assert set(tasks) == set(single_tasks)
    # The same inputs, plus the job's service account (test_the_job_runs_as_the_pipelines_service_account).
    job_inputs = tasks["train"]["inputs"]["parameters"]
    assert job_inputs.pop("service_account") == {"componentInputParameter": "service_account"}
    assert tasks["train"]["inputs"] == single_tasks["train"]["inputs"]
    assert tasks["eval"]["inputs"]["artifacts"]["model"] == single_tasks["eval"]["inputs"]["artifacts"]["model"]
    assert tasks["train"]["taskInfo"]["name"] == "train"
    # The launcher task asks for no GPU itself: the job's machines have them.
    launcher = four_machines["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert "accelerator" not in launcher.get("resources", {})


def test_the_default_is_one_machine_without_a_custom_job(tmp_path):
    spec = _compiled(tmp_path)
    assert "worker_pool_specs" not in spec["components"]["comp-train"]["inputDefinitions"]["parameters"]
    container = spec["deploymentSpec"]["executors"]["exec-train"]["container"]
    assert container["image"] == IMAGE and container["resources"]["accelerator"]["resourceType"] == "NVIDIA_L4"


@pytest.mark.parametrize("settings, machine_type", [
    ({"accelerator": "NVIDIA_H100_80GB", "accelerator_count": 8}, "a3-highgpu-8g"),
    ({"accelerator": "NVIDIA_TESLA_T4", "accelerator_count": 1}, "n1-standard-8"),
    ({"accelerator": ""}, "n1-standard-8"),
    ({"accelerator": "NVIDIA_L4", "train_machine_type": "g2-standard-48"}, "g2-standard-48"),
], ids=["8 x H100", "T4", "no GPU", "given"])
def test_replica_machine_types(tmp_path, settings, machine_type):
    pools = _worker_pools(_compiled(tmp_path, train_replicas=2, **settings))
    assert [pool["machine_spec"]["machine_type"] for pool in pools] == [machine_type] * 2
    if not settings["accelerator"]:
        assert all("accelerator_type" not in pool["machine_spec"] for pool in pools)


@pytest.mark.parametrize("settings, message", [
    ({"train_replicas": 0}, "train_replicas must be a whole number of machines, at least 1"),
    ({"train_replicas": 2, "target": "kubeflow"}, "runs as a Vertex AI custom job: it is for --target vertex"),
    ({"train_replicas": 2, "accelerator": "NVIDIA_TESLA_K80"}, "give the replicas' Vertex AI machine type"),
    ({"train_replicas": 2, "accelerator_count": 3}, "No default machine type for 3 x NVIDIA_L4"),
    ({"train_machine_type": "g2-standard-8"}, "train_machine_type is for training on several machines"),
])
def test_settings_that_cannot_work(settings, message):
    with pytest.raises(clarinet.SettingsError, match=message):
        clarinet.PipelineSettings(image=IMAGE, **settings)


def _job(spec, **values):
    """The CustomJob the launcher's payload template makes: inputs filled with `values`, else
    their defaults (the executor input as a stand-in string)."""
    args = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["args"]
    filled = args[args.index("--payload") + 1]
    parameters = spec["components"]["comp-train"]["inputDefinitions"]["parameters"]
    for name, definition in parameters.items():
        value = values.get(name, definition.get("defaultValue", {} if definition["parameterType"] == "STRUCT"
                                                else []))
        text = json.dumps(value) if not isinstance(value, str) else value
        filled = filled.replace("{{$.inputs.parameters['%s']}}" % name, text)
    filled = filled.replace("{{$.json_escape[1]}}", "EXECUTOR_INPUT")
    return json.loads(filled)


def test_the_job_payload_is_json_once_filled_in(four_machines):
    """The launcher's payload template, with the worker pools spliced in, is the JSON Vertex AI reads."""
    job = _job(four_machines)
    pools = job["job_spec"]["worker_pool_specs"]
    assert [int(pool["replica_count"]) for pool in pools] == [1, 3]
    assert job["job_spec"]["scheduling"]["restart_job_on_worker_restart"] is True


def test_the_job_runs_as_the_pipelines_service_account(tmp_path):
    """Defect 7: without it, the custom job ran as Vertex AI's service agent, not --service-account."""
    spec = _compiled(tmp_path, train_replicas=2)
    assert spec["root"]["inputDefinitions"]["parameters"]["service_account"]["defaultValue"] == ""
    train = spec["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]
    assert train["service_account"] == {"componentInputParameter": "service_account"}
    # ... which the launcher puts in the CustomJob it creates.
    job = _job(spec, service_account="trainer@p.iam.gserviceaccount.com")
    assert job["job_spec"]["service_account"] == "trainer@p.iam.gserviceaccount.com"


def test_compile_flags_choose_the_machines(tmp_path, capsys):
    from pipelines import cli

    path = tmp_path / "p.yaml"
    assert cli.main(["compile", "--output", str(path), "--image", IMAGE, "--train-replicas", "2",
                     "--accelerator-count", "2", "--train-machine-type", "g2-standard-48"]) == 0
    chief, workers = _worker_pools(yaml.safe_load(path.read_text()))
    assert int(workers["replica_count"]) == 1
    assert chief["machine_spec"]["machine_type"] == "g2-standard-48"
    assert cli.main(["compile", "--output", str(tmp_path / "k.yaml"), "--target", "kubeflow",
                     "--train-replicas", "2"]) == 2
    assert "custom job: it is for --target vertex" in capsys.readouterr().err
