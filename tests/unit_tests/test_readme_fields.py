"""The README's field tables (and the docs pages') name every field with its default."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel

from langchain_dynaspark import ChatDynaspark

ROOT = Path(__file__).parents[2]
README = "\n".join(
    path.read_text(encoding="utf-8")
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
)
_ROW = re.compile(r"^\| `(\w+)`[^|]*\| `([^`]*)`([^|]*)\|", re.MULTILINE)
"""A table row: the field, then the first code span of the default column."""
FIELDS = sorted(set(ChatDynaspark.model_fields) - set(BaseChatModel.model_fields))
ROWS = {name: (shown, rest) for name, shown, rest in _ROW.findall(README)}


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


def test_the_tables_are_found() -> None:
    assert {"model", "timeout", "max_image_side"} <= set(ROWS)


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_is_listed_with_its_default(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert name in ROWS, f"README lists no row for the field {name!r}"
    shown, rest = ROWS[name]
    field = ChatDynaspark.model_fields[name]
    if field.default_factory is not None:
        # `base_url`, `api_key`: read from the environment, else the fallback.
        assert shown.startswith("$DYNASPARK_"), f"{name}: README says {shown!r}"
        monkeypatch.delenv(shown[1:], raising=False)
        fallback = field.default_factory()  # type: ignore[call-arg]
        assert ("none" if fallback is None else f"`{fallback}`") in rest
        return
    default = field.default
    assert _literal(shown) == default, f"{name}: README says {shown!r}"
    assert type(_literal(shown)) is type(default) or isinstance(default, float)
