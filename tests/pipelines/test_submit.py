"""`ddsp_pipeline submit`: the audio upload against a real Cloud Storage emulator
(gcp-storage-emulator on 127.0.0.1, tests/gcs_emulator.py), the calls to Vertex AI and
Kubeflow, and bad flags.

The only mock here is of the cloud API that cannot run on this machine:
google.cloud.aiplatform (init, PipelineJob). Kubeflow submits go through the real kfp.Client to
a stand-in of the Kubeflow Pipelines REST API on 127.0.0.1 (tests/pipelines/kfp_api_stand_in.py),
which records what kfp sends. Everything else is real: the compiled YAML, google-cloud-storage
talking to the emulator, the checksums.
"""

import dataclasses
import json
import re
from unittest import mock

import pytest
import yaml

from pipelines import cli, upload
from pipelines.fingerprint import audio_fingerprint
from pipelines.submit_errors import SubmitError
from tests.pipelines.kfp_api_stand_in import KfpApiStandIn


# An image in a registry (one that cannot be reached from here: nothing is pulled or pinned).
IMAGE = "registry.invalid/ddsp/ddsp-pipeline:test"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A compiled pipeline whose steps run in IMAGE (the committed YAML names no registry)."""
    path = tmp_path_factory.mktemp("template") / "clarinet.yaml"
    assert cli.main(["compile", "--output", str(path), "--image", IMAGE, "--target", "kubeflow"]) == 0
    return str(path)


@pytest.fixture
def kfp_api(tmp_path, monkeypatch):
    """A stand-in Kubeflow Pipelines API (a backend of 2.3.0, open); kfp's context file kept in tmp_path."""
    import kfp

    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    monkeypatch.delenv("KF_PIPELINES_SA_TOKEN_PATH", raising=False)
    with KfpApiStandIn() as api:
        yield api


def _run_arguments(api, index=-1):
    """The pipeline parameters of a run the stand-in API received."""
    return api.runs[index]["runtime_config"].get("parameters", {})


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def notes(tmp_path):
    """Three 'audio' files (two folders deep) and a text file the pattern must not pick up."""
    folder = tmp_path / "my notes"
    files = {
        "a.wav": b"RIFF-a" * 100,
        "b.wav": b"RIFF-b" * 200,
        "low/c.wav": b"RIFF-c" * 50,
    }
    for name, data in files.items():
        _write(folder / name, data)
    _write(folder / "readme.txt", b"not audio")
    return folder, files


def _blobs(emulator, bucket_url, prefix=""):
    """{name: blob} of every object in the bucket under `prefix`."""
    bucket, _ = upload.split_gs_url(bucket_url + "/")
    return {blob.name: blob for blob in emulator.client.list_blobs(bucket, prefix=prefix or None)}


def _beam_matches(emulator, bucket_url, pattern):
    """Objects of the bucket that `pattern` (comma-separated globs) matches, with Beam's glob
    rules (the prepare step reads the pattern with Beam's GCS filesystem)."""
    from apache_beam.io.filesystem import FileSystem

    regexes = [re.compile(FileSystem.translate_pattern(part)) for part in pattern.split(",")]
    return sorted(f"{bucket_url}/{name}" for name in _blobs(emulator, bucket_url)
                  if any(regex.match(f"{bucket_url}/{name}") for regex in regexes))


