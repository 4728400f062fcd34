"""The clarinet pipeline: prepare_tfrecord -> train -> eval, sample, export.

    audio files --prepare_tfrecord--> Dataset --train--> Model --eval--> Metrics (+ eval logs)
                                         |                 |---sample--> HTML page (+ WAV/PNG files)
                                         `---------------------^---------^
                                                           `---export--> exported Model (SavedModel, .tflite)

One definition runs locally (`ddsp_pipeline run`, kfp.local) and, compiled to
`pipelines/clarinet.yaml`, on Vertex AI Pipelines or Kubeflow (`ddsp_pipeline submit`).
The train task asks for a GPU node: its accelerator is read when the pipeline is defined
from DDSP_TRAIN_ACCELERATOR (default NVIDIA_L4, a Vertex AI name; Kubeflow clusters usually
want 'nvidia.com/gpu'), or no GPU when it is set to ''.
"""

import os
import subprocess
import sys
from typing import List, NamedTuple

from kfp import compiler, dsl
from kfp.dsl import HTML, Artifact, Dataset, Metrics, Model

from components.eval.component import eval as eval_component
from components.export.component import export as export_component
from components.image import BUNDLED_AUDIO_IN_IMAGE, BUNDLED_EVAL_AUDIO_IN_IMAGE, IMAGE_ENV, base_image
from components.prepare_tfrecord.component import prepare_tfrecord
from components.sample.component import sample as sample_component
from components.train.component import train as train_component

PIPELINE_NAME = "ddsp-clarinet"
PACKAGE_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "clarinet.yaml")
ACCELERATOR_ENV = "DDSP_TRAIN_ACCELERATOR"
DEFAULT_ACCELERATOR = "NVIDIA_L4"
# Where the compiled YAML expects the bundled material when no audio_pattern is given: inside
# the project's image (see Dockerfile). Locally, `ddsp_pipeline run` passes the checkout's path.
DEFAULT_AUDIO_PATTERN = BUNDLED_AUDIO_IN_IMAGE
# The bundled validation clarinet (another soundfont), held out: eval and sample measure on it.
DEFAULT_EVAL_AUDIO_PATTERN = BUNDLED_EVAL_AUDIO_IN_IMAGE


def train_accelerator():
    """The train task's accelerator type from DDSP_TRAIN_ACCELERATOR ('' for none)."""
    return os.environ.get(ACCELERATOR_ENV, DEFAULT_ACCELERATOR).strip()


class Outputs(NamedTuple):
    dataset: Dataset
    model: Model
    metrics: Metrics
    eval_logs: Artifact
    page: HTML
    samples: Artifact
    exported: Model


@dsl.pipeline(name=PIPELINE_NAME,
              description="DDSP solo-instrument autoencoder on clarinet notes: prepare -> train -> eval, sample, export.")
def clarinet_pipeline(
    audio_pattern: str = DEFAULT_AUDIO_PATTERN,
    preset: str = "quick",
    num_steps: int = 0,
    batch_size: int = 0,
    crepe_capacity: str = "",
    gin_files: List[str] = [],
    gin_params: List[str] = [],
    beam_pipeline_options: str = "--runner=DirectRunner",
    audio_fingerprint: str = "",
    eval_audio_pattern: str = DEFAULT_EVAL_AUDIO_PATTERN,
    checkpoint_dir: str = "",
    restart_id: str = "",
) -> Outputs:
    """The whole experiment. num_steps, batch_size, crepe_capacity: 0/'' for the preset's
    ('quick' or 'full'); gin_files/gin_params apply to train, eval and sample;
    beam_pipeline_options run the prepare job elsewhere, e.g. on Dataflow; eval_audio_pattern:
    audio held out for eval and sample ('' for the preset's split of audio_pattern);
    checkpoint_dir: a folder under the pipeline root where training writes its checkpoints as
    it goes and resumes from them on a rerun ('' : only the model artifact, no resume across
    runs; `ddsp_pipeline run` and `submit` set it); restart_id: set by --no-resume."""
    prepare_task = prepare_tfrecord(
        audio_pattern=audio_pattern, preset=preset, crepe_capacity=crepe_capacity,
        beam_pipeline_options=beam_pipeline_options, audio_fingerprint=audio_fingerprint,
        eval_audio_pattern=eval_audio_pattern)
    prepare_task.set_display_name("prepare TFRecords").set_memory_limit("16G").set_cpu_limit("8")

    train_task = train_component(
        dataset=prepare_task.outputs["dataset"], preset=preset, num_steps=num_steps, batch_size=batch_size,
        gin_files=gin_files, gin_params=gin_params, checkpoint_dir=checkpoint_dir, restart_id=restart_id)
    train_task.set_display_name("train").set_memory_limit("32G").set_cpu_limit("8")
    accelerator = train_accelerator()
    if accelerator:
        train_task.set_accelerator_type(accelerator).set_accelerator_limit(1)

    eval_task = eval_component(
        dataset=prepare_task.outputs["dataset"], model=train_task.outputs["model"], preset=preset,
        gin_files=gin_files, gin_params=gin_params)
    eval_task.set_display_name("eval").set_memory_limit("16G")

    sample_task = sample_component(
        dataset=prepare_task.outputs["dataset"], model=train_task.outputs["model"], preset=preset,
        gin_files=gin_files, gin_params=gin_params)
    sample_task.set_display_name("sample").set_memory_limit("16G")

    export_task = export_component(model=train_task.outputs["model"])
    export_task.set_display_name("export").set_memory_limit("16G")

    return Outputs(dataset=prepare_task.outputs["dataset"], model=train_task.outputs["model"],
                   metrics=eval_task.outputs["metrics"], eval_logs=eval_task.outputs["eval_logs"],
                   page=sample_task.outputs["page"], samples=sample_task.outputs["samples"],
                   exported=export_task.outputs["exported"])


def compile_pipeline(package_path=PACKAGE_PATH, image=None):
    """Writes the pipeline's YAML to `package_path`; returns the path.

    image: the components' image; None for DDSP_PIPELINE_IMAGE's (or the default). The
    components read it when they are defined, so another image is compiled in a fresh process.
    """
    if image and image != base_image():
        env = {**os.environ, IMAGE_ENV: image}
        code = "import sys; from pipelines.clarinet import compile_pipeline; compile_pipeline(sys.argv[1])"
        subprocess.run([sys.executable, "-c", code, package_path], env=env, check=True)
        return package_path
    compiler.Compiler().compile(clarinet_pipeline, package_path)
    return package_path
