r"""A Dynaspark answer body -> the reply text, and client-side stop sequences. Pure.

`Reply` is what either endpoint's module hands back: the text and whatever the
service said about it. `apply_stop` cuts a whole reply at a stop sequence, and
`StopScanner` does the same to a reply that arrives in pieces.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_dynaspark.errors import DynasparkNotFoundError, DynasparkResponseError
from langchain_dynaspark.json_values import without_surrogates

if TYPE_CHECKING:
    from langchain_core.messages import UsageMetadata

__all__ = ["Reply", "StopScanner", "apply_stop", "reply_text", "server_message"]


@dataclass(frozen=True)
class Reply:
    """A reply, or one streamed piece of it, and what the service said about it.

    Attributes:
        text: The reply text (of this piece).
        model: The model the service says it used.
        usage: The service's own token counts.
        finish_reason: Why the service says the reply ended.
        rate_limit: The rate-limit headers: `limit`, `remaining`, `reset`.
        done: Whether the service said that the reply is complete.
        blocks: Content blocks the reply holds besides its text (the image or
            audio block of an image or speech model).
        source_url: Where the service put what the reply holds (an image's
            `image_url`), if it said.
    """

    text: str = ""
    model: str | None = None
    usage: UsageMetadata | None = None
    finish_reason: str | None = None
    rate_limit: Mapping[str, float] | None = None
    done: bool = False
    blocks: tuple[dict[str, Any], ...] = ()
    source_url: str | None = None


_MAX_SERVER_MESSAGE = 300
_MIN_REDACTED_PROMPT = 8
"""Shorter prompts are not redacted: they would blank out ordinary words."""
_REDACTED = "[your prompt]"
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>|\s+")
_NOT_FOUND = re.compile(rb"not\s+found|\b404\b", re.IGNORECASE)


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
        if _is_not_found_page(body):
            msg = (
                "Dynaspark answered 200 with a 'not found' page instead of its "
                "JSON reply: the path may have moved (set `path=`, `api_path=` "
                "or `base_url=`)."
            )
            raise DynasparkNotFoundError(
                msg, status_code=200, server_message=server_message(body, prompt=prompt)
            ) from None
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


class StopScanner:
    """Cut a reply that arrives in pieces at the first stop sequence.

    A stop sequence split across pieces still cuts the reply, and nothing after
    it is ever released. Only as much text as could still be the start of a stop
    sequence is held back; `flush` releases it when the reply ends.
    """

    def __init__(self, stop: Sequence[str] | None) -> None:
        self._stop = [s for s in stop or () if s]
        self._longest = max(map(len, self._stop), default=0)
        self._held = ""
        self.matched = False
        """Whether a stop sequence has cut the reply."""

    def feed(self, text: str) -> str:
        """Take the next piece; return the text that can be released now."""
        if not self._stop or self.matched:
            return "" if self.matched else text
        text = self._held + text
        released, cut = apply_stop(text, self._stop)
        if cut:
            self.matched = True
            self._held = ""
            return released
        keep = self._could_start_a_stop(text)
        self._held = text[len(text) - keep :]
        return text[: len(text) - keep]

    def flush(self) -> str:
        """The reply has ended: release the text held back."""
        held, self._held = self._held, ""
        return held

    def _could_start_a_stop(self, text: str) -> int:
        """Length of the longest end of `text` that begins some stop sequence."""
        for keep in range(min(len(text), self._longest - 1), 0, -1):
            tail = text[-keep:]
            if any(stop.startswith(tail) for stop in self._stop):
                return keep
        return 0


def _is_not_found_page(body: bytes) -> bool:
    """Whether `body` is an HTML page whose title says "not found" (or 404)."""
    if not _looks_like_html(body):
        return False
    title = _TITLE.search(body)
    return title is not None and bool(_NOT_FOUND.search(title.group(1)))


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