def test_upload_skips_unchanged_files_and_reuploads_changed_ones(gcs_emulator, gcs_bucket, notes):
    folder, files = notes
    # Decoys: objects the returned pattern must not match (another upload, the root itself).
    gcs_emulator.upload_bytes(b"other", f"{gcs_bucket}/root/inputs/audio/other-123/x.wav")
    gcs_emulator.upload_bytes(b"other", f"{gcs_bucket}/root/a.wav")
    destination = f"{gcs_bucket}/root/inputs/audio"

    pattern, report = upload.upload_audio(str(folder / "**" / "*.wav"), destination)

    assert (report.uploaded, report.skipped) == (3, 0)
    assert report.uploaded_bytes == sum(map(len, files.values())) and report.skipped_bytes == 0
    assert re.fullmatch(re.escape(destination) + r"/my-notes-[0-9a-f]{12}/\*\*", pattern), pattern
    folder_url = pattern[:-len("/**")]
    expected = sorted(f"{folder_url}/{name}" for name in files)
    assert _beam_matches(gcs_emulator, gcs_bucket, pattern) == expected
    for name, data in files.items():
        assert gcs_emulator.download(f"{folder_url}/{name}") == data
    assert report.destination == folder_url + "/"
    assert any("uploaded 3" in line and "skipped 0" in line for line in report.lines())
    generations = {name: blob.generation for name, blob in _blobs(gcs_emulator, gcs_bucket, "root/inputs").items()}

    # Second call: everything is there with the same checksum.
    again, report2 = upload.upload_audio(str(folder / "**" / "*.wav"), destination)
    assert again == pattern
    assert (report2.uploaded, report2.skipped) == (0, 3)
    assert report2.skipped_bytes == sum(map(len, files.values()))
    assert report2.fingerprint == report.fingerprint
    assert {name: blob.generation for name, blob in _blobs(gcs_emulator, gcs_bucket, "root/inputs").items()} \
        == generations

    # Same size, other bytes: only that file goes up again.
    changed = b"RIFF-B" * 200
    (folder / "b.wav").write_bytes(changed)
    third, report3 = upload.upload_audio(str(folder / "**" / "*.wav"), destination)
    assert third == pattern
    assert (report3.uploaded, report3.skipped) == (1, 2) and report3.uploaded_bytes == len(changed)
    assert gcs_emulator.download(f"{folder_url}/b.wav") == changed
    assert report3.fingerprint != report.fingerprint
    now = {name: blob.generation for name, blob in _blobs(gcs_emulator, gcs_bucket, "root/inputs").items()}
    b_name = f"{folder_url}/b.wav".split("/", 3)[3]
    assert [name for name in now if now[name] != generations[name]] == [b_name]
    assert _beam_matches(gcs_emulator, gcs_bucket, pattern) == expected


def test_another_set_of_files_goes_to_another_folder(gcs_emulator, gcs_bucket, notes, tmp_path):
    folder, files = notes
    destination = f"{gcs_bucket}/root/inputs/audio"
    first, _ = upload.upload_audio(str(folder / "*.wav"), destination)
    other = _write(tmp_path / "more" / "d.wav", b"RIFF-d" * 10)
    # Two patterns: one folder, laid out below their common base (tmp_path).
    both, report = upload.upload_audio(f"{folder / '*.wav'}, {other}", destination)
    assert both != first and report.uploaded == 3
    both_folder = both[:-len("/**")]
    assert _beam_matches(gcs_emulator, gcs_bucket, both) == sorted(
        [f"{both_folder}/my notes/a.wav", f"{both_folder}/my notes/b.wav", f"{both_folder}/more/d.wav"])
    # The first set's copies are untouched.
    assert _beam_matches(gcs_emulator, gcs_bucket, first) == sorted(
        f"{first[:-len('/**')]}/{name}" for name in ("a.wav", "b.wav"))


def test_pattern_that_matches_no_file_is_named(gcs_emulator, gcs_bucket, notes, tmp_path):
    folder, _ = notes
    missing = str(tmp_path / "nothing" / "*.wav")
    with pytest.raises(SubmitError) as caught:
        upload.upload_audio(f"{folder / '*.wav'},{missing}", f"{gcs_bucket}/root/inputs/audio")
    assert caught.value.step == "upload audio" and caught.value.exit_status == 2
    assert repr(missing) in str(caught.value) and "matches" in str(caught.value)
    assert _blobs(gcs_emulator, gcs_bucket) == {}, "nothing is uploaded when one pattern matches nothing"

    gs_missing = f"{gcs_bucket}/audio/*.flac"
    gcs_emulator.upload_bytes(b"x", f"{gcs_bucket}/audio/sub/deeper.flac")  # '*' does not cross '/'.
    with pytest.raises(SubmitError, match=re.escape(repr(gs_missing))):
        upload.upload_audio(gs_missing, f"{gcs_bucket}/root/inputs/audio")


def test_gs_patterns_pass_through_unchanged(gcs_emulator, gcs_bucket):
    gcs_emulator.upload_bytes(b"x", f"{gcs_bucket}/audio/a.flac")
    pattern, report = upload.upload_audio(f"{gcs_bucket}/audio/*.flac", f"{gcs_bucket}/root/inputs/audio")
    assert pattern == f"{gcs_bucket}/audio/*.flac"
    assert (report.uploaded, report.skipped, report.fingerprint) == (0, 0, "")
    assert sorted(_blobs(gcs_emulator, gcs_bucket)) == ["audio/a.flac"]


