"""Each component's README documents its real interface: the inputs table lists every input of
the kfp component with its default, every output is named, and the overview links to it."""

import importlib
import os
import re

import pytest

from components.image import make_component
from tests.training_runs import REPO

COMPONENTS = {
    "prepare_tfrecord": "prepare_tfrecord",
    "train": "train",
    "eval": "eval",
    "sample": "sample",
    "export": "export",
}


def component(folder):
    module = importlib.import_module(f"components.{folder}.component")
    return make_component(getattr(module, COMPONENTS[folder]))


def read(*path):
    with open(os.path.join(REPO, "components", *path), encoding="utf-8") as file:
        return file.read()


def inputs_table(readme):
    """{name: default cell} of the rows of the README's '## Inputs' table."""
    section = readme.split("## Inputs", 1)[1].split("\n## ", 1)[0]
    return {match[0]: match[1].strip() for match in re.findall(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \|", section, re.M)}


@pytest.mark.parametrize("folder", sorted(COMPONENTS))
def test_readme_lists_every_input_with_its_default(folder):
    spec = component(folder).component_spec
    expected = {name: "(required)" if not input_spec.optional else f"`{input_spec.default!r}`"
                for name, input_spec in spec.inputs.items()}
    assert inputs_table(read(folder, "README.md")) == expected


@pytest.mark.parametrize("folder", sorted(COMPONENTS))
def test_readme_names_every_output_with_its_type(folder):
    readme = read(folder, "README.md")
    for name, output_spec in component(folder).component_spec.outputs.items():
        type_name = output_spec.type.split("@")[0].split(".")[-1]  # 'system.Model@0.0.1' -> 'Model'
        assert f"`{name}: {type_name}`" in readme, name


def test_overview_links_every_components_readme():
    overview = read("README.md")
    for folder in COMPONENTS:
        assert f"]({folder}/README.md)" in overview, folder
