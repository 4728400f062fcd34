"""The compiled pipeline: the committed YAML is current, loads back with kfp, and wires the
steps as documented (artifact types, GPU on train, image from the one setting)."""

import os

import pytest
import yaml

from pipelines import cli, clarinet

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def _compile(path, *flags):
    """`ddsp_pipeline compile` with these flags; the YAML's text."""
    status = cli.main(["compile", "--output", str(path), *flags])
    assert status == 0
    return path.read_text()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    return _compile(tmp_path_factory.mktemp("yaml") / "clarinet.yaml")


def _without_sdk_version(text):
    """The YAML without its `sdkVersion: kfp-X.Y.Z` line: a kfp patch release changes nothing else."""
    return "\n".join(line for line in text.splitlines() if not line.startswith("sdkVersion: kfp-"))


def test_committed_yaml_is_current(compiled):
    with open(clarinet.PACKAGE_PATH) as file:
        committed = file.read()
    assert _without_sdk_version(committed) == _without_sdk_version(compiled), (
        "pipelines/clarinet.yaml is out of date: run `make compile` (`ddsp_pipeline compile` with its defaults) "
        "and commit the result.")


def test_yaml_loads_back_with_kfp():
    from kfp import components

    pipeline = components.load_component_from_file(clarinet.PACKAGE_PATH)
    assert pipeline.name == clarinet.PIPELINE_NAME
    inputs = pipeline.component_spec.inputs
    assert set(inputs) == {"audio_pattern", "preset", "num_steps", "batch_size", "crepe_capacity", "gin_files",
                           "gin_params", "beam_pipeline_options", "audio_fingerprint", "eval_audio_pattern",
                           "checkpoint_dir", "restart_id", "sample_rate", "seed", "pipeline_root",
                           "service_account"}
    assert inputs["preset"].default == "quick"
    # Without a checkpoint folder (set by `run` and `submit`), training lives in the model artifact only.
    assert inputs["checkpoint_dir"].default == "" and inputs["restart_id"].default == ""
    assert inputs["sample_rate"].default == 0  # The preset's rate.
    assert inputs["seed"].default == -1  # Drawn at train time.
    # Filled in by `submit` (--pipeline-root, --service-account); '' : kfp's root, Vertex AI's agent.
    assert inputs["pipeline_root"].default == "" and inputs["service_account"].default == ""
    assert inputs["audio_pattern"].default == "/opt/ddsp-pipeline/data/clarinet/train/*.flac"
    assert inputs["eval_audio_pattern"].default == "/opt/ddsp-pipeline/data/clarinet/validation/*.flac"
    assert set(pipeline.component_spec.outputs) == {"dataset", "model", "metrics", "eval_logs", "page", "samples",
                                                         "exported"}


