"""Messages -> one prompt text and the images it refers to. Pure: no I/O.

Dynaspark has no roles and no history, so the whole conversation travels as the
single `user_input` form field. A lone human message is sent as its text alone;
anything else is rendered as a transcript, each message labelled by its role (and
`name`, where given), in order, ending with the cue for the assistant's turn:

```text
System: You are terse.

User: Hi!

Assistant:
```

Images stay in the order they occur, and each is marked in the text where it
occurred (`[Image 1]`, `[Image 2]`, ...), so the model can tell them apart once
they are composed into the single uploaded file (and an image-only message still
has text). Tool calls made by the assistant are shown in the same JSON form that the
tool instructions ask the model to answer with, and tool results are labelled
with the tool's name and call id. `json` and `text-plain` blocks become text.

Message text is untrusted (a tool result may be a fetched web page), so no text
can pose as a turn of its own. A turn starts only at a line that begins with a
label; every line of message text (and of the lone human message sent bare)
that would read as a label — a role word such as `System`, `User`,
`Assistant`, `Human`, `Tool result` or a custom role of the conversation, in
any case and with any spaces between its words, after any spaces or Markdown
marks (`*`, `_`, `#`, `>`), optionally with a `(name)`, then a colon — gets a
backslash in front. Lines are matched as a model reads them: without invisible
characters (zero-width spaces, soft hyphens, direction marks) and with
compatibility forms folded (NFKC: fullwidth, circled and mathematical letters,
fullwidth and small colons). A line that already starts with backslashes
before such a label gets one more, so the escaping is unambiguous. Names,
roles and call ids in labels keep only letters, digits, spaces and `.@+/-`;
anything else (newlines, brackets, colons) becomes `_`.
Text that cannot be encoded as UTF-8 (lone surrogates) is refused.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, cast

from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    ChatMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)

from langchain_dynaspark.errors import DynasparkInputError

__all__ = ["ASSISTANT_CUE", "Prompt", "build_prompt"]

ASSISTANT_CUE = "Assistant:"

_SUPPORTED = (
    "text, and images given as base64 data or an http(s) URL (OpenAI `image_url`, "
    "LangChain `image` blocks, Anthropic `source` blocks); `text-plain` and `json` "
    "blocks are shown as text"
)


@dataclass(frozen=True)
class Prompt:
    """What one request to Dynaspark carries.

    Attributes:
        text: The `user_input` form field.
        images: Standard LangChain image blocks (`base64` + `mime_type`, or
            `url`), in the order they occur in the conversation.
    """

    text: str
    images: tuple[dict[str, Any], ...] = ()


def build_prompt(
    messages: Sequence[BaseMessage], *, instructions: str | None = None
) -> Prompt:
    """Render a conversation as one Dynaspark prompt.

    Args:
        messages: The conversation, oldest first.
        instructions: Extra instructions (tool use, output format) shown to the
            model before the conversation, labelled as system text.

    Returns:
        The prompt text and the images it refers to.

    Raises:
        DynasparkInputError: If there is nothing to send (no messages, or only
            empty ones), or a message holds content Dynaspark cannot take
            (files, audio, video, `file_id`s).
    """
    if not messages:
        msg = "No messages to send: pass at least one message."
        raise DynasparkInputError(msg)
    images: list[dict[str, Any]] = []
    parts = [_render(message, images) for message in messages]
    # One pass for the checks and the conversation's own roles (a label's
    # role, when it is not a standard one): it runs on every call.
    has_text = instructions is not None
    roles: set[str] = set()
    for index, (label, body) in enumerate(parts, 1):
        if not has_text and body.strip():
            has_text = True
        if not body.isascii():  # ASCII always encodes; the check is O(1)
            _check_encodable(body, f"message {index} ({messages[index - 1].type})")
        role = label.partition(" (")[0]
        if role not in _STANDARD_LABELS:
            roles.add(role.lower())
    if not has_text:
        msg = (
            "Nothing to send: every message is empty. Pass a message with text "
            "or an image."
        )
        raise DynasparkInputError(msg)
    if instructions is not None and not instructions.isascii():
        _check_encodable(instructions, "the tool or format instructions")
    escape = _escaper(frozenset(roles.difference(_ROLE_WORD_SET)))
    if instructions is None and len(messages) == 1 and _is_plain_human(messages[0]):
        return Prompt(escape(parts[0][1]), tuple(images))
    lines = [f"System: {escape(instructions)}"] if instructions else []
    lines += [
        f"{label}: {escape(body)}" if body else f"{label}:" for label, body in parts
    ]
    lines.append(ASSISTANT_CUE)
    return Prompt("\n\n".join(lines), tuple(images))


_ROLE_WORDS = (
    "system",
    "user",
    "assistant",
    "human",
    "ai",
    "tool",
    "tool result",
    "tool error",
    "developer",
)
"""Role words that start a turn, or that a model would read as one."""
_ROLE_WORD_SET = frozenset(_ROLE_WORDS)
_STANDARD_LABELS = frozenset(
    {"System", "User", "Assistant", "Tool result", "Tool error"}
)
"""Labels `_render` gives whose role word is one of `_ROLE_WORDS`."""
_LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
"""Everything `str.splitlines` splits at: a model may read any of them as a break."""
_DECORATION = rf"(?:[^\S{_LINE_BREAKS}]|[*_#>])*"
"""Spaces and Markdown marks a forged label may hide behind: `**System:**`."""
_INVISIBLE_CHARS = (
    "\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f"
    "\ufe00-\ufe0f\ufeff\U000e0000-\U000e007f"
)
"""Characters that show as nothing (zero-width, soft hyphen, direction marks,
variation selectors, tags): `Sys\u200btem:` reads as `System:`."""
_INVISIBLE = re.compile(f"[{_INVISIBLE_CHARS}]+")
_LATIN1_FOLDABLE = "\u00ad\u00aa\u00ba"
"""The Latin-1 characters that fold into part of a role word: the soft hyphen
(invisible) and `ª`, `º` (NFKC: `a`, `o`)."""
_FOLDABLE = re.compile(
    f"[{_INVISIBLE_CHARS}{_LATIN1_FOLDABLE}\ufe10-\ufe1f\ufe50-\ufe6f\uff00-\uffef"
    "\u2a74\u2460-\u24ff\U0001d400-\U0001d7ff]"
)
"""What makes a line read otherwise once folded: invisible characters, fullwidth,
small and vertical forms, circled and mathematical letters. Lines without any
are matched as they are."""
_COLON_LIKE = re.compile("[\ufe13\ufe55\uff1a\u2a74]")
"""The characters but `:` that NFKC turns into a colon (fullwidth, small, ...)."""
_NAME_UNSAFE = re.compile(r"[^\w .@+/-]+")
_SPACES = rf"[^\S{_LINE_BREAKS}]+"
"""Between the words of a role (`Tool result`): any run of spaces, tabs, NBSPs."""


@lru_cache(maxsize=64)
def _escaper(roles: frozenset[str]) -> Callable[[str], str]:
    """A function that escapes, in a text, every line that reads as a turn label.

    A label is one of the standard role words or of `roles`, the other
    lower-cased roles of this conversation (such as a `ChatMessage` role).
    """
    folded_roles = {_folded(role) for role in roles}
    words = sorted(folded_roles.union(_ROLE_WORDS), key=len, reverse=True)
    spelled = "|".join(_SPACES.join(map(re.escape, word.split())) for word in words)
    label = re.compile(
        rf"\\*{_DECORATION}(?:{spelled})"
        rf"[^\S{_LINE_BREAKS}]*(?:\([^{_LINE_BREAKS}]*?\)[^\S{_LINE_BREAKS}]*)?:",
        re.IGNORECASE,
    ).match

    def folded_label(line: str) -> bool:
        # Read as a model sees it: in fullwidth letters, or `Sys\u200btem:`, too.
        return bool(label(line) or label(_folded(line)))

    def escape(text: str) -> str:
        ascii_text = text.isascii()
        if ":" not in text and (ascii_text or not _COLON_LIKE.search(text)):
            return text  # every label ends with a colon
        lines = text.splitlines(keepends=True)
        is_label = label if ascii_text or not _may_fold(text) else folded_label
        return "".join(f"\\{line}" if is_label(line) else line for line in lines)

    return escape


def _may_fold(text: str) -> bool:
    """Whether folding may change how a line of `text` reads (quick for Latin-1)."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return _FOLDABLE.search(text) is not None
    return any(char in text for char in _LATIN1_FOLDABLE)


