"""ddsp_export: the command line on small run folders (conftest.py), called through main(argv)."""

import json
import os
import shutil

import numpy as np
import pytest
import soundfile

from ddsp_core import effects
from ddsp_core.export import ddsp_export
from ddsp_core.export import metadata as metadata_lib
from ddsp_core.playing.instrument import load_instrument
from tests.export.conftest import CHECKPOINT_STEP, SAMPLE_RATE

MODEL_FILES = {f"model/ckpt-{CHECKPOINT_STEP}.weights.h5", f"model/operative_config-{CHECKPOINT_STEP}.gin",
               "model/model_statistics.json"}


def _files(folder):
    return {os.path.relpath(os.path.join(root, name), folder) for root, _, names in os.walk(folder) for name in names}


def _siblings(folder):
    """Entries beside `folder` other than itself (a temporary folder left behind would show here)."""
    parent = os.path.dirname(os.path.abspath(folder))
    return sorted(name for name in os.listdir(parent) if name != os.path.basename(folder))


@pytest.fixture(scope="module")
def vst_export(vst_run, tmp_path_factory):
    """A copy of the vst run folder, exported with the defaults (into <run>/export)."""
    run = str(tmp_path_factory.mktemp("export_cli") / "run")
    shutil.copytree(vst_run, run)
    assert ddsp_export.main([f"--model_path={run}", "--serving_seconds=1"]) == 0
    return run, os.path.join(run, "export")


def test_vst_model_export_layout(vst_export):
    run, export_dir = vst_export
    files = _files(export_dir)
    assert {"metadata.json", "tflite/model.tflite", "saved_model/saved_model.pb"} | MODEL_FILES <= files
    assert not any(name.startswith("reverb_ir") for name in files)  # models/vst.gin has no reverb.
    assert _siblings(export_dir) == sorted(os.path.basename(name) for name in MODEL_FILES)  # No temporary left.


def test_metadata_file_and_zipped_metadata_agree(vst_export):
    _, export_dir = vst_export
    with open(os.path.join(export_dir, "metadata.json")) as handle:
        metadata = json.load(handle)
    assert metadata == metadata_lib.read_zip_metadata(os.path.join(export_dir, "tflite", "model.tflite"))
    assert metadata["num_harmonics"] == 60 and metadata["level_feature"] == "power_db"
    assert metadata["checkpoint_step"] == CHECKPOINT_STEP


def test_export_folder_loads_as_an_instrument(vst_export):
    _, export_dir = vst_export
    instrument = load_instrument(export_dir)
    assert instrument.model_dir == os.path.join(export_dir, "model") and instrument.level_key == "power_db"


def test_refuses_a_non_empty_save_dir(loudness_run, tmp_path, capsys):
    save_dir = tmp_path / "export"
    save_dir.mkdir()
    (save_dir / "keep.txt").write_text("mine")
    argv = [f"--model_path={loudness_run}", f"--save_dir={save_dir}", "--inference_model=autoencoder",
            "--serving_seconds=0.5"]
    assert ddsp_export.main(argv) == 2
    assert "not empty" in capsys.readouterr().err and (save_dir / "keep.txt").exists()
    assert ddsp_export.main(argv + ["--overwrite"]) == 0
    assert not (save_dir / "keep.txt").exists() and "saved_model/saved_model.pb" in _files(save_dir)
    assert _siblings(save_dir) == []


@pytest.mark.parametrize("relative", [".", ".."], ids=["run_folder", "its_parent"])
def test_refuses_to_replace_the_model_itself(loudness_run, relative, capsys):
    save_dir = os.path.normpath(os.path.join(loudness_run, relative))
    before = _files(loudness_run)
    assert ddsp_export.main([f"--model_path={loudness_run}", f"--save_dir={save_dir}", "--overwrite"]) == 2
    assert "holds the model" in capsys.readouterr().err and _files(loudness_run) == before


def test_loudness_model_with_reverb(loudness_run, loudness_instrument, tmp_path):
    save_dir = tmp_path / "export"
    assert ddsp_export.main([f"--model_path={loudness_run}", f"--save_dir={save_dir}", "--serving_seconds=0.5"]) == 0
    files = _files(save_dir)
    assert not any(name.startswith("tflite/") for name in files)  # Not a DDSP-VST model: SavedModel only.
    assert {"metadata.json", "saved_model/saved_model.pb", f"reverb_ir_{SAMPLE_RATE}_hz.wav"} | MODEL_FILES <= files
    ir, rate = soundfile.read(save_dir / f"reverb_ir_{SAMPLE_RATE}_hz.wav", dtype="float32")
    reverb = next(p for p, _ in loudness_instrument.model.processor_group.dag if isinstance(p, effects.Reverb))
    assert rate == SAMPLE_RATE and ir.shape == (1600,) and ir[0] == 0.0
    np.testing.assert_array_equal(ir[1:], np.asarray(reverb._ir)[1:])


