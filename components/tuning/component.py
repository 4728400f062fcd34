"""Components of the Vertex AI tuning pipeline (`pipelines/tuning_pipeline.py`) around
google_cloud_pipeline_components' hyperparameter tuning job:

    tuning_output_directory   <pipeline root>/tune/<job id>, where the trials write
    trial_worker_pool_specs   the prepared Dataset -> the job's worker pool specs (the trial
                              container's command, with the dataset's gs:// URI)
    tuning_results            the finished job -> its trials' table (Markdown) and the best
                              trial's model, which the pipeline then exports
"""

from typing import List, NamedTuple

from kfp.dsl import Dataset, Input, Markdown, Output


def tuning_output_directory(pipeline_root: str, job_id: str) -> str:
    """<pipeline root>/tune/<job id>: the tuning job's base output directory (Vertex AI gives each
    trial its <trial id>/ folder there)."""
    return f"{pipeline_root.rstrip('/')}/tune/{job_id}"


def trial_worker_pool_specs(
    dataset: Input[Dataset],
    image: str,
    machine_type: str,
    search_space_json: str,
    accelerator_type: str = "",
    accelerator_count: int = 1,
    preset: str = "quick",
    num_steps: int = 0,
    batch_size: int = 0,
    seed: int = -1,
    gin_files: List[str] = [],
    gin_params: List[str] = [],
) -> list:
    """The trials' worker pool specs: one machine of `machine_type` (with the accelerator) that
    runs `python -m ddsp_core.steps.trial` in `image` on the dataset (ddsp_core/steps/trial.py)."""
    from ddsp_core.steps import search_space, trial

    arguments = trial.trial_arguments(dataset.uri, search_space.from_json(search_space_json), preset=preset,
                                      num_steps=num_steps, batch_size=batch_size, gin_files=gin_files,
                                      gin_params=gin_params, seed=seed, accelerator=accelerator_type)
    return trial.worker_pool_specs(image, machine_type, arguments, accelerator_type, accelerator_count)


def tuning_results(
    gcp_resources: str,
    search_space_json: str,
    base_output_directory: str,
    trials: Output[Markdown],
) -> NamedTuple("TuningResults", [("best_model_uri", str), ("best_trial", str)]):
    """Reads the finished tuning job named in `gcp_resources` (the job component's output) and
    writes its trials' table; returns the best trial's model folder and id.

    Raises:
        RuntimeError: no trial finished with the objective (the table still says why).
    """
    import collections
    import json

    from google.cloud import aiplatform_v1

    from ddsp_core.steps import search_space, tuning_table

    space = search_space.from_json(search_space_json)
    resource_uri = json.loads(gcp_resources)["resources"][0]["resourceUri"]
    name = resource_uri.split("/v1/", 1)[-1]  # projects/P/locations/L/hyperparameterTuningJobs/ID
    location = name.split("/")[3]
    client = aiplatform_v1.JobServiceClient(client_options={"api_endpoint": f"{location}-aiplatform.googleapis.com"})
    job = client.get_hyperparameter_tuning_job(name=name)
    job_dict = type(job).to_dict(job, use_integers_for_enums=False)
    rows = tuning_table.rows_from_vertex_job(job_dict, space, base_output_directory)
    best = tuning_table.best_row(rows, space)
    with open(trials.path, "w") as file:
        file.write(tuning_table.markdown(rows, space, best))
    if best is None:
        raise RuntimeError(f"No trial of {name} finished with {space.metric}: see the trials' table and logs.")
    outputs = collections.namedtuple("TuningResults", ["best_model_uri", "best_trial"])
    return outputs(best["model"], best["trial"])
