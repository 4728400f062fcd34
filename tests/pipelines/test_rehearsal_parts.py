"""The rehearsal's parts that need no podman (`ddsp_pipeline rehearse`, pipelines/rehearsal/): the
compiled YAML as a task plan, what each service gives a task (environment, placeholders,
artifact layout, writable folders, scheduling), the executor input and command, the podman
command line, the stand-in driver library and the loader path, and the bucket copies (the real
storage emulator). The rehearsals themselves: tests/pipelines/test_rehearsal.py (--rehearsal)."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from pipelines.clarinet import PipelineSettings, compile_pipeline
from pipelines.rehearsal import bucket, driver_stub, executor_input, podman
from pipelines.rehearsal.plan import PlanError, Resources, order, quantity, read_plan
from pipelines.rehearsal.services import ARBITRARY_UID, KFP_EMPTY_DIRS, Node, Service


@pytest.fixture(scope="module")
def plans(tmp_path_factory):
    """{target: (defaults, tasks)} of the pipeline compiled for each target."""
    folder = tmp_path_factory.mktemp("yaml")
    return {target: read_plan(compile_pipeline(str(folder / f"{target}.yaml"),
                                               PipelineSettings(image="localhost/ddsp:1", target=target)))
            for target in ("vertex", "kubeflow")}


def test_quantities():
    assert quantity("8") == 8 and quantity("500m") == 0.5 and quantity("16G") == 16e9
    assert quantity("2Gi") == 2 * 2 ** 30 and quantity("") is None
    with pytest.raises(PlanError, match="not a Kubernetes quantity"):
        quantity("8 cores")


def test_resources_from_yaml_and_kubernetes_defaulting():
    limits_only = Resources.from_yaml({"cpuLimit": 8.0, "memoryLimit": 32.0, "resourceCpuLimit": "8",
                                       "resourceMemoryLimit": "32G",
                                       "accelerator": {"resourceType": "nvidia.com/gpu", "resourceCount": "1"}})
    assert (limits_only.cpu_limit, limits_only.memory_limit) == (8, 32e9)
    # Kubernetes copies a limit into a missing request: that is what the scheduler reserves.
    assert (limits_only.scheduled_cpu, limits_only.scheduled_memory) == (8, 32e9)
    assert limits_only.accelerator == "nvidia.com/gpu" and limits_only.accelerator_count == 1
    with_requests = Resources.from_yaml({"resourceCpuLimit": "8", "resourceCpuRequest": "4",
                                         "resourceMemoryLimit": "32G", "resourceMemoryRequest": "16G"})
    assert (with_requests.scheduled_cpu, with_requests.scheduled_memory) == (4, 16e9)
    assert with_requests.describe() == "cpu 4-8, mem 16-32G"
    assert "above its limit" in Resources(cpu_limit=2, cpu_request=4).request_above_limit()


def test_defect_3_limits_only_pods_stay_pending_on_a_one_l4_node():
    """The train pod as the YAML asked before requests were set: 8 CPUs + 32G + a GPU, all
    reserved, is more than a g2-standard-8 node can give (defect 3)."""
    node = Node()
    old_train = Resources(cpu_limit=8, memory_limit=32e9, accelerator="nvidia.com/gpu", accelerator_count=1)
    problems = node.problems(old_train)
    assert any("8 CPUs" in problem for problem in problems) and any("GiB" in problem for problem in problems)
    assert node.problems(Resources(cpu_limit=8, cpu_request=4, memory_limit=32e9, memory_request=16e9,
                                   accelerator="nvidia.com/gpu", accelerator_count=1)) == []
    assert Service.for_target("vertex", "b").schedule_problems(old_train) == []  # Vertex picks a machine.


def test_order_is_by_dependency_and_refuses_cycles():
    assert order({"b": {"a"}, "a": set(), "c": {"a", "b"}}) == ["a", "b", "c"]
    with pytest.raises(PlanError, match="cycle"):
        order({"a": {"b"}, "b": {"a"}})
    with pytest.raises(PlanError, match="does not hold"):
        order({"a": {"zz"}})


def test_plan_of_the_compiled_pipeline(plans):
    for target, (defaults, tasks) in plans.items():
        names = [task.name for task in tasks]
        assert names[0] == "prepare-tfrecord" and names[1] == "train", target
        assert set(names) == {"prepare-tfrecord", "train", "eval", "sample", "export"}
        by_name = {task.name: task for task in tasks}
        assert by_name["eval"].artifacts == {"dataset": ("prepare-tfrecord", "dataset"), "model": ("train", "model")}
        assert by_name["train"].resources.accelerator
        assert by_name["prepare-tfrecord"].resources.cpu_limit is not None
        assert "audio_pattern" in defaults and by_name["train"].image == "localhost/ddsp:1"
        assert by_name["train"].command[0] == "sh"


def test_vertex_gives_the_project_number_and_resolves_its_placeholders():
    vertex = Service.for_target("vertex", "bkt")
    environment = vertex.environment("train", 42)
    assert environment["CLOUD_ML_PROJECT_ID"].isdigit()  # A number, as on Vertex AI (defect 2).
    assert environment["CLOUD_ML_REGION"] and environment["CLOUD_ML_JOB_ID"] == "42"
    assert "GOOGLE_CLOUD_PROJECT" not in environment and json.loads(environment["CLUSTER_SPEC"])["task"]["index"] == 0
    placeholders = vertex.placeholders("train", 42)
    assert placeholders["{{$.pipeline_root}}"] == "gs://bkt/runs"
    assert placeholders["{{$.pipeline_google_cloud_project_id}}"] == vertex.project_id
    assert not vertex.project_id.isdigit()
    assert vertex.task_root("train", 42) == f"gs://bkt/runs/{vertex.project_number}/{vertex.job_name}/train_42"
    assert vertex.user is None and vertex.writable_folders() == ("/gcs",) and vertex.uploads_everything


def test_kubeflow_leaves_the_pipeline_root_unresolved_and_runs_as_an_arbitrary_uid():
    kubeflow = Service.for_target("kubeflow", "bkt")
    placeholders = kubeflow.placeholders("prepare-tfrecord", 1)
    assert "{{$.pipeline_root}}" not in placeholders  # Defect 9: it reaches the step as text.
    assert "{{$.pipeline_google_cloud_project_id}}" not in placeholders
    assert not any(name.startswith("CLOUD_ML") for name in kubeflow.environment("train", 1))
    assert kubeflow.user == ARBITRARY_UID and not kubeflow.uploads_everything
    assert kubeflow.writable_folders() == KFP_EMPTY_DIRS
    assert Service.for_target("kubeflow", "bkt", kfp_version=(2, 2)).writable_folders() == ()  # Defect 8.
    with pytest.raises(ValueError, match="Unknown target"):
        Service.for_target("sagemaker", "bkt")


def test_executor_input_and_command_per_target(plans):
    for target, (defaults, tasks) in plans.items():
        service = Service.for_target(target, "bkt")
        prepare = tasks[0]
        placeholders = service.placeholders(prepare.name, 7)
        parameters = executor_input.parameter_values(prepare, defaults, {}, placeholders)
        spec = executor_input.build(prepare, parameters, {}, service.task_root(prepare.name, 7))
        uri = executor_input.output_artifacts(spec)["dataset"]
        assert uri == service.task_root(prepare.name, 7) + "/dataset"
        assert executor_input.local_path(uri) == "/gcs/" + uri[len("gs://"):]
        assert spec["outputs"]["outputFile"] == "/tmp/kfp_outputs/output_metadata.json"
        command = executor_input.command(prepare, spec, placeholders)
        passed = json.loads(command[command.index("--executor_input") + 1])
        assert passed == spec
        root = passed["inputs"]["parameterValues"]["pipeline_root"]
        assert root == ("gs://bkt/runs" if target == "vertex" else "{{$.pipeline_root}}"), target
        assert isinstance(passed["inputs"]["parameterValues"]["sample_rate"], int)

        train = tasks[1]
        record = {"uri": uri, "schema_title": "system.Dataset", "metadata": {"train_examples": 3}}
        train_spec = executor_input.build(train, executor_input.parameter_values(train, defaults, {}, placeholders),
                                          {"dataset": record}, service.task_root(train.name, 8))
        given = train_spec["inputs"]["artifacts"]["dataset"]["artifacts"][0]
        assert given["uri"] == uri and given["metadata"] == {"train_examples": 3}


def test_podman_command_line():
    argv = podman.run_argv("img:1", ["sh", "-ec", "x"], ["--a", "b"], "task-1", environment={"K": "v"},
                           user="1000680000:0", cpus=podman.cpus_here(8, host_cpus=2),
                           memory=podman.memory_here(16e9), mounts=[podman.Mount("/h", "/gcs")])
    assert argv[:2] == ["podman", "run"] and "--network=host" in argv and "--pull=never" in argv
    assert '--entrypoint=["sh", "-ec", "x"]' in argv and argv[-3:] == ["img:1", "--a", "b"]
    assert "--cpus=2.0" in argv and "--memory=16000000000" in argv and "--memory-swap=16000000000" in argv
    assert "--user=1000680000:0" in argv and "--env=K=v" in argv and "--volume=/h:/gcs:rw" in argv
    assert podman.cpus_here(None) is None and podman.cpus_here(0.5, host_cpus=2) == 0.5


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc (the stand-in libcuda.so.1)")
def test_defect_1_the_loader_finds_the_driver_only_on_its_path(tmp_path):
    """The stand-in libcuda.so.1 at <root>/lib64, and the probe the rehearsal runs in the train
    container, here in a plain Python process: found with the folder on LD_LIBRARY_PATH, not
    without it (what an image without the loader path gets on a GPU node: defect 1)."""
    root = driver_stub.build(str(tmp_path / "nvidia"))
    lib64 = os.path.join(root, "lib64")

    def probe(library_path):
        environment = {key: value for key, value in os.environ.items() if key != "LD_LIBRARY_PATH"}
        if library_path:
            environment["LD_LIBRARY_PATH"] = library_path
        output = subprocess.run([sys.executable, "-c", driver_stub.PROBE], capture_output=True, text=True,
                                env=environment, check=False).stdout
        return driver_stub.parse_probe(output)

    found = probe(lib64)
    assert found["loaded"] and found["path"].startswith(lib64)
    assert driver_stub.verdict(found)[0]
    missing = probe("")
    assert not missing["loaded"]
    ok, sentence = driver_stub.verdict({**missing, "cuda_tensorflow": True})
    assert not ok and "LD_LIBRARY_PATH" in sentence and "/usr/local/nvidia/lib64" in sentence
    assert driver_stub.verdict({**missing, "cuda_tensorflow": False})[0]  # tensorflow-cpu never loads it.


def test_bucket_copies_around_a_task(tmp_path):
    """Inputs down from the emulator into the task's /gcs folder, and back up only what the task
    wrote: all of it (Vertex AI's FUSE mount) or only the output artifacts (Kubeflow's launcher)."""
    with bucket.Emulator(str(tmp_path / "emulator")) as emulator:
        emulator.create_bucket("bkt")
        source = tmp_path / "a.txt"
        source.write_text("input")
        emulator.upload_file(str(source), "gs://bkt/runs/t1/dataset/a.txt")
        mount = tmp_path / "gcs"
        assert emulator.download_folder("gs://bkt/runs/t1/dataset", str(mount)) == 1
        assert (mount / "bkt/runs/t1/dataset/a.txt").read_text() == "input"
        before = bucket.snapshot(str(mount))
        (mount / "bkt/runs/t2/model").mkdir(parents=True)
        (mount / "bkt/runs/t2/model/ckpt").write_text("weights")
        (mount / "bkt/runs/elsewhere.txt").write_text("side file")
        assert bucket.changed_files(str(mount), before) == ["bkt/runs/elsewhere.txt", "bkt/runs/t2/model/ckpt"]
        (mount / "bkt/runs/t2/metrics").write_text("{}")  # An output artifact that is a file.
        (mount / "bkt/runs/t2/metrics_old").write_text("{}")
        only_outputs = bucket.changed_files(str(mount), before, under=["bkt/runs/t2/model", "bkt/runs/t2/metrics"])
        assert only_outputs == ["bkt/runs/t2/metrics", "bkt/runs/t2/model/ckpt"]
        emulator.upload_files(str(mount), only_outputs)
        assert emulator.list("gs://bkt/runs/t2/model") == ["gs://bkt/runs/t2/model/ckpt"]
        assert emulator.exists("gs://bkt/runs/t2/metrics") and emulator.exists("gs://bkt/runs/t2/model")
        assert not emulator.exists("gs://bkt/runs/t2/metrics_old")
        assert emulator.list("gs://bkt/runs") == ["gs://bkt/runs/t1/dataset/a.txt", "gs://bkt/runs/t2/metrics",
                                                  "gs://bkt/runs/t2/model/ckpt"]