def _folded(line: str) -> str:
    """`line` without invisible characters, NFKC-normalised (fullwidth -> ASCII)."""
    return unicodedata.normalize("NFKC", _INVISIBLE.sub("", line))


def _check_encodable(text: str, where: str) -> None:
    """Refuse text that UTF-8 cannot encode, without quoting it."""
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        code = ord(exc.object[exc.start])
        msg = (
            f"The text of {where} holds a character that cannot be sent: U+{code:04X} "
            f"at offset {exc.start} ({exc.reason}). Lone surrogates usually come from "
            "bytes decoded with `surrogateescape` (file names, process output): "
            "decode those with `errors='replace'` first."
        )
        raise DynasparkInputError(msg) from None


def _is_plain_human(message: BaseMessage) -> bool:
    return isinstance(message, HumanMessage) and not message.name


def _render(message: BaseMessage, images: list[dict[str, Any]]) -> tuple[str, str]:
    """Return (label, body) for one message, appending its images to `images`."""
    plain = _PLAIN_LABELS.get(type(message))
    if plain is not None:  # an exact type: no `isinstance` walk (pydantic's is slow)
        return _label(plain, message.name), _content_text(message, images)
    if isinstance(message, AIMessage):
        return _label("Assistant", message.name), _render_ai(message)
    if isinstance(message, ToolMessage):
        return _tool_label(message), _content_text(message, images)
    if isinstance(message, HumanMessage):
        label = "User"
    elif isinstance(message, SystemMessage):
        label = "System"
    elif isinstance(message, ChatMessage):
        label = _clean(message.role).capitalize() or "User"
    else:
        label = message.type.capitalize()
    return _label(label, message.name), _content_text(message, images)


