"""What the local server answers: scripted replies, rules, and the default.

`Reply` scripts one answer (a text, a fault, a stream's shape); `Rule`
answers the prompts matching a pattern. Scripts and rules also come as JSON
(`script_from_json` for `POST /__admin__/script`, `load_rules` for the
command's `--rules` file). Without either, `answer` falls back to the
literal-minded stand-in, then to an echo.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from langchain_dynaspark.testing import stand_in
from langchain_dynaspark.testing.recording import UploadedFile

__all__ = [
    "CompiledRule",
    "Reply",
    "Rule",
    "answer",
    "compile_rules",
    "load_rules",
    "script_from_json",
]


@dataclass(frozen=True)
class Reply:
    """One scripted answer.

    With only `text`, the answer is `200 {"response": text}`. `status`, `body`
    (bytes, str, or a dict sent as JSON), `content_type` and `headers` shape any
    other answer. `delay` waits before answering; `drop` closes the connection
    without answering.

    On an API stream: `events` are the texts of the events (by default the
    reply split into words), written in the style `sse` (`"openai"` chunks,
    `{"response": ...}` objects or plain `"text"`), `event_delay` seconds apart
    (default: the server's); `drop_after` closes the connection after that many
    events; `raw` replaces the whole body with these pieces, written as they
    are. `model` is the model the API says it used; `usage=False` leaves token
    counts out. `echo_target` makes the body `{"error": ...}` quote the
    request target (method, path and query), as some servers' errors do.
    """

    text: str | None = None
    status: int = 200
    body: bytes | str | dict[str, Any] | None = None
    content_type: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    events: Sequence[str] | None = None
    sse: Literal["openai", "response", "text"] = "openai"
    event_delay: float | None = None
    drop_after: int | None = None
    raw: Sequence[bytes | str] | None = None
    model: str | None = None
    usage: bool = True
    echo_target: bool = False


@dataclass(frozen=True)
class Rule:
    """Answer prompts that match `pattern` (a regular expression) with `reply`."""

    pattern: str
    reply: str


CompiledRule = tuple[re.Pattern[str], str]
"""A rule ready for matching: its compiled pattern, and its reply."""


def compile_rules(rules: Iterable[Rule]) -> list[CompiledRule]:
    """The `rules`, compiled, in order."""
    return [(re.compile(rule.pattern), rule.reply) for rule in rules]


def load_rules(path: Path) -> list[Rule]:
    """The rules in a JSON file: a list of `{"pattern": ..., "reply": ...}`."""
    return [Rule(**r) for r in json.loads(path.read_text())]


def answer(
    rules: Iterable[CompiledRule], prompt: str, file: UploadedFile | None
) -> str:
    """The unscripted answer to `prompt`: the first matching rule, or the default.

    The default is the stand-in's literal answer, if it has one, or an echo of
    the prompt (and of the uploaded file's name, type and size).
    """
    for pattern, reply in rules:
        if pattern.search(prompt):
            return reply
    literal = stand_in.reply(prompt)
    if literal is not None:
        return literal
    if file is None:
        return f"Echo: {prompt}"
    return (
        f"Echo: {prompt} (with {file.filename}, {file.content_type}, "
        f"{len(file.data)} bytes)"
    )


_REPLY_TYPES: Mapping[str, tuple[type[Any], ...]] = {
    "text": (str, type(None)),
    "status": (int,),
    "body": (str, dict, type(None)),
    "content_type": (str, type(None)),
    "headers": (dict,),
    "delay": (int, float),
    "drop": (bool,),
    "events": (list, type(None)),
    "sse": (str,),
    "event_delay": (int, float, type(None)),
    "drop_after": (int, type(None)),
    "raw": (list, type(None)),
    "model": (str, type(None)),
    "usage": (bool,),
    "echo_target": (bool,),
}
_SCRIPT_FORMAT = (
    "a JSON list of replies, each a string (the reply text) or an object with "
    "any of the fields text (string), status (integer), body (string or object), "
    "content_type (string), headers (object of strings), delay (seconds), drop "
    "(true/false), and for API streams events (list of strings), sse "
    '("openai", "response" or "text"), event_delay (seconds), drop_after '
    "(integer), raw (list of strings), model (string), usage (true/false), "
    "echo_target (true/false); "
    'e.g. ["Bonjour !", {"status": 503}]'
)


def script_from_json(text: str) -> list[Reply | str]:
    """The replies in an admin script request.

    Raises:
        ValueError: Saying what was expected, if the body is not such a list.
    """
    try:
        items = json.loads(text)
    except ValueError:
        items = None
    if not isinstance(items, list):
        msg = f"Expected {_SCRIPT_FORMAT}; got {text[:80]!r}."
        raise ValueError(msg)
    replies: list[Reply | str] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            replies.append(item)
            continue
        wrong = (
            [
                name
                for name, value in item.items()
                if not isinstance(value, _REPLY_TYPES.get(name, ()))
                or (name in {"status", "delay"} and isinstance(value, bool))
                or (name == "headers" and not all(map(_is_str, value.values())))
            ]
            if isinstance(item, dict)
            else ["(not an object)"]
        )
        if wrong:
            msg = f"Reply {index}: bad {', '.join(wrong)}. Expected {_SCRIPT_FORMAT}."
            raise ValueError(msg)
        replies.append(Reply(**item))
    return replies


def _is_str(value: object) -> bool:
    return isinstance(value, str)
