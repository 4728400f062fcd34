#!/usr/bin/env bash
# One-time setup of podman on a Debian 12 machine without a Docker engine (run as root).
#
#   docker/setup_podman.sh
#
# Installs podman, buildah, runc and debootstrap from Debian's packages, and writes
# /etc/containers/containers.conf (or $CONTAINERS_CONF) with:
#   - runtime = "runc" (Debian's podman would pick crun where installed);
#   - default_ulimits nofile/nproc no higher than this shell's hard limits (nproc at most
#     32768): podman's defaults (nofile 1048576) are above what a sandboxed root may set,
#     and runc then fails with "error setting rlimits for ready process: error setting
#     rlimit type 7 (nofile; type 6: nproc): operation not permitted". On the development
#     machine nofile 20000 and nproc 32768 work, nproc 40000 does not.
# Safe to run again.
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
  echo "setup_podman.sh: run it as root (sudo docker/setup_podman.sh)." >&2
  exit 2
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q podman buildah runc debootstrap uidmap slirp4netns fuse-overlayfs

CONF=${CONTAINERS_CONF:-/etc/containers/containers.conf}
NOFILE=$(ulimit -Hn)
NPROC=$(ulimit -Hu)
[[ $NOFILE == unlimited || $NOFILE -gt 65536 ]] && NOFILE=65536
[[ $NPROC == unlimited || $NPROC -gt 32768 ]] && NPROC=32768
mkdir -p "$(dirname "$CONF")"
cat > "$CONF" <<EOF
# Written by ddsp-pipeline's docker/setup_podman.sh; see docker/README.md.
[containers]
default_ulimits = [
  "nofile=$NOFILE:$NOFILE",
  "nproc=$NPROC:$NPROC",
]

[engine]
runtime = "runc"
EOF
echo "wrote $CONF:"
cat "$CONF"
podman --version
podman info --format '{{.Host.OCIRuntime.Name}} {{.Store.GraphDriverName}}'
