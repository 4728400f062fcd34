"""Tests for the shipped gin files and ddsp_run.parse_gin.

Every file under ddsp_core/training/gin parses, every parameter it binds exists in
the configurable's signature (gin itself cannot check that for Keras layers, whose
__init__ takes **kwargs), and what it configures can be built.
"""

import glob
import importlib
import inspect
import os
import re

import gin
import pytest
from gin import config_parser

from ddsp_core import ddsp_run
from ddsp_core.evaluation import evaluators
from ddsp_core import models

GIN_FILES = sorted(os.path.relpath(path, ddsp_run.GIN_DIR)
                   for path in glob.glob(os.path.join(ddsp_run.GIN_DIR, "**", "*.gin"), recursive=True))
FILE_PATTERN_PARAM = "TFRecordProvider.file_pattern = 'x*'"
# Configurables that run a job when called; their bindings are only checked.
JOBS = ("train", "evaluate", "sample")


class _Names(config_parser.ParserDelegate):
    """Parses without resolving: references and macros become their names."""

    def configurable_reference(self, scoped_configurable_name, evaluate):
        return "@" + scoped_configurable_name

    def macro(self, macro_name):
        return "%" + macro_name


def statements(relative_path):
    """The statements (bindings, imports, includes) of one shipped gin file."""
    with open(os.path.join(ddsp_run.GIN_DIR, relative_path)) as handle:
        return list(config_parser.ConfigParser(handle, _Names()))


def bindings(relative_path):
    """[(selector, parameter, line)] bound in the file (macro definitions left out)."""
    return [(s.selector, s.arg_name, s.location.line_num) for s in statements(relative_path)
            if isinstance(s, config_parser.BindingStatement) and s.arg_name]


def explicit_parameters(configurable):
    """Names a gin-registered function or class accepts, not counting **kwargs."""
    function = configurable.__init__ if inspect.isclass(configurable) else configurable
    signature = inspect.signature(inspect.unwrap(function))
    return {name for name, parameter in signature.parameters.items()
            if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL) and name != "self"}


def params_for(relative_path):
    return [FILE_PATTERN_PARAM] if relative_path.startswith("datasets/") else []


# Every test starts and ends with an empty gin config (tests/training_runs.py).
pytestmark = pytest.mark.usefixtures("clean_state")


def test_the_gin_folder_has_the_expected_files():
    assert GIN_FILES == ["augmentation/gain.gin", "datasets/base.gin", "datasets/tfrecord.gin", "effects/reverb.gin",
                         "eval/basic.gin", "eval/basic_f0_ld.gin", "models/ae.gin", "models/solo_instrument.gin",
                         "models/solo_instrument_dry.gin", "models/solo_instrument_hq.gin", "models/vst.gin",
                         "optimization/base.gin", "recipes/quick.gin"]


@pytest.mark.parametrize("relative_path", GIN_FILES)
def test_includes_and_imports_exist(relative_path):
    for statement in statements(relative_path):
        if isinstance(statement, config_parser.IncludeStatement):
            assert os.path.isfile(os.path.join(ddsp_run.GIN_DIR, statement.filename)), statement.location
        if isinstance(statement, config_parser.ImportStatement):
            importlib.import_module(statement.module)


@pytest.mark.parametrize("relative_path", GIN_FILES)
def test_parses_and_every_binding_names_a_real_parameter(relative_path):
    ddsp_run.parse_gin([relative_path], params_for(relative_path))
    found = bindings(relative_path)
    assert found, f"{relative_path} binds nothing"
    for selector, parameter, line in found:
        configurable = gin.get_configurable(selector)
        assert parameter in explicit_parameters(configurable), (
            f"{relative_path}:{line} binds {selector}.{parameter}, which {selector} does not take")
        gin.query_parameter(f"{selector}.{parameter}")  # Resolves without error.


@pytest.mark.parametrize("relative_path", GIN_FILES)
def test_every_bound_configurable_can_be_built(relative_path):
    ddsp_run.parse_gin([relative_path], params_for(relative_path))
    for selector in sorted({selector for selector, _, _ in bindings(relative_path)} - set(JOBS)):
        assert gin.get_configurable(selector)() is not None, selector


