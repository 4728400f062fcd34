"""Component `eval`: a Model and a Dataset -> Metrics (and the eval's TensorBoard logs)."""

from typing import List

from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output


def eval(  # noqa: A001  The step's name, as `ddsp_run --mode=eval`.
    dataset: Input[Dataset],
    model: Input[Model],
    metrics: Output[Metrics],
    eval_logs: Output[Artifact],
    preset: str = "quick",
    gin_files: List[str] = [],
    gin_params: List[str] = [],
):
    """Evaluates the model's newest checkpoint (`ddsp_run --mode=eval --run_once`).

    metrics: the metrics as kfp metrics, and as JSON in the artifact's file.
    eval_logs: a folder with metrics.json, eval/metrics-<step>.json and summaries/eval.
    """
    import json

    from ddsp_core.steps import steps

    record = steps.run_step(
        "eval", steps.evaluate, outputs={"metrics": metrics.path, "eval_logs": eval_logs.path},
        inputs={"dataset": dataset.path, "model": model.path},
        dataset_dir=dataset.path, model_dir=model.path, eval_dir=eval_logs.path, preset=preset,
        gin_files=gin_files, gin_params=gin_params)
    for name, value in record["metrics"].items():
        if value is not None:
            metrics.log_metric(name, float(value))
    metrics.log_metric("step", record["step"])
    metrics.log_metric("n_examples", record["n_examples"])
    # 1 when there was no held-out split and the metrics were measured on training examples.
    metrics.log_metric("measured_on_training_data", int(record.get("split") == "train"))
    with open(metrics.path, "w") as file:
        json.dump(record, file, indent=1)
