"""Component `prepare_tfrecord`: audio files -> TFRecords and manifest (a Dataset)."""

from kfp.dsl import Dataset, Output


def prepare_tfrecord(
    audio_pattern: str,
    dataset: Output[Dataset],
    preset: str = "quick",
    crepe_capacity: str = "",
    beam_pipeline_options: str = "--runner=DirectRunner",
    audio_fingerprint: str = "",
    eval_audio_pattern: str = "",
):
    """Runs the prepare job (`ddsp_prepare_tfrecord`) on `audio_pattern`.

    dataset: a folder of train.tfrecord-* (eval.tfrecord-*) shards and train_manifest.json.
    audio_fingerprint: a digest of the local input files (names, sizes, times), set by
    `ddsp_pipeline run` so that kfp's cache is not reused when the files change.
    eval_audio_pattern: audio held out for evaluation (all of it in the eval split), e.g. the
    bundled validation clarinet; '' for the preset's split of audio_pattern.
    """
    from ddsp_core.pipeline import steps

    manifest = steps.run_step(
        "prepare_tfrecord", steps.prepare, outputs={"dataset": dataset.path},
        audio_pattern=audio_pattern, dataset_dir=dataset.path, preset=preset, crepe_capacity=crepe_capacity,
        beam_pipeline_options=beam_pipeline_options, eval_audio_pattern=eval_audio_pattern)
    dataset.metadata.update(steps.dataset_metadata(manifest))
    dataset.metadata["audio_fingerprint"] = audio_fingerprint
