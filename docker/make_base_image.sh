#!/usr/bin/env bash
# Build a stand-in for the Dockerfile's base image with debootstrap, for machines that
# cannot pull images from a registry, and tag it with the real base's name so that the
# Dockerfile builds unchanged.
#
#   docker/make_base_image.sh [IMAGE_NAME]      (run as root; needs debootstrap and podman)
#
# IMAGE_NAME defaults to docker.io/library/python:3.11-slim-bookworm, the Dockerfile's
# BASE_IMAGE. The result is a minimal Debian 12 (bookworm) with Debian's Python 3.11
# (python3, python3-venv, pip, `python` -> python3), libsndfile1 and CA certificates,
# about 150 MB. It differs from the real python image in where Python lives
# (/usr/bin instead of /usr/local/bin) and in that Debian's Python refuses
# `pip install` outside a virtualenv (PEP 668); the Dockerfile installs into a venv,
# which works on both.
#
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian), SUITE (bookworm),
# ENGINE (podman).
set -euo pipefail

IMAGE_NAME=${1:-docker.io/library/python:3.11-slim-bookworm}
SUITE=${SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ENGINE=${ENGINE:-podman}
PACKAGES=python3,python3-venv,python3-pip,python-is-python3,libsndfile1,ca-certificates

if [[ $(id -u) -ne 0 ]]; then
  echo "make_base_image.sh: debootstrap needs root; run it with sudo." >&2
  exit 2
fi
for tool in debootstrap "$ENGINE"; do
  if ! command -v "$tool" >/dev/null; then
    echo "make_base_image.sh: '$tool' is not installed (apt-get install debootstrap podman)." >&2
    exit 2
  fi
done

ROOTFS=$(mktemp -d /var/tmp/ddsp-base-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT

echo ">> debootstrap $SUITE into $ROOTFS (packages: $PACKAGES)"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$DEBIAN_MIRROR"

# The same apt sources as Debian's own images (updates and security too), so that
# `apt-get install` in a Dockerfile works on this base as on the real one.
rm -f "$ROOTFS/etc/apt/sources.list"
cat > "$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $DEBIAN_MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${DEBIAN_MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
# Slim it as Debian's images are: no package lists, caches, docs or logs.
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb \
  "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
  "$ROOTFS"/var/log/*.log "$ROOTFS"/var/log/apt/* "$ROOTFS"/tmp/*
"$ROOTFS/usr/bin/python3" --version

echo ">> importing as $IMAGE_NAME"
tar --numeric-owner -C "$ROOTFS" -c . | "$ENGINE" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["python3"]' \
  --change "LABEL org.opencontainers.image.description=Local debootstrap stand-in for $IMAGE_NAME (Debian $SUITE, Python 3.11), made by docker/make_base_image.sh" \
  - "$IMAGE_NAME"
"$ENGINE" image ls "$IMAGE_NAME"
