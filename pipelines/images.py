"""The steps' container images for the cloud: a reference a cluster can pull, pinned by digest,
and how to build and push them (`ddsp_pipeline build-image`: `build_all`).

One tag T names three images of one repository (components/image.py): T, the CUDA image (the
Dockerfile's `cuda` target, the train step); T-cpu, the CPU image (target `cpu`: prepare, eval,
sample, export); T-dataflow, the prepare job's Dataflow worker image, built FROM the CPU image
(docker/dataflow-worker.Dockerfile).

A reference without a registry host (`ddsp-pipeline:0.1.0`) is looked up on Docker Hub by
Vertex AI and Kubernetes, where it does not exist, so `submit` refuses one. A tag can point
at another image after a rebuild while kfp's cache key (which holds the reference) stays the
same, so `submit` pins the tag to its digest (`REPO@sha256:...`) when it can find it: from
the local engine's record of a push (`podman|docker image inspect` RepoDigests), or from the
registry (a HEAD of the manifest, with a Google access token for Artifact Registry and
gcr.io).
"""

import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_GOOGLE_REGISTRY = re.compile(r"(^|\.)(gcr\.io|pkg\.dev)$")
_MANIFEST_TYPES = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json"])
EXAMPLE = "us-central1-docker.pkg.dev/PROJECT/ddsp/ddsp-pipeline:0.1.0"