@pytest.mark.parametrize("files, last_processor", [
    (["models/solo_instrument_dry.gin"], "add"),
    (["models/solo_instrument_dry.gin", "augmentation/gain.gin"], "add"),
    (["models/solo_instrument_dry.gin", "effects/reverb.gin"], "reverb"),
])
def test_the_pipeline_recipe_is_the_solo_model_without_reverb_unless_added(files, last_processor):
    ddsp_run.parse_gin(files, ["n_samples = 16000"])
    model = gin.get_configurable("get_model")()
    assert [processor.name for processor in model.processor_group.processors][-1] == last_processor
    assert model.decoder.output_splits[1] == ("harmonic_distribution", 60)
    assert gin.query_parameter("%n_samples") == 16000  # effects/reverb.gin keeps the example length.


@pytest.mark.parametrize("model_file", ["models/ae.gin", "models/solo_instrument.gin"])
def test_model_files_configure_an_autoencoder(model_file):
    ddsp_run.parse_gin([model_file], [])
    model = gin.get_configurable("get_model")()
    assert isinstance(model, models.Autoencoder)
    assert [processor.name for processor in model.processor_group.processors][-1] == (
        "reverb" if model_file.endswith("solo_instrument.gin") else "add")
    assert model.decoder.output_splits[1] == (
        "harmonic_distribution", 60 if model_file.endswith("solo_instrument.gin") else 100)


def _stated_parameter_count(relative_path):
    """The 'N trainable parameters.' figure in a shipped gin file's comments."""
    with open(os.path.join(ddsp_run.GIN_DIR, relative_path)) as handle:
        [count] = re.findall(r"^# ([\d,]+) trainable parameters\.$", handle.read(), flags=re.MULTILINE)
    return int(count.replace(",", ""))


def test_vst_model_has_ddsp_vsts_interface():
    """models/vst.gin, 1 s at 16 kHz and 50 frames/s: f0_scaled and pw_scaled in, a GRU of 512,
    amps 1 / harmonic_distribution 60 / noise_magnitudes 65 out, harmonic + noise, no reverb."""
    import numpy as np

    ddsp_run.parse_gin(["models/vst.gin"], ["n_samples = 16000"])
    model = gin.get_configurable("get_model")()
    features = {"audio": np.zeros([2, 16000], np.float32), "f0_hz": np.zeros([2, 50], np.float32),
                "power_db": np.zeros([2, 50], np.float32)}
    outputs = model(features)
    shapes = {key: tuple(outputs[key].shape) for key in
              ("amps", "harmonic_distribution", "noise_magnitudes", "f0_scaled", "pw_scaled", "audio_synth")}
    assert shapes == {"amps": (2, 50, 1), "harmonic_distribution": (2, 50, 60), "noise_magnitudes": (2, 50, 65),
                      "f0_scaled": (2, 50, 1), "pw_scaled": (2, 50, 1), "audio_synth": (2, 16000)}
    assert "ld_scaled" not in outputs
    decoder = model.decoder
    assert decoder.input_keys == ("pw_scaled", "f0_scaled")
    assert decoder.rnn.units == 512 and decoder.rnn.name == "gru"
    for stack in (*decoder.input_stacks, decoder.output_stack):
        assert (stack.ch, len(stack.denses)) == (256, 1), stack.name
    harmonic, noise, add = model.processor_group.processors
    assert (harmonic.name, noise.name, add.name) == ("harmonic", "filtered_noise", "add")
    assert harmonic.amp_resample_method == "linear" and harmonic.normalize_below_nyquist
    assert (noise.window_size, noise.initial_bias) == (0, -5.0)
    assert models.count_trainable_parameters(model) == _stated_parameter_count("models/vst.gin") == 1_873_278


def test_vst_model_without_power_db_says_to_prepare_again():
    import numpy as np

    ddsp_run.parse_gin(["models/vst.gin"], ["n_samples = 16000"])
    model = gin.get_configurable("get_model")()
    features = {"audio": np.zeros([1, 16000], np.float32), "f0_hz": np.zeros([1, 50], np.float32),
                "loudness_db": np.zeros([1, 50], np.float32)}
    with pytest.raises(KeyError, match="'power_db'.*re-run the prepare job"):
        model(features)


def test_defaults_parsed_first_are_the_optimizer_and_basic_evaluator():
    ddsp_run.parse_gin([], [])
    assert gin.query_parameter("%batch_size") == 16
    assert gin.query_parameter("Trainer.learning_rate").scoped_selector == "learning_rate/gin.macro"
    [basic] = gin.query_parameter("evaluate.evaluator_classes")
    assert basic.configurable.wrapped is evaluators.BasicEvaluator