def _load_template(path):
    """What the submitted template holds: its YAML, and that kfp loads it as the pipeline."""
    from kfp import components

    with open(path) as file:
        spec = yaml.safe_load(file)
    component = components.load_component_from_file(path)
    return spec, component


def _step_images(image):
    """The images the steps of a pipeline compiled with `image` run in: the image (train) and,
    where the pipeline has one, the CPU image derived from its tag (the other steps)."""
    from components import image as image_module

    from pipelines.clarinet import PipelineSettings

    has_cpu = "cpu_image" in {field.name for field in dataclasses.fields(PipelineSettings)}
    return {image, image_module.cpu_image_for(image)} if has_cpu else {image}


def _images(spec):
    return {executor["container"]["image"] for executor in spec["deploymentSpec"]["executors"].values()}


def test_vertex_submit_uploads_audio_then_builds_the_job(gcs_emulator, gcs_bucket, notes, capsys):
    folder, files = notes
    seen = {}

    def pipeline_job(**kwargs):  # Reads the template while it exists, as the SDK does.
        seen["spec"], seen["component"] = _load_template(kwargs["template_path"])
        job = mock.MagicMock(resource_name="projects/p/locations/r/pipelineJobs/ddsp-1")
        seen["job"] = job
        return job

    with mock.patch("google.cloud.aiplatform.init") as init, \
            mock.patch("google.cloud.aiplatform.PipelineJob", side_effect=pipeline_job) as job_class:
        status = cli.main([
            "submit", "--vertex", "--project", "my-project", "--region", "europe-west4",
            "--pipeline-root", f"{gcs_bucket}/runs", "--audio", str(folder / "**" / "*.wav"),
            "--preset", "full", "--num-steps", "500", "--gin-param", "learning_rate = 0.002",
            "--gin-file", "models/solo_instrument.gin", "--image", "example.com/ddsp/ddsp-pipeline:7",
            "--service-account", "runner@my-project.iam.gserviceaccount.com", "--label", "team=audio",
            "--no-cache"])
    out, err = capsys.readouterr()
    assert status == 0, err

    uploaded = sorted(name for name in _blobs(gcs_emulator, gcs_bucket, "runs/"))
    assert len(uploaded) == 3 and all(name.startswith("runs/inputs/audio/my-notes-") for name in uploaded)
    audio_pattern = f"{gcs_bucket}/runs/inputs/audio/{uploaded[0].split('/')[3]}/**"
    assert _beam_matches(gcs_emulator, gcs_bucket, audio_pattern) == [f"{gcs_bucket}/{name}" for name in uploaded]

    init.assert_called_once_with(project="my-project", location="europe-west4")
    job_class.assert_called_once()
    kwargs = job_class.call_args.kwargs
    fingerprint = kwargs["parameter_values"]["audio_fingerprint"]
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint)
    # Training's checkpoints go to a folder under the pipeline root that a rerun resumes from.
    checkpoint_dir = kwargs["parameter_values"]["checkpoint_dir"]
    assert re.fullmatch(re.escape(f"{gcs_bucket}/runs/checkpoints/full-") + "[0-9a-f]{16}", checkpoint_dir)
    assert "train: no checkpoint yet in" in out
    declared = set(seen["component"].component_spec.inputs)
    # Where things go, as parameters where the template has them (compiled from this checkout).
    placement = {name: value for name, value in (("pipeline_root", f"{gcs_bucket}/runs"),
                                                 ("service_account", "runner@my-project.iam.gserviceaccount.com"))
                 if name in declared}
    assert kwargs == {
        "display_name": "ddsp-clarinet", "template_path": kwargs["template_path"], "job_id": None,
        "pipeline_root": f"{gcs_bucket}/runs", "enable_caching": False, "labels": {"team": "audio"},
        "parameter_values": {"preset": "full", "num_steps": 500, "gin_files": ["models/solo_instrument.gin"],
                             "gin_params": ["learning_rate = 0.002"], "audio_pattern": audio_pattern,
                             "audio_fingerprint": fingerprint,
                             # Own audio: the bundled validation clarinet is not its held-out set.
                             "eval_audio_pattern": "", "checkpoint_dir": checkpoint_dir, **placement},
    }
    seen["job"].submit.assert_called_once_with(service_account="runner@my-project.iam.gserviceaccount.com",
                                               experiment=None)
    # The template: the clarinet pipeline, every parameter passed declared, compiled with --image.
    assert seen["component"].name == "ddsp-clarinet"
    assert set(kwargs["parameter_values"]) <= set(seen["component"].component_spec.inputs)
    assert _images(seen["spec"]) == _step_images("example.com/ddsp/ddsp-pipeline:7")
    assert "uploaded 3" in out and "projects/p/locations/r/pipelineJobs/ddsp-1" in out


