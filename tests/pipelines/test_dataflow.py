"""The prepare step's Beam options and output folder for remote runners (ddsp_core/steps/dataflow.py),
with known answers, and how the compiled pipeline feeds them to the step."""

import os

import pytest
import yaml

from ddsp_core.steps import dataflow, steps
from pipelines import cli

VERTEX_ENV = {"CLOUD_ML_PROJECT_ID": "vertex-project", "CLOUD_ML_REGION": "europe-west4",
              "GOOGLE_CLOUD_PROJECT": "other-project", "HOME": "/home/ddsp"}
ROOT = "gs://bucket/ddsp"
WORKER = "us-docker.pkg.dev/p/ddsp/ddsp-pipeline:0.1.0-dataflow"


# check_options


@pytest.mark.parametrize("options, expected", [
    ([], []),
    ((), []),
    (None, []),
    (["--runner=DataflowRunner", " ", "", "--experiments=a,b"], ["--runner=DataflowRunner", "--experiments=a,b"]),
    (("--region", "us-central1"), ["--region", "us-central1"]),
])
def test_options_are_a_list_one_option_an_item(options, expected):
    assert dataflow.check_options(options) == expected


def test_a_comma_string_is_refused_saying_to_give_a_list():
    with pytest.raises(ValueError, match=r"must be a list of options, one option an item.*--beam-option"):
        dataflow.check_options("--runner=DataflowRunner,--region=r")
    with pytest.raises(ValueError, match=r"holds 3, not a string"):
        dataflow.check_options(["--runner=DataflowRunner", 3])


# output_dir


URI, PATH = "gs://b/root/run/dataset", "/gcs/b/root/run/dataset"  # A Dataset artifact's on Vertex AI.


@pytest.mark.parametrize("options", [[], ["--runner=DirectRunner"], ["--runner", "direct"], ["--direct_num_workers=2"]])
def test_the_local_runner_writes_to_the_artifacts_local_path(options):
    assert dataflow.output_dir(options, URI, PATH) == PATH


@pytest.mark.parametrize("options", [["--runner=DataflowRunner"], ["--runner", "dataflow"], ["--runner=FlinkRunner"]])
def test_a_remote_runner_writes_to_the_artifacts_uri(options):
    assert dataflow.output_dir(options, URI, PATH) == URI


def test_a_remote_runner_without_a_gs_uri_is_refused_naming_the_pipeline_root():
    with pytest.raises(ValueError, match=r"runs on DataflowRunner, whose workers cannot write to "
                                         r"'/minio/mlpipeline/x'.*'minio://mlpipeline/x'.*--pipeline-root gs://"):
        dataflow.output_dir(["--runner=DataflowRunner"], "minio://mlpipeline/x", "/minio/mlpipeline/x")
    with pytest.raises(ValueError, match=r"must be on Cloud Storage"):
        dataflow.output_dir(["--runner=DataflowRunner"], "", "out/pipeline/run/dataset")


# complete_options


def test_dataflow_options_come_from_the_vertex_environment_the_root_and_the_worker_image():
    options, derived = dataflow.complete_options(["--runner=DataflowRunner", "--max_num_workers=4"], VERTEX_ENV,
                                                 pipeline_root=ROOT + "/", worker_image=WORKER)
    assert options == ["--runner=DataflowRunner", "--max_num_workers=4", "--project=vertex-project",
                       "--region=europe-west4", "--temp_location=gs://bucket/ddsp/dataflow/tmp",
                       "--staging_location=gs://bucket/ddsp/dataflow/staging", f"--sdk_container_image={WORKER}"]
    assert derived == {"project": "$CLOUD_ML_PROJECT_ID", "region": "$CLOUD_ML_REGION",
                       "temp_location": "the pipeline root", "staging_location": "the pipeline root",
                       "sdk_container_image": "the pipeline's worker image"}
    assert dataflow.missing_options(options) == []


def test_options_given_always_win():
    given = ["--runner", "DataflowRunner", "--project", "mine", "--region=us-east1", "--temp_location=gs://t/tmp",
             "--sdk_container_image=my-image", "--experiments=a,b"]
    assert dataflow.complete_options(given, VERTEX_ENV, pipeline_root=ROOT, worker_image=WORKER) == (given, {})
    # The deprecated name of the worker image counts as given, and a staging folder alone stands for both.
    given = ["--runner=DataflowRunner", "--worker_harness_container_image=old", "--staging_location=gs://s/st"]
    options, derived = dataflow.complete_options(given, VERTEX_ENV, pipeline_root=ROOT, worker_image=WORKER)
    assert options == given + ["--project=vertex-project", "--region=europe-west4"]
    assert set(derived) == {"project", "region"}
    assert dataflow.missing_options(options) == []


