"""A no-op stand-in for `hypertune` (cloudml-hypertune), for running magenta's ddsp_run here.

magenta's ddsp 3.7.0 imports it to report metrics to Vertex AI hyperparameter tuning; the
package does not install on this machine. Written for this project's benchmarks: the
reporting call does nothing.
"""


class HyperTune:
    def report_hyperparameter_tuning_metric(self, **kwargs):
        """Accepts the report and drops it."""
