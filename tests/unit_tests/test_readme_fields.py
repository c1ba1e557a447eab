"""The field tables of the docs name every `ChatDynaspark` field with its default.

The tables live in `docs/configuration.md` (and the image limits in
`docs/images.md`); a row for a field in any other page or in the README must
show the same default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel

from langchain_dynaspark import ChatDynaspark

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_ROW = re.compile(r"^\| `(\w+)`[^|]*\| `([^`]*)`([^|]*)\|", re.MULTILINE)
"""A table row: the field, then the first code span of the default column."""
FIELDS = sorted(set(ChatDynaspark.model_fields) - set(BaseChatModel.model_fields))


def _rows() -> dict[str, list[tuple[str, str, str]]]:
    """Field -> (page, default shown, rest of the default column) of each row."""
    rows: dict[str, list[tuple[str, str, str]]] = {}
    for page in PAGES:
        for name, shown, rest in _ROW.findall(page.read_text(encoding="utf-8")):
            rows.setdefault(name, []).append(
                (page.relative_to(ROOT).as_posix(), shown, rest)
            )
    return rows


ROWS = _rows()


def _literal(shown: str) -> Any:
    named = {"None": None, "True": True, "False": False}
    if shown in named:
        return named[shown]
    if len(shown) > 1 and shown[0] == shown[-1] == '"':
        return shown[1:-1]
    try:
        return int(shown)
    except ValueError:
        return shown


def _pages_listing(name: str) -> set[str]:
    return {page for page, _, _ in ROWS.get(name, [])}


def test_the_tables_are_found() -> None:
    assert {"model", "timeout", "max_image_side"} <= set(ROWS)
    assert "docs/configuration.md" in _pages_listing("model")
    assert "docs/configuration.md" in _pages_listing("timeout")
    assert "docs/images.md" in _pages_listing("max_image_side")


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_is_listed_with_its_default(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert name in ROWS, f"the docs list no row for the field {name!r}"
    field = ChatDynaspark.model_fields[name]
    for page, shown, rest in ROWS[name]:
        if field.default_factory is not None:
            # `base_url`, `api_key`: read from the environment, else the fallback.
            assert shown.startswith("$DYNASPARK_"), f"{name}: {page} says {shown!r}"
            monkeypatch.delenv(shown[1:], raising=False)
            fallback = field.default_factory()  # type: ignore[call-arg]
            assert ("none" if fallback is None else f"`{fallback}`") in rest
            continue
        default = field.default
        assert _literal(shown) == default, f"{name}: {page} says {shown!r}"
        assert type(_literal(shown)) is type(default) or isinstance(default, float)