def test_vst_export_of_a_loudness_model_fails(loudness_run, tmp_path, capsys):
    save_dir = tmp_path / "export"
    argv = [f"--model_path={loudness_run}", f"--save_dir={save_dir}", "--inference_model=vst_stateless_predict_controls"]
    assert ddsp_export.main(argv) == 2
    assert "--preset vst" in capsys.readouterr().err
    assert not save_dir.exists() and _siblings(save_dir) == []


@pytest.fixture(scope="module")
def vst_run_at_250_frames(vst_run, tmp_path_factory):
    """The vst run folder, its statistics saying it was trained on 250 frames/s features (a hop of 64)."""
    run = tmp_path_factory.mktemp("vst_250") / "run"
    shutil.copytree(vst_run, run)
    statistics_path = run / "model_statistics.json"
    statistics = json.loads(statistics_path.read_text())
    statistics.update(frame_rate=250, hop_size=64)
    statistics_path.write_text(json.dumps(statistics))
    return str(run)


def test_vst_export_of_a_250_frames_model_is_refused(vst_run_at_250_frames, tmp_path, capsys):
    save_dir = tmp_path / "export"
    argv = [f"--model_path={vst_run_at_250_frames}", f"--save_dir={save_dir}",
            "--inference_model=vst_stateless_predict_controls"]
    assert ddsp_export.main(argv) == 2
    error = capsys.readouterr().err
    assert "trained at 250 frames/s" in error and "5 times too slowly" in error and "--preset vst" in error
    assert not save_dir.exists() and _siblings(save_dir) == []


def test_auto_export_of_a_250_frames_model_warns_and_writes_no_tflite(vst_run_at_250_frames, tmp_path, caplog):
    save_dir = tmp_path / "export"
    with caplog.at_level("WARNING"):
        assert ddsp_export.main([f"--model_path={vst_run_at_250_frames}", f"--save_dir={save_dir}",
                                 "--serving_seconds=0.2"]) == 0
    assert not any(name.startswith("tflite/") for name in _files(save_dir))
    assert any(record.levelname == "WARNING" and "250 frames/s" in record.getMessage() for record in caplog.records)


def test_folder_without_checkpoint(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert ddsp_export.main([f"--model_path={run}"]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert os.listdir(run) == []  # No export folder, no temporary folder.


def test_tflite_only_with_a_name_and_no_metadata(vst_run, tmp_path):
    save_dir = tmp_path / "export"
    assert ddsp_export.main([f"--model_path={vst_run}", f"--save_dir={save_dir}", "--name=violin", "--nometadata",
                             "--inference_model=vst_stateless_predict_controls"]) == 0
    assert _files(save_dir) == {"tflite/violin.tflite"} | MODEL_FILES
    with pytest.raises(ValueError, match="no metadata.json"):
        metadata_lib.read_zip_metadata(save_dir / "tflite" / "violin.tflite")


def test_nothing_to_export(vst_run, tmp_path, capsys):
    save_dir = tmp_path / "export"
    assert ddsp_export.main([f"--model_path={vst_run}", f"--save_dir={save_dir}", "--notflite",
                             "--inference_model=vst_stateless_predict_controls"]) == 2
    assert "nothing to export" in capsys.readouterr().err and not save_dir.exists()


def test_missing_model_path_is_a_usage_error(capsys):
    assert ddsp_export.main([]) == 2
    assert "--model_path" in capsys.readouterr().err


def test_export_is_a_library_function_with_keyword_settings(loudness_run, tmp_path, capsys):
    """What ddsp_export's main and the pipeline's export step call: keywords, no parsed flags."""
    save_dir = tmp_path / "export"
    returned, written = ddsp_export.export(model_path=loudness_run, save_dir=str(save_dir),
                                           inference_model="autoencoder", serving_seconds=0.5, metadata=False)
    assert returned == str(save_dir) and set(written) == _files(save_dir)
    assert "saved_model/saved_model.pb" in written and "metadata.json" not in written
    assert f"Wrote {save_dir}/saved_model/saved_model.pb" in capsys.readouterr().out
    with pytest.raises(TypeError):
        ddsp_export.export(ddsp_export.build_parser().parse_args([f"--model_path={loudness_run}"]))


def test_export_refuses_an_unknown_inference_model_before_loading(tmp_path):
    with pytest.raises(ddsp_export.UsageError, match="--inference_model must be one of auto, autoencoder, "
                                                     "vst_stateless_predict_controls, got 'vst'"):
        ddsp_export.export(model_path=str(tmp_path / "no_run"), inference_model="vst")


@pytest.mark.parametrize("inference_model, tflite, vst_problem, expected", [
    ("auto", True, None, (True, True)),
    ("auto", True, "not a DDSP-VST model", (True, False)),
    ("auto", False, None, (True, False)),
    ("autoencoder", True, None, (True, False)),
    ("vst_stateless_predict_controls", True, None, (False, True)),
], ids=["auto_vst", "auto_other", "auto_notflite", "autoencoder", "tflite_only"])
def test_plan(inference_model, tflite, vst_problem, expected):
    assert ddsp_export.plan(inference_model=inference_model, tflite=tflite, vst_problem=vst_problem) == expected
