"""Component `prepare_tfrecord`: audio files -> TFRecords and manifest (a Dataset)."""

from typing import List

from kfp.dsl import Dataset, Output


def prepare_tfrecord(
    audio_pattern: str,
    dataset: Output[Dataset],
    preset: str = "quick",
    crepe_capacity: str = "",
    beam_pipeline_options: List[str] = [],
    audio_fingerprint: str = "",
    eval_audio_pattern: str = "",
    pipeline_root: str = "",
    worker_image: str = "",
    sample_rate: int = 0,
    explicit_pipeline_root: str = "",
    project_id: str = "",
):
    """Runs the prepare job (`ddsp_prepare_tfrecord`) on `audio_pattern`.

    dataset: a folder of train.tfrecord-* (eval.tfrecord-*) shards and train_manifest.json.
    beam_pipeline_options: Beam options, one an item ([] : the local runner, in this step).
    With a remote runner (Dataflow) the workers write to the artifact's URI (gs://...), not
    its local path, and Dataflow's project, region, temp location and worker image default
    to the step's environment, the pipeline root and worker_image (ddsp_core/steps/dataflow.py).
    audio_fingerprint: a digest of the local input files (names, sizes, times), set by
    `ddsp_pipeline run` so that kfp's cache is not reused when the files change.
    eval_audio_pattern: audio held out for evaluation (all of it in the eval split), e.g. the
    bundled validation clarinet; '' for the preset's split of audio_pattern.
    pipeline_root, worker_image: set by the pipeline (kfp's pipeline-root placeholder, and the
    pipeline's Dataflow worker image); '' for none.
    explicit_pipeline_root: the pipeline's own pipeline_root parameter (set by `ddsp_pipeline
    submit`), used when the backend leaves kfp's placeholder unresolved (Kubeflow).
    project_id: set by the pipeline for Vertex AI to the service's project-ID placeholder: Dataflow's
    --project (the step's $CLOUD_ML_PROJECT_ID is the project number, which Beam refuses).
    sample_rate: the examples' audio rate in Hz, 0 for the preset's; recorded in the manifest's
    example format, which every later step reads.
    """
    import os

    from ddsp_core.steps import steps

    manifest = steps.run_step(
        "prepare_tfrecord", steps.prepare, outputs={"dataset": dataset.path},
        audio_pattern=audio_pattern, dataset_dir=dataset.path, dataset_uri=dataset.uri, preset=preset,
        crepe_capacity=crepe_capacity, beam_pipeline_options=beam_pipeline_options,
        eval_audio_pattern=eval_audio_pattern, pipeline_root=pipeline_root, worker_image=worker_image,
        environ=dict(os.environ), sample_rate=sample_rate, explicit_pipeline_root=explicit_pipeline_root,
        project_id=project_id)
    dataset.metadata.update(steps.dataset_metadata(manifest))
    dataset.metadata["audio_fingerprint"] = audio_fingerprint
