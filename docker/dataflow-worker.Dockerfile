# The Dataflow worker image: the pipeline's CPU image (../Dockerfile, target `cpu`, tag T-cpu) plus
# Apache Beam's SDK harness boot entrypoint, for `--sdk_container_image` when the prepare step runs
# on Dataflow. Built FROM the CPU image, so the workers have the same packages and the same Beam
# version as the prepare step that launches the job (which runs in the CPU image too), the bundled
# clarinet material at the same paths, and the project (ddsp_core) importable: nothing is staged
# at run time; and no CUDA wheels or NVIDIA variables (Dataflow's prepare workers use no GPU).
# The CPU image itself is unchanged (no ENTRYPOINT, user ddsp): kfp, compose and
# `podman run IMAGE CMD` use it as before.
#
#   podman build -f docker/dataflow-worker.Dockerfile --build-arg IMAGE=REGISTRY/ddsp-pipeline:0.1.0-cpu \
#     -t REGISTRY/ddsp-pipeline:0.1.0-dataflow docker/          (or docker build; see docker/README.md)
#
# The pipeline passes the step image's tag + '-dataflow' (ddsp_core/steps/dataflow.py,
# worker_image_for) as the prepare step's default --sdk_container_image: push the worker image
# under that tag (`ddsp_pipeline build-image` does).
#
# Build arguments:
#   IMAGE           the CPU image to extend (../Dockerfile, `--target cpu`)
#   BEAM_VERSION    Beam's version in IMAGE (pyproject.toml pins apache-beam 2.77.*); the
#                   build stops when the image's apache_beam has another major.minor
#   BEAM_SDK_IMAGE  the image /opt/apache/beam (the `boot` binary) is copied from: Beam's
#                   Python 3.11 SDK image of that version (a registry must be reachable)
ARG IMAGE=localhost/ddsp-pipeline:0.1.0-cpu
ARG BEAM_VERSION=2.77.0
ARG BEAM_SDK_IMAGE=docker.io/apache/beam_python3.11_sdk:${BEAM_VERSION}

FROM ${BEAM_SDK_IMAGE} AS beam-sdk

FROM ${IMAGE}
ARG BEAM_VERSION

# Beam's SDK images run as root, and Dataflow mounts its worker folders (the semi-persistent
# directory where boot keeps staged files) owned by root: the worker runs as root too.
USER root
COPY --from=beam-sdk /opt/apache/beam /opt/apache/beam
# Run the SDK harness in the image's venv (/opt/venv, first on PATH), where the project is
# installed; otherwise boot (Beam >= 2.44) makes a new venv per worker without it.
ENV RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1
RUN test -x /opt/apache/beam/boot \
    && python3 -c "import sys, apache_beam, ddsp_core.prepare.prepare_tfrecord_lib; \
v = apache_beam.__version__; want = '${BEAM_VERSION}'; \
sys.exit(0 if v.split('.')[:2] == want.split('.')[:2] else \
'apache-beam %s is in the image, but the boot entrypoint is Beam %s: build with --build-arg BEAM_VERSION=%s' % (v, want, v))"

# Dataflow starts the container with boot's flags (--id=..., --provision_endpoint=..., ...).
ENTRYPOINT ["/opt/apache/beam/boot"]
CMD []
