"""Component `train`: a Dataset -> a Model (checkpoints, operative gin, TensorBoard logs)."""

from typing import List

from kfp.dsl import Dataset, Input, Model, Output


def train(
    dataset: Input[Dataset],
    model: Output[Model],
    preset: str = "quick",
    num_steps: int = 0,
    batch_size: int = 0,
    gin_files: List[str] = [],
    gin_params: List[str] = [],
    checkpoint_dir: str = "",
    restart_id: str = "",
    accelerator: str = "",
    seed: int = -1,
):
    """Trains the solo-instrument model (`ddsp_run --mode=train`).

    model: a folder with ckpt-N.weights.h5, operative_config-N.gin, train_state.json and
    summaries/train (TensorBoard). num_steps, batch_size: 0 for the preset's.
    checkpoint_dir: '' trains in the artifact; else a folder under the pipeline root that
    outlives the run (local path or gs://): checkpoints land there as they are written and a
    rerun resumes from them (ddsp_core/steps/resume.py). restart_id: set by --no-resume
    (the earlier checkpoints were set aside first); it only makes kfp's cache see a new task.
    accelerator: the GPU the pipeline asked for ('' none): the step stops at once, saying what to
    check, when the node shows no GPU, rather than train on its CPU.
    seed: seeds the whole training (weights, data order, augmentation, noise); -1: training draws
    one. The seed used is in the model's train_state.json.
    """
    from ddsp_core.steps import steps

    result = steps.run_step(
        "train", steps.train, outputs={"model": model.path},
        inputs={"dataset": dataset.path},
        dataset_dir=dataset.path, model_dir=model.path, preset=preset, num_steps=num_steps, batch_size=batch_size,
        gin_files=gin_files, gin_params=gin_params, checkpoint_dir=checkpoint_dir,
        accelerator=accelerator, seed=seed)
    model.metadata.update({"step": result["step"], "status": result["status"], "framework": "keras",
                           "resumed_from_step": result.get("start_step", 0), "checkpoint_dir": checkpoint_dir,
                           **{f"loss/{name}": float(value) for name, value in result["losses"].items()}})
