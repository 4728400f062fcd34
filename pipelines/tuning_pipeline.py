"""The hyperparameter search as a Vertex AI pipeline (`ddsp_pipeline tune --vertex`).

    audio --prepare_tfrecord--> Dataset --trial_worker_pool_specs--> the trials' container spec
                                                                        |
        hyperparameter tuning job (google_cloud_pipeline_components): up to `parallel_trials` trials
        at once, each a Vertex AI custom job on the train step's machine and CUDA image running
        `python -m ddsp_core.steps.trial` (train, eval, report the objective) with the values
        Vertex AI chose appended as --ID=VALUE
                                                                        |
        tuning_results: the trials' table (Markdown), the best trial's model --export--> exported Model

The study (metric, goal, parameters, algorithm, trial counts) is the search-space file's, fixed
when the pipeline is compiled; the data and the training's settings are the pipeline's
parameters, as in the clarinet pipeline. Prepare, the helpers and export run the CPU image.
"""

from typing import List

from kfp import compiler, dsl
from kfp.dsl import Model

from components.export.component import export as export_step
from components.image import make_component
from components.prepare_tfrecord.component import prepare_tfrecord as prepare_step
from components.tuning.component import trial_worker_pool_specs, tuning_output_directory, tuning_results
from ddsp_core.steps.search_space import vertex_study_spec
from pipelines.clarinet import (DEFAULT_AUDIO_PATTERN, DEFAULT_EVAL_AUDIO_PATTERN, SettingsError,
                                default_train_machine_type, prepare_tfrecord_task, set_resources)

PIPELINE_NAME = "ddsp-clarinet-tune"


def trial_machine_type(settings):
    """The trials' Vertex AI machine type: settings.train_machine_type, else one holding the
    accelerators; SettingsError when there is none."""
    if settings.train_replicas != 1:
        raise SettingsError("A tuning job's trials train on one machine each: leave --train-replicas out (use "
                            "--accelerator-count for more GPUs per trial).")
    machine_type = settings.train_machine_type or default_train_machine_type(settings.accelerator,
                                                                             settings.accelerator_count)
    if not machine_type:
        raise SettingsError(f"No default machine type for {settings.accelerator_count} x {settings.accelerator}: "
                            "give the trials' machine type with --train-machine-type.")
    return machine_type


def make_tuning_pipeline(space, settings):
    """The tuning pipeline (a kfp pipeline function) of SearchSpace `space` for PipelineSettings
    `settings` (target vertex: its image, CPU image, accelerator, machine type)."""
    from google_cloud_pipeline_components.v1.hyperparameter_tuning_job import HyperparameterTuningJobRunOp

    if settings.target != "vertex":
        raise SettingsError("Hyperparameter tuning jobs are a Vertex AI service: compile the tune for Vertex AI.")
    machine_type = trial_machine_type(settings)
    metrics, parameters, algorithm = vertex_study_spec(space)
    prepare_component = make_component(prepare_step, settings.cpu_image)
    specs_component = make_component(trial_worker_pool_specs, settings.cpu_image)
    results_component = make_component(tuning_results, settings.cpu_image)
    base_component = make_component(tuning_output_directory, settings.cpu_image)
    export_component = make_component(export_step, settings.cpu_image)
    space_json = space.to_json()

    @dsl.pipeline(name=PIPELINE_NAME,
                  description="DDSP clarinet hyperparameter search: prepare -> Vertex AI tuning job (train + eval "
                              "per trial) -> the trials' table and the best model exported.")
    def tune_pipeline(
        audio_pattern: str = DEFAULT_AUDIO_PATTERN,
        eval_audio_pattern: str = DEFAULT_EVAL_AUDIO_PATTERN,
        preset: str = "quick",
        num_steps: int = 0,
        batch_size: int = 0,
        crepe_capacity: str = "",
        gin_files: List[str] = [],
        gin_params: List[str] = [],
        beam_pipeline_options: List[str] = [],
        audio_fingerprint: str = "",
        sample_rate: int = 0,
        seed: int = -1,
        pipeline_root: str = "",
        service_account: str = "",
        location: str = "us-central1",
    ):
        """The clarinet pipeline's parameters (see clarinet.py), the search's trials all seeded with
        `seed` (-1: each draws one); service_account: the trials' service account ('' : Vertex AI's
        custom-code service agent); location: the tuning job's region."""
        prepare_task = prepare_tfrecord_task(
            prepare_component, settings, audio_pattern=audio_pattern, preset=preset, crepe_capacity=crepe_capacity,
            beam_pipeline_options=beam_pipeline_options, audio_fingerprint=audio_fingerprint,
            eval_audio_pattern=eval_audio_pattern, sample_rate=sample_rate, pipeline_root=pipeline_root)

        base_task = base_component(pipeline_root=dsl.PIPELINE_ROOT_PLACEHOLDER,
                                   job_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER)
        base_task.set_display_name("tuning output folder").set_caching_options(False)
        specs_task = specs_component(
            dataset=prepare_task.outputs["dataset"], image=settings.image, machine_type=machine_type,
            search_space_json=space_json, accelerator_type=settings.accelerator or "",
            accelerator_count=int(settings.accelerator_count), preset=preset, num_steps=num_steps,
            batch_size=batch_size, seed=seed, gin_files=gin_files, gin_params=gin_params)
        specs_task.set_display_name("trial container")

        tuning_task = HyperparameterTuningJobRunOp(
            display_name=PIPELINE_NAME, base_output_directory=base_task.output,
            worker_pool_specs=specs_task.output, study_spec_metrics=metrics, study_spec_parameters=parameters,
            max_trial_count=space.trials, parallel_trial_count=space.parallel_trials,
            max_failed_trial_count=space.max_failed_trials, study_spec_algorithm=algorithm,
            location=location, service_account=service_account)
        tuning_task.set_display_name("hyperparameter tuning job")

        results_task = results_component(gcp_resources=tuning_task.outputs["gcp_resources"],
                                         search_space_json=space_json, base_output_directory=base_task.output)
        results_task.set_display_name("trials")
        best_model = dsl.importer(artifact_uri=results_task.outputs["best_model_uri"], artifact_class=Model,
                                  reimport=False)
        best_model.set_display_name("best trial's model")
        export_task = export_component(model=best_model.output)
        export_task.set_display_name("export the best model")
        set_resources(export_task, "export", settings)

    return tune_pipeline


def compile_tuning_pipeline(package_path, space, settings):
    """Writes the tuning pipeline's YAML to `package_path`; returns the path."""
    compiler.Compiler().compile(make_tuning_pipeline(space, settings), package_path)
    return package_path
