# The image the pipeline's steps run in (kfp components, the compose file in docker/):
# Python 3.11, TensorFlow with CUDA (runs on the CPU where there is no GPU), the project
# installed with its tf-gpu, prepare and pipeline extras in the venv /opt/venv (first on
# PATH, so `python3` and `python` are the venv's), run as the non-root user `ddsp`.
#
#   podman build -t ddsp-pipeline:0.1.0 .          (or docker build; see docker/README.md)
#   podman build --build-arg EXTRAS=tf,prepare,pipeline -t ddsp-pipeline:0.1.0-cpu .   (CPU only, smaller)
#
# Build arguments:
#   BASE_IMAGE  any Debian-like image with Python 3.11 and `python3 -m venv`; the real
#               python:3.11-slim-bookworm, or the local stand-in docker/make_base_image.sh
#               builds with debootstrap under the same name.
#   EXTRAS      the project's extras (default tf-gpu,prepare,pipeline; `tf` for CPU-only).
#   PIP_CERT    a CA bundle inside the build (mounted by the builder) for a TLS-intercepting
#               proxy; empty: pip's own certificates.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm
FROM ${BASE_IMAGE}

ARG EXTRAS=tf-gpu,prepare,pipeline
ARG PIP_CERT=

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility

# A venv works on both bases (Debian's own Python refuses `pip install` outside one).
RUN python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
    && python3 -m venv /opt/venv \
    && useradd --create-home --uid 1000 --shell /bin/bash ddsp \
    && mkdir -p /artifacts && chown ddsp:ddsp /artifacts

WORKDIR /opt/ddsp-pipeline
COPY pyproject.toml README.md ./

# The dependencies, in a layer of their own that is rebuilt only when pyproject.toml
# changes (several GB with the CUDA wheels): install the project with empty packages,
# then drop it. pip's cache stays in the builder's cache mount, out of the image.
RUN --mount=type=cache,target=/root/.cache/pip \
    if [ -n "$PIP_CERT" ]; then export PIP_CERT; else unset PIP_CERT; fi \
    && mkdir -p ddsp_core components pipelines \
    && touch ddsp_core/__init__.py components/__init__.py pipelines/__init__.py \
    && pip install --upgrade pip \
    && pip install ".[${EXTRAS}]" \
    && pip uninstall -y ddsp-pipeline \
    && rm -rf ddsp_core components pipelines build ./*.egg-info

# The project itself (seconds); the sources are removed once installed, so that only the
# installed copy can be imported, whatever the working directory. The bundled clarinet
# material stays, for a demo run: /opt/ddsp-pipeline/data/clarinet/{train,validation}/*.flac.
COPY ddsp_core ./ddsp_core
COPY components ./components
COPY pipelines ./pipelines
COPY data/clarinet/train ./data/clarinet/train
COPY data/clarinet/validation ./data/clarinet/validation
RUN if [ -n "$PIP_CERT" ]; then export PIP_CERT; else unset PIP_CERT; fi \
    && pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info ddsp_core components pipelines \
    && pip check \
    && cd / && python3 -c 'import ddsp_core, components, pipelines, kfp, tensorflow, apache_beam'

USER ddsp
WORKDIR /home/ddsp
CMD ["bash"]
