"""The container image the components run in: one setting, read when they are defined.

Set DDSP_PIPELINE_IMAGE before compiling (`ddsp_pipeline compile`, or `ddsp_pipeline
submit --image`) to run the pipeline on your registry's copy of the image built from the
repository's Dockerfile, e.g. us-docker.pkg.dev/PROJECT/ddsp/ddsp-pipeline:0.1.0.
"""

import os

IMAGE_ENV = "DDSP_PIPELINE_IMAGE"
DEFAULT_IMAGE = "ddsp-pipeline:0.1.0"
# The bundled clarinet material inside the image (the Dockerfile copies it there): the training
# set (FluidR3_GM) and the validation set, a clarinet from another soundfont that is never trained on.
BUNDLED_AUDIO_IN_IMAGE = "/opt/ddsp-pipeline/data/clarinet/train/*.flac"
BUNDLED_EVAL_AUDIO_IN_IMAGE = "/opt/ddsp-pipeline/data/clarinet/validation/*.flac"


def base_image():
    """The image named by DDSP_PIPELINE_IMAGE, or DEFAULT_IMAGE."""
    return os.environ.get(IMAGE_ENV, "").strip() or DEFAULT_IMAGE
