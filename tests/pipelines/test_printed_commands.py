"""The commands `ddsp_pipeline run` (so `make run`) prints at its end run as printed, from the
project folder, in a shell whose PATH lacks .venv/bin: a new user's shell, where a bare
`tensorboard` or `ddsp_play` is "command not found"."""

import os
import shlex
import subprocess

import pytest

from pipelines import local

REPO = local.REPO_DIR
# A new user's PATH: the system folders only, no virtualenv.
NEW_USER_PATH = "/usr/bin:/bin"
COMMAND_LABELS = ("View the training curves", "Play it")


def printed_commands(lines):
    """{label: command} of the summary's lines of the form 'label: command'."""
    commands = {}
    for line in lines:
        label, _, command = line.partition(":")
        if label in COMMAND_LABELS:
            commands[label] = command.strip()
    return commands


def finished_run(tmp_path):
    run = tmp_path / "pipeline" / "ddsp-clarinet-20260101-000000"
    artifacts = {name: str(run / task / name) for task, name in
                 (("train", "model"), ("eval", "eval_logs"), ("sample", "samples"), ("export", "exported"))}
    return local.RunResult(run_name="20260101-000000", pipeline_root=str(tmp_path / "pipeline"),
                           artifacts=artifacts, metrics={}, steps={})


def test_the_summary_prints_tensorboard_and_ddsp_play_with_this_runs_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    result = finished_run(tmp_path)
    commands = printed_commands(local.summary_lines(result))
    assert set(commands) == set(COMMAND_LABELS), commands
    tensorboard = shlex.split(commands["View the training curves"])
    assert tensorboard[1:] == ["--logdir", result.tensorboard_logdir]
    play = shlex.split(commands["Play it"])
    assert play[1:] == ["--model", result.artifacts["exported"], "--output", "melody.wav"]


@pytest.mark.parametrize("label", COMMAND_LABELS)
def test_each_printed_command_starts_from_the_project_folder(label, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    command = printed_commands(local.summary_lines(finished_run(tmp_path)))[label]
    program, *arguments = shlex.split(command)
    if program == "make":
        dry_run = subprocess.run(["make", "-n", *arguments], cwd=REPO, capture_output=True, text=True, check=False)
        assert dry_run.returncode == 0, f"`{command}` ({label}): the Makefile has no such target: {dry_run.stderr}"
        return
    found = subprocess.run(["bash", "-c", 'command -v "$0"', program], cwd=REPO, capture_output=True, text=True,
                           env={"PATH": NEW_USER_PATH}, check=False)
    assert found.returncode == 0, (
        f"`{command}` ({label}): a shell in {REPO} with PATH={NEW_USER_PATH} cannot find `{program}` "
        "(command not found): print its path (e.g. .venv/bin/...) or a make target.")
    path = os.path.join(REPO, program)
    assert os.path.isfile(path) and os.access(path, os.X_OK), f"{program} is not an executable file in {REPO}"


def test_console_command_is_the_path_next_to_this_python(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    path = local.console_command("ddsp_play")
    assert os.sep in path and not path.startswith(os.pardir), path
    assert os.path.samefile(os.path.join(REPO, path), os.path.join(os.path.dirname(local.sys.executable), "ddsp_play"))
    monkeypatch.chdir(tmp_path)  # Outside the project: the absolute path.
    assert os.path.isabs(local.console_command("ddsp_play"))
    assert local.console_command("no_such_program_here") is None