def test_kfp_submit_passes_gs_audio_through(gcs_emulator, gcs_bucket, kfp_api, tmp_path, capsys):
    gcs_emulator.upload_bytes(b"x", f"{gcs_bucket}/audio/a.flac")
    status = cli.main(["submit", "--image", IMAGE, "--kfp-host", kfp_api.url, "--audio", f"{gcs_bucket}/audio/*.flac",
                       "--batch-size", "8", "--crepe-capacity", "tiny", "--beam-option=--runner=DirectRunner",
                       "--experiment", "clarinet", "--run-name", "try-1"])
    out, err = capsys.readouterr()
    assert status == 0, err
    # kfp's cache key sees the glob's text only: the digest of the objects it matches changes with them.
    fingerprint = audio_fingerprint(f"{gcs_bucket}/audio/*.flac")
    assert re.fullmatch(r"[0-9a-f]{16}", fingerprint)
    assert [experiment["display_name"] for experiment in kfp_api.experiments] == ["clarinet"]
    (run,) = kfp_api.runs
    assert run["display_name"] == "try-1" and run["experiment_id"] == kfp_api.experiments[0]["experiment_id"]
    assert run["runtime_config"] == {"parameters": {
        "batch_size": 8, "crepe_capacity": "tiny", "beam_pipeline_options": ["--runner=DirectRunner"],
        "audio_pattern": f"{gcs_bucket}/audio/*.flac", "eval_audio_pattern": "", "audio_fingerprint": fingerprint}}
    assert "service_account" not in run
    # What kfp sent is the compiled clarinet pipeline.
    spec_path = tmp_path / "sent.yaml"
    spec_path.write_text(yaml.safe_dump(run["pipeline_spec"]))
    seen = {}
    seen["spec"], seen["component"] = _load_template(str(spec_path))
    assert seen["component"].name == "ddsp-clarinet"
    assert _images(seen["spec"]) == _step_images(IMAGE)
    assert f"image {IMAGE}: no digest found" in out
    # The prepare step's Dataflow workers get the worker image built beside it (docker/dataflow-worker.Dockerfile).
    prepare = seen["spec"]["root"]["dag"]["tasks"]["prepare-tfrecord"]["inputs"]["parameters"]
    assert prepare["worker_image"]["runtimeValue"]["constant"] == IMAGE + "-dataflow"
    # Compiled for Kubeflow: the GPU is asked for as the Kubernetes resource.
    train_resources = seen["spec"]["deploymentSpec"]["executors"]["exec-train"]["container"]["resources"]
    assert train_resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
    assert "run-1" in out and f"{kfp_api.url}/#/runs/details/run-1" in out
    assert "no --pipeline-root, so no checkpoint folder outlives the run" in err
    assert sorted(_blobs(gcs_emulator, gcs_bucket)) == ["audio/a.flac"], "nothing uploaded"


@pytest.mark.parametrize("flags, expected", [
    # One option a flag: a value's commas stay in it.
    (["--beam-option=--runner=DataflowRunner", "--beam-option=--experiments=use_runner_v2,upload_graph"],
     ["--runner=DataflowRunner", "--experiments=use_runner_v2,upload_graph"]),
    # The deprecated comma-separated flag: split at every comma, after the --beam-option ones.
    (["--beam-option=--project=p", "--beam-options=--runner=DataflowRunner,--region=r"],
     ["--project=p", "--runner=DataflowRunner", "--region=r"]),
])
def test_beam_options_reach_the_pipeline_as_a_list(flags, expected, template, kfp_api, capsys):
    status = cli.main(["submit", "--kfp-host", kfp_api.url, "--template", template, *flags])
    err = capsys.readouterr().err
    assert status == 0, err
    assert _run_arguments(kfp_api)["beam_pipeline_options"] == expected
    assert ("--beam-options is deprecated" in err) == any(flag.startswith("--beam-options") for flag in flags)


def test_a_seed_reaches_the_pipeline_only_when_given(template, kfp_api, capsys):
    assert cli.main(["submit", "--kfp-host", kfp_api.url, "--template", template, "--seed", "7"]) == 0
    assert cli.main(["submit", "--kfp-host", kfp_api.url, "--template", template]) == 0
    assert _run_arguments(kfp_api, 0)["seed"] == 7
    assert "seed" not in _run_arguments(kfp_api, 1)  # The pipeline's default: drawn at train time.


