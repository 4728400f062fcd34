"""The five components made with `make_component` and called through `python_func`, as kfp's
executor calls them: with artifact objects whose URI is a local folder (so `.path` is that
folder) and an empty `.metadata` that the component fills in.

Chained once per session, each step a fixture so that a module runs only the steps it needs:
prepare one bundled note for training and another as held-out audio (tiny CREPE, the quick
preset), train the tiny model for 2 steps, then eval, sample and export it.
"""

import dataclasses
import os
import shutil

import pytest

from components.image import make_component
from tests.training_runs import REPO, TINY_MODEL_PARAMS, clean_global_state

# Two ~3 s clarinet notes: the first is trained on, the second held out (eval_audio_pattern).
TRAIN_NOTE = os.path.join(REPO, "data", "clarinet", "notes", "clarinet_m050_pp.flac")
EVAL_NOTE = os.path.join(REPO, "data", "clarinet", "notes", "clarinet_m051_mf.flac")
NUM_STEPS = 2
FINGERPRINT = "fingerprint-of-the-test-notes"
SAMPLED_EXAMPLES = 2  # Of the 6 held-out examples; the quick preset samples 6.


def output(artifact_class, folder, name):
    """An output artifact as kfp's executor makes one: the URI a path under `folder`, no metadata."""
    return artifact_class(name=name, uri=str(folder / name))


def as_input(artifact):
    """The input artifact a later step gets for `artifact`: its URI and a copy of its metadata."""
    return type(artifact)(name=artifact.name, uri=artifact.uri, metadata=dict(artifact.metadata))


def files(folder):
    """{relative path: (size, mtime)} of every file under `folder`."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            found[os.path.relpath(path, folder)] = (os.path.getsize(path), os.path.getmtime(path))
    return found


def call(function, **kwargs):
    """`function` made into a kfp component and run through its python_func, with gin and logging
    left as they were found (the steps parse gin globally and set the root logger's level)."""
    component = make_component(function)
    assert component.python_func is function
    with clean_global_state():
        return component.python_func(**kwargs)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory):
    """The Dataset of `prepare_tfrecord`: one note for training, one held out."""
    from kfp.dsl import Dataset

    from components.prepare_tfrecord.component import prepare_tfrecord

    audio, held_out = tmp_path_factory.mktemp("audio"), tmp_path_factory.mktemp("held_out")
    shutil.copy(TRAIN_NOTE, audio)
    shutil.copy(EVAL_NOTE, held_out)
    dataset = output(Dataset, tmp_path_factory.mktemp("prepare_tfrecord"), "dataset")
    call(prepare_tfrecord, audio_pattern=str(audio / "*.flac"), dataset=dataset, preset="quick",
         crepe_capacity="tiny", eval_audio_pattern=str(held_out / "*.flac"), audio_fingerprint=FINGERPRINT)
    return dataset


@dataclasses.dataclass
class Trained:
    """What `train` wrote and was given, and `files` of the dataset folder before it ran and of
    the model folder after (to check that the later steps only read them)."""

    model: object  # kfp.dsl.Model
    dataset: object  # kfp.dsl.Dataset, the input
    dataset_files: dict
    model_files: dict


@pytest.fixture(scope="session")
def trained(prepared, tmp_path_factory):
    """`train` on the prepared dataset: the tiny model, NUM_STEPS steps of batch 2."""
    from kfp.dsl import Model

    from components.train.component import train

    dataset = as_input(prepared)
    dataset_files = files(dataset.path)
    model = output(Model, tmp_path_factory.mktemp("train"), "model")
    call(train, dataset=dataset, model=model, preset="quick", num_steps=NUM_STEPS, batch_size=2,
         gin_params=list(TINY_MODEL_PARAMS))
    return Trained(model, dataset, dataset_files, files(model.path))


@pytest.fixture(scope="session")
def evaluated(prepared, trained, tmp_path_factory):
    """(metrics, eval_logs) of `eval`."""
    from kfp.dsl import Artifact, Metrics

    from components.eval.component import eval as eval_component

    folder = tmp_path_factory.mktemp("eval")
    metrics, eval_logs = output(Metrics, folder, "metrics"), output(Artifact, folder, "eval_logs")
    call(eval_component, dataset=as_input(prepared), model=as_input(trained.model), metrics=metrics,
         eval_logs=eval_logs, preset="quick")
    return metrics, eval_logs


@pytest.fixture(scope="session")
def sampled(prepared, trained, tmp_path_factory):
    """(page, samples) of `sample`, of SAMPLED_EXAMPLES examples (a gin param: fewer plots to draw)."""
    from kfp.dsl import HTML, Artifact

    from components.sample.component import sample

    folder = tmp_path_factory.mktemp("sample")
    page, samples = output(HTML, folder, "page"), output(Artifact, folder, "samples")
    call(sample, dataset=as_input(prepared), model=as_input(trained.model), page=page, samples=samples,
         preset="quick", gin_params=[f"sample.batch_size = {SAMPLED_EXAMPLES}"])
    return page, samples


@pytest.fixture(scope="session")
def exported(trained, tmp_path_factory):
    """(exported, the model input it was given) of `export`."""
    from kfp.dsl import Model

    from components.export.component import export

    model = as_input(trained.model)
    exported = output(Model, tmp_path_factory.mktemp("export"), "exported")
    call(export, model=model, exported=exported)
    return exported, model
