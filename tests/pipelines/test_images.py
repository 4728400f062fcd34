"""Image references for the cloud (pipelines/images.py): refusing ones a cluster cannot pull,
pinning a tag to its digest, building and pushing."""

import http.server
import os
import stat
import threading

import pytest

from pipelines import images

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize("text, registry, repository, tag, digest", [
    ("ddsp-pipeline:0.1.0", "", "ddsp-pipeline", "0.1.0", ""),
    ("user/ddsp-pipeline", "", "user/ddsp-pipeline", "", ""),
    ("us-docker.pkg.dev/p/ddsp/ddsp-pipeline:7", "us-docker.pkg.dev", "p/ddsp/ddsp-pipeline", "7", ""),
    ("localhost:5000/ddsp:1", "localhost:5000", "ddsp", "1", ""),
    (f"gcr.io/p/ddsp@{DIGEST}", "gcr.io", "p/ddsp", "", DIGEST),
])
def test_references_are_parsed_as_docker_does(text, registry, repository, tag, digest):
    reference = images.parse(text)
    assert (reference.registry, reference.repository, reference.tag, reference.digest) == (
        registry, repository, tag, digest)
    assert str(reference) == text


@pytest.mark.parametrize("text", ["ddsp-pipeline:0.1.0", "library/python:3.11", "localhost/ddsp-pipeline:0.1.0",
                                  "localhost:5000/ddsp:1"])
def test_a_reference_a_cluster_cannot_pull_is_refused_saying_what_to_give(text):
    with pytest.raises(images.ImageError) as error:
        images.check_pullable(text)
    assert "names no registry" in str(error.value) and "build-image" in str(error.value)
    assert images.EXAMPLE in str(error.value)


class _Registry(http.server.BaseHTTPRequestHandler):
    """A stand-in for a registry's manifest endpoint (no registry can be reached from here):
    answers HEAD /v2/p/ddsp/ddsp-pipeline/manifests/7 with a digest, for the right token only."""

    def do_HEAD(self):
        known = self.path == "/v2/p/ddsp/ddsp-pipeline/manifests/7"
        if self.headers.get("Authorization") != "Bearer secret":
            self.send_response(401)
        elif not known or "manifest" not in self.headers.get("Accept", ""):
            self.send_response(404)
        else:
            self.send_response(200)
            self.send_header("Docker-Content-Digest", DIGEST)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def registry():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Registry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()


def test_the_registry_says_the_digest_of_a_tag(registry):
    reference = images.Reference(registry, "p/ddsp/ddsp-pipeline", "7")
    assert images.registry_digest(reference, token="secret", scheme="http") == DIGEST
    assert images.registry_digest(reference, token="wrong", scheme="http") == ""
    assert images.registry_digest(images.Reference(registry, "p/ddsp/other", "7"), token="secret",
                                  scheme="http") == ""


def test_pin_uses_a_given_digest_and_says_when_it_cannot_pin():
    pinned, said = images.pin(f"gcr.io/p/ddsp@{DIGEST}")
    assert pinned == f"gcr.io/p/ddsp@{DIGEST}" and "pinned by digest" in said
    # A registry that cannot be reached: submitted by tag, and said so.
    unpinned, said = images.pin("unreachable.invalid/p/ddsp:1", token="", scheme="http")
    assert unpinned == "unreachable.invalid/p/ddsp:1"
    assert "no digest found" in said and "REPO@sha256" in said


def _engine(tmp_path, digest=DIGEST, fail=""):
    """A stand-in for podman (building the real image takes minutes and no registry can be
    reached here): records its arguments, writes the digest file a push asks for."""
    log = tmp_path / "engine.log"
    script = tmp_path / "podman"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {log}
if [ "$1" = "{fail}" ]; then exit 125; fi
if [ "$1" = push ]; then
  while [ $# -gt 0 ]; do
    if [ "$1" = --digestfile ]; then printf '%s' '{digest}' > "$2"; fi
    shift
  done
fi
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), log


def test_build_and_push_returns_the_pinned_reference(tmp_path):
    engine, log = _engine(tmp_path)
    image = "europe-west4-docker.pkg.dev/p/ddsp/ddsp-pipeline:0.2.0"
    result = images.build_and_push(image, engine=engine, context="/repo", build_args=["EXTRAS=tf,prepare,pipeline"])
    assert result == f"europe-west4-docker.pkg.dev/p/ddsp/ddsp-pipeline@{DIGEST}"
    calls = log.read_text().splitlines()
    assert calls[0] == f"build -t {image} -f Dockerfile --build-arg EXTRAS=tf,prepare,pipeline /repo"
    assert calls[1].startswith("push --digestfile ") and calls[1].endswith(f" {image}")


def test_a_failed_push_says_to_log_in(tmp_path):
    engine, _ = _engine(tmp_path, fail="push")
    with pytest.raises(images.ImageError, match="log in to the registry first"):
        images.build_and_push("gcr.io/p/ddsp:1", engine=engine)
    with pytest.raises(images.ImageError, match="names no registry"):
        images.build_and_push("ddsp:1", engine=engine)
    with pytest.raises(images.ImageError, match="is not installed here"):
        images.build_and_push("gcr.io/p/ddsp:1", engine=os.path.join(str(tmp_path), "no-such-engine"))


def test_build_image_command_prints_the_reference_to_submit_with(tmp_path, capsys):
    from pipelines import cli

    engine, log = _engine(tmp_path)
    image = "us-central1-docker.pkg.dev/p/ddsp/ddsp-pipeline:0.2.0"
    assert cli.main(["build-image", "--image", image, "--engine", engine]) == 0
    out = capsys.readouterr().out
    assert f"--image us-central1-docker.pkg.dev/p/ddsp/ddsp-pipeline@{DIGEST}" in out
    # With the Dataflow worker image: built FROM the step image, named as the pipeline expects.
    assert cli.main(["build-image", "--image", image, "--engine", engine, "--dataflow-worker"]) == 0
    calls = log.read_text().splitlines()
    worker_build = calls[-2].split()
    assert worker_build[:3] == ["build", "-t", image + "-dataflow"]
    assert worker_build[worker_build.index("-f") + 1].endswith("docker/dataflow-worker.Dockerfile")
    assert f"IMAGE={image}" in worker_build
    assert calls[-1].startswith("push --digestfile") and calls[-1].endswith(image + "-dataflow")
    capsys.readouterr()
    build = log.read_text().splitlines()[0].split()
    assert build[-1] == cli.REPO_DIR and build[build.index("-f") + 1] == os.path.join(cli.REPO_DIR, "Dockerfile")
    assert cli.main(["build-image", "--image", "ddsp-pipeline:0.2.0", "--engine", engine]) == 2
    assert "names no registry" in capsys.readouterr().err
