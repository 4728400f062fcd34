# The image the pipeline steps run in. For now: the ddsp_core library on TensorFlow (CPU).
# The pipeline issue extends it (GPU TensorFlow, the pipeline's extras, a compose file in docker/).
FROM python:3.11-slim
RUN useradd --create-home --uid 1000 ddsp
WORKDIR /opt/ddsp-pipeline
COPY pyproject.toml README.md ./
COPY ddsp_core ./ddsp_core
RUN pip install --no-cache-dir '.[tf]'
USER ddsp
WORKDIR /home/ddsp
