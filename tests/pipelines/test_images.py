"""Image references for the cloud (pipelines/images.py): refusing ones a cluster cannot pull,
pinning a tag to its digest, building and pushing."""

import hashlib
import http.server
import os
import re
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
    result = images.build_and_push(image, engine=engine, context="/repo", build_args=["PIP_CERT=/ca.crt"],
                                   target="cpu")
    assert result == f"europe-west4-docker.pkg.dev/p/ddsp/ddsp-pipeline@{DIGEST}"
    calls = log.read_text().splitlines()
    assert calls[0] == f"build -t {image} -f Dockerfile --target cpu --build-arg PIP_CERT=/ca.crt /repo"
    assert calls[1].startswith("push --digestfile ") and calls[1].endswith(f" {image}")


def test_a_failed_push_says_to_log_in(tmp_path):
    engine, _ = _engine(tmp_path, fail="push")
    with pytest.raises(images.ImageError, match="log in to the registry first"):
        images.build_and_push("gcr.io/p/ddsp:1", engine=engine)
    with pytest.raises(images.ImageError, match="names no registry"):
        images.build_and_push("ddsp:1", engine=engine)
    with pytest.raises(images.ImageError, match="is not installed here"):
        images.build_and_push("gcr.io/p/ddsp:1", engine=os.path.join(str(tmp_path), "no-such-engine"))


@pytest.mark.parametrize("image, cpu_image", [
    ("us-docker.pkg.dev/p/ddsp/ddsp-pipeline:0.1.0", "us-docker.pkg.dev/p/ddsp/ddsp-pipeline:0.1.0-cpu"),
    ("localhost:5000/ddsp", "localhost:5000/ddsp:latest-cpu"),
    ("ddsp-pipeline", "ddsp-pipeline:latest-cpu"),
    (f"gcr.io/p/ddsp@{DIGEST}", ""),  # No CPU image can be derived from a digest: given by the user.
    ("", ""),
])
def test_the_cpu_image_is_the_tag_plus_cpu(image, cpu_image):
    from components.image import cpu_image_for

    assert cpu_image_for(image) == cpu_image


