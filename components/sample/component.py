"""Component `sample`: a Model and a Dataset -> WAV/PNG files and an HTML page to listen to."""

from typing import List

from kfp.dsl import HTML, Artifact, Dataset, Input, Model, Output


def sample(
    dataset: Input[Dataset],
    model: Input[Model],
    page: Output[HTML],
    samples: Output[Artifact],
    preset: str = "quick",
    gin_files: List[str] = [],
    gin_params: List[str] = [],
):
    """Resynthesizes examples with the model's newest checkpoint (`ddsp_run --mode=sample --run_once`).

    samples: a folder with samples/step_N/ (NN_original.wav, NN_generated.wav, spectrogram,
    waveform and f0 PNGs, index.html), samples/index.html and summaries/sample.
    page: the step's page as one self-contained HTML file (audio and images inlined), shown
    by the Vertex AI and Kubeflow UIs.
    """
    from ddsp_core.steps import steps
    from ddsp_core.evaluation import samples as samples_lib

    paths = steps.run_step(
        "sample", steps.sample, outputs={"page": page.path, "samples": samples.path},
        inputs={"dataset": dataset.path, "model": model.path},
        dataset_dir=dataset.path, model_dir=model.path, samples_dir=samples.path, preset=preset,
        gin_files=gin_files, gin_params=gin_params)
    with open(page.path, "w", encoding="utf-8") as file:
        file.write(samples_lib.self_contained_page(paths["step_dir"]))
    samples.metadata.update({"wav_files": len(paths["wav"]), "png_files": len(paths["png"]),
                             "listening_examples": len(paths.get("listening", [])), "page": paths["html"]})
