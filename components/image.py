"""The container image the components run in, and how a component is made for it.

The image is an explicit setting of the pipeline (`pipelines.clarinet.PipelineSettings.image`,
`ddsp_pipeline compile|submit --image`): your registry's copy of the image built from the
repository's Dockerfile, e.g. us-docker.pkg.dev/PROJECT/ddsp/ddsp-pipeline:0.1.0. Each
component module defines its step as a plain function; `make_component` turns it into a kfp
lightweight component that runs in a given image.
"""

DEFAULT_IMAGE = "ddsp-pipeline:0.1.0"
# The bundled clarinet material inside the image (the Dockerfile copies it there): the training
# set (FluidR3_GM) and the validation set, a clarinet from another soundfont that is never trained on.
BUNDLED_AUDIO_IN_IMAGE = "/opt/ddsp-pipeline/data/clarinet/train/*.flac"
BUNDLED_EVAL_AUDIO_IN_IMAGE = "/opt/ddsp-pipeline/data/clarinet/validation/*.flac"


def make_component(function, image=DEFAULT_IMAGE):
    """`function` (a component module's step function) as a kfp component running in `image`.

    The project is installed in the image, so kfp does not install itself there.
    """
    from kfp import dsl

    return dsl.component(base_image=image, install_kfp_package=False)(function)
