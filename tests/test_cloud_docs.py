"""docs/cloud.md and the README's cloud setup name Beam options that Beam knows, and link
to sections that exist: a renamed flag or heading shows here, not in a failed cloud run."""

import os
import re

from tests.training.conftest import REPO


def _read(*path):
    with open(os.path.join(REPO, *path), encoding="utf-8") as file:
        return file.read()


def _beam_flags(text):
    """{"--name": value or None} of each `--beam-option=--name[=value]` in `text` (lower case: not the NAME placeholder)."""
    return {name: value or None for name, value in re.findall(r"--beam-option=(--[a-z_]+)(?:=([^\s`]+))?", text)}


def test_the_dataflow_flags_the_docs_give_are_parsed_by_beam():
    from apache_beam.options.pipeline_options import PipelineOptions

    flags = _beam_flags(_read("docs", "cloud.md"))
    for name in ("--network", "--subnetwork", "--no_use_public_ips", "--service_account_email", "--runner"):
        assert name in flags, f"docs/cloud.md no longer gives {name}"
    argv = [name if value is None else f"{name}={value}" for name, value in flags.items()]
    parsed = PipelineOptions(argv).get_all_options(retain_unknown_options=True)
    known = set(PipelineOptions([]).get_all_options())
    for name, value in flags.items():
        dest = name[2:]
        if dest.startswith("no_"):  # Beam's negative form: --no_use_public_ips sets use_public_ips False.
            assert parsed[dest[3:]] is False, name
            continue
        assert dest in known, f"{name} (docs/cloud.md) is not an option Beam knows"
        if value is not None:
            assert parsed[dest] == value, name


def test_the_readme_links_to_the_cloud_setup_that_exists():
    readme, cloud = _read("README.md"), _read("docs", "cloud.md")
    anchors = {re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-")
               for heading in re.findall(r"^#+ (.+)$", readme, re.M)}
    for anchor in re.findall(r"\]\(#(cloud-setup[\w-]*)\)", readme):
        assert anchor in anchors, f"README links to #{anchor}, which no heading makes"
    cloud_anchors = {re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-")
                     for heading in re.findall(r"^#+ (.+)$", cloud, re.M)}
    for anchor in re.findall(r"\]\(docs/cloud\.md#([\w-]+)\)", readme):
        assert anchor in cloud_anchors, f"README links to docs/cloud.md#{anchor}, which it has not"
    assert "](docs/cloud.md)" in readme