@pytest.mark.parametrize("environ, project, region", [
    ({"GOOGLE_CLOUD_PROJECT": "gc", "GOOGLE_CLOUD_REGION": "us-west1"}, "gc", "us-west1"),
    ({"CLOUDSDK_CORE_PROJECT": "sdk", "CLOUDSDK_COMPUTE_REGION": "asia-east1", "GOOGLE_CLOUD_PROJECT": " "},
     "sdk", "asia-east1"),
    ({"CLOUD_ML_PROJECT_ID": "ml", "GOOGLE_CLOUD_PROJECT": "gc", "CLOUD_ML_REGION": "us-central1",
      "CLOUDSDK_COMPUTE_REGION": "x"}, "ml", "us-central1"),
])
def test_project_and_region_are_read_from_the_first_variable_set(environ, project, region):
    options, _ = dataflow.complete_options(["--runner=DataflowRunner"], environ, pipeline_root=ROOT)
    assert options[1:3] == [f"--project={project}", f"--region={region}"]


@pytest.mark.parametrize("root", ["", "/local/root", "{{$.pipeline_root}}", "minio://mlpipeline/v2/artifacts"])
def test_without_a_gs_root_the_temp_folder_goes_to_the_datasets_bucket(root):
    options, derived = dataflow.complete_options(["--runner=DataflowRunner"], {}, pipeline_root=root,
                                                 output="gs://data-bucket/root/123/run/prepare-tfrecord_1/dataset")
    assert options == ["--runner=DataflowRunner", "--temp_location=gs://data-bucket/dataflow/tmp",
                       "--staging_location=gs://data-bucket/dataflow/staging"]
    assert derived["temp_location"] == "the Dataset's bucket"
    assert dataflow.missing_options(options) == [
        "--project (not given, and none of $CLOUD_ML_PROJECT_ID, $GOOGLE_CLOUD_PROJECT, $CLOUDSDK_CORE_PROJECT is set)",
        "--region (not given, and none of $CLOUD_ML_REGION, $GOOGLE_CLOUD_REGION, $CLOUDSDK_COMPUTE_REGION is set)"]


@pytest.mark.parametrize("options", [[], ["--runner=DirectRunner"], ["--runner=FlinkRunner", "--flink_master=h:8081"]])
def test_other_runners_get_their_options_unchanged(options):
    assert dataflow.complete_options(options, VERTEX_ENV, pipeline_root=ROOT, worker_image=WORKER) == (options, {})
    assert dataflow.missing_options(options) == []


def test_what_dataflow_still_lacks_is_named():
    assert dataflow.missing_options(["--runner=DataflowRunner", "--project=p", "--region=r",
                                     "--temp_location=/tmp/x"]) == ["a gs:// --temp_location (got '/tmp/x')"]
    assert len(dataflow.missing_options(["--runner=DataflowRunner"])) == 3


def test_prepare_stops_before_submitting_a_dataflow_job_that_lacks_options(tmp_path):
    with pytest.raises(ValueError, match=r"The Dataflow job lacks --project .*; --region .*--beam-option=--project=P"):
        steps.prepare(str(tmp_path / "*.wav"), str(tmp_path / "dataset"), dataset_uri="gs://b/root/dataset",
                      beam_pipeline_options=["--runner=DataflowRunner"], environ={})
    assert not (tmp_path / "dataset").exists()
    with pytest.raises(ValueError, match=r"must be a list of options"):
        steps.prepare(str(tmp_path / "*.wav"), str(tmp_path / "dataset"), beam_pipeline_options="--runner=DirectRunner")


# worker_image_for


@pytest.mark.parametrize("image, expected", [
    ("ddsp-pipeline:0.1.0", "ddsp-pipeline:0.1.0-dataflow"),
    ("us-docker.pkg.dev/p/ddsp/ddsp-pipeline:0.1.0", "us-docker.pkg.dev/p/ddsp/ddsp-pipeline:0.1.0-dataflow"),
    ("localhost:5000/ddsp-pipeline", "localhost:5000/ddsp-pipeline:latest-dataflow"),
    ("ddsp-pipeline", "ddsp-pipeline:latest-dataflow"),
    ("reg/ddsp-pipeline@sha256:" + "0" * 64, ""),
    ("", ""),
])
def test_the_worker_image_is_the_step_images_tag_with_a_suffix(image, expected):
    assert dataflow.worker_image_for(image) == expected


# the compiled pipeline


def _prepare_task(path, *flags):
    assert cli.main(["compile", "--output", str(path), *flags]) == 0
    spec = yaml.safe_load(path.read_text())
    return spec, spec["root"]["dag"]["tasks"]["prepare-tfrecord"]["inputs"]["parameters"]


