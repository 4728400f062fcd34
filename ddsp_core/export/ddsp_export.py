r"""Export a trained model: `ddsp_export --model_path=RUN_DIR`.

The flags are magenta ddsp's where they apply:

    ddsp_export --model_path=/runs/violin                       # -> /runs/violin/export
    ddsp_export --model_path=/runs/violin --save_dir=/exports/violin --name=violin
    ddsp_export --model_path=/runs/violin --inference_model=autoencoder --serving_seconds=8

--model_path is a training run folder (ckpt-N.weights.h5, operative_config-N.gin,
model_statistics.json) or an export folder. The export folder holds:

    saved_model/            a SavedModel with a `serving_default` signature: f0_hz and the level
                            feature [1, n_frames] -> audio [1, n_frames * hop] (--serving_seconds
                            of frames; see ddsp_core/export/saved_model.py for the request format)
    tflite/<name>.tflite    DDSP-VST's control model, with metadata.json zipped in (models trained
                            with the pipeline's --preset vst only)
    metadata.json           pitch and level ranges, sizes, rates (ddsp_core/export/metadata.py)
    reverb_ir_<rate>_hz.wav the learned reverb's impulse response as applied (models with a
                            trainable reverb; float WAV)
    model/                  the newest checkpoint, its operative config and model_statistics.json,
                            so `ddsp_play --model <export folder>` plays it

--inference_model: 'auto' (default) writes the SavedModel, and the TFLite file when the model
is DDSP-VST's; 'autoencoder' the SavedModel only; 'vst_stateless_predict_controls' the TFLite
file only (an error for other models). --notflite leaves out the TFLite file, --nometadata
metadata.json and the metadata inside the TFLite file.

Everything is written into a temporary folder beside --save_dir and renamed at the end, so a
failure leaves no half-written export. A non-empty --save_dir is refused unless --overwrite.
(A gs:// --save_dir is uploaded file by file at the end instead.)

Exit status: 0 done; 2 bad input (no checkpoint or statistics, a model DDSP-VST cannot play
when its TFLite file is asked for, a non-empty --save_dir, bad flags); 1 anything else.
"""

import argparse
import logging
import os
import shutil
import sys
import tempfile

from ddsp_core.command_line import bool_flag, setup_logging
from ddsp_core.export.saved_model import DEFAULT_SERVING_SECONDS
from ddsp_core.io import storage

INFERENCE_MODELS = ("auto", "autoencoder", "vst_stateless_predict_controls")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(ValueError):
    """A command line that cannot be honoured (the message says why)."""