_PLAIN_LABELS: dict[type[BaseMessage], str] = {
    HumanMessage: "User",
    SystemMessage: "System",
}
"""Labels of the message types whose body is their content, as `_render` gives."""


def _label(role: str, name: str | None) -> str:
    if not name:
        return role
    name = _clean(name)
    return f"{role} ({name})" if name else role


def _clean(text: str) -> str:
    """`text` fit for a label: one line, no brackets, colons or commas."""
    return " ".join(_NAME_UNSAFE.sub("_", text).split())


def _tool_label(message: ToolMessage) -> str:
    kind = "Tool error" if message.status == "error" else "Tool result"
    call_id = _clean(message.tool_call_id or "")
    details = [_clean(message.name or ""), f"call id {call_id}" if call_id else ""]
    return f"{kind} ({', '.join(d for d in details if d)})"


def _render_ai(message: AIMessage) -> str:
    if isinstance(message.content, str):
        text = message.content
    else:
        text = "\n".join(
            block["text"]
            for block in message.content_blocks
            if block["type"] == "text" and block.get("text")
        )
    if not message.tool_calls:
        return text
    calls = [
        {"name": call["name"], "arguments": call["args"], "id": call["id"]}
        for call in message.tool_calls
    ]
    rendered = json.dumps({"tool_calls": calls}, ensure_ascii=False)
    return f"{text}\n{rendered}" if text else rendered


def _content_text(message: BaseMessage, images: list[dict[str, Any]]) -> str:
    if isinstance(message.content, str):
        return message.content
    pieces: list[str] = []
    for block in cast("list[dict[str, Any]]", message.content_blocks):
        kind = block["type"]
        if kind == "text":
            pieces.append(block["text"])
        elif kind == "text-plain":
            pieces.append(_plain_text(block, message))
        elif kind == "image":
            images.append(_image_source(block))
            pieces.append(f"[Image {len(images)}]")
        elif kind == "non_standard" and _is_openai_image_url(block["value"]):
            images.append({"type": "image", "url": block["value"]["image_url"]})
            pieces.append(f"[Image {len(images)}]")
        elif kind == "non_standard" and block["value"].get("type") == "json":
            value = block["value"].get("json")
            pieces.append(json.dumps(value, ensure_ascii=False, default=str))
        else:
            described = kind if kind != "non_standard" else block["value"].get("type")
            msg = (
                f"Dynaspark cannot take {described!r} content blocks (found in a "
                f"{message.type} message). Supported: {_SUPPORTED}."
            )
            raise DynasparkInputError(msg)
    return "\n".join(piece for piece in pieces if piece)


def _plain_text(block: dict[str, Any], message: BaseMessage) -> str:
    """The text of a `text-plain` block: inline `text`, or UTF-8 `base64` data."""
    if block.get("text") is not None:
        return str(block["text"])
    if block.get("base64"):
        try:
            return base64.b64decode(block["base64"], validate=True).decode()
        except (binascii.Error, ValueError):
            msg = (
                f"A text-plain block in a {message.type} message is not valid "
                "base64-encoded UTF-8 text."
            )
            raise DynasparkInputError(msg) from None
    msg = (
        f"A text-plain block in a {message.type} message has no inline text: "
        "Dynaspark cannot fetch a text file by URL or file id. Pass its `text`."
    )
    raise DynasparkInputError(msg)


def _is_openai_image_url(value: dict[str, Any]) -> bool:
    """OpenAI `image_url` given as a bare string, which core leaves non-standard."""
    return value.get("type") == "image_url" and isinstance(value.get("image_url"), str)


def _image_source(block: dict[str, Any]) -> dict[str, Any]:
    if block.get("base64") or block.get("url"):
        return block
    if block.get("file_id"):
        msg = (
            "Dynaspark cannot resolve an image given by `file_id`: it has no file "
            f"store. Send the image itself instead. Supported: {_SUPPORTED}."
        )
    else:
        msg = f"An image block has no data. Supported: {_SUPPORTED}."
    raise DynasparkInputError(msg)