def _digest_engine(tmp_path, fail_on=""):
    """A stand-in for podman whose push reports a digest of its own per reference (sha256 of the
    reference), so that the three images' pinned references differ; a build whose arguments
    contain `fail_on` fails."""
    log = tmp_path / "engine.log"
    script = tmp_path / "podman"
    script.write_text(f"""#!/bin/sh
echo "$@" >> {log}
case "$*" in *"{fail_on or '@@never@@'}"*) [ "$1" = build ] && exit 1;; esac
if [ "$1" = push ]; then
  eval reference=\\${{$#}}
  printf 'sha256:%s' "$(printf '%s' "$reference" | sha256sum | cut -c1-64)" > "$3"
fi
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return str(script), log


def _pinned(reference):
    name = reference.rsplit(":", 1)[0]
    return f"{name}@sha256:{hashlib.sha256(reference.encode()).hexdigest()}"


def _builds(log):
    """The engine's build calls, each as (tag, Dockerfile, --target or None, build args, context)."""
    found = []
    for line in log.read_text().splitlines():
        words = line.split()
        if words[0] != "build":
            continue
        args = [words[i + 1] for i, word in enumerate(words) if word == "--build-arg"]
        target = words[words.index("--target") + 1] if "--target" in words else None
        found.append((words[words.index("-t") + 1], words[words.index("-f") + 1], target, args, words[-1]))
    return found


def test_build_image_builds_the_cpu_cuda_and_worker_images_and_prints_them_pinned(tmp_path, capsys):
    from pipelines import cli

    engine, log = _digest_engine(tmp_path)
    image = "us-central1-docker.pkg.dev/p/ddsp/ddsp-pipeline:0.2.0"
    status = cli.main(["build-image", "--image", image, "--engine", engine, "--build-arg", "PIP_CERT=/run/ca.crt",
                       "--build-arg", "BEAM_VERSION=2.77.1", "--build-arg", "IMAGE=somewhere/else:1"])
    assert status == 0
    dockerfile = os.path.join(cli.REPO_DIR, "Dockerfile")
    worker_dockerfile = os.path.join(cli.REPO_DIR, "docker", "dataflow-worker.Dockerfile")
    # The CPU image first (the worker is built FROM it), then the CUDA image, then the worker;
    # each build argument goes to the Dockerfile that declares it, and the worker's IMAGE is the CPU image.
    assert _builds(log) == [
        (image + "-cpu", dockerfile, "cpu", ["PIP_CERT=/run/ca.crt"], cli.REPO_DIR),
        (image, dockerfile, "cuda", ["PIP_CERT=/run/ca.crt"], cli.REPO_DIR),
        (image + "-dataflow", worker_dockerfile, None, ["BEAM_VERSION=2.77.1", f"IMAGE={image}-cpu"],
         os.path.dirname(worker_dockerfile)),
    ]
    pushes = [line.split()[-1] for line in log.read_text().splitlines() if line.startswith("push ")]
    assert pushes == [image + "-cpu", image, image + "-dataflow"]
    out = capsys.readouterr().out
    assert (f"ddsp_pipeline submit ... --image {_pinned(image)} --cpu-image {_pinned(image + '-cpu')} "
            f"--dataflow-worker-image {_pinned(image + '-dataflow')}") in out
    assert len({_pinned(image), _pinned(image + "-cpu"), _pinned(image + "-dataflow")}) == 3


def test_build_image_without_the_worker_or_the_push(tmp_path, capsys):
    from pipelines import cli

    engine, log = _digest_engine(tmp_path)
    image = "us-central1-docker.pkg.dev/p/ddsp/ddsp-pipeline:0.2.0"
    assert cli.main(["build-image", "--image", image, "--engine", engine, "--no-dataflow-worker"]) == 0
    assert [build[0] for build in _builds(log)] == [image + "-cpu", image]
    out = capsys.readouterr().out
    assert f"--image {_pinned(image)} --cpu-image {_pinned(image + '-cpu')}\n" in out
    assert "No Dataflow worker image was built" in out
    log.unlink()
    assert cli.main(["build-image", "--image", "localhost/ddsp-pipeline:0.2.0", "--engine", engine,
                     "--no-push"]) == 0
    assert [build[0] for build in _builds(log)] == ["localhost/ddsp-pipeline:0.2.0-cpu",
                                                    "localhost/ddsp-pipeline:0.2.0",
                                                    "localhost/ddsp-pipeline:0.2.0-dataflow"]
    assert not any(line.startswith("push") for line in log.read_text().splitlines())
    assert "(not pushed)" in capsys.readouterr().out


def test_build_image_refuses_what_it_cannot_push_and_names_the_image_that_failed(tmp_path, capsys):
    from pipelines import cli

    engine, log = _digest_engine(tmp_path, fail_on="--target cuda")
    assert cli.main(["build-image", "--image", "ddsp-pipeline:0.2.0", "--engine", engine]) == 2
    assert "names no registry" in capsys.readouterr().err
    assert cli.main(["build-image", "--image", f"gcr.io/p/ddsp@{DIGEST}", "--engine", engine]) == 2
    assert "names a digest: give the tag" in capsys.readouterr().err
    # The one-stage Dockerfile's EXTRAS is gone: said, instead of building without it.
    assert cli.main(["build-image", "--image", "gcr.io/p/ddsp:1", "--engine", engine, "--build-arg",
                     "EXTRAS=tf,prepare,pipeline"]) == 2
    assert "--build-arg EXTRAS=tf,prepare,pipeline: no Dockerfile built here declares EXTRAS" in capsys.readouterr().err
    assert not log.exists()  # Nothing was built.
    assert cli.main(["build-image", "--image", "gcr.io/p/ddsp:1", "--engine", engine]) == 1
    assert "The CUDA image (gcr.io/p/ddsp:1): `" in capsys.readouterr().err
    assert [build[0] for build in _builds(log)] == ["gcr.io/p/ddsp:1-cpu", "gcr.io/p/ddsp:1"]


def test_the_targets_build_image_asks_for_are_the_dockerfiles_stages():
    from pipelines import cli

    with open(os.path.join(cli.REPO_DIR, "Dockerfile")) as file:
        stages = re.findall(r"^FROM \S+ AS (\S+)$", file.read(), re.MULTILINE)
    assert images.CPU_TARGET in stages and images.CUDA_TARGET in stages
    assert stages[-1] == images.CUDA_TARGET  # A plain `podman build .` gives the CUDA image, as before.
    assert "IMAGE" in images.declared_build_args(os.path.join(cli.REPO_DIR, "docker", "dataflow-worker.Dockerfile"))
