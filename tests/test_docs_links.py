"""The README and the pages under docs/ link to files and headings that exist: a page moved or a
heading renamed shows here, not as a dead link a reader follows."""

import glob
import os
import re

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md"] + sorted(os.path.relpath(path, REPO) for path in glob.glob(os.path.join(REPO, "docs", "*.md")))
# Inline Markdown links to a relative target, with an optional #anchor: [text](target#anchor).
LINK = re.compile(r"\]\((?!https?://|mailto:)([^)#\s]*)(?:#([^)\s]+))?\)")


def anchors(text):
    """The anchors a Markdown page's headings make, as GitHub writes them (outside code blocks)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return {re.sub(r"[^\w\- ]", "", heading).strip().lower().replace(" ", "-")
            for heading in re.findall(r"^#+ (.+)$", text, re.M)}


def test_anchors_are_githubs():
    assert anchors("# Title\n## What `make run` does\n### Porting from magenta's ddsp\n```\n# not a heading\n```") == {
        "title", "what-make-run-does", "porting-from-magentas-ddsp"}


def read(path):
    with open(os.path.join(REPO, path), encoding="utf-8") as file:
        return file.read()


def test_the_docs_pages_exist_and_the_readme_links_each():
    readme = read("README.md")
    names = {os.path.basename(page) for page in PAGES[1:]}
    assert {"library.md", "prepare.md", "training.md", "pipeline.md", "cloud.md", "playing.md",
            "testing.md"} <= names, names
    for name in names:
        assert f"](docs/{name})" in readme, f"README.md does not link docs/{name}"


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_reaches_a_file_and_heading(page):
    text = read(page)
    links = LINK.findall(text)
    assert links, f"{page} has no links"
    for target, anchor in links:
        path = os.path.normpath(os.path.join(os.path.dirname(page), target)) if target else page
        assert os.path.exists(os.path.join(REPO, path)), f"{page} links to {target}, which does not exist ({path})"
        if anchor and path.endswith(".md"):
            assert anchor in anchors(read(path)), f"{page} links to {path}#{anchor}, which no heading there makes"