class ImageError(ValueError):
    """An image reference that cannot work, or a build/push that failed; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Reference:
    """An image reference: registry host ('' when none), repository path, tag, digest."""

    registry: str
    repository: str
    tag: str = ""
    digest: str = ""

    def __str__(self):
        name = f"{self.registry}/{self.repository}" if self.registry else self.repository
        if self.digest:
            return f"{name}@{self.digest}"
        return f"{name}:{self.tag}" if self.tag else name

    @property
    def name(self):
        """registry/repository, without tag or digest."""
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    def pinned(self, digest):
        return dataclasses.replace(self, tag="", digest=digest)


def parse(text):
    """'host[:port]/path/name[:tag][@sha256:...]' -> Reference. The first path component is a
    registry host when it has a '.' or a ':' or is 'localhost' (Docker's rule)."""
    text = str(text).strip()
    name, _, digest = text.partition("@")
    first, slash, rest = name.partition("/")
    registry = first if slash and ("." in first or ":" in first or first == "localhost") else ""
    path = rest if registry else name
    tag = ""
    if ":" in path.rsplit("/", 1)[-1]:
        path, tag = path.rsplit(":", 1)
    if not path or (digest and not _DIGEST.match(digest)):
        raise ImageError(f"{text!r} is not an image reference such as {EXAMPLE}.")
    return Reference(registry, path, tag, digest)


def check_pullable(text):
    """The parsed reference; ImageError unless a cloud cluster can pull it (it names a registry
    host other than localhost)."""
    reference = parse(text)
    if not reference.registry or reference.registry.split(":")[0] in ("localhost", "127.0.0.1"):
        raise ImageError(
            f"The image {text!r} names no registry a cloud cluster can pull from (it would look for "
            f"docker.io/{reference.repository} or this machine). Push the image to your registry and give its "
            f"full name, e.g. --image {EXAMPLE}: `ddsp_pipeline build-image --image {EXAMPLE}` builds and "
            "pushes it and prints the reference to submit with.")
    return reference


def local_digest(reference, engine=None):
    """The digest of `reference`'s tag as the local podman/docker recorded it when pushing, or ''."""
    for command in ([engine] if engine else ["podman", "docker"]):
        if not shutil.which(command):
            continue
        try:
            result = subprocess.run([command, "image", "inspect", "--format", "{{json .RepoDigests}}", str(reference)],
                                    capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if result.returncode != 0:
            continue
        try:
            digests = json.loads(result.stdout.strip() or "[]") or []
        except ValueError:
            continue
        for entry in digests:
            name, _, digest = str(entry).partition("@")
            if name == reference.name and _DIGEST.match(digest):
                return digest
    return ""


def _google_token():
    import google.auth
    import google.auth.transport.requests

    credentials, _ = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    credentials.refresh(google.auth.transport.requests.Request())
    return credentials.token


def registry_digest(reference, token=None, scheme="https", timeout_s=20):
    """The digest the registry serves for `reference`'s tag (a HEAD of its manifest), or ''.

    token: a bearer token; None: a Google access token for Artifact Registry and gcr.io hosts,
    none for others (a public repository).
    """
    if token is None and _GOOGLE_REGISTRY.search(reference.registry.split(":")[0]):
        try:
            token = _google_token()
        except Exception:  # No credentials here: the caller says the image is not pinned.
            return ""
    url = f"{scheme}://{reference.registry}/v2/{reference.repository}/manifests/{reference.tag or 'latest'}"
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": _MANIFEST_TYPES})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            digest = response.headers.get("Docker-Content-Digest", "")
    except (urllib.error.URLError, OSError, ValueError):
        return ""
    return digest if _DIGEST.match(digest) else ""


def pin(text, engine=None, token=None, scheme="https"):
    """(reference to submit, what was done): `text` pinned to its digest when one is found
    (the local engine's push record first, then the registry), else unchanged with the reason.

    Raises:
        ImageError: the reference names no registry a cluster can pull from.
    """
    reference = check_pullable(text)
    if reference.digest:
        return str(reference), f"image {reference} (pinned by digest)"
    digest = local_digest(reference, engine) or registry_digest(reference, token=token, scheme=scheme)
    if digest:
        return str(reference.pinned(digest)), f"image {text} pinned to {reference.pinned(digest)}"
    return str(reference), (f"image {text}: no digest found (not pushed from here, and the registry did not say), so "
                            "it is submitted by tag: a rebuild under the same tag may be served from kfp's cache. "
                            "Give --image REPO@sha256:... to pin it.")


def build_and_push(image, engine="podman", context=".", dockerfile="Dockerfile", build_args=(), push=True,
                   run=subprocess.run, target=None):
    """Builds `dockerfile` (its stage `target`, None: the last) as `image` and pushes it; returns
    the reference to submit with (pinned by the pushed digest when the engine reports it).

    Raises:
        ImageError: no such engine, or the build or the push failed (its exit status named).
    """
    reference = check_pullable(image) if push else parse(image)
    if not shutil.which(engine):
        raise ImageError(f"{engine!r} is not installed here: install podman or docker, or pass --engine.")
    build = [engine, "build", "-t", str(reference), "-f", dockerfile]
    if target:
        build += ["--target", target]
    for item in build_args:
        build += ["--build-arg", item]
    if run([*build, context]).returncode != 0:
        raise ImageError(f"`{' '.join(build)} {context}` failed (see its output above).")
    if not push:
        return str(reference)
    with tempfile.TemporaryDirectory(prefix="ddsp-push-") as folder:
        digest_file = os.path.join(folder, "digest")
        command = [engine, "push", str(reference)]
        if os.path.basename(engine).startswith("podman"):
            command[2:2] = ["--digestfile", digest_file]
        if run(command).returncode != 0:
            raise ImageError(f"`{' '.join(command)}` failed: log in to the registry first (e.g. `gcloud auth "
                             f"configure-docker {reference.registry.split('/')[0]}`, or `{engine} login "
                             f"{reference.registry}`), and check the repository exists.")
        digest = open(digest_file).read().strip() if os.path.exists(digest_file) else ""
    digest = digest if _DIGEST.match(digest) else local_digest(reference, engine)
    return str(reference.pinned(digest)) if digest else str(reference)


# The Dockerfile's targets: the CUDA image (train) and the CPU image (the other steps).
CUDA_TARGET = "cuda"
CPU_TARGET = "cpu"


def declared_build_args(dockerfile):
    """The names of the build arguments `dockerfile` declares (its `ARG NAME[=default]` lines)."""
    with open(dockerfile) as file:
        return {match.group(1) for match in re.finditer(r"^\s*ARG\s+([A-Za-z_][A-Za-z0-9_]*)", file.read(),
                                                         re.MULTILINE)}


def _build_args_for(dockerfile, build_args):
    """The NAME=VALUE items of `build_args` whose NAME `dockerfile` declares."""
    declared = declared_build_args(dockerfile)
    return [item for item in build_args if item.split("=", 1)[0] in declared]


@dataclasses.dataclass(frozen=True)
class BuiltImages:
    """The references `build_all` built (pinned by digest where the push reported one).

    Attributes:
        image: the CUDA image (the train step), e.g. R/ddsp-pipeline@sha256:... or R/ddsp-pipeline:T.
        cpu_image: the CPU image (prepare, eval, sample, export), T-cpu.
        dataflow_worker_image: the Dataflow worker image, T-dataflow; '' when not built.
    """

    image: str
    cpu_image: str
    dataflow_worker_image: str = ""

    def submit_flags(self):
        """The flags that give `ddsp_pipeline submit` (or compile) these images."""
        flags = ["--image", self.image, "--cpu-image", self.cpu_image]
        if self.dataflow_worker_image:
            flags += ["--dataflow-worker-image", self.dataflow_worker_image]
        return flags

    def references(self):
        """The references built, CUDA, CPU, worker (those built)."""
        return [reference for reference in (self.image, self.cpu_image, self.dataflow_worker_image) if reference]


def build_all(image, context, engine="podman", dockerfile=None, worker_dockerfile=None, build_args=(), push=True,
              dataflow_worker=True, run=subprocess.run):
    """Builds (and pushes) the images of tag T from the repository's Dockerfiles: `image` (the
    CUDA image, target `cuda`), its CPU image T-cpu (target `cpu`) and, with `dataflow_worker`,
    the Dataflow worker image T-dataflow built FROM the CPU image. The CPU image is built first
    (the worker needs it; a failure there costs no CUDA build).

    Args:
        image: the CUDA image's reference with tag T, e.g. R/ddsp-pipeline:0.1.0 (not by digest).
        context: the repository root (the build context of the Dockerfile).
        dockerfile, worker_dockerfile: None: `context`/Dockerfile and
            `context`/docker/dataflow-worker.Dockerfile.
        build_args: NAME=VALUE items; each goes to the Dockerfiles that declare NAME.

    Returns:
        A `BuiltImages`.

    Raises:
        ImageError: a reference a cluster cannot pull (when pushing), a digest-pinned `image`,
            a build argument no Dockerfile declares, no such engine, or a build or push that
            failed (which image is named).
    """
    from components.image import cpu_image_for
    from ddsp_core.steps.dataflow import worker_image_for

    reference = check_pullable(image) if push else parse(image)
    if reference.digest:
        raise ImageError(f"--image {image} names a digest: give the tag to build and push, e.g. "
                         f"{reference.name}:0.1.0 (the digests are printed afterwards).")
    dockerfile = dockerfile or os.path.join(context, "Dockerfile")
    worker_dockerfile = worker_dockerfile or os.path.join(context, "docker", "dataflow-worker.Dockerfile")
    declared = declared_build_args(dockerfile) | (declared_build_args(worker_dockerfile) if dataflow_worker else set())
    unknown = [item for item in build_args if item.split("=", 1)[0] not in declared]
    if unknown:
        raise ImageError(f"--build-arg {unknown[0]}: no Dockerfile built here declares "
                         f"{unknown[0].split('=', 1)[0]}; they declare {', '.join(sorted(declared))} "
                         "(the CPU and CUDA images' extras are CPU_EXTRAS and CUDA_EXTRAS).")
    cpu_tag = cpu_image_for(image)

    def one(what, tag, file, folder, target=None, fixed=()):
        """Builds and pushes one image; `fixed` build arguments win over the user's of the same name."""
        names = {item.split("=", 1)[0] for item in fixed}
        given = [item for item in _build_args_for(file, build_args) if item.split("=", 1)[0] not in names]
        try:
            return build_and_push(tag, engine=engine, context=folder, dockerfile=file, push=push, run=run,
                                  target=target, build_args=[*given, *fixed])
        except ImageError as error:
            raise ImageError(f"The {what} ({tag}): {error}") from error

    cpu = one("CPU image", cpu_tag, dockerfile, context, target=CPU_TARGET)
    cuda = one("CUDA image", image, dockerfile, context, target=CUDA_TARGET)
    # The worker is built FROM the CPU image just built; its context is its own folder (it copies
    # nothing from there).
    worker = one("Dataflow worker image", worker_image_for(image), worker_dockerfile,
                 os.path.dirname(worker_dockerfile), fixed=[f"IMAGE={cpu_tag}"]) if dataflow_worker else ""
    return BuiltImages(cuda, cpu, worker)
