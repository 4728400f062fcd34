"""The pipeline's step functions and presets (ddsp_core.steps), without kfp."""

import json
import os

import gin
import pytest

from ddsp_core.steps import presets, steps
from ddsp_core.training import gin_configs
from ddsp_core.evaluation import samples


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown preset 'fast'\. Known presets: 'quick' \(.*\), 'full' \("):
        presets.get_preset("fast")


def _manifest(preset, frame_rate=None):
    """A manifest of a dataset prepared with `preset` (at `frame_rate` if given)."""
    example_format = preset.example_format.to_dict()
    if frame_rate:
        example_format["frame_rate"] = frame_rate
    return {"example_format": example_format, "settings": {"crepe_capacity": preset.crepe_capacity},
            "examples_written": {"train": 4, "eval": 0}}


@pytest.mark.parametrize("name", sorted(presets.PRESETS))
def test_each_preset_parses_with_the_shipped_gin(name, tmp_path):
    """The preset's bindings (and the dataset's) exist: parse them as the train and eval steps do,
    and the model takes the preset's example format."""
    preset = presets.get_preset(name)
    manifest = _manifest(preset)
    steps._parse_gin(preset, steps._data_bindings(str(tmp_path), "train"), steps.train_gin_files(preset), [], [])
    assert gin.query_parameter("TFRecordProvider.file_pattern") == f"{tmp_path}/train.tfrecord*"
    gin_configs.bind_example_format(preset.example_format)
    assert gin.query_parameter("%n_samples") == preset.example_format.n_samples
    assert gin.query_parameter("%sample_rate") == preset.example_format.sample_rate
    assert str(gin.query_parameter("SpectralLoss.sample_rate")) == "%sample_rate"  # The loss at the same rate.
    steps._parse_gin(preset, steps._eval_bindings(str(tmp_path), manifest, preset),
                     ["datasets/tfrecord.gin", "eval/basic_f0_ld.gin"], [], [])
    assert gin.query_parameter("F0LoudnessMetrics.crepe_capacity") == preset.eval_crepe_capacity
    gin.clear_config()


def test_the_vst_preset_trains_ddsp_vsts_model_at_50_frames_per_second(tmp_path):
    preset = presets.get_preset("vst")
    quick = presets.get_preset("quick")
    assert (preset.example_format.frame_rate, preset.model_gin, preset.gin_files) == (
        50, "models/vst.gin", ("augmentation/gain.gin", presets.QUICK_RECIPE_GIN_FILE))
    for field in ("crepe_capacity", "num_steps", "batch_size", "gin_params"):
        assert getattr(preset, field) == getattr(quick, field), field
    for field in ("sample_rate", "example_secs", "hop_secs"):
        assert getattr(preset.example_format, field) == getattr(quick.example_format, field), field
    assert steps.train_gin_files(quick)[0] == "models/solo_instrument.gin"  # The others keep the solo model.
    steps._parse_gin(preset, steps._data_bindings(str(tmp_path), "train"), steps.train_gin_files(preset), [], [])
    assert gin.query_parameter("RnnFcDecoder.input_keys") == ("pw_scaled", "f0_scaled")
    gin.clear_config()


@pytest.mark.parametrize("sample_rate, frame_rate", [(16000, 250), (22050, 50), (44100, 100), (48000, 250)])
def test_a_preset_at_another_sample_rate_keeps_its_lengths(sample_rate, frame_rate):
    preset = presets.get_preset("quick", sample_rate)
    example_format = preset.example_format
    assert (example_format.sample_rate, example_format.frame_rate) == (sample_rate, frame_rate)
    assert (example_format.example_secs, example_format.hop_secs) == (1.0, 0.5)
    assert example_format.n_samples == sample_rate and example_format.hop_size * frame_rate == sample_rate


def test_the_hq_preset_is_48_khz_and_the_vst_preset_16_khz_only():
    assert presets.get_preset("hq").example_format.sample_rate == 48000
    assert presets.get_preset("hq", 16000).example_format.n_samples == 64000
    with pytest.raises(ValueError, match=r"'vst' preset makes models at 16000 Hz only"):
        presets.get_preset("vst", 48000)


def test_train_refuses_the_vst_preset_on_a_48_khz_dataset(tmp_path):
    manifest = _manifest(presets.get_preset("quick", 48000))
    (tmp_path / steps.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"16000 Hz only .* not 48000 Hz"):
        steps.train(str(tmp_path), str(tmp_path / "model"), preset="vst")
    assert not (tmp_path / "model").exists()


def test_train_refuses_a_dataset_of_another_frame_rate(tmp_path):
    (tmp_path / steps.MANIFEST).write_text(json.dumps(_manifest(presets.get_preset("quick"))))
    with pytest.raises(ValueError, match=r"prepared at 250 frames/s, but the 'vst' preset trains at 50 frames/s"):
        steps.train(str(tmp_path), str(tmp_path / "model"), preset="vst")


def _split_manifest(eval_examples, eval_files=1, files_matched=4, eval_split_fraction=0.1, eval_patterns=(),
                    skipped=()):
    """A full-preset manifest of `files_matched` files, `eval_files` of them held out (None: an older manifest
    without the per-split file counts)."""
    manifest = _manifest(presets.get_preset("full"))
    manifest["settings"].update(eval_split_fraction=eval_split_fraction, eval_audio_filepatterns=list(eval_patterns))
    manifest.update(files_matched=files_matched, skipped=list(skipped),
                    examples_written={"train": 3, "eval": eval_examples, "total": 3 + eval_examples})
    if eval_files is not None:
        manifest["outputs"] = {"train": {"path": "t", "files": files_matched - eval_files, "shards": ["t-0"]},
                               "eval": {"path": "e", "files": eval_files, "shards": ["e-0"]}}
    return manifest


def test_train_refuses_an_eval_split_that_lost_every_file_before_training(tmp_path):
    skipped = [{"path": "/a/quiet.wav", "split": "eval", "reason": "silent (peak -70.0 dBFS is below ...)"},
               {"path": "/a/bad.wav", "split": "train", "reason": "not a readable audio file"}]
    (tmp_path / steps.MANIFEST).write_text(json.dumps(_split_manifest(0, skipped=skipped)))
    with pytest.raises(ValueError) as error:
        steps.train(str(tmp_path), str(tmp_path / "model"), preset="full", num_steps=2, batch_size=2)
    message = str(error.value)
    for expected in ("The dataset has 0 eval examples", "held out 1 file for the eval split",
                     "(eval_split_fraction 0.1 of 4 files)", "/a/quiet.wav: silent", "Add usable files to --audio",
                     "--eval-audio", "--preset quick", "Training was not started."):
        assert expected in message, expected
    assert "/a/bad.wav" not in message  # A training file's reason is not the eval split's.
    assert not (tmp_path / "model").exists()


def test_the_prepare_jobs_manifest_shows_an_eval_split_that_lost_its_files(tmp_path):
    from ddsp_core.prepare import prepare_tfrecord_lib as lib

    settings = lib.PrepareSettings(input_audio_filepatterns=["/a/*.wav"], eval_audio_filepatterns=["/held/*.wav"],
                                   output_tfrecord_path=str(tmp_path / "train.tfrecord"), crepe_capacity="tiny")
    reports = [{"path": "/a/1.wav", "split": "train", "status": "ok", "examples": 3, "duration_secs": 6.0},
               *[{"path": f"/held/{i}.wav", "split": "eval", "status": "skipped", "examples": 0,
                  "reason": "too short (0.100 s; min_audio_secs is 0.5 s)"} for i in range(2)]]
    manifest = lib.make_manifest(reports, settings, {}, {"train": ["t-0"], "eval": ["e-0"]})
    problem = steps.eval_split_problem(manifest)
    assert problem.startswith("The dataset has 0 eval examples: the prepare step held out 2 files for the eval "
                              "split (the files matched by the eval audio pattern /held/*.wav) and skipped all 2 "
                              "(/held/0.wav: too short")
    assert "leave --eval-audio out" in problem


def test_an_eval_split_of_unusable_held_out_audio_says_to_change_eval_audio():
    # An older manifest (no per-split file counts): judged by its settings.
    problem = steps.eval_split_problem(_split_manifest(0, eval_files=None, eval_split_fraction=0.0,
                                                       eval_patterns=["/held/*.wav"]))
    assert "the files matched by the eval audio pattern /held/*.wav" in problem
    assert "Give held-out audio the prepare step can use with --eval-audio" in problem


@pytest.mark.parametrize("manifest", [
    _split_manifest(1), _split_manifest(0, eval_files=0), _split_manifest(0, eval_files=None, files_matched=1),
    _split_manifest(0, eval_files=None, eval_split_fraction=0.0), _manifest(presets.get_preset("quick")),
], ids=["one_example_is_enough", "nothing_held_out", "one_file_is_not_split", "no_split_asked", "bare"])
def test_eval_split_check_passes(manifest):
    assert steps.eval_split_problem(manifest) is None
    steps.check_eval_split(manifest)


def test_the_vst_preset_prepares_trains_and_evaluates(tmp_path):
    """prepare -> train (2 steps of the full-size DDSP-VST model) -> eval on four bundled notes (~20 s)."""
    import numpy as np

    from ddsp_core import spectral_ops
    from tests.training_runs import NOTES_PATTERN, read_records

    dataset, model = str(tmp_path / "dataset"), str(tmp_path / "model")
    try:
        manifest = steps.prepare(NOTES_PATTERN, dataset, preset="vst", num_workers=1)
        assert manifest["example_format"]["frame_rate"] == 50
        assert manifest["features"] == {"audio": 16000, "f0_hz": 50, "f0_confidence": 50, "loudness_db": 50,
                                        "power_db": 50}
        [record] = read_records(os.path.join(dataset, steps.TRAIN_PREFIX + "*"), 1)
        expected = np.asarray(spectral_ops.compute_power_db(record["audio"], frame_rate=50, frame_size=1024))
        # Frames 2 or more hops (of 320 samples) from the ends see the same audio in the file and the window.
        np.testing.assert_allclose(record["power_db"][2:-2], expected[2:50 - 2], atol=1e-3)

        result = steps.train(dataset, model, preset="vst", num_steps=2, batch_size=2)
        assert result["step"] == 2 and np.isfinite(result["losses"]["total_loss"])
        operative = open(os.path.join(model, "operative_config-0.gin")).read()
        assert "F0PowerPreprocessor" in operative and "Reverb" not in operative
        gin.clear_config()

        record = steps.evaluate(dataset, model, str(tmp_path / "eval"), preset="vst",
                                gin_params=["evaluate.num_batches = 1"])
        assert record["step"] == 2 and np.isfinite(record["metrics"]["loudness_l1_db"])
    finally:
        gin.clear_config()


def test_user_bindings_override_the_preset(tmp_path):
    quick = presets.get_preset("quick")
    bindings = {**steps._data_bindings(str(tmp_path), "train"), "train.num_steps": 600}
    steps._parse_gin(quick, bindings, ["models/solo_instrument.gin"], [], [])
    assert (gin.query_parameter("%learning_rate"), gin.query_parameter("train.num_steps")) == (0.001, 600)
    steps._parse_gin(quick, bindings, ["models/solo_instrument.gin"], [],
                     ["learning_rate = 0.0005", "train.num_steps = 7"])
    assert (gin.query_parameter("%learning_rate"), gin.query_parameter("train.num_steps")) == (0.0005, 7)
    gin.clear_config()


@pytest.mark.parametrize("seed, gin_params, expected", [
    (7, [], 7),
    (7, ["train.seed = 3"], 7),  # An explicit seed wins over the user's binding.
    (-1, ["train.seed = 3"], 3),  # Not set: the binding stays.
    (-1, [], None),  # Not set, no binding: training draws one.
    (None, [], None),
])
def test_train_binds_the_seed_as_train_seed(seed, gin_params, expected, tmp_path, monkeypatch):
    """(train_util.train is replaced by one that reads gin's train.seed: no training here.)"""
    from ddsp_core.training import train_util

    (tmp_path / steps.MANIFEST).write_text(json.dumps(_manifest(presets.get_preset("quick"))))
    seen = []

    def train(save_dir):
        try:
            seen.append(gin.query_parameter("train.seed"))
        except ValueError:  # Not bound.
            seen.append(None)
        return {"step": 0, "status": "finished", "losses": {}, "start_step": 0}

    monkeypatch.setattr(train_util, "train", train)
    try:
        steps.train(str(tmp_path), str(tmp_path / "model"), gin_params=gin_params, seed=seed)
    finally:
        gin.clear_config()
    assert seen == [expected]


@pytest.mark.parametrize("eval_examples", [0, 3])
def test_train_probes_health_on_the_held_out_split_when_there_is_one(eval_examples, tmp_path, monkeypatch):
    """(train_util.train is replaced by one that reads gin's train.probe_file_pattern: no training here.)"""
    from ddsp_core.training import train_util

    manifest = _manifest(presets.get_preset("quick"))
    manifest["examples_written"]["eval"] = eval_examples
    (tmp_path / steps.MANIFEST).write_text(json.dumps(manifest))
    seen = []

    def train(save_dir):
        try:
            seen.append(gin.query_parameter("train.probe_file_pattern"))
        except ValueError:  # Not bound: the probe comes from the training data.
            seen.append(None)
        return {"step": 0, "status": "finished", "losses": {}, "start_step": 0}

    monkeypatch.setattr(train_util, "train", train)
    try:
        steps.train(str(tmp_path), str(tmp_path / "model"))
    finally:
        gin.clear_config()
    assert seen == [f"{tmp_path}/eval.tfrecord*" if eval_examples else None]


def test_run_step_names_the_step_and_writes_its_status(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(steps.STATUS_DIR_ENV, str(tmp_path / "status"))

    def broken(dataset_dir):
        return steps.read_manifest(dataset_dir)

    with pytest.raises(steps.StepError) as error:
        steps.run_step("train", broken, outputs={"model": "/m"}, dataset_dir=str(tmp_path / "empty"))
    assert error.value.step == "train"
    assert str(error.value).startswith("step 'train' failed: ")
    assert "is not a prepared dataset: it has no train_manifest.json" in error.value.cause
    record = json.load(open(tmp_path / "status" / "train.json"))
    assert record["status"] == "failed" and record["cause"] == error.value.cause
    assert record["outputs"] == {"model": "/m"} and record["inputs"] == {}
    err = capsys.readouterr().err
    assert "==> step 2/5: train" in err and "<== step 2/5: train FAILED:" in err

    assert steps.run_step("eval", lambda: {"ok": 1}) == {"ok": 1}
    assert json.load(open(tmp_path / "status" / "eval.json"))["status"] == "done"


@pytest.mark.parametrize("function, folders", [
    (steps.prepare, ["audio_pattern", "dataset_dir"]),
    (steps.train, ["dataset_dir", "model_dir"]),
    (steps.evaluate, ["dataset_dir", "model_dir", "eval_dir"]),
    (steps.sample, ["dataset_dir", "model_dir", "samples_dir"]),
    (steps.export, ["model_dir", "export_dir"]),
    (steps.run_step, ["step", "function"]),
], ids=lambda value: getattr(value, "__name__", None))
def test_step_settings_are_keyword_only(function, folders):
    """A step takes its folders by position, and every setting by name only."""
    import inspect

    parameters = inspect.signature(function).parameters.values()
    assert [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD] == folders
    assert all(p.kind in (p.KEYWORD_ONLY, p.VAR_KEYWORD) for p in parameters if p.name not in folders)


def test_export_step_calls_ddsp_export_with_keywords_not_a_command_line(tmp_path, monkeypatch):
    from ddsp_core.export import ddsp_export

    calls = []

    def export(**settings):
        calls.append(settings)
        os.makedirs(settings["save_dir"])
        with open(os.path.join(settings["save_dir"], "metadata.json"), "w") as file:
            json.dump({"sample_rate": 16000}, file)

    def no_parser():
        raise AssertionError("steps.export built ddsp_export's command-line parser")

    monkeypatch.setattr(ddsp_export, "export", export)
    monkeypatch.setattr(ddsp_export, "build_parser", no_parser)
    assert steps.export(str(tmp_path / "model"), str(tmp_path / "export")) == {"sample_rate": 16000}
    assert calls == [{"model_path": str(tmp_path / "model"), "save_dir": str(tmp_path / "export"), "overwrite": True}]


def test_run_step_reads_the_environment_once_and_passes_the_settings_down(tmp_path, monkeypatch):
    """The runner's settings reach the step as run_step read them when it started: a status folder
    changed in the environment meanwhile is not used, and verbose is on only for the step."""
    from ddsp_core import progress

    monkeypatch.setenv(steps.STATUS_DIR_ENV, str(tmp_path / "first"))
    monkeypatch.setenv(steps.VERBOSE_ENV, "1")
    seen = []

    def step():
        seen.append(progress.verbose())
        monkeypatch.setenv(steps.STATUS_DIR_ENV, str(tmp_path / "second"))
        monkeypatch.setenv(steps.VERBOSE_ENV, "")
        return "made"

    assert steps.run_step("sample", step) == "made"
    assert seen == [True] and progress.verbose() is False
    assert json.load(open(tmp_path / "first" / "sample.json"))["status"] == "done"
    assert not (tmp_path / "second").exists()


def test_run_step_takes_its_settings_as_an_argument(tmp_path, monkeypatch):
    from ddsp_core import progress

    monkeypatch.setenv(steps.STATUS_DIR_ENV, str(tmp_path / "from_environment"))
    seen = []
    settings = steps.StepSettings(status_dir=str(tmp_path / "given"), verbose=True)
    steps.run_step("export", lambda: seen.append(progress.verbose()), outputs={"exported": "/e"}, settings=settings)
    record = json.load(open(tmp_path / "given" / "export.json"))
    assert seen == [True] and record["status"] == "done" and record["outputs"] == {"exported": "/e"}
    assert not (tmp_path / "from_environment").exists()
    steps.run_step("export", lambda: seen.append(progress.verbose()), settings=steps.StepSettings())
    assert seen == [True, False]


@pytest.mark.parametrize("environ, expected", [
    ({}, steps.StepSettings(status_dir="", verbose=False)),
    ({"DDSP_PIPELINE_STATUS_DIR": "/s", "DDSP_PIPELINE_VERBOSE": "1"}, steps.StepSettings("/s", True)),
    ({"DDSP_PIPELINE_VERBOSE": ""}, steps.StepSettings("", False)),
    ({"DDSP_PIPELINE_VERBOSE": "true"}, steps.StepSettings("", False)),
], ids=["unset", "both", "verbose_empty", "verbose_not_1"])
def test_step_settings_from_environ(environ, expected):
    assert steps.StepSettings.from_environ(environ) == expected


def test_prepare_with_no_audio_says_so(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing"):
        steps.prepare(str(tmp_path / "nothing" / "*.wav"), str(tmp_path / "dataset"))


def test_self_contained_page_inlines_the_files(tmp_path):
    import numpy as np

    audio = np.sin(2 * np.pi * 440 * np.arange(1600) / 16000)[np.newaxis].astype("float32")
    paths = samples.write_samples(str(tmp_path), 7, {"audio": audio}, audio, 16000, 250)
    page = samples.self_contained_page(os.path.dirname(paths["html"]))
    assert 'src="00_' not in page and "../index.html" not in page
    assert page.count('src="data:audio/wav;base64,') == 2 and page.count('src="data:image/png;base64,') == 3
    import base64

    encoded = page.split('src="data:audio/wav;base64,', 1)[1].split('"', 1)[0]
    assert base64.b64decode(encoded) == open(paths["wav"][0], "rb").read()


def test_eval_reads_the_recipe_from_the_run_not_from_the_preset(tmp_path):
    """A model trained without the quick recipe's tilt and weight average (an older run) is evaluated
    as it was trained: eval and sample parse the run's operative config, and the preset's recipe
    file is not among their files."""
    quick = presets.get_preset("quick")
    (tmp_path / "operative_config-600.gin").write_text(
        "Harmonic.initial_tilt_db_per_octave = 0.0\nTrainer.ema_momentum = None\n")
    steps._parse_gin(quick, steps._eval_bindings(str(tmp_path), _manifest(quick), quick),
                     ["datasets/tfrecord.gin", "eval/basic_f0_ld.gin"], [], [], operative_config_dir=str(tmp_path))
    try:
        assert gin.query_parameter("Harmonic.initial_tilt_db_per_octave") == 0.0
        assert gin.query_parameter("Trainer.ema_momentum") is None
    finally:
        gin.clear_config()
    steps._parse_gin(quick, {}, steps.train_gin_files(quick), [], [])  # Training a new one: the recipe.
    try:
        assert gin.query_parameter("Harmonic.initial_tilt_db_per_octave") == 6.0
        assert gin.query_parameter("Trainer.ema_momentum") == 0.99
    finally:
        gin.clear_config()
