"""The version lives in one place, and the changelog says what it added."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from langchain_dynaspark import __version__
from langchain_dynaspark.transport import USER_AGENT

ROOT = Path(__file__).parents[2]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def test_the_version_is_read_from_version_py() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["hatch"]["version"]["path"] == (
        "langchain_dynaspark/_version.py"
    )
    assert USER_AGENT.endswith(f"/{__version__}")


def test_the_changelog_has_an_entry_for_the_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = re.findall(r"^## (\d+\.\d+\.\d+\S*)\s*$", changelog, re.MULTILINE)
    assert released, "no version headings in CHANGELOG.md"
    assert released[0] == __version__
    entry = changelog.split(f"## {__version__}", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"^- \S", entry, re.MULTILINE), "the entry lists nothing"


def test_the_license_matches_the_project_metadata() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License\n")
