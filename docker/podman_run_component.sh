#!/usr/bin/env bash
# Build one of the project's images with podman and run one pipeline component in it, the way
# a pipeline does: kfp's local DockerRunner, talking to podman's Docker-compatible API.
#
#   docker/podman_run_component.sh            (from anywhere; run as root, see docker/README.md)
#   TARGET=cpu docker/podman_run_component.sh (the CPU image, which the prepare step runs in)
#
# Steps:
#   1. the base image (BASE_IMAGE): kept if present, else pulled, else (no registry
#      reachable) built with debootstrap by docker/make_base_image.sh under the same name;
#   2. `podman build --target TARGET` of the Dockerfile into IMAGE (skipped with SKIP_BUILD=1;
#      the dependency layer is cached while pyproject.toml is unchanged);
#   3. `podman system service` on a private socket, DOCKER_HOST pointing at it;
#   4. docker/run_component.py: the prepare_tfrecord component on the bundled clarinet
#      notes (tiny CREPE) through kfp.local.DockerRunner, then checks its Dataset
#      (TFRecord shards, manifest, example counts). Exit status 0 when all is well.
#
# Environment (defaults in brackets):
#   TARGET         [cuda] the Dockerfile's target: cuda (the train step's image) or cpu (the
#                  other steps' image, tensorflow-cpu)
#   IMAGE          [localhost/ddsp-pipeline:0.1.0, with TARGET=cpu ...:0.1.0-cpu] the tag to
#                  build and run. Keep the localhost/ prefix: podman lists local images under
#                  it, and kfp's DockerRunner pulls any image whose exact name it does not find.
#   BASE_IMAGE     [docker.io/library/python:3.11-slim-bookworm]
#   PY             [.venv/bin/python] the host Python with the project, kfp and `docker`
#   PIPELINE_ROOT  [out/podman] where the component's artifacts go
#   CA_BUNDLE      [/etc/ssl/certs/ca-certificates.crt] mounted into the build for pip (a
#                  TLS-intercepting proxy's CA is in the host's bundle); empty: none
#   SKIP_BUILD     [0] 1: use IMAGE as it is
set -euo pipefail

REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO_DIR"
TARGET=${TARGET:-cuda}
case $TARGET in
  cuda) IMAGE=${IMAGE:-localhost/ddsp-pipeline:0.1.0} ;;
  cpu) IMAGE=${IMAGE:-localhost/ddsp-pipeline:0.1.0-cpu} ;;
  *) printf 'podman_run_component.sh: TARGET=%s: give cuda or cpu.\n' "$TARGET" >&2; exit 2 ;;
esac
BASE_IMAGE=${BASE_IMAGE:-docker.io/library/python:3.11-slim-bookworm}
PY=${PY:-.venv/bin/python}
PIPELINE_ROOT=${PIPELINE_ROOT:-out/podman}
CA_BUNDLE=${CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}
SKIP_BUILD=${SKIP_BUILD:-0}

say() { printf '\n== %s\n' "$*"; }
die() { printf 'podman_run_component.sh: %s\n' "$*" >&2; exit 2; }

[[ -z ${EXTRAS:-} ]] || die "EXTRAS is no longer read: the Dockerfile has two targets, TARGET=cuda (default) or TARGET=cpu."
command -v podman >/dev/null || die "podman is not installed: run docker/setup_podman.sh (see docker/README.md)."
[[ -x $PY ]] || die "no Python at $PY: run 'make setup' or set PY=/path/to/python."
"$PY" -c 'import kfp, docker, components' 2>/dev/null \
  || die "$PY lacks kfp, docker (the Docker SDK) or the project: $PY -m pip install -e '.[pipeline]' docker"

# 1. The base image.
if podman image exists "$BASE_IMAGE"; then
  say "base image $BASE_IMAGE: present"
elif podman pull -q "$BASE_IMAGE" >/dev/null 2>&1; then
  say "base image $BASE_IMAGE: pulled"
else
  say "base image $BASE_IMAGE: cannot be pulled; building it with debootstrap"
  docker/make_base_image.sh "$BASE_IMAGE"
fi

# 2. The image.
if [[ $SKIP_BUILD == 1 ]]; then
  podman image exists "$IMAGE" || die "SKIP_BUILD=1 but there is no image $IMAGE."
  say "build skipped (SKIP_BUILD=1)"
else
  build_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --target "$TARGET")
  if [[ -n $CA_BUNDLE && -f $CA_BUNDLE ]]; then
    build_args+=(--volume "$CA_BUNDLE:/run/build-ca.crt:ro" --build-arg PIP_CERT=/run/build-ca.crt)
  fi
  say "podman build --target $TARGET -t $IMAGE"
  start=$SECONDS
  podman build "${build_args[@]}" -t "$IMAGE" .
  say "built $IMAGE in $((SECONDS - start)) s"
fi
podman image ls "$IMAGE"
size=$(podman image inspect --format '{{.Size}}' "$IMAGE")
echo "image size: $((size / 1000000)) MB"
podman run --rm "$IMAGE" bash -c 'echo "in the image: user $(id -un) ($(id -u)), $(command -v python3), $(python3 --version),
tensorflow $(python3 -c "import tensorflow as tf; print(tf.__version__, \"built with CUDA:\", tf.test.is_built_with_cuda())" 2>/dev/null),
kfp $(python3 -c "import kfp; print(kfp.__version__)")"'

# 3. podman's Docker-compatible API on a private socket, for the Docker SDK that kfp uses.
SOCKET_DIR=$(mktemp -d /tmp/ddsp-podman.XXXXXX)
SOCKET=$SOCKET_DIR/podman.sock
podman system service --time=0 "unix://$SOCKET" &
SERVICE_PID=$!
trap 'kill "$SERVICE_PID" 2>/dev/null; wait "$SERVICE_PID" 2>/dev/null; rm -rf "$SOCKET_DIR"' EXIT
for _ in $(seq 50); do [[ -S $SOCKET ]] && break; sleep 0.2; done
[[ -S $SOCKET ]] || die "podman system service did not open $SOCKET."
export DOCKER_HOST=unix://$SOCKET

# 4. One component, through kfp's DockerRunner.
say "prepare_tfrecord in $IMAGE via kfp.local.DockerRunner (DOCKER_HOST=$DOCKER_HOST)"
start=$SECONDS
"$PY" docker/run_component.py --image "$IMAGE" --pipeline-root "$PIPELINE_ROOT"
say "component run and checks: $((SECONDS - start)) s"