def test_steps_artifacts_and_resources(compiled):
    spec = yaml.safe_load(compiled)
    components = spec["components"]

    def artifacts(name, direction):
        definitions = components[f"comp-{name}"][f"{direction}Definitions"].get("artifacts", {})
        return {key: value["artifactType"]["schemaTitle"] for key, value in definitions.items()}

    assert artifacts("prepare-tfrecord", "output") == {"dataset": "system.Dataset"}
    assert artifacts("train", "input") == {"dataset": "system.Dataset"}
    assert artifacts("train", "output") == {"model": "system.Model"}
    assert artifacts("eval", "input") == {"dataset": "system.Dataset", "model": "system.Model"}
    assert artifacts("eval", "output") == {"metrics": "system.Metrics", "eval_logs": "system.Artifact"}
    assert artifacts("sample", "output") == {"page": "system.HTML", "samples": "system.Artifact"}

    tasks = spec["root"]["dag"]["tasks"]
    assert tasks["train"]["dependentTasks"] == ["prepare-tfrecord"]
    # The seed is an input of the train task (so of its cache key), and of no other.
    assert tasks["train"]["inputs"]["parameters"]["seed"] == {"componentInputParameter": "seed"}
    assert components["comp-train"]["inputDefinitions"]["parameters"]["seed"]["defaultValue"] == -1
    assert [name for name, task in tasks.items() if "seed" in task["inputs"].get("parameters", {})] == ["train"]
    assert sorted(tasks["eval"]["dependentTasks"]) == ["prepare-tfrecord", "train"]
    executors = spec["deploymentSpec"]["executors"]
    for name in ("prepare-tfrecord", "train", "eval", "sample", "export"):
        container = executors[f"exec-{name}"]["container"]
        # Only train runs the CUDA image; the others its CPU sibling (tag + '-cpu').
        assert container["image"] == ("ddsp-pipeline:0.1.0" if name == "train" else "ddsp-pipeline:0.1.0-cpu")
        assert "pip install" not in " ".join(container["command"]), "the image has kfp: no install at run time"
    resources = executors["exec-train"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "NVIDIA_L4"
    assert resources["accelerator"]["resourceCount"] == "1"
    assert "accelerator" not in executors["exec-prepare-tfrecord"]["container"].get("resources", {})


def test_image_and_no_gpu(tmp_path):
    text = _compile(tmp_path / "p.yaml", "--image", "us-docker.pkg.dev/p/ddsp/ddsp-pipeline:1", "--accelerator", "")
    executors = yaml.safe_load(text)["deploymentSpec"]["executors"]
    assert {name: executor["container"]["image"] for name, executor in executors.items()} == {
        "exec-train": "us-docker.pkg.dev/p/ddsp/ddsp-pipeline:1",
        **{f"exec-{name}": "us-docker.pkg.dev/p/ddsp/ddsp-pipeline:1-cpu"
           for name in ("prepare-tfrecord", "eval", "sample", "export")}}
    assert "accelerator" not in executors["exec-train"]["container"].get("resources", {})
    train_arguments = yaml.safe_load(text)["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]
    assert train_arguments["accelerator"]["runtimeValue"]["constant"] == ""


def test_kubeflow_target_asks_for_a_kubernetes_gpu_resource_with_scheduling(tmp_path):
    text = _compile(tmp_path / "k.yaml", "--target", "kubeflow", "--accelerator-count", "2",
                    "--node-selector", "cloud.google.com/gke-accelerator=nvidia-l4",
                    "--toleration", "nvidia.com/gpu=present:NoSchedule", "--toleration", "dedicated:NoExecute")
    documents = list(yaml.safe_load_all(text))
    spec, platform = documents[0], documents[1]
    resources = spec["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert resources["accelerator"]["resourceCount"] == "2"
    train = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]["exec-train"]
    assert train["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert train["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present", "effect": "NoSchedule"},
        {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]
    # The train step is told what was asked for, to stop at once on a node without a GPU.
    arguments = spec["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]
    assert arguments["accelerator"]["runtimeValue"]["constant"] == "nvidia.com/gpu"


@pytest.mark.parametrize("flags, expected", [
    (["--target", "kubeflow", "--accelerator", "NVIDIA_L4"],
     ["'NVIDIA_L4' is not a Kubernetes resource name", "nvidia.com/gpu", "--node-selector"]),
    (["--accelerator", "nvidia.com/gpu"], ["'nvidia.com/gpu' is not a Vertex AI accelerator type", "NVIDIA_L4"]),
    (["--node-selector", "a=b"], ["Node selectors and tolerations are for --target kubeflow"]),
    (["--target", "kubeflow", "--node-selector", "nolabel"], ["--node-selector 'nolabel' is not LABEL=VALUE"]),
    (["--target", "kubeflow", "--toleration", "k:Sometimes"], ["Toleration 'k:Sometimes'", "NoSchedule"]),
    (["--accelerator-count", "0"], ["accelerator_count must be at least 1"]),
])
def test_settings_that_cannot_work_exit_2_saying_what_to_give(tmp_path, capsys, flags, expected):
    assert cli.main(["compile", "--output", str(tmp_path / "x.yaml"), *flags]) == 2
    err = capsys.readouterr().err
    for text in expected:
        assert text in err
    assert not (tmp_path / "x.yaml").exists()


DIGEST = "us-docker.pkg.dev/p/ddsp/ddsp-pipeline@sha256:" + "a" * 64


def test_an_image_pinned_by_digest_needs_its_cpu_and_worker_images_given(tmp_path, capsys):
    """Defect 6: the worker image derived from a digest was '', so Dataflow ran Beam's stock image
    (without ddsp_core), and no CPU image can be derived from one either."""
    assert cli.main(["compile", "--output", str(tmp_path / "x.yaml"), "--image", DIGEST]) == 2
    err = capsys.readouterr().err
    assert f"The image {DIGEST} is pinned by digest" in err
    assert "give --cpu-image and --dataflow-worker-image too (`ddsp_pipeline build-image` prints" in err
    assert cli.main(["compile", "--output", str(tmp_path / "x.yaml"), "--image", DIGEST,
                     "--cpu-image", "reg/cpu@sha256:" + "b" * 64]) == 2
    assert "give --dataflow-worker-image too" in capsys.readouterr().err
    assert not (tmp_path / "x.yaml").exists()
    with pytest.raises(clarinet.SettingsError, match="pinned by digest"):
        clarinet.PipelineSettings(image=DIGEST, dataflow_worker_image="")


def test_the_cpu_and_worker_images_given_are_used(tmp_path):
    cpu, worker = "reg/cpu@sha256:" + "b" * 64, "reg/worker@sha256:" + "c" * 64
    spec = yaml.safe_load(_compile(tmp_path / "p.yaml", "--image", DIGEST, "--cpu-image", cpu,
                                   "--dataflow-worker-image", worker))
    executors = spec["deploymentSpec"]["executors"]
    assert executors["exec-train"]["container"]["image"] == DIGEST
    assert {executors[f"exec-{name}"]["container"]["image"] for name in ("prepare-tfrecord", "eval", "sample",
                                                                         "export")} == {cpu}
    prepare = spec["root"]["dag"]["tasks"]["prepare-tfrecord"]["inputs"]["parameters"]
    assert prepare["worker_image"]["runtimeValue"]["constant"] == worker
