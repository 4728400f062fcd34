"""The error `ddsp_pipeline submit` stops with, shared by its modules (submit, upload, vertex, kubeflow)."""

from ddsp_core.steps.steps import StepError


class SubmitError(StepError):
    """Submit stopped: `step` names where, `cause` says why and what to do; `exit_status` is 2
    for bad flags or input (nothing was submitted), 1 when Cloud Storage or the pipelines API failed."""

    def __init__(self, step, cause, exit_status=1):
        super().__init__(step, cause)
        self.exit_status = exit_status


def bad_input(step, cause):
    """A SubmitError for bad flags or input (exit status 2)."""
    return SubmitError(step, cause, exit_status=2)


def api_error(error):
    """A one-line reason from a google.api_core error (its message, not the HTTP dump)."""
    return getattr(error, "message", None) or str(error)
