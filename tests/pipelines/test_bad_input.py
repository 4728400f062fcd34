"""`ddsp_pipeline run` refuses bad input before any step runs, with a message that says
what is wrong and what to do (exit status 2)."""

import os

from pipelines import cli


def test_pattern_that_matches_no_audio(tmp_path, capsys):
    status = cli.main(["run", "--audio", str(tmp_path / "nothing" / "*.wav"), "--pipeline-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert "step 'prepare_tfrecord' cannot start" in err and "matches no file" in err
    assert str(tmp_path / "nothing" / "*.wav") in err
    assert not os.path.exists(tmp_path / ".status"), "nothing ran"


def test_unknown_preset(tmp_path, capsys):
    status = cli.main(["run", "--preset", "fast", "--pipeline-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert "Unknown preset 'fast'" in err and "'quick'" in err and "'full'" in err


def test_pipeline_root_that_is_not_writable(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    status = cli.main(["run", "--pipeline-root", str(blocker / "root")])
    err = capsys.readouterr().err
    assert status == 2
    assert f"The pipeline root {blocker / 'root'} is not writable" in err and "--pipeline-root" in err


def test_compile_writes_yaml(tmp_path, capsys):
    assert cli.main(["compile", "--output", str(tmp_path / "p.yaml")]) == 0
    assert (tmp_path / "p.yaml").read_text().startswith("# PIPELINE DEFINITION\n# Name: ddsp-clarinet")


def test_gs_audio_that_cannot_be_listed(gcs_emulator, tmp_path, capsys):
    """A gs:// glob in a bucket that does not exist (the storage emulator's)."""
    status = cli.main(["run", "--audio", "gs://no-such-bucket-ddsp/audio/*.flac", "--eval-audio", "",
                       "--pipeline-root", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "step 'prepare_tfrecord' cannot start" in err and "gs://no-such-bucket-ddsp/audio/*.flac" in err
    assert not os.path.exists(tmp_path / ".status"), "nothing ran"