def build_parser():
    parser = argparse.ArgumentParser(prog="ddsp_export", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_path", required=True, help="Training run folder (or export folder) to export.")
    parser.add_argument("--save_dir", default="", help="Export folder (default: <model_path>/export).")
    parser.add_argument("--name", default="model", help="Base name of the TFLite file: tflite/<name>.tflite.")
    parser.add_argument("--inference_model", default="auto", choices=INFERENCE_MODELS,
                        help="auto: the SavedModel, and DDSP-VST's TFLite when the model is one; autoencoder: "
                             "the SavedModel only; vst_stateless_predict_controls: DDSP-VST's TFLite only.")
    bool_flag(parser, "tflite", True, "Write DDSP-VST's TFLite file when the model allows (--notflite: do not).")
    bool_flag(parser, "metadata", True, "Write metadata.json and zip it into the TFLite file (--nometadata: do not).")
    parser.add_argument("--serving_seconds", type=float, default=DEFAULT_SERVING_SECONDS,
                        help="Length of the SavedModel's input, in seconds (clients pad or cut to it).")
    bool_flag(parser, "overwrite", False, "Replace a non-empty --save_dir.")
    parser.add_argument("--verbosity", default="info", choices=("debug", "info", "warning", "error"))
    return parser


def plan(*, inference_model, tflite, vst_problem):
    """Which artifacts to write: (saved_model, tflite) booleans.

    Args:
        inference_model, tflite: As `export`'s.
        vst_problem: None when DDSP-VST can play the model, else the reason it cannot.

    Raises:
        UsageError: the settings ask for nothing, or for a TFLite file the model cannot have.
    """
    if inference_model == "autoencoder":
        return True, False
    if inference_model == "vst_stateless_predict_controls":
        if not tflite:
            raise UsageError("--inference_model=vst_stateless_predict_controls writes only the TFLite file, and "
                             "--notflite leaves it out: nothing to export.")
        if vst_problem:
            raise UsageError(vst_problem)
        return False, True
    return True, bool(tflite) and vst_problem is None


def _non_empty(folder):
    if not storage.is_url(folder):
        return os.path.isdir(folder) and bool(os.listdir(folder)) or os.path.isfile(folder)
    return bool(storage.list_glob(storage.join(folder, "*")))


def _contains(folder, path):
    """Whether `path` is `folder` or lies inside it (replacing `folder` would delete it)."""
    if storage.is_url(folder) or storage.is_url(path):
        folder, path = str(folder).rstrip("/") + "/", str(path).rstrip("/") + "/"
        return path.startswith(folder)
    folder, path = os.path.realpath(folder), os.path.realpath(path)
    return os.path.commonpath([folder, path]) == folder


def copy_model_files(instrument, folder):
    """Copies the checkpoint, its operative config and model_statistics.json into folder/model/."""
    from ddsp_core.playing.instrument import EXPORT_MODEL_DIR
    from ddsp_core.models import model_statistics
    from ddsp_core.training.gin_configs import operative_config

    sources = [instrument.checkpoint, operative_config(instrument.model_dir),
               storage.join(instrument.model_dir, model_statistics.STATISTICS_FILE)]
    for source in sources:
        storage.write_bytes(os.path.join(folder, EXPORT_MODEL_DIR, source.rsplit("/", 1)[-1]),
                            storage.read_bytes(source))


def write_reverb_ir(instrument, folder):
    """Writes the trainable reverb's impulse response as applied (first sample zeroed) as a float WAV;
    returns its path, or None when the model has no trainable reverb."""
    import numpy as np
    import soundfile
    from keras import ops

    from ddsp_core import effects

    reverbs = [p for p, _ in instrument.model.processor_group.dag
               if isinstance(p, effects.Reverb) and p._ir is not None]
    if not reverbs:
        return None
    ir = effects.Reverb.wet_impulse_response(ops.expand_dims(ops.convert_to_tensor(reverbs[0]._ir), 0))
    path = os.path.join(folder, f"reverb_ir_{instrument.sample_rate}_hz.wav")
    soundfile.write(path, np.asarray(ops.convert_to_numpy(ir)[0], np.float32), instrument.sample_rate,
                    subtype="FLOAT")
    return path


def export(*, model_path, save_dir="", name="model", inference_model="auto", tflite=True, metadata=True,
           serving_seconds=DEFAULT_SERVING_SECONDS, overwrite=False):
    """Writes the export folder of a trained model; what `ddsp_export` and the pipeline's export
    step (`steps.export`) call. The settings are the flags' (see the module's docstring).

    Args:
        model_path: A training run folder (or an export folder) to export.
        save_dir: The export folder; '' for <model_path>/export.
        name: Base name of the TFLite file: tflite/<name>.tflite.
        inference_model: One of INFERENCE_MODELS: 'auto', 'autoencoder' (the SavedModel only) or
            'vst_stateless_predict_controls' (DDSP-VST's TFLite file only).
        tflite: Write DDSP-VST's TFLite file when the model allows.
        metadata: Write metadata.json and zip it into the TFLite file.
        serving_seconds: Length of the SavedModel's input, in seconds (> 0).
        overwrite: Replace a non-empty save_dir.

    Returns:
        (save_dir, the files written there, relative to it).

    Raises:
        UsageError: settings that cannot be honoured (the message names each by its flag:
            --save_dir for save_dir);
            InstrumentError, StatisticsError, CheckpointError, StreamingError: the model
            cannot be loaded (no checkpoint, no statistics).
    """
    from ddsp_core.export import metadata as metadata_lib
    from ddsp_core.export import saved_model, vst
    from ddsp_core.playing.instrument import load_instrument

    save_dir = save_dir or storage.join(model_path, "export")
    if _contains(save_dir, model_path):
        raise UsageError(f"--save_dir {save_dir} holds the model being exported ({model_path}); give a folder "
                         "outside it (the default is <model_path>/export).")
    if _non_empty(save_dir) and not overwrite:
        raise UsageError(f"--save_dir {save_dir} is not empty. Give another folder, or --overwrite to replace it.")
    if serving_seconds <= 0:
        raise UsageError(f"--serving_seconds must be > 0, got {serving_seconds}.")
    if inference_model not in INFERENCE_MODELS:  # The command line's choices; a caller's typo.
        raise UsageError(f"--inference_model must be one of {', '.join(INFERENCE_MODELS)}, got {inference_model!r}.")
    instrument = load_instrument(model_path)
    try:
        vst.check_vst_compatible(instrument.model, frame_rate=instrument.frame_rate)
        vst_problem = None
    except vst.VstExportError as error:
        vst_problem = str(error)
    write_saved_model, write_tflite = plan(inference_model=inference_model, tflite=tflite, vst_problem=vst_problem)
    if inference_model == "auto" and tflite and vst_problem:
        # A model with the plugin's inputs was meant for it: say loudly why it gets no TFLite file.
        meant_for_vst = sorted(getattr(instrument.model.decoder, "input_keys", ())) == sorted(vst.VST_INPUT_KEYS)
        (logging.warning if meant_for_vst else logging.info)("No DDSP-VST TFLite file: %s", vst_problem)

    local = not storage.is_url(save_dir)
    parent = os.path.dirname(os.path.abspath(save_dir)) if local else None
    if local:
        os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f".{os.path.basename(os.path.abspath(save_dir))}.tmp-", dir=parent)
    try:
        record = metadata_lib.metadata_dict(instrument) if metadata else None
        if record is not None:
            storage.write_json(os.path.join(scratch, metadata_lib.METADATA_ENTRY), record)
        if write_saved_model:
            n_frames = saved_model.export_saved_model(instrument, os.path.join(scratch, "saved_model"),
                                                      serving_seconds=serving_seconds)
            logging.info("SavedModel: %d frames (%.2f s) per request.", n_frames, n_frames / instrument.frame_rate)
        if write_tflite:
            try:
                vst.export_tflite(instrument.model, os.path.join(scratch, "tflite", f"{name}.tflite"),
                                  frame_rate=instrument.frame_rate, metadata=record)
            except vst.VstExportError as error:
                if inference_model != "auto":
                    raise
                # As with every other plugin problem under 'auto': the rest is exported, without the file.
                logging.warning("No DDSP-VST TFLite file: %s", error)
        write_reverb_ir(instrument, scratch)
        copy_model_files(instrument, scratch)
        written = storage.list_tree(scratch)
        if local:
            if os.path.isdir(save_dir):
                shutil.rmtree(save_dir)
            elif os.path.exists(save_dir):
                os.remove(save_dir)
            os.rename(scratch, save_dir)
        else:
            storage.copy_files(scratch, save_dir, written)
    finally:
        if os.path.isdir(scratch):
            shutil.rmtree(scratch)
    for relative in written:
        print(f"Wrote {storage.join(save_dir, relative)}")
    return save_dir, written


def main(argv=None):
    """Parses flags and exports (`export`); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as error:
        return int(error.code or 0)
    setup_logging(args.verbosity)
    from ddsp_core.playing.instrument import InstrumentError
    from ddsp_core.playing.streaming import StreamingError
    from ddsp_core.models.checkpoints import CheckpointError
    from ddsp_core.models.model_statistics import StatisticsError

    try:
        export(model_path=args.model_path, save_dir=args.save_dir, name=args.name,
               inference_model=args.inference_model, tflite=args.tflite, metadata=args.metadata,
               serving_seconds=args.serving_seconds, overwrite=args.overwrite)
    except (UsageError, InstrumentError, StatisticsError, CheckpointError, StreamingError) as error:
        print(f"ddsp_export: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # Anything unexpected: one line, the details with --verbosity debug.
        logging.debug("Details:", exc_info=True)
        print(f"ddsp_export: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def console_main():
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    console_main()