def test_the_pipeline_passes_a_list_the_root_and_the_worker_image_to_prepare(tmp_path):
    spec, arguments = _prepare_task(tmp_path / "p.yaml", "--image", "us-docker.pkg.dev/p/ddsp/ddsp-pipeline:2")
    parameter = spec["root"]["inputDefinitions"]["parameters"]["beam_pipeline_options"]
    assert (parameter["parameterType"], parameter["defaultValue"]) == ("LIST", [])
    component = spec["components"]["comp-prepare-tfrecord"]["inputDefinitions"]["parameters"]
    assert component["beam_pipeline_options"]["parameterType"] == "LIST"
    assert arguments["beam_pipeline_options"] == {"componentInputParameter": "beam_pipeline_options"}
    assert arguments["pipeline_root"]["runtimeValue"]["constant"] == "{{$.pipeline_root}}"
    assert arguments["worker_image"]["runtimeValue"]["constant"] == "us-docker.pkg.dev/p/ddsp/ddsp-pipeline:2-dataflow"


# The project: an ID, never a number (Vertex AI's $CLOUD_ML_PROJECT_ID holds the project number)


NUMBER = "123456789012"
UNRESOLVED_PROJECT = "{{$.pipeline_google_cloud_project_id}}"


def test_the_pipelines_project_id_wins_over_vertexs_project_number():
    environ = {**VERTEX_ENV, "CLOUD_ML_PROJECT_ID": NUMBER}
    options, derived = dataflow.complete_options(["--runner=DataflowRunner"], environ, pipeline_root=ROOT,
                                                 project_id="my-project")
    assert "--project=my-project" in options and derived["project"] == "the pipeline's project ID"
    # A string ID in the environment also comes second to the pipeline's.
    options, _ = dataflow.complete_options(["--runner=DataflowRunner"], VERTEX_ENV, project_id="my-project")
    assert "--project=my-project" in options


def test_a_project_number_is_passed_over_for_an_id_further_down_the_environment():
    environ = {"CLOUD_ML_PROJECT_ID": NUMBER, "GOOGLE_CLOUD_PROJECT": "gc-project"}
    options, derived = dataflow.complete_options(["--runner=DataflowRunner"], environ, project_id=UNRESOLVED_PROJECT)
    assert "--project=gc-project" in options and derived["project"] == "$GOOGLE_CLOUD_PROJECT"
    assert not any(NUMBER in option for option in options)


@pytest.mark.parametrize("project_id", ["", UNRESOLVED_PROJECT, NUMBER])
def test_a_project_number_alone_is_refused_saying_how_to_give_the_id(project_id):
    with pytest.raises(ValueError, match=r"needs the project ID, not the project number.*\$CLOUD_ML_PROJECT_ID is "
                                         r"123456789012.*--beam-option=--project=PROJECT_ID"):
        dataflow.complete_options(["--runner=DataflowRunner"], {"CLOUD_ML_PROJECT_ID": NUMBER},
                                  project_id=project_id)


def test_a_project_number_given_as_an_option_is_refused():
    with pytest.raises(ValueError, match=r"found only a number: --project=123456789012"):
        dataflow.complete_options(["--runner=DataflowRunner", f"--project={NUMBER}"], VERTEX_ENV)
    # Other runners take no project: nothing to refuse.
    assert dataflow.complete_options([f"--project={NUMBER}"], VERTEX_ENV) == ([f"--project={NUMBER}"], {})


def test_an_unresolved_project_placeholder_is_not_a_project():
    options, derived = dataflow.complete_options(["--runner=DataflowRunner"], {}, pipeline_root=ROOT,
                                                 project_id=UNRESOLVED_PROJECT)
    assert "project" not in derived and not any("{{" in option for option in options)
    assert dataflow.missing_options(options)[0].startswith("--project (not given")


# The pipeline root: kfp's placeholder as Kubeflow leaves it is no path


UNRESOLVED_ROOT = "{{$.pipeline_root}}"


@pytest.mark.parametrize("kfp_root, given, expected", [
    ("gs://resolved/root", "gs://given/root", "gs://resolved/root"),  # Vertex AI resolves it.
    (UNRESOLVED_ROOT, "gs://given/root", "gs://given/root"),  # Kubeflow leaves it: the parameter's.
    (UNRESOLVED_ROOT, "", ""),
    ("", "{{$.pipeline_root}}", ""),
])
def test_the_effective_pipeline_root(kfp_root, given, expected):
    assert dataflow.effective_pipeline_root(kfp_root, given) == expected


