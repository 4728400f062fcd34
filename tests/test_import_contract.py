"""The package layout's import contract (.importlinter, issue 25): layers read as the data flow, no
circles; and the names magenta's layout and this project's earlier one import still work."""

import importlib
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LINT_IMPORTS = os.path.join(os.path.dirname(sys.executable), "lint-imports")

# Old name -> the module it now is (issue 25 moved them out of training/).
MOVED = {
    "ddsp_core.training.storage": "ddsp_core.io.storage",
    "ddsp_core.training.data_preparation.audio_io": "ddsp_core.io.audio_io",
    "ddsp_core.training.accelerators": "ddsp_core.accelerators",
    "ddsp_core.training.nn": "ddsp_core.models.nn",
    "ddsp_core.training.decoders": "ddsp_core.models.decoders",
    "ddsp_core.training.preprocessing": "ddsp_core.models.preprocessing",
    "ddsp_core.training.checkpoints": "ddsp_core.models.checkpoints",
    "ddsp_core.training.model_statistics": "ddsp_core.models.model_statistics",
    "ddsp_core.training.models": "ddsp_core.models",
    "ddsp_core.training.models.model": "ddsp_core.models.model",
    "ddsp_core.training.models.autoencoder": "ddsp_core.models.autoencoder",
    "ddsp_core.training.data_preparation.ddsp_prepare_tfrecord": "ddsp_core.prepare.ddsp_prepare_tfrecord",
    "ddsp_core.training.data_preparation.prepare_tfrecord_lib": "ddsp_core.prepare.prepare_tfrecord_lib",
    "ddsp_core.training.data_preparation.transforms": "ddsp_core.prepare.transforms",
    "ddsp_core.training.data_preparation.examples": "ddsp_core.prepare.examples",
    "ddsp_core.training.data_preparation.local_workers": "ddsp_core.prepare.local_workers",
    "ddsp_core.training.metrics": "ddsp_core.evaluation.metrics",
    "ddsp_core.training.level_metrics": "ddsp_core.evaluation.level_metrics",
    "ddsp_core.training.pitch_metrics": "ddsp_core.evaluation.pitch_metrics",
    "ddsp_core.training.evaluators": "ddsp_core.evaluation.evaluators",
    "ddsp_core.training.eval_util": "ddsp_core.evaluation.eval_util",
    "ddsp_core.training.samples": "ddsp_core.evaluation.samples",
    "ddsp_core.training.ddsp_run": "ddsp_core.ddsp_run",
}


def test_the_import_contract_is_kept():
    result = subprocess.run([LINT_IMPORTS, "--config", os.path.join(REPO, ".importlinter")], cwd=REPO,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f".importlinter is broken:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    assert "2 kept, 0 broken" in result.stdout


def test_the_contract_catches_an_import_from_a_lower_layer(tmp_path):
    """The same contract fails on a copy of the package where core imports the training loop."""
    import shutil

    copy = tmp_path / "ddsp_core"
    shutil.copytree(os.path.join(REPO, "ddsp_core"), copy, ignore=shutil.ignore_patterns("__pycache__", "gin"))
    with open(copy / "core" / "units.py", "a") as handle:
        handle.write("\nfrom ddsp_core.training import trainers  # noqa: E402,F401\n")
    result = subprocess.run([LINT_IMPORTS, "--config", os.path.join(REPO, ".importlinter")], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode != 0
    assert "ddsp_core.core is not allowed to import ddsp_core.training" in result.stdout
    assert "No cycles are allowed in ddsp_core" in result.stdout


@pytest.mark.parametrize("old_name", sorted(MOVED))
def test_magenta_layout_names_are_the_moved_modules(old_name):
    assert importlib.import_module(old_name) is importlib.import_module(MOVED[old_name])


def test_magenta_names_of_losses_and_spectral_ops_still_import():
    from ddsp_core import losses, spectral_ops
    from ddsp_core.core import framing

    for name in ("SpectralLoss", "PretrainedCREPEEmbeddingLoss", "KDEConsistencyLoss", "TWMLoss",
                 "WassersteinConsistencyLoss", "HmmTranscriber", "mean_difference", "LossGroup", "ParamLoss"):
        assert hasattr(losses, name), name
    assert spectral_ops.pad is framing.pad and spectral_ops.get_framed_lengths is framing.get_framed_lengths
    assert spectral_ops.PretrainedCREPE is not None


@pytest.mark.parametrize("old_module, a_flag", [("ddsp_core.training.ddsp_run", "--gin_param"),
                                                 ("ddsp_core.training.data_preparation.ddsp_prepare_tfrecord",
                                                  "--input_audio_filepatterns")])
def test_magenta_layout_commands_run_with_python_m(old_module, a_flag):
    """`python -m ddsp.training.ddsp_run ...` is how magenta's users run it: the old names still run the command."""
    result = subprocess.run([sys.executable, "-m", old_module, "--help"], cwd=REPO, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:") and a_flag in result.stdout, result.stdout[:2000]