def test_basic_f0_ld_selects_both_evaluators_and_they_build():
    ddsp_run.parse_gin(["eval/basic_f0_ld.gin"], [])
    for job in ("evaluate", "sample"):
        assert gin.query_parameter(f"{job}.evaluator_classes").scoped_selector == "evaluators/gin.macro", job
        classes = [reference.configurable.wrapped for reference in gin.query_parameter("%evaluators")]
        assert classes == [evaluators.BasicEvaluator, evaluators.F0LdEvaluator], job
    f0_ld = evaluators.F0LdEvaluator(sample_rate=16000, frame_rate=250)
    assert f0_ld.metrics.crepe_capacity == "full"
    assert f0_ld.metrics.min_f0_confidence == 0.85


def test_dataset_and_model_agree_on_the_example_length():
    ddsp_run.parse_gin(["models/solo_instrument.gin", "datasets/tfrecord.gin"], [FILE_PATTERN_PARAM])
    provider = gin.get_configurable("TFRecordProvider")()
    assert (provider.n_samples, provider.n_frames) == (64000, 1000)
    assert gin.query_parameter("%n_samples") == provider.n_samples
    assert gin.query_parameter("%sample_rate") == provider.sample_rate


def test_later_params_override_files():
    ddsp_run.parse_gin(["models/solo_instrument.gin"], ["batch_size = 4", "RnnFcDecoder.rnn_channels = 32"])
    assert gin.query_parameter("%batch_size") == 4
    assert gin.query_parameter("RnnFcDecoder.rnn_channels") == 32


def test_files_are_found_on_extra_search_paths(tmp_path):
    (tmp_path / "mine.gin").write_text("include 'models/ae.gin'\nRnnFcDecoder.ch = 8\n")
    ddsp_run.parse_gin(["mine.gin"], [], search_paths=[str(tmp_path)])
    assert gin.query_parameter("RnnFcDecoder.ch") == 8


def test_newest_operative_config_is_parsed_before_the_files(tmp_path):
    for step, channels in ((9, 8), (10, 24), (2, 4)):  # 10 is the newest, though "9" > "10" as text.
        (tmp_path / f"operative_config-{step}.gin").write_text(
            f"import ddsp_core.training\nRnnFcDecoder.rnn_channels = {channels}\n")
    ddsp_run.parse_gin([], [], operative_config_dir=str(tmp_path))
    assert gin.query_parameter("RnnFcDecoder.rnn_channels") == 24
    ddsp_run.parse_gin([], ["RnnFcDecoder.rnn_channels = 7"], operative_config_dir=str(tmp_path))
    assert gin.query_parameter("RnnFcDecoder.rnn_channels") == 7


@pytest.mark.parametrize("param, named", [
    pytest.param("Trainer.learnin_rate = 1e-3", "learnin_rate", id="function_parameter"),
    pytest.param("RnnFcDecoderr.ch = 3", "RnnFcDecoderr", id="configurable"),
    pytest.param("get_model.model = @models.Autoencodr()", "Autoencodr", id="reference"),
])
def test_typo_in_a_param_raises_usage_error_naming_it(param, named):
    with pytest.raises(ddsp_run.UsageError, match=named):
        ddsp_run.parse_gin(["models/solo_instrument.gin"], [param])


@pytest.mark.parametrize("param", [
    pytest.param("RnnFcDecoder.rnn_chanels = 3", id="training_layer"),
    pytest.param("Reverb.reverb_lenght = 100", id="dsp_layer"),
])
def test_typo_in_a_layer_param_raises_usage_error_naming_it(param):
    typo = param.split(".")[1].split(" ")[0]
    try:
        ddsp_run.parse_gin(["models/solo_instrument.gin"], [param])
    except ddsp_run.UsageError as error:
        assert typo in str(error)
    else:
        raise AssertionError(f"parse_gin accepted {param!r}")


def test_typo_in_a_file_raises_usage_error_naming_the_file(tmp_path):
    path = tmp_path / "typo.gin"
    path.write_text("import ddsp_core.training\nTrainer.lr_decay_step = 5\n")
    with pytest.raises(ddsp_run.UsageError, match=r"typo\.gin.*lr_decay_step"):
        ddsp_run.parse_gin([str(path)], [])


def test_syntax_error_raises_usage_error(tmp_path):
    path = tmp_path / "broken.gin"
    path.write_text("Trainer.learning_rate = = 3\n")
    with pytest.raises(ddsp_run.UsageError, match=r"broken\.gin"):
        ddsp_run.parse_gin([str(path)], [])


