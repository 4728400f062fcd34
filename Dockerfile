# The images the pipeline's steps run in (kfp components, the compose file in docker/), two
# targets of one Dockerfile, pushed under one repository (`ddsp_pipeline build-image` builds both):
#
#   cuda (the default, the last stage)  tag T       the train step: TensorFlow with CUDA (runs on
#        the CPU where there is no GPU), the NVIDIA variables and the node's driver folders on the
#        loader's path
#   cpu                                 tag T-cpu   prepare, eval, sample, export, and the base of the
#        Dataflow worker image (docker/dataflow-worker.Dockerfile): tensorflow-cpu, no NVIDIA variables
#
# Both: Python 3.11, the project installed with its extras in the venv /opt/venv (first on PATH,
# so `python3` and `python` are the venv's), run as the non-root user `ddsp` (uid 1000).
#
#   podman build -t ddsp-pipeline:0.1.0 .                          (or docker build; docker/README.md)
#   podman build --target cpu -t ddsp-pipeline:0.1.0-cpu .
#
# Build arguments:
#   BASE_IMAGE   any Debian-like image with Python 3.11 and `python3 -m venv`; the real
#                python:3.11-slim-bookworm, or the local stand-in docker/make_base_image.sh
#                builds with debootstrap under the same name.
#   CUDA_EXTRAS  the cuda target's extras (default tf-gpu,prepare,pipeline).
#   CPU_EXTRAS   the cpu target's extras (default tf,prepare,pipeline).
#   PIP_CERT     a CA bundle inside the build (mounted by the builder) for a TLS-intercepting
#                proxy; empty: pip's own certificates.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

# ------------------------------------------------------------------------------------------------
# What both images share: the venv, the user, the bundled clarinet material.
FROM ${BASE_IMAGE} AS base

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

# A venv works on both bases (Debian's own Python refuses `pip install` outside one).
RUN python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
    && python3 -m venv /opt/venv \
    && useradd --create-home --uid 1000 --shell /bin/bash ddsp \
    && mkdir -p /artifacts && chown ddsp:ddsp /artifacts

WORKDIR /opt/ddsp-pipeline
COPY pyproject.toml README.md ./

# The project's sources, apart, so that each image copies them after its dependency layer.
FROM scratch AS sources
COPY ddsp_core /src/ddsp_core
COPY components /src/components
COPY pipelines /src/pipelines
# The bundled clarinet material, for a demo run: /opt/ddsp-pipeline/data/clarinet/{train,validation}/*.flac.
COPY data/clarinet/train /src/data/clarinet/train
COPY data/clarinet/validation /src/data/clarinet/validation

# ------------------------------------------------------------------------------------------------
# The CPU image (tag T-cpu).
FROM base AS cpu
ARG CPU_EXTRAS=tf,prepare,pipeline
ARG PIP_CERT=

# The dependencies, in a layer of their own that is rebuilt only when pyproject.toml changes:
# install the project with empty packages, then drop it. pip's cache stays in the builder's
# cache mount, out of the image.
RUN --mount=type=cache,target=/root/.cache/pip \
    if [ -n "$PIP_CERT" ]; then export PIP_CERT; else unset PIP_CERT; fi \
    && mkdir -p ddsp_core components pipelines \
    && touch ddsp_core/__init__.py components/__init__.py pipelines/__init__.py \
    && pip install --upgrade pip \
    && pip install ".[${CPU_EXTRAS}]" \
    && pip uninstall -y ddsp-pipeline \
    && rm -rf ddsp_core components pipelines build ./*.egg-info

# The project itself (seconds); the sources are removed once installed, so that only the
# installed copy can be imported, whatever the working directory.
COPY --from=sources /src ./
RUN if [ -n "$PIP_CERT" ]; then export PIP_CERT; else unset PIP_CERT; fi \
    && pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info ddsp_core components pipelines \
    && pip check \
    && cd / && python3 -c 'import ddsp_core, components, pipelines, kfp, tensorflow as tf, apache_beam, sys; \
sys.exit("the cpu target got a CUDA TensorFlow: CPU_EXTRAS must name tf, not tf-gpu" \
         if tf.sysconfig.get_build_info().get("is_cuda_build") else 0)'

USER ddsp
WORKDIR /home/ddsp
CMD ["bash"]

# ------------------------------------------------------------------------------------------------
# The CUDA image (tag T), the default target.
FROM base AS cuda
ARG CUDA_EXTRAS=tf-gpu,prepare,pipeline
ARG PIP_CERT=

# The NVIDIA driver: the node provides it. On GKE (and so Vertex AI) the node mounts the driver's
# libraries (libcuda.so.1, libnvidia-ml.so.1, ...) at /usr/local/nvidia/lib64 (and .../lib) and
# nvidia-smi at /usr/local/nvidia/bin, but nothing puts them on the loader's path (the device
# plugin no longer sets LD_LIBRARY_PATH), so without these TensorFlow finds no libcuda.so.1 and
# sees no GPU. An /etc/ld.so.conf.d entry would not do: ld.so.cache is made at build time, before
# the folder is mounted, and ldconfig cannot run again as the non-root user. Where the libraries
# are injected elsewhere (the NVIDIA Container Toolkit, CDI), these folders do not exist and
# change nothing.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/nvidia/lib \
    PATH=${PATH}:/usr/local/nvidia/bin

# The dependencies (several GB with the CUDA wheels), as in the cpu target.
RUN --mount=type=cache,target=/root/.cache/pip \
    if [ -n "$PIP_CERT" ]; then export PIP_CERT; else unset PIP_CERT; fi \
    && mkdir -p ddsp_core components pipelines \
    && touch ddsp_core/__init__.py components/__init__.py pipelines/__init__.py \
    && pip install --upgrade pip \
    && pip install ".[${CUDA_EXTRAS}]" \
    && pip uninstall -y ddsp-pipeline \
    && rm -rf ddsp_core components pipelines build ./*.egg-info

COPY --from=sources /src ./
RUN if [ -n "$PIP_CERT" ]; then export PIP_CERT; else unset PIP_CERT; fi \
    && pip install --no-cache-dir --no-deps . \
    && rm -rf build ./*.egg-info ddsp_core components pipelines \
    && pip check \
    && cd / && python3 -c 'import ddsp_core, components, pipelines, kfp, tensorflow as tf, apache_beam, sys; \
sys.exit(0 if tf.sysconfig.get_build_info().get("is_cuda_build") else \
         "the cuda target got a TensorFlow without CUDA: CUDA_EXTRAS must name tf-gpu")'

USER ddsp
WORKDIR /home/ddsp
CMD ["bash"]
