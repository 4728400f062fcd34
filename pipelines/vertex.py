"""`ddsp_pipeline submit --vertex`: the compiled pipeline as a Vertex AI PipelineJob."""

from pipelines.submit_errors import SubmitError, api_error


def submit_vertex(template_path, project, region, pipeline_root, parameter_values, display_name,
                  service_account=None, enable_caching=True, labels=None, experiment=None, job_id=None):
    """Submits the compiled pipeline to Vertex AI Pipelines; returns the PipelineJob.

    Raises:
        SubmitError('submit to Vertex AI', ...): the API refused the job.
    """
    from google.cloud import aiplatform

    try:
        aiplatform.init(project=project, location=region)
        job = aiplatform.PipelineJob(display_name=display_name, template_path=template_path, job_id=job_id,
                                     pipeline_root=pipeline_root, parameter_values=parameter_values,
                                     enable_caching=enable_caching, labels=labels)
        job.submit(service_account=service_account, experiment=experiment)
    except Exception as error:
        raise SubmitError("submit to Vertex AI", f"{api_error(error)}. Check --project/--region, that the Vertex AI "
                          "API is enabled and that your account (or --service-account) may run pipelines.") from None
    print(f"Submitted to Vertex AI: {getattr(job, 'resource_name', '')}")
    try:
        print(f"View it at {job._dashboard_uri()}")
    except Exception:  # The console link is a convenience of the SDK.
        pass
    return job
