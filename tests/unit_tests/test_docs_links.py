"""Every relative link in the README and the docs pages leads somewhere.

The reference moved from the README into `docs/`; a link to a page that does
not exist, or to a heading that is not on it, fails here. Anchors are GitHub's:
the heading in lower case, without punctuation, spaces as hyphens.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"^( *)```[^`\n]*\n.*?^\1```[ \t]*$", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^#{1,6} (.+)$", re.MULTILINE)
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _prose(page: Path) -> str:
    """The page without its code blocks (a `# comment` there is no heading)."""
    return _FENCE.sub("", page.read_text(encoding="utf-8"))


def _anchors(page: Path) -> set[str]:
    """The page's heading anchors; a repeated heading gets `-1`, `-2`, ..."""
    anchors: set[str] = set()
    seen: Counter[str] = Counter()
    for heading in _HEADING.findall(_prose(page)):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(f"{slug}-{seen[slug]}" if seen[slug] else slug)
        seen[slug] += 1
    return anchors


def _links() -> list[tuple[str, str]]:
    return [
        (page.relative_to(ROOT).as_posix(), target)
        for page in PAGES
        for target in _LINK.findall(_prose(page))
        if not re.match(r"[a-z]+:", target)
    ]


def test_the_pages_and_their_links_are_found() -> None:
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}
    assert {"README.md", "docs/README.md", "docs/configuration.md"} <= names
    assert len(_links()) >= len(PAGES)
    assert "development" in _anchors(ROOT / "README.md")
    assert "the-documented-api-endpointapi" in _anchors(ROOT / "docs/endpoints.md")


@pytest.mark.parametrize(("page", "target"), _links())
def test_link_resolves(page: str, target: str) -> None:
    path, _, anchor = target.partition("#")
    destination = (ROOT / page).parent / path if path else ROOT / page
    assert destination.resolve().is_relative_to(ROOT), target
    assert destination.exists(), f"{page} links to missing {target}"
    if anchor:
        assert anchor in _anchors(destination), f"{page}: no heading for {target}"


def test_every_docs_page_is_in_the_index() -> None:
    index = (ROOT / "docs/README.md").read_text(encoding="utf-8")
    linked = set(_LINK.findall(index))
    for page in PAGES[1:]:
        if page.name != "README.md":
            assert page.name in linked, f"docs/README.md does not list {page.name}"