@pytest.mark.parametrize("argv, expected", [
    ([], ["exactly one of --vertex", "--kfp-host"]),
    (["--kfp-host", "http://h", "--seed", "-5"], ["--seed must be a whole number from 0 to 2147483647"]),
    (["--vertex", "--kfp-host", "http://h"], ["exactly one of --vertex"]),
    (["--vertex", "--region", "r", "--pipeline-root", "gs://b/r"], ["--vertex needs --project"]),
    (["--vertex", "--project", "p", "--region", "r", "--pipeline-root", "/tmp/runs"],
     ["'/tmp/runs' is not a gs:// path", "--pipeline-root gs://BUCKET/PATH"]),
    (["--vertex", "--project", "p", "--region", "r", "--pipeline-root", "gs://b/r", "--run-name", "My Run"],
     ["--run-name 'My Run' cannot be a Vertex AI job id"]),
    (["--kfp-host", "http://h", "--preset", "fast"], ["Unknown preset 'fast'", "'quick'", "'full'"]),
    (["--kfp-host", "http://h", "--audio", "data/clarinet/notes/*.flac"],
     ["step 'upload audio'", "'data/clarinet/notes/*.flac'", "--pipeline-root gs://BUCKET/PATH"]),
    (["--kfp-host", "http://h", "--gin-file", "pyproject.toml"], ["file on this machine", "--gin-param"]),
    (["--kfp-host", "http://h", "--gin-file", "models/nope.gin"], ["not a shipped gin file",
                                                                   "models/solo_instrument.gin"]),
    (["--kfp-host", "http://h", "--num-steps", "0"], ["--num-steps must be at least 1"]),
    (["--kfp-host", "http://h", "--template", "pipelines/clarinet.yaml", "--image", "x:1"],
     ["--image and the GPU flags apply when the pipeline is compiled"]),
    (["--kfp-host", "http://h", "--accelerator", "NVIDIA_L4"], ["'NVIDIA_L4' is not a Kubernetes resource name"]),
    (["--kfp-host", "http://h", "--template", "no/such.yaml"], ["--template 'no/such.yaml' is not a file"]),
    # The default image (and any without a registry host) would be looked up on Docker Hub.
    (["--kfp-host", "http://h"], ["step 'check image'", "no --image given", "'ddsp-pipeline:0.1.0' names no registry",
                                  "ddsp_pipeline build-image"]),
    (["--kfp-host", "http://h", "--image", "localhost/ddsp-pipeline:1"], ["names no registry"]),
    (["--kfp-host", "http://h", "--template", "pipelines/clarinet.yaml"],
     ["--template pipelines/clarinet.yaml: The image 'ddsp-pipeline:0.1.0' names no registry"]),
])
def test_bad_flags_exit_2_before_anything_is_sent(argv, expected, kfp_api, capsys):
    argv = [kfp_api.url if arg == "http://h" else arg for arg in argv]
    status = cli.main(["submit", *argv])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith("ddsp_pipeline submit: error: step '"), err
    for text in expected:
        assert text in err, err
    assert kfp_api.requests == [], "nothing is sent"


def test_pipeline_root_that_is_not_writable_stops_before_upload(gcs_emulator, notes, capsys):
    folder, _ = notes
    with mock.patch("google.cloud.aiplatform.PipelineJob") as job_class:
        status = cli.main(["submit", "--image", IMAGE, "--vertex", "--project", "p", "--region", "r",
                           "--pipeline-root", "gs://no-such-bucket-ddsp/runs", "--audio", str(folder / "*.wav")])
    err = capsys.readouterr().err
    assert status == 2
    assert "step 'check pipeline root' failed: cannot write to gs://no-such-bucket-ddsp/runs" in err
    assert "gs://no-such-bucket-ddsp exists" in err
    job_class.assert_not_called()


