"""docs/cloud.md and the cloud setup of docs/pipeline.md name Beam options that Beam knows, and link
to sections that exist: a renamed flag or heading shows here, not in a failed cloud run."""

import os
import re

from tests.training_runs import REPO


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


def _anchors(text):
    """The anchors a Markdown page's headings make, as GitHub writes them."""
    return {re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", text, re.M)}


def test_the_readme_and_the_pipeline_page_link_to_the_cloud_setup_that_exists():
    readme, pipeline, cloud = _read("README.md"), _read("docs", "pipeline.md"), _read("docs", "cloud.md")
    own_links = re.findall(r"\]\(#(cloud-setup[\w-]*)\)", pipeline)
    assert own_links, "docs/pipeline.md no longer links its cloud setup section"
    for anchor in own_links:
        assert anchor in _anchors(pipeline), f"docs/pipeline.md links to #{anchor}, which no heading makes"
    for page, text, prefix in (("README.md", readme, "docs/"), ("docs/pipeline.md", pipeline, "")):
        for anchor in re.findall(r"\]\(" + re.escape(prefix) + r"cloud\.md#([\w-]+)\)", text):
            assert anchor in _anchors(cloud), f"{page} links to docs/cloud.md#{anchor}, which it has not"
        assert f"]({prefix}cloud.md)" in text, f"{page} no longer links docs/cloud.md"
