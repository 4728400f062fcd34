"""The pipeline-parameter flags (pipelines/pipeline_flags.py): one definition for `run` and
`submit`, one 'not given' value, and Beam options as a list."""

import argparse

import pytest

from pipelines import cli, local, pipeline_flags

SHARED = {"--audio", "--eval-audio", "--preset", "--num-steps", "--batch-size", "--crepe-capacity", "--sample-rate",
          "--seed", "--gin-file", "--gin-param", "--beam-option", "--beam-options", "--no-cache", "--no-resume"}


def _commands():
    parser = cli.build_parser()
    return next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction)).choices


def _actions(parser):
    """{option string: argparse action} of a parser."""
    return {option: action for action in parser._actions for option in action.option_strings}


def _definition(action):
    return (type(action), tuple(action.option_strings), action.dest, action.help, action.default, action.type,
            action.choices, action.nargs, action.metavar)


def test_run_and_submit_share_one_definition_of_each_pipeline_flag():
    alone = argparse.ArgumentParser()
    pipeline_flags.add_arguments(alone)
    shared = {option: action for option, action in _actions(alone).items() if option not in ("-h", "--help")}
    assert set(shared) == SHARED
    commands = _commands()
    for command in ("run", "submit"):
        actions = _actions(commands[command])
        for option, action in shared.items():
            assert _definition(actions[option]) == _definition(action), (command, option)


@pytest.mark.parametrize("command, extra", [("run", []), ("submit", ["--kfp-host", "http://h"])])
def test_a_flag_not_given_is_none_or_empty_in_both_commands(command, extra):
    args = cli.build_parser().parse_args([command, *extra])
    assert (args.audio, args.eval_audio, args.preset, args.num_steps, args.batch_size, args.crepe_capacity,
            args.seed) == (None,) * 7
    assert (args.gin_file, args.gin_param, args.beam_options, args.no_cache, args.no_resume) \
        == ([], [], [], False, False)


def test_run_passes_a_beam_option_with_commas_intact():
    args = cli.build_parser().parse_args(["run", "--beam-option=--runner=DirectRunner",
                                          "--beam-option=--experiments=a,b"])
    arguments = local.pipeline_arguments("x.wav", beam_options=args.beam_options)
    assert arguments["beam_pipeline_options"] == ["--runner=DirectRunner", "--experiments=a,b"]
    # None given: the pipeline's default (the local runner) is kept.
    assert "beam_pipeline_options" not in local.pipeline_arguments("x.wav", beam_options=[])


def test_the_deprecated_comma_separated_flag_is_split_and_says_so(capsys):
    args = cli.build_parser().parse_args(["run", "--beam-options=--runner=DirectRunner,--direct_num_workers=2"])
    assert args.beam_options == ["--runner=DirectRunner", "--direct_num_workers=2"]
    assert "--beam-options is deprecated" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["--num-steps", "0"], "--num-steps must be at least 1"),
    (["--batch-size", "-2"], "--batch-size must be at least 1"),
    (["--preset", "fast"], "Unknown preset 'fast'"),
    (["--seed", "-1"], "--seed must be a whole number from 0 to 2147483647 (leave it out"),
    (["--seed", str(2**31)], "--seed must be a whole number from 0 to 2147483647"),
])
def test_run_refuses_values_no_command_can_use(argv, expected, tmp_path, capsys):
    assert cli.main(["run", "--pipeline-root", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ddsp_pipeline run: error: ") and expected in err, err


def test_run_passes_the_seed_to_the_pipeline_only_when_given(tmp_path, monkeypatch):
    """(local.run is replaced: the run itself is tests/pipelines/test_local_run.py's.)"""
    given = []

    def run(**kwargs):
        given.append(kwargs)
        return local.RunResult(run_name="r", pipeline_root=str(tmp_path), artifacts={}, metrics={}, steps={})

    monkeypatch.setattr(local, "run", run)
    assert cli.main(["run", "--pipeline-root", str(tmp_path), "--seed", "7"]) == 0
    assert cli.main(["run", "--pipeline-root", str(tmp_path)]) == 0
    assert given[0]["seed"] == 7 and "seed" not in given[1]
    assert local.pipeline_arguments("x.wav", seed=7)["seed"] == 7
    for seed in (None, -1):  # The pipeline's default (-1: drawn at train time) is kept.
        assert "seed" not in local.pipeline_arguments("x.wav", seed=seed)
    assert local.pipeline_arguments("x.wav", seed=0)["seed"] == 0


def test_the_summary_says_the_seed_training_used(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    result = local.RunResult(run_name="r", pipeline_root=str(tmp_path), artifacts={"model": str(model)}, metrics={},
                             steps={})
    assert local.train_seed(str(model)) is None  # No train_state.json.
    (model / "train_state.json").write_text('{"step": 2, "status": "finished"}')  # An older run's: no seed.
    assert local.train_seed(str(model)) is None
    assert not any("training seed" in line for line in local.summary_lines(result))
    (model / "train_state.json").write_text('{"step": 2, "status": "finished", "seed": 1234}')
    result.seed = local.train_seed(str(model))
    assert result.seed == 1234
    assert "  training seed: 1234 (--seed 1234 trains with it again)" in local.summary_lines(result)