def test_missing_file_raises_usage_error_naming_it():
    with pytest.raises(ddsp_run.UsageError, match=r"models/no_such_model\.gin.*not found"):
        ddsp_run.parse_gin(["models/no_such_model.gin"], [])


# gin files in Cloud Storage, read from a real emulator (tests/gcs_emulator.py) through `storage`.


def test_gs_gin_file_and_its_gs_include_are_parsed(gcs_emulator, gcs_bucket):
    gcs_emulator.upload_bytes(b"include 'models/ae.gin'\nRnnFcDecoder.ch = 8\n", f"{gcs_bucket}/configs/base.gin")
    gcs_emulator.upload_bytes(f"include '{gcs_bucket}/configs/base.gin'\nRnnFcDecoder.rnn_channels = 24\n".encode(),
                              f"{gcs_bucket}/configs/mine.gin")
    ddsp_run.parse_gin([f"{gcs_bucket}/configs/mine.gin"], [])
    assert gin.query_parameter("RnnFcDecoder.rnn_channels") == 24
    assert gin.query_parameter("RnnFcDecoder.ch") == 8


def test_gs_search_path_finds_gin_files_by_name(gcs_emulator, gcs_bucket):
    # A name no earlier test's folder holds (gin's search path is global and only grows).
    gcs_emulator.upload_bytes(b"RnnFcDecoder.ch = 12\n", f"{gcs_bucket}/configs/only_in_gs.gin")
    ddsp_run.parse_gin(["models/ae.gin", "only_in_gs.gin"], [], search_paths=[f"{gcs_bucket}/configs"])
    assert gin.query_parameter("RnnFcDecoder.ch") == 12


def test_newest_operative_config_is_read_from_a_gs_run_folder(gcs_emulator, gcs_bucket):
    for step, channels in ((9, 8), (10, 24)):
        gcs_emulator.upload_bytes(f"import ddsp_core.training\nRnnFcDecoder.rnn_channels = {channels}\n".encode(),
                                  f"{gcs_bucket}/run/operative_config-{step}.gin")
    ddsp_run.parse_gin([], [], operative_config_dir=f"{gcs_bucket}/run")
    assert gin.query_parameter("RnnFcDecoder.rnn_channels") == 24


def test_missing_gs_gin_file_raises_usage_error_naming_it(gcs_emulator, gcs_bucket):
    with pytest.raises(ddsp_run.UsageError, match=re.escape(f"{gcs_bucket}/configs/missing.gin") + ".*not found"):
        ddsp_run.parse_gin([f"{gcs_bucket}/configs/missing.gin"], [])


def test_missing_gs_include_names_it_and_the_file_including_it(gcs_emulator, gcs_bucket):
    mine, missing = f"{gcs_bucket}/configs/mine.gin", f"{gcs_bucket}/configs/missing.gin"
    gcs_emulator.upload_bytes(f"include '{missing}'\n".encode(), mine)
    with pytest.raises(ddsp_run.UsageError, match=re.escape(f"Gin file {mine}: Unable to open file: {missing}.")):
        ddsp_run.parse_gin([mine], [])


def test_without_gin_context_keeps_the_message_of_a_real_gin_error():
    """A configurable's ValueError raised through gin carries gin's call-context lines; the one
    cleaner (used by ddsp_run and the pipeline steps) keeps only the message."""
    from ddsp_core.training import gin_configs, trainers

    ddsp_run.parse_gin([], ["Trainer.lr_schedule = 'linear'"])
    try:
        with pytest.raises(ValueError) as raised:
            trainers.Trainer()
    finally:
        gin.clear_config()
    assert "In call to configurable 'Trainer'" in str(raised.value)  # What gin appended.
    assert gin_configs.without_gin_context(raised.value) == (
        "Trainer.lr_schedule must be one of ('exponential', 'cosine'), got 'linear'.")
    assert gin_configs.without_gin_context(ValueError("\n  In call to configurable 'X' (<function X>)")) == ""


def test_ddsp_run_and_the_steps_share_the_cleaner():
    from ddsp_core.steps import steps
    from ddsp_core.training import gin_configs

    error = TypeError("bad feature\n  In call to configurable 'evaluate' (<function evaluate>)")
    assert gin_configs.without_gin_context(error) == "bad feature"
    assert steps._cause(error) == "TypeError: bad feature"
    assert steps._cause(ValueError("  In call to configurable 'train' (<function train>)")) == "ValueError"
    assert not hasattr(ddsp_run, "_without_gin_context")
