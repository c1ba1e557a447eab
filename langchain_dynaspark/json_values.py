r"""Reply text -> the JSON values in it, and Python literals. Pure: no I/O.

Models write JSON bare, in a fence (with any language tag, or none, or never
closed) or amid prose, and often write almost-JSON: single quotes,
`True`/`False`/`None`, trailing commas. This module finds such values in text
and reads them, strictly in what it returns:

- JSON is read with the standard library decoder first; when that fails, the
  same text is read as a Python literal with `ast` (never `eval`), accepting
  only constants, dicts with string keys, lists, tuples, signed numbers and the
  names `true`/`false`/`null`/`True`/`False`/`None`.
- Cost is linear in the length of the text: one pass pairs the brackets, and
  each outermost `{...}`/`[...]` span is read at most once. Spans that cannot
  start a JSON object (a C function body, say) are skipped without parsing.
- Deep nesting never raises `RecursionError`: such a span is simply not a value.
- Lone surrogates (from `"\ud800"` escapes) are replaced with U+FFFD, so no
  value or text this package returns holds one.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "JsonSpan",
    "NotALiteralError",
    "json_objects",
    "json_spans",
    "literal_value",
    "load_json",
    "without_surrogates",
]

_DECODER = json.JSONDecoder(strict=False)
_BRACKET_TOKENS = re.compile(r'[{}\[\]]|"[^"\\\n]*(?:\\.[^"\\\n]*)*"')
"""A bracket, or a one-line double-quoted string (skipped whole, so brackets in
strings do not count). A quote with no closing quote on its line is ignored."""
_OPENER = {"}": "{", "]": "["}
_OPENERS = frozenset("{[")
_KEY = r"""(?:"(?:[^"\\\n]|\\.)*"|'[^'\\\n]*')\s*:"""
_VALUE_START = re.compile(rf"(?:\[\s*)?\{{\s*(?:{_KEY}|\}})")
"""How a span must open to be worth reading: an object that starts with a
quoted key and a colon (or is empty), or a list of such objects. Code blocks
(`{ if (x) ...`, `{'{', ...}`) fail this without being parsed."""
_SURROGATE = re.compile("[\ud800-\udfff]")
_NAMED_CONSTANTS = {
    "true": True,
    "false": False,
    "null": None,
    "True": True,
    "False": False,
    "None": None,
}
_PARSE_ERRORS = (SyntaxError, ValueError, RecursionError, MemoryError, TypeError)


class NotALiteralError(ValueError):
    """Text or a syntax node that is not a JSON-like literal."""


@dataclass(frozen=True)
class JsonSpan:
    """One outermost bracketed span of a text.

    Attributes:
        start: Where the span starts in the text.
        end: Where it ends (exclusive).
        value: The decoded value, or `None` when `error` is set.
        error: Why the span could not be read, or `None`.
    """

    start: int
    end: int
    value: Any = None
    error: str | None = None


def json_spans(text: str) -> Iterator[JsonSpan]:
    """Yield each outermost `{...}` or `[...]` span of `text`, read with `load_json`.

    Spans come in order and do not overlap; nested values are part of their
    outermost span. A span that does not open like JSON (a code block) is not
    read: it comes with an `error`.
    """
    for start, end in _outermost(_bracket_pairs(text)):
        if not _VALUE_START.match(text, start):
            yield JsonSpan(start, end, error="not JSON")
            continue
        try:
            value = load_json(text[start:end])
        except ValueError as err:
            yield JsonSpan(start, end, error=str(err))
            continue
        yield JsonSpan(start, end, value)


def json_objects(text: str) -> list[dict[str, Any]]:
    """The JSON objects in `text` (bare, fenced or amid prose), in order."""
    return [span.value for span in json_spans(text) if isinstance(span.value, dict)]


def load_json(text: str) -> Any:
    """Read JSON, or almost-JSON written as a Python literal.

    Raises:
        ValueError: If `text` is neither, with the JSON decoder's message.
    """
    try:
        return without_surrogates(_DECODER.decode(text))
    except (ValueError, RecursionError) as err:
        json_error = err if isinstance(err, ValueError) else ValueError("too deep")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except _PARSE_ERRORS:
        raise json_error from None
    try:
        return literal_value(tree.body)
    except NotALiteralError:
        raise json_error from None


def literal_value(node: ast.AST) -> Any:
    """The JSON-like value a Python syntax node spells, without evaluating code.

    Raises:
        NotALiteralError: If the node is anything but a constant (string,
            number, boolean, `None`), a dict with string keys, a list or tuple,
            a signed number, or one of the names `true`, `false`, `null`.
    """
    if isinstance(node, ast.Constant) and isinstance(
        node.value, (str, int, float, bool, type(None))
    ):
        return without_surrogates(node.value)
    if isinstance(node, ast.Name) and node.id in _NAMED_CONSTANTS:
        return _NAMED_CONSTANTS[node.id]
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, (ast.USub, ast.UAdd))
        and isinstance(node.operand, ast.Constant)
        and isinstance(number := node.operand.value, (int, float))
        and not isinstance(number, bool)
    ):
        return -number if isinstance(node.op, ast.USub) else number
    if isinstance(node, (ast.List, ast.Tuple)):
        return [literal_value(item) for item in node.elts]
    if isinstance(node, ast.Dict):
        result: dict[str, Any] = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            name = literal_value(key_node) if key_node is not None else None
            if not isinstance(name, str):
                msg = "object keys must be strings"
                raise NotALiteralError(msg)
            result[name] = literal_value(value_node)
        return result
    msg = f"{type(node).__name__} is not a literal value"
    raise NotALiteralError(msg)


def without_surrogates(value: Any) -> Any:
    """`value` with every lone surrogate in its strings replaced by U+FFFD."""
    if isinstance(value, str):
        if value.isascii():  # O(1), and ASCII holds no surrogates
            return value
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, list):
        return [without_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {without_surrogates(k): without_surrogates(v) for k, v in value.items()}
    return value


def _bracket_pairs(text: str) -> dict[int, int]:
    """Map each `{`/`[` that is closed to the end of its span. One linear pass.

    A closer pairs with the nearest open bracket of its kind, dropping unclosed
    brackets in between; a closer with no open bracket of its kind is ignored.
    """
    pairs: dict[int, int] = {}
    stack: list[int] = []
    open_count = {"{": 0, "[": 0}
    for match in _BRACKET_TOKENS.finditer(text):
        pos = match.start()
        char = text[pos]
        if char in _OPENERS:
            stack.append(pos)
            open_count[char] += 1
        elif char != '"':
            opener = _OPENER[char]
            if not open_count[opener]:
                continue
            while True:
                opened = stack.pop()
                open_count[text[opened]] -= 1
                if text[opened] == opener:
                    break
            pairs[opened] = pos + 1
    return pairs


def _outermost(pairs: dict[int, int]) -> Iterator[tuple[int, int]]:
    """The spans not inside another span, in order."""
    reach = -1
    for start in sorted(pairs):
        if start >= reach:
            reach = pairs[start]
            yield start, reach
