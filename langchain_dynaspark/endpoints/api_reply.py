"""The API's answers read: a whole reply, and one streamed event. Pure.

A whole `200` answer is `{"response", "model", "usage"}` JSON, an
OpenAI-style object or `text/plain`; anything else is the error it is
(`reply.reply_text`). A streamed event is an OpenAI-style chunk, a
`{"response": ...}` object or plain text; `data: [DONE]` ends the stream.
An event's JSON object is structured when it has one of the styles' keys (or
none at all); its text, `usage`, `model` and `finish_reason` are read from it,
and one that carries none of them is a keep-alive. Rate-limit headers
(`X-RateLimit-Limit`, `-Remaining`, `-Reset`) are read as finite numbers.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from langchain_core.messages import UsageMetadata

from langchain_dynaspark.errors import DynasparkResponseError
from langchain_dynaspark.json_values import without_surrogates
from langchain_dynaspark.reply import Reply, reply_text, server_message

if TYPE_CHECKING:
    from langchain_dynaspark.sse import ServerSentEvent
    from langchain_dynaspark.transport import Answer

__all__ = ["event_reply", "parse_reply", "rate_limit", "read_event", "usage_metadata"]

_STRUCTURED_KEYS = frozenset(
    {
        "choices",
        "response",
        "usage",
        "error",
        "model",
        "finish_reason",
        "object",
        "type",
    }
)
"""An event's JSON object with one of these keys (or none at all) is structured:
the styles' reply keys and event metadata. Any other object is plain text."""


_STRUCTURED_START = re.compile(
    r'\s*\{\s*"(?:' + "|".join(sorted(_STRUCTURED_KEYS)) + ')"'
)
"""The start of a structured event: text that begins so and is not JSON is broken."""


_DONE = Reply(done=True)


_RATE_LIMIT_HEADERS = {
    "limit": "X-RateLimit-Limit",
    "remaining": "X-RateLimit-Remaining",
    "reset": "X-RateLimit-Reset",
}


def parse_reply(answer: Answer, *, prompt: str | None = None) -> Reply:
    """A whole `200` answer -> its reply.

    Raises:
        DynasparkResponseError: If the answer is not a reply (HTML, an
            `{"error": ...}`, JSON without a `response`).
    """
    limits = rate_limit(answer.headers)
    body = answer.body
    if answer.content_type == "text/plain" and body.strip() and body[:1] != b"<":
        return Reply(body.decode("utf-8", "replace"), rate_limit=limits, done=True)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        text = _reply_text(data)
        if text is not None:
            return Reply(
                text,
                model=_string(data.get("model")),
                usage=usage_metadata(data.get("usage")),
                finish_reason=_finish_reason(data),
                rate_limit=limits,
                done=True,
            )
    # Not a reply: raises the error that says what it was.
    return Reply(reply_text(body, prompt=prompt), rate_limit=limits, done=True)


def event_reply(
    event: ServerSentEvent, *, prompt: str | None = None, structured: bool = False
) -> Reply | None:
    """One server-sent event -> its piece of the reply; `None` if it carries none.

    Keep-alives carry none: a named event other than `error` (such as
    `event: ping`), an empty `data:`, and a JSON object without text or
    metadata (`{}`, `{"type": "ping"}`, `{"error": null}`).

    Args:
        event: The event.
        prompt: The prompt that was sent; an error that quotes it says
            `[your prompt]` instead.
        structured: Whether the stream has sent JSON objects before: then
            data that starts like one but is not valid JSON is broken, not text.

    Raises:
        DynasparkResponseError: If the event reports an error, or is broken
            JSON.
    """
    return read_event(event, prompt, structured)[0]


def usage_metadata(usage: Any) -> UsageMetadata | None:
    """The service's token counts (OpenAI or LangChain names); never estimated."""
    if not isinstance(usage, dict):
        return None
    inputs = _count(usage, "prompt_tokens", "input_tokens")
    outputs = _count(usage, "completion_tokens", "output_tokens")
    if inputs is None or outputs is None:
        return None
    total = _count(usage, "total_tokens")
    return UsageMetadata(
        input_tokens=inputs,
        output_tokens=outputs,
        total_tokens=inputs + outputs if total is None else total,
    )


