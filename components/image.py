"""The container images the components run in, and how a component is made for one.

The image is an explicit setting of the pipeline (`pipelines.clarinet.PipelineSettings.image`,
`ddsp_pipeline compile|submit --image`): your registry's copy of the images built from the
repository's Dockerfile, e.g. us-docker.pkg.dev/PROJECT/ddsp/ddsp-pipeline:0.1.0. One tag T
names three images (`ddsp_pipeline build-image` builds and pushes them; docker/README.md):

    IMAGE:T             the CUDA image (the Dockerfile's `cuda` target): the train step only
    IMAGE:T-cpu         the CPU image (target `cpu`, tensorflow-cpu): prepare, eval, sample, export
                        (`cpu_image_for`)
    IMAGE:T-dataflow    the prepare job's Dataflow worker image, built FROM the CPU image
                        (`ddsp_core.steps.dataflow.worker_image_for`)

Each component module defines its step as a plain function; `make_component` turns it into a
kfp lightweight component that runs in a given image.
"""

DEFAULT_IMAGE = "ddsp-pipeline:0.1.0"
# The CPU image's tag is the CUDA image's tag plus this suffix.
CPU_TAG_SUFFIX = "-cpu"
# The bundled clarinet material inside the image (the Dockerfile copies it there): the training
# set (FluidR3_GM) and the validation set, a clarinet from another soundfont that is never trained on.
BUNDLED_AUDIO_IN_IMAGE = "/opt/ddsp-pipeline/data/clarinet/train/*.flac"
BUNDLED_EVAL_AUDIO_IN_IMAGE = "/opt/ddsp-pipeline/data/clarinet/validation/*.flac"


def cpu_image_for(image):
    """The CPU image of the step image `image`: its tag + CPU_TAG_SUFFIX
    ('reg/ddsp-pipeline:0.1.0' -> 'reg/ddsp-pipeline:0.1.0-cpu'; no tag: 'latest-cpu');
    '' for an image named by digest, whose CPU image cannot be derived (give it yourself:
    `ddsp_pipeline build-image` prints both references pinned)."""
    from ddsp_core.steps.dataflow import tag_variant

    return tag_variant(image, CPU_TAG_SUFFIX)


def make_component(function, image=DEFAULT_IMAGE):
    """`function` (a component module's step function) as a kfp component running in `image`.

    The project is installed in the image, so kfp does not install itself there.
    """
    from kfp import dsl

    return dsl.component(base_image=image, install_kfp_package=False)(function)
