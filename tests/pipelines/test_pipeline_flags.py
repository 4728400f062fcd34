"""The pipeline-parameter flags (pipelines/pipeline_flags.py): one definition for `run` and
`submit`, one 'not given' value, and Beam options as a list."""

import argparse

import pytest

from pipelines import cli, local, pipeline_flags

SHARED = {"--audio", "--eval-audio", "--preset", "--num-steps", "--batch-size", "--crepe-capacity", "--sample-rate",
          "--gin-file", "--gin-param", "--beam-option", "--beam-options", "--no-cache", "--no-resume"}


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
    assert (args.audio, args.eval_audio, args.preset, args.num_steps, args.batch_size, args.crepe_capacity) \
        == (None,) * 6
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
])
def test_run_refuses_values_no_command_can_use(argv, expected, tmp_path, capsys):
    assert cli.main(["run", "--pipeline-root", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ddsp_pipeline run: error: ") and expected in err, err