def test_an_unresolved_root_with_the_pipelines_parameter_puts_dataflows_folders_under_the_parameter():
    root = dataflow.effective_pipeline_root(UNRESOLVED_ROOT, "gs://given/ddsp")
    options, derived = dataflow.complete_options(["--runner=DataflowRunner"], VERTEX_ENV, pipeline_root=root,
                                                 output="gs://data-bucket/root/run/dataset")
    assert "--temp_location=gs://given/ddsp/dataflow/tmp" in options
    assert derived["temp_location"] == "the pipeline root"
    # The placeholder itself is never taken for a folder, even passed straight in.
    options, _ = dataflow.complete_options(["--runner=DataflowRunner"], VERTEX_ENV, pipeline_root=UNRESOLVED_ROOT)
    assert not any("{{" in option for option in options)


def test_prepare_with_neither_root_warns_and_uses_the_datasets_bucket(tmp_path, caplog):
    with caplog.at_level("WARNING"), pytest.raises(ValueError, match=r"lacks --project"):
        steps.prepare(str(tmp_path / "*.wav"), str(tmp_path / "dataset"), dataset_uri="gs://b/root/dataset",
                      beam_pipeline_options=["--runner=DataflowRunner"], environ={}, pipeline_root=UNRESOLVED_ROOT)
    warning = " ".join(record.getMessage() for record in caplog.records if record.levelname == "WARNING")
    assert "No gs:// pipeline root reached the step" in warning
    assert "--temp_location=gs://b/dataflow/tmp" in warning and "--pipeline-root gs://" in warning
    caplog.clear()
    # With the pipeline's parameter: under it, no warning.
    with caplog.at_level("INFO"), pytest.raises(ValueError, match=r"lacks --project"):
        steps.prepare(str(tmp_path / "*.wav"), str(tmp_path / "dataset"), dataset_uri="gs://b/root/dataset",
                      beam_pipeline_options=["--runner=DataflowRunner"], environ={}, pipeline_root=UNRESOLVED_ROOT,
                      explicit_pipeline_root="gs://given/ddsp")
    assert "Dataflow option --temp_location from the pipeline root." in caplog.messages
    assert not [record for record in caplog.records if record.levelname == "WARNING"]


# What the compiled pipeline passes for them


def test_vertex_passes_its_project_id_placeholder_and_kubeflow_none(tmp_path):
    from google_cloud_pipeline_components import _placeholders

    from pipelines import clarinet

    assert clarinet.VERTEX_PROJECT_ID_PLACEHOLDER == _placeholders.PROJECT_ID_PLACEHOLDER
    _, vertex = _prepare_task(tmp_path / "v.yaml")
    assert vertex["project_id"]["runtimeValue"]["constant"] == "{{$.pipeline_google_cloud_project_id}}"
    _, kubeflow = _prepare_task(tmp_path / "k.yaml", "--target", "kubeflow")
    assert kubeflow["project_id"]["runtimeValue"]["constant"] == ""


def test_the_pipelines_root_parameter_reaches_prepare_beside_kfps_placeholder(tmp_path):
    spec, arguments = _prepare_task(tmp_path / "k.yaml", "--target", "kubeflow")
    assert spec["root"]["inputDefinitions"]["parameters"]["pipeline_root"]["defaultValue"] == ""
    assert arguments["explicit_pipeline_root"] == {"componentInputParameter": "pipeline_root"}
    assert arguments["pipeline_root"]["runtimeValue"]["constant"] == UNRESOLVED_ROOT


def test_the_placeholder_is_left_out_of_pipelines_built_for_kfps_local_runner(tmp_path):
    """kfp's local runner fails on a placeholder it does not know: `ddsp_pipeline run` builds its
    pipeline with project_id='' (no placeholder); a pipeline compiled for Vertex AI gets it by default."""
    from kfp.local import placeholder_utils

    from pipelines import clarinet

    with pytest.raises(IndexError):  # What kfp 2.17's local runner does with it.
        placeholder_utils.resolve_individual_placeholder(
            UNRESOLVED_PROJECT, executor_input_dict={"outputs": {"outputFile": "f"}}, pipeline_resource_name="p",
            task_resource_name="t", pipeline_root="/r", pipeline_job_id="j", pipeline_task_id="k")
    assert clarinet.PipelineSettings().project_id == "{{$.pipeline_google_cloud_project_id}}"
    assert clarinet.PipelineSettings(target="kubeflow").project_id == ""
    path = clarinet.compile_pipeline(str(tmp_path / "local.yaml"),
                                     clarinet.PipelineSettings(accelerator="", project_id=""))
    assert "{{$.pipeline_google_cloud_project_id}}" not in open(path).read()
    source = open(os.path.join(os.path.dirname(clarinet.__file__), "local.py")).read()
    assert 'PipelineSettings(accelerator="", project_id="")' in source