def test_refused_submission_exits_1_naming_the_step(gcs_emulator, gcs_bucket, capsys):
    from google.api_core import exceptions

    with mock.patch("google.cloud.aiplatform.init"), mock.patch("google.cloud.aiplatform.PipelineJob") as job_class:
        job_class.return_value.submit.side_effect = exceptions.PermissionDenied("aiplatform.pipelineJobs.create denied")
        status = cli.main(["submit", "--image", IMAGE, "--vertex", "--project", "p", "--region", "r", "--pipeline-root",
                           f"{gcs_bucket}/runs"])
    err = capsys.readouterr().err
    assert status == 1
    assert "step 'submit to Vertex AI' failed: aiplatform.pipelineJobs.create denied" in err
    # Only the flags given are passed, and the checkpoint folder the submit tool adds (and the
    # pipeline root, where the template has the parameter).
    values = job_class.call_args.kwargs["parameter_values"]
    assert set(values) - {"pipeline_root"} == {"checkpoint_dir"}
    assert values.get("pipeline_root", f"{gcs_bucket}/runs") == f"{gcs_bucket}/runs"
    assert _blobs(gcs_emulator, gcs_bucket) == {}, "the write probe is removed"


def test_eval_audio_is_uploaded_too_and_becomes_the_held_out_set(gcs_emulator, gcs_bucket, notes, tmp_path, kfp_api,
                                                                 capsys):
    folder, _ = notes
    held_out = tmp_path / "held out"
    _write(held_out / "v.wav", b"RIFF-v" * 70)
    status = cli.main(["submit", "--image", IMAGE, "--kfp-host", kfp_api.url, "--pipeline-root", f"{gcs_bucket}/runs",
                       "--audio", str(folder / "*.wav"), "--eval-audio", str(held_out / "*.wav")])
    assert status == 0, capsys.readouterr().err
    assert kfp_api.runs[0]["runtime_config"]["pipeline_root"] == f"{gcs_bucket}/runs"
    arguments = _run_arguments(kfp_api)
    assert _beam_matches(gcs_emulator, gcs_bucket, arguments["eval_audio_pattern"]) == [
        f"{gcs_bucket}/{name}" for name in _blobs(gcs_emulator, gcs_bucket, "runs/inputs/audio/held-out-")]
    assert len(_beam_matches(gcs_emulator, gcs_bucket, arguments["eval_audio_pattern"])) == 1
    assert len(_beam_matches(gcs_emulator, gcs_bucket, arguments["audio_pattern"])) == 2
    assert re.fullmatch(r"[0-9a-f]{16}-[0-9a-f]{16}", arguments["audio_fingerprint"])


def test_a_resubmission_resumes_and_no_resume_sets_the_checkpoints_aside(gcs_emulator, gcs_bucket, capsys):
    """(The Vertex client is mocked: it needs the cloud. The bucket is the storage emulator.)"""
    gcs_emulator.upload_bytes(b"x", f"{gcs_bucket}/audio/a.flac")
    argv = ["submit", "--image", IMAGE, "--vertex", "--project", "p", "--region", "r", "--pipeline-root", f"{gcs_bucket}/runs",
            "--audio", f"{gcs_bucket}/audio/*.flac", "--num-steps", "300"]

    def submit(*extra):
        with mock.patch("google.cloud.aiplatform.init"), mock.patch("google.cloud.aiplatform.PipelineJob") as job:
            assert cli.main([*argv, *extra]) == 0, capsys.readouterr().err
        return job.call_args.kwargs["parameter_values"], capsys.readouterr().out

    first, _ = submit()
    folder = first["checkpoint_dir"]
    assert "restart_id" not in first
    # The first run's train step got to step 200 before its node was preempted.
    for step in (100, 200):
        gcs_emulator.upload_bytes(b"w", f"{folder}/ckpt-{step}.weights.h5")
    gcs_emulator.upload_bytes(json.dumps({"step": 200, "num_steps": 300, "status": "running"}).encode(),
                              f"{folder}/train_state.json")
    again, out = submit()
    assert again == first
    assert f"train: resumes at step 200 of 300 from {folder}/ckpt-200.weights.h5" in out

    fresh, out = submit("--no-resume")
    assert fresh["checkpoint_dir"] == folder and fresh["restart_id"]
    moved = f"{folder}.set-aside-{fresh['restart_id']}"
    assert f"the earlier checkpoints are kept in {moved}" in out
    names = sorted(_blobs(gcs_emulator, gcs_bucket, "runs/checkpoints/"))
    assert names and all(f"{gcs_bucket}/{name}".startswith(moved + "/") for name in names), names

    # Another seed is another model: its own folder, never the unseeded run's checkpoints.
    seeded, out = submit("--seed", "7")
    assert seeded["seed"] == 7 and seeded["checkpoint_dir"] != folder
    assert f"no checkpoint yet in {seeded['checkpoint_dir']}: training starts at step 0" in out
