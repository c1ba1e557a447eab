r"""A Dynaspark answer body -> the reply text, and client-side stop sequences. Pure.

The form endpoint answers `200` with JSON `{"response": "<text>"}`. A `200` is not
a promise of that: maintenance and proxy pages are HTML, and the service can answer
`200` with `{"error": "..."}`. Anything but a string `response` is an error, never
the model's answer. A lone surrogate in the reply (from a `"\ud800"` escape) becomes
U+FFFD here, so the reply can be shown, parsed and sent back in a repair request.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Any

from langchain_dynaspark.errors import DynasparkResponseError
from langchain_dynaspark.json_values import without_surrogates

__all__ = ["apply_stop", "reply_text", "server_message"]

_MAX_SERVER_MESSAGE = 300
_MIN_REDACTED_PROMPT = 8
"""Shorter prompts are not redacted: they would blank out ordinary words."""
_REDACTED = "[your prompt]"
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>|\s+")


def reply_text(body: bytes, *, prompt: str | None = None) -> str:
    """Return the reply text of a `200` answer, lone surrogates replaced by U+FFFD.

    Args:
        body: The answer body.
        prompt: The prompt that was sent; an error that quotes it says
            `[your prompt]` instead.

    Raises:
        DynasparkResponseError: If the body is not `{"response": "<text>"}`.
    """
    try:
        data: Any = json.loads(body)
    except ValueError:
        kind = "an HTML page" if _looks_like_html(body) else "a body that is not JSON"
        msg = (
            f"Dynaspark answered 200 with {kind} instead of its JSON reply. The "
            "service may be under maintenance or still waking up: retry in a "
            "minute. If this persists, the form path may have moved (set `path=`)."
        )
        raise DynasparkResponseError(
            msg, status_code=200, server_message=server_message(body, prompt=prompt)
        ) from None
    response = data.get("response") if isinstance(data, dict) else None
    if isinstance(response, str):
        text: str = without_surrogates(response)
        return text
    error = data.get("error") if isinstance(data, dict) else None
    if error is not None:
        said = _shorten(str(error), prompt)
        msg = f"Dynaspark reported an error: {said}. Retry later, or change the input."
        raise DynasparkResponseError(msg, status_code=200, server_message=said)
    if isinstance(data, dict) and "response" in data and response is None:
        msg = (
            "Dynaspark answered 200 with `response: null`: the service produced no "
            "answer text (its model may have failed or refused). Retry, or change "
            "the input."
        )
        raise DynasparkResponseError(msg, status_code=200, server_message=None)
    what = (
        "has no `response` field"
        if response is None
        else f"has a non-string `response` ({type(response).__name__})"
    )
    msg = (
        f"Dynaspark answered 200 with JSON that {what}. The service's reply format "
        "may have changed; please report it."
    )
    raise DynasparkResponseError(
        msg, status_code=200, server_message=server_message(body, prompt=prompt)
    )


def server_message(body: bytes, *, prompt: str | None = None) -> str | None:
    """The service's own words in an answer body, shortened; `None` if empty.

    Uses `{"error": ...}` from JSON, the `<title>` of an HTML page, or the text.
    Where it quotes `prompt`, it says `[your prompt]` instead.
    """
    if not body.strip():
        return None
    if _looks_like_html(body):
        title = _TITLE.search(body)
        markup = (title.group(1) if title else body).decode("utf-8", "replace")
        return _shorten(html.unescape(_TAGS.sub(" ", markup)), prompt)
    try:
        data = json.loads(body)
    except ValueError:
        return _shorten(body.decode("utf-8", "replace"), prompt)
    if isinstance(data, dict) and "error" in data:
        return _shorten(str(data["error"]), prompt)
    return _shorten(body.decode("utf-8", "replace"), prompt)


def apply_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """Cut `text` at the earliest occurrence of any stop sequence.

    Returns:
        The text, and whether a stop sequence cut it.
    """
    if not stop:
        return text, False
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=-1)
    if cut < 0:
        return text, False
    return text[:cut], True


def _looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html")) or b"<html" in head


def _shorten(text: str, prompt: str | None) -> str:
    if prompt is not None and len(prompt.strip()) >= _MIN_REDACTED_PROMPT:
        text = text.replace(prompt.strip(), _REDACTED)
    text = " ".join(text.split())
    if len(text) <= _MAX_SERVER_MESSAGE:
        return text
    return text[: _MAX_SERVER_MESSAGE - 3] + "..."
