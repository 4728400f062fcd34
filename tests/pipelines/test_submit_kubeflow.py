"""`ddsp_pipeline submit --kfp-host` against a multi-user, signed-in, versioned Kubeflow, and the
parameters that say where a run's things go (issue 24: defects 5, 6, 7 and 8, item 4).

The Kubeflow Pipelines API here is a STAND-IN (tests/pipelines/kfp_api_stand_in.py: a real HTTP
server on 127.0.0.1 answering healthz, experiments and runs as the backend does, recording the
requests); kfp.Client is the real one. Mocked, because they are Google cloud APIs that cannot
run here: google.cloud.aiplatform (Vertex AI) and kfp's Identity-Aware Proxy token maker.
"""

import dataclasses
import os
import shutil
import stat
import subprocess
from unittest import mock

import pytest
import yaml

from pipelines import cli, kubeflow
from tests.pipelines.kfp_api_stand_in import KfpApiStandIn

IMAGE = "registry.invalid/ddsp/ddsp-pipeline:test"
NAMESPACE = "kubeflow-user-example-com"
SIGN_IN_FLAGS = ("--kfp-token-file", "--kfp-cookies-file", "--kfp-iap-client-id")


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A pipeline compiled for Kubeflow whose steps run in IMAGE (and its CPU image)."""
    path = tmp_path_factory.mktemp("template") / "clarinet.yaml"
    assert cli.main(["compile", "--output", str(path), "--image", IMAGE, "--target", "kubeflow"]) == 0
    return str(path)


@pytest.fixture(autouse=True)
def _kfp_context(tmp_path, monkeypatch):
    """kfp.Client's context file (namespace, cookies) in tmp_path, not ~/.config/kfp; no token
    path from this machine's environment."""
    import kfp

    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    for name in ("KF_PIPELINES_SA_TOKEN_PATH", "KF_PIPELINES_APP_OAUTH2_CLIENT_ID",
                 "KF_PIPELINES_APP_OAUTH2_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)


def _secret(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text + "\n")
    return str(path)


def _submit(api, template, *flags):
    return cli.main(["submit", "--kfp-host", api.url, "--template", template, *flags])


def test_a_token_file_and_namespace_reach_every_request(template, tmp_path, capsys):
    token = _secret(tmp_path, "token", "sa-token-123")
    with KfpApiStandIn(multi_user=True, required_headers={"Authorization": "Bearer sa-token-123"},
                       allowed_namespace=NAMESPACE) as api:
        status = _submit(api, template, "--kfp-token-file", token, "--kfp-namespace", NAMESPACE)
    out, err = capsys.readouterr()
    assert status == 0, err
    assert api.paths() == ["/apis/v2beta1/healthz", "/apis/v2beta1/experiments", "/apis/v2beta1/experiments",
                           "/apis/v2beta1/runs"]
    assert {request.headers.get("authorization") for request in api.requests} == {"Bearer sa-token-123"}
    # The experiment (and so the run) belongs to the namespace.
    assert api.requests[1].query["namespace"] == NAMESPACE
    assert api.experiments[0]["namespace"] == NAMESPACE and len(api.runs) == 1
    assert f"runs Kubeflow Pipelines 2.3.0, namespace {NAMESPACE}" in out
    assert "sa-token-123" not in out + err


def test_a_cookie_file_is_sent_as_the_cookie_header(template, tmp_path, capsys):
    cookie = _secret(tmp_path, "cookie", "authservice_session=abc123")
    with KfpApiStandIn(required_headers={"Cookie": "authservice_session=abc123"}, sign_in_redirect=True) as api:
        status = _submit(api, template, "--kfp-cookies-file", cookie)
    assert status == 0, capsys.readouterr().err
    assert {request.headers.get("cookie") for request in api.requests} == {"authservice_session=abc123"}
    assert len(api.runs) == 1


def test_the_token_path_kfp_reads_is_the_default_token_file(template, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KF_PIPELINES_SA_TOKEN_PATH", _secret(tmp_path, "token", "projected-token"))
    with KfpApiStandIn(required_headers={"Authorization": "Bearer projected-token"}) as api:
        status = _submit(api, template)
    assert status == 0, capsys.readouterr().err
    assert len(api.runs) == 1


def test_an_iap_client_id_makes_the_token_kfp_would(template, capsys):
    """(kfp's Identity-Aware Proxy token maker is mocked: it asks Google's OAuth service.)"""
    with KfpApiStandIn(required_headers={"Authorization": "Bearer iap-id-token"}) as api, \
            mock.patch("kfp.client.auth.get_auth_token", return_value=("iap-id-token", False)) as get_token:
        status = _submit(api, template, "--kfp-iap-client-id", "1234.apps.googleusercontent.com")
    assert status == 0, capsys.readouterr().err
    get_token.assert_called_once_with("1234.apps.googleusercontent.com", None, None)
    assert {request.headers.get("authorization") for request in api.requests} == {"Bearer iap-id-token"}


@pytest.mark.parametrize("stand_in, flags, expected", [
    # No credentials: which flags sign in.
    (dict(required_headers={"Authorization": "Bearer good"}), [], ["asks to sign in (HTTP 401)", *SIGN_IN_FLAGS]),
    # Dex/oauth2-proxy answer an unsigned request with their sign-in page.
    (dict(required_headers={"Cookie": "authservice_session=s"}, sign_in_redirect=True), [],
     ["redirected the request to /dex/auth", "a sign-in page", *SIGN_IN_FLAGS]),
    # A token that no longer works.
    (dict(required_headers={"Authorization": "Bearer good"}), ["--kfp-token-file", "TOKEN"],
     ["refused the credentials from --kfp-token-file", "(HTTP 401)", "expired"]),
    # healthz open (port-forward to ml-pipeline), the run refused without an identity.
    (dict(required_headers={"Authorization": "Bearer good"}, healthz_open=True), [],
     ["step 'submit to Kubeflow'", "HTTP 401", *SIGN_IN_FLAGS]),
    # Signed in, but not a contributor of the namespace.
    (dict(allowed_namespace="team-a"), ["--kfp-namespace", "team-b"],
     ["forbids this account (HTTP 403) with --kfp-namespace team-b"]),
])
def test_a_refusal_says_which_flag_to_give(stand_in, flags, expected, template, tmp_path, capsys):
    flags = [_secret(tmp_path, "token", "stale") if flag == "TOKEN" else flag for flag in flags]
    with KfpApiStandIn(**stand_in) as api:
        status = _submit(api, template, *flags)
    err = capsys.readouterr().err
    assert status == 1, err
    assert "\nddsp_pipeline submit: error: step '" in "\n" + err, err
    for text in expected:
        assert text in err, err
    assert api.runs == []


def test_a_multi_user_kubeflow_needs_a_namespace(template, capsys):
    with KfpApiStandIn(multi_user=True) as api:
        status = _submit(api, template)
    err = capsys.readouterr().err
    assert status == 2
    assert "is a multi-user Kubeflow" in err and "--kfp-namespace NAMESPACE" in err
    assert api.paths() == ["/apis/v2beta1/healthz", "/apis/v2beta1/healthz"], "only healthz (ours, then kfp's)"


@pytest.mark.parametrize("tag_name, v2, status, said", [
    ("2.2.0", True, 2, "runs Kubeflow Pipelines 2.2.0; the pipeline needs 2.3.0 or later"),  # Kubeflow 1.9.
    ("2.0.5", True, 2, "runs Kubeflow Pipelines 2.0.5; the pipeline needs 2.3.0 or later"),  # Kubeflow 1.8.
    ("1.8.5", False, 2, "Kubeflow Pipelines 1.8.5 (a 1.x API: no /apis/v2beta1)"),
    ("2.3.0", True, 0, "runs Kubeflow Pipelines 2.3.0."),
    ("v2.5.0", True, 0, "runs Kubeflow Pipelines v2.5.0."),
    ("unknown", True, 0, "does not say its Kubeflow Pipelines version (tag_name 'unknown')"),
    (None, True, 0, "does not say its Kubeflow Pipelines version (tag_name None)"),
])
def test_the_backend_version_is_checked(tag_name, v2, status, said, template, capsys):
    with KfpApiStandIn(tag_name=tag_name, v2=v2) as api:
        result = _submit(api, template)
    out, err = capsys.readouterr()
    assert result == status, err
    assert said in out + err
    if status == 2:
        assert "mkdir /minio: permission denied" in err and "--kfp-skip-version-check" in err
        assert "experiments" not in " ".join(api.paths()) and api.runs == []
    else:
        assert len(api.runs) == 1


def test_an_old_backend_is_submitted_to_when_told(template, capsys):
    with KfpApiStandIn(tag_name="2.2.0") as api:
        status = _submit(api, template, "--kfp-skip-version-check")
    err = capsys.readouterr().err
    assert status == 0, err
    assert "older than 2.3.0; submitting anyway" in err and len(api.runs) == 1


def test_the_version_is_read_as_kfp_tags_it():
    assert kubeflow.parse_version("2.3.0") == (2, 3, 0)
    assert kubeflow.parse_version("v2.14.3") == (2, 14, 3)
    assert kubeflow.parse_version("2.3.0-rc.1") == (2, 3, 0)
    assert kubeflow.parse_version("unknown") is None and kubeflow.parse_version("") is None


@pytest.fixture(scope="module")
def tls_certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (its own certificate authority), made by openssl."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "ca.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_a_private_certificate_authority_is_given_with_ssl_ca_cert(template, tls_certificate, capsys):
    cert, key = tls_certificate
    with KfpApiStandIn(certfile=cert, keyfile=key) as api:
        assert api.url.startswith("https://")
        refused = _submit(api, template)
        err = capsys.readouterr().err
        accepted = _submit(api, template, "--kfp-ssl-ca-cert", cert)
    assert refused == 1 and "TLS certificate" in err and "--kfp-ssl-ca-cert FILE" in err, err
    assert accepted == 0, capsys.readouterr().err
    assert len(api.runs) == 1


def test_an_unreachable_host_says_how_to_reach_it(template, capsys):
    with KfpApiStandIn() as api:
        url = api.url
    status = cli.main(["submit", "--kfp-host", url, "--template", template])  # Nothing listens there now.
    err = capsys.readouterr().err
    assert status == 1
    assert f"step 'connect to Kubeflow' failed: cannot reach {url}" in err and "kubectl port-forward" in err


@pytest.mark.parametrize("flags, expected", [
    (["--kfp-token-file", "MISSING"], ["--kfp-token-file", "cannot be read"]),
    (["--kfp-token-file", "EMPTY"], ["--kfp-token-file", "is empty"]),
    (["--kfp-cookies-file", "EMPTY"], ["--kfp-cookies-file", "is empty"]),
    (["--kfp-token-file", "TOKEN", "--kfp-iap-client-id", "x"], ["give one of --kfp-token-file and "
                                                                  "--kfp-iap-client-id"]),
    (["--kfp-ssl-ca-cert", "MISSING"], ["--kfp-ssl-ca-cert", "is not a file"]),
    (["--kfp-host", "kfp.example.com"], ["--kfp-host 'kfp.example.com' has no scheme", "https://kfp.example.com"]),
])
def test_bad_sign_in_flags_exit_2_before_anything_is_sent(flags, expected, template, tmp_path, capsys):
    files = {"MISSING": str(tmp_path / "missing"), "EMPTY": _secret(tmp_path, "empty", ""),
             "TOKEN": _secret(tmp_path, "token", "t")}
    flags = [files.get(flag, flag) for flag in flags]
    with KfpApiStandIn() as api:
        argv = ["submit", "--template", template, *flags]
        if "--kfp-host" not in flags:
            argv[1:1] = ["--kfp-host", api.url]
        status = cli.main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    for text in expected:
        assert text in err, err
    assert api.requests == []


def test_kubeflow_sign_in_flags_are_refused_with_vertex(capsys):
    status = cli.main(["submit", "--vertex", "--project", "p", "--region", "r", "--pipeline-root", "gs://b/r",
                       "--image", IMAGE, "--kfp-namespace", "ns"])
    assert status == 2
    assert "--kfp-namespace sign in to Kubeflow (--kfp-host)" in capsys.readouterr().err


def _declaring(template, folder, *names):
    """`template` with string parameters `names` declared (those it lacks added, as a template
    compiled with them would have them); returns (path, names it already declared)."""
    with open(template) as file:
        documents = list(yaml.safe_load_all(file))
    parameters = documents[0]["root"]["inputDefinitions"]["parameters"]
    had = {name for name in names if name in parameters}
    for name in names:
        parameters.setdefault(name, {"defaultValue": "", "isOptional": True, "parameterType": "STRING"})
    path = folder / "declaring.yaml"
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return str(path), had


def test_the_pipeline_root_goes_in_as_a_parameter_too(template, gcs_emulator, gcs_bucket, tmp_path, capsys):
    """Kubeflow leaves kfp's pipeline-root placeholder unresolved in a step's arguments: the
    prepare step reads the root from the `pipeline_root` parameter instead."""
    declaring, _ = _declaring(template, tmp_path, "pipeline_root")
    with KfpApiStandIn() as api:
        assert _submit(api, declaring, "--pipeline-root", f"{gcs_bucket}/runs") == 0, capsys.readouterr().err
        # A template without the parameter (compiled before it) still gets the root the kfp way only.
        without = tmp_path / "without.yaml"
        documents = list(yaml.safe_load_all(open(template)))
        documents[0]["root"]["inputDefinitions"]["parameters"].pop("pipeline_root", None)
        without.write_text(yaml.safe_dump_all(documents, sort_keys=False))
        assert _submit(api, str(without), "--pipeline-root", f"{gcs_bucket}/runs") == 0, capsys.readouterr().err
    first, second = api.runs
    assert first["runtime_config"]["pipeline_root"] == f"{gcs_bucket}/runs"
    assert first["runtime_config"]["parameters"]["pipeline_root"] == f"{gcs_bucket}/runs"
    assert second["runtime_config"]["pipeline_root"] == f"{gcs_bucket}/runs"
    assert "pipeline_root" not in second["runtime_config"]["parameters"]
    # Where the run goes does not move its checkpoint folder (the same training resumes).
    assert first["runtime_config"]["parameters"]["checkpoint_dir"] == \
        second["runtime_config"]["parameters"]["checkpoint_dir"]


def test_vertex_service_account_reaches_the_train_custom_job(gcs_emulator, gcs_bucket, tmp_path, capsys):
    """With --train-replicas > 1 the train step is a Vertex AI custom job, which runs as the
    `service_account` parameter's account (else as the Vertex AI service agent).
    (aiplatform is mocked: it is the Vertex AI API.)"""
    template = tmp_path / "replicas.yaml"
    assert cli.main(["compile", "--output", str(template), "--image", IMAGE, "--target", "vertex",
                     "--train-replicas", "2"]) == 0
    declaring, had = _declaring(str(template), tmp_path, "service_account", "pipeline_root")
    account = "trainer@my-project.iam.gserviceaccount.com"
    with mock.patch("google.cloud.aiplatform.init"), mock.patch("google.cloud.aiplatform.PipelineJob") as job_class:
        status = cli.main(["submit", "--vertex", "--project", "p", "--region", "r", "--pipeline-root",
                           f"{gcs_bucket}/runs", "--template", declaring, "--service-account", account])
    assert status == 0, capsys.readouterr().err
    values = job_class.call_args.kwargs["parameter_values"]
    assert values["service_account"] == account and values["pipeline_root"] == f"{gcs_bucket}/runs"
    job_class.return_value.submit.assert_called_once_with(service_account=account, experiment=None)
    if "service_account" in had:  # Compiled from this checkout: the custom job takes the parameter.
        spec = yaml.safe_load(open(template))
        train = spec["root"]["dag"]["tasks"]["train"]["inputs"]["parameters"]
        assert train["service_account"] == {"componentInputParameter": "service_account"}


def _fake_podman(folder, digests):
    """A stand-in for podman's `image inspect` (no registry can be reached here): the RepoDigests
    of each tag in `digests` ({reference: digest}), as after a push from this machine."""
    script = folder / "podman"
    cases = "\n".join(f'  "{reference}") echo \'["{reference.rsplit(":", 1)[0]}@{digest}"]\' ;;'
                      for reference, digest in digests.items())
    script.write_text(f'#!/bin/sh\n[ "$1" = image ] || exit 125\ncase "$5" in\n{cases}\n  *) exit 125 ;;\nesac\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(folder)


def test_each_step_image_is_pinned_from_its_own_tag(gcs_emulator, gcs_bucket, tmp_path, monkeypatch, capsys):
    from pipelines.clarinet import PipelineSettings

    has_cpu = "cpu_image" in {field.name for field in dataclasses.fields(PipelineSettings)}
    repo = "registry.invalid/ddsp/ddsp-pipeline"
    digests = {f"{repo}:7": "sha256:" + "a" * 64, f"{repo}:7-cpu": "sha256:" + "c" * 64,
               f"{repo}:7-dataflow": "sha256:" + "d" * 64}
    monkeypatch.setenv("PATH", _fake_podman(tmp_path, digests) + os.pathsep + os.environ["PATH"])
    seen = {}

    def pipeline_job(**kwargs):  # Reads the template while it exists.
        seen["spec"] = yaml.safe_load(open(kwargs["template_path"]))
        return mock.MagicMock()

    # (aiplatform is mocked: it is the Vertex AI API.)
    with mock.patch("google.cloud.aiplatform.init"), \
            mock.patch("google.cloud.aiplatform.PipelineJob", side_effect=pipeline_job):
        status = cli.main(["submit", "--vertex", "--project", "p", "--region", "r", "--pipeline-root",
                           f"{gcs_bucket}/runs", "--image", f"{repo}:7"])
    out, err = capsys.readouterr()
    assert status == 0, err
    executors = seen["spec"]["deploymentSpec"]["executors"]
    assert executors["exec-train"]["container"]["image"] == f"{repo}@{digests[f'{repo}:7']}"
    others = {executor["container"]["image"] for name, executor in executors.items() if name != "exec-train"}
    assert others == {f"{repo}@{digests[f'{repo}:7-cpu' if has_cpu else f'{repo}:7']}"}
    worker = seen["spec"]["root"]["dag"]["tasks"]["prepare-tfrecord"]["inputs"]["parameters"]["worker_image"]
    assert worker["runtimeValue"]["constant"] == f"{repo}@{digests[f'{repo}:7-dataflow']}"
    assert f"image {repo}:7-dataflow pinned to {repo}@" in out


@pytest.mark.parametrize("extra, missing", [
    ([], ["--cpu-image", "--dataflow-worker-image"]),
    (["--cpu-image", "registry.invalid/ddsp/ddsp-pipeline:7-cpu"], ["--dataflow-worker-image"]),
])
def test_a_digest_image_needs_the_other_images_given(extra, missing, capsys):
    digest_image = "registry.invalid/ddsp/ddsp-pipeline@sha256:" + "a" * 64
    with KfpApiStandIn() as api:
        status = cli.main(["submit", "--kfp-host", api.url, "--image", digest_image, *extra])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "pinned by digest" in err and "build-image" in err
    for flag in missing:
        assert flag in err, err
    assert api.requests == []


def test_a_registry_less_cpu_image_is_refused(capsys):
    with KfpApiStandIn() as api:
        status = cli.main(["submit", "--kfp-host", api.url, "--image", IMAGE, "--cpu-image", "ddsp-pipeline:7-cpu"])
    err = capsys.readouterr().err
    assert status == 2 and "step 'check image'" in err and "--cpu-image" in err and "names no registry" in err, err
