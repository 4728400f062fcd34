"""Component `export`: a trained Model -> an export folder (SavedModel, DDSP-VST .tflite, metadata)."""

from kfp.dsl import Input, Model, Output


def export(model: Input[Model], exported: Output[Model]):
    """Exports the model's newest checkpoint (`ddsp_export`).

    exported: saved_model/ (serving signature f0_hz + level -> audio, for TF Serving and
    Vertex AI prediction), metadata.json, model/ (what `ddsp_play --model` reads) and, for a
    model trained with the vst preset, tflite/model.tflite for the DDSP-VST plugin.
    """
    import os

    from ddsp_core.steps import steps

    metadata = steps.run_step("export", steps.export, outputs={"exported": exported.path},
                              inputs={"model": model.path}, model_dir=model.path, export_dir=exported.path)
    exported.metadata.update({key: metadata[key] for key in ("sample_rate", "frame_rate", "level_feature",
                                                             "checkpoint_step", "version", "export_time")
                              if key in metadata})
    exported.metadata["tflite"] = int(os.path.exists(os.path.join(exported.path, "tflite", "model.tflite")))