def rate_limit(headers: Mapping[str, str]) -> dict[str, float] | None:
    """`X-RateLimit-Limit`, `-Remaining` and `-Reset` as numbers, if sent.

    A header that is not a finite number (`nan`, `inf`, text) is left out.
    """
    found: dict[str, float] = {}
    for key, header in _RATE_LIMIT_HEADERS.items():
        value = headers.get(header)
        if value is None:
            continue
        try:
            number = float(value)
        except ValueError:
            continue
        if math.isfinite(number):
            found[key] = int(number) if number.is_integer() else number
    return found or None


def _reply_text(data: dict[str, Any]) -> str | None:
    r"""The text of a reply object, lone surrogates replaced by U+FFFD.

    A `"\ud800"` escape in the JSON must not reach the message: it could not
    be encoded into the next request (a format repair sends the reply back).
    """
    text = _raw_reply_text(data)
    return None if text is None else str(without_surrogates(text))


def _raw_reply_text(data: dict[str, Any]) -> str | None:
    """The text of a reply object: `response`, or an OpenAI-style choice."""
    response = data.get("response")
    if isinstance(response, str):
        return response
    if isinstance(response, (dict, list)):
        return json.dumps(response, ensure_ascii=False)
    choice = _first_choice(data)
    for key in ("delta", "message"):
        part = choice.get(key)
        content = part.get("content") if isinstance(part, dict) else None
        if isinstance(content, str):
            return content
    text = choice.get("text")
    return text if isinstance(text, str) else None


def _finish_reason(data: dict[str, Any]) -> str | None:
    return _string(_first_choice(data).get("finish_reason")) or _string(
        data.get("finish_reason")
    )


def _first_choice(data: dict[str, Any]) -> dict[str, Any]:
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        return choices[0]
    return {}


def _json_object(data: str) -> dict[str, Any] | None:
    if data[:1] != "{" and not data.lstrip().startswith("{"):
        return None
    try:
        payload = json.loads(data)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def _count(usage: dict[str, Any], *names: str) -> int | None:
    for name in names:
        value = usage.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _raise_stream_error(said: str, prompt: str | None) -> None:
    message = server_message(said.encode(), prompt=prompt)
    msg = (
        f"Dynaspark reported an error in its stream: {message}. Retry later, or "
        "change the input."
    )
    raise DynasparkResponseError(msg, status_code=200, server_message=message)


def read_event(
    event: ServerSentEvent, prompt: str | None, structured: bool
) -> tuple[Reply | None, bool]:
    """`event_reply`, and whether the event was a JSON object."""
    data = event.data
    if event.event != "message":
        if event.event == "error":
            _raise_stream_error(data, prompt)
        return None, False
    payload = _json_object(data)
    if payload is None:
        return _text_piece(data, structured), False
    if payload and _STRUCTURED_KEYS.isdisjoint(payload):
        return Reply(data), False
    if payload.get("error") is not None:
        _raise_stream_error(str(payload["error"]), prompt)
    text = _reply_text(payload)
    usage = payload.get("usage")
    model = _string(payload.get("model"))
    finish_reason = _finish_reason(payload)
    if text is None and not (usage or model or finish_reason):
        return None, True
    piece = Reply(
        text or "",
        model=model,
        usage=usage_metadata(usage) if usage else None,
        finish_reason=finish_reason,
    )
    return piece, True


def _text_piece(data: str, structured: bool) -> Reply | None:
    """The piece of an event whose data is not a JSON object."""
    if not data:
        return None
    if data.strip() == "[DONE]":
        return _DONE
    if (structured and data.lstrip()[:1] == "{") or _STRUCTURED_START.match(data):
        msg = (
            "An event of Dynaspark's stream is not valid JSON, so the stream is "
            "broken; the reply was not used. Call again."
        )
        raise DynasparkResponseError(msg, status_code=200)
    return Reply(data)
