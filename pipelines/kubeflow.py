"""`ddsp_pipeline submit --kfp-host`: the compiled pipeline as a run on a Kubeflow Pipelines API."""

from pipelines.submit_errors import SubmitError, api_error


def submit_kfp(template_path, host, parameter_values, experiment_name=None, run_name=None, enable_caching=True,
               pipeline_root=None, service_account=None):
    """Starts a run of the compiled pipeline on the Kubeflow Pipelines API at `host`; returns the run.

    Raises:
        SubmitError('submit to Kubeflow', ...): the API could not be reached or refused the run.
    """
    import kfp

    try:
        client = kfp.Client(host=host)
        run = client.create_run_from_pipeline_package(
            template_path, arguments=parameter_values, run_name=run_name, experiment_name=experiment_name,
            enable_caching=enable_caching, pipeline_root=pipeline_root, service_account=service_account)
    except Exception as error:
        raise SubmitError("submit to Kubeflow", f"{api_error(error)}. Check --kfp-host {host} (the Kubeflow "
                          "Pipelines API, reachable from here) and your access to it.") from None
    run_id = getattr(run, "run_id", "")
    print(f"Submitted to Kubeflow: run {run_id}")
    print(f"View it at {host.rstrip('/')}/#/runs/details/{run_id}")
    return run
