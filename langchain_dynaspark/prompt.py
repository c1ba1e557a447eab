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
with the tool's name and call id.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
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
    "LangChain `image` blocks, Anthropic `source` blocks)"
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
    if instructions is None and not any(body.strip() for _, body in parts):
        msg = (
            "Nothing to send: every message is empty. Pass a message with text "
            "or an image."
        )
        raise DynasparkInputError(msg)
    if images:
        parts = _number_images(parts)
    if instructions is None and len(messages) == 1 and _is_plain_human(messages[0]):
        return Prompt(parts[0][1], tuple(images))
    lines = [f"System: {instructions}"] if instructions else []
    lines.extend(f"{label}: {body}" if body else f"{label}:" for label, body in parts)
    lines.append(ASSISTANT_CUE)
    return Prompt("\n\n".join(lines), tuple(images))


_IMAGE_MARK = "\x00image\x00"
_IMAGE_MARK_RE = re.compile(_IMAGE_MARK)


def _is_plain_human(message: BaseMessage) -> bool:
    return isinstance(message, HumanMessage) and not message.name


def _render(message: BaseMessage, images: list[dict[str, Any]]) -> tuple[str, str]:
    """Return (label, body) for one message, appending its images to `images`."""
    if isinstance(message, AIMessage):
        return _label("Assistant", message.name), _render_ai(message)
    if isinstance(message, ToolMessage):
        return _tool_label(message), _content_text(message, images)
    if isinstance(message, HumanMessage):
        label = "User"
    elif isinstance(message, SystemMessage):
        label = "System"
    elif isinstance(message, ChatMessage):
        label = message.role.strip().capitalize() or "User"
    else:
        label = message.type.capitalize()
    return _label(label, message.name), _content_text(message, images)


def _label(role: str, name: str | None) -> str:
    return f"{role} ({name})" if name else role


def _tool_label(message: ToolMessage) -> str:
    kind = "Tool error" if message.status == "error" else "Tool result"
    details = [d for d in (message.name, f"call id {message.tool_call_id}") if d]
    return f"{kind} ({', '.join(details)})"


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
        elif kind == "image":
            images.append(_image_source(block))
            pieces.append(_IMAGE_MARK)
        elif kind == "non_standard" and _is_openai_image_url(block["value"]):
            images.append({"type": "image", "url": block["value"]["image_url"]})
            pieces.append(_IMAGE_MARK)
        else:
            described = kind if kind != "non_standard" else block["value"].get("type")
            msg = (
                f"Dynaspark cannot take {described!r} content blocks (found in a "
                f"{message.type} message). Supported: {_SUPPORTED}."
            )
            raise DynasparkInputError(msg)
    return "\n".join(piece for piece in pieces if piece)


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


def _number_images(parts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Replace image markers with `[Image 1]`, `[Image 2]`, ... in order."""
    counter = itertools.count(1)
    return [
        (label, _IMAGE_MARK_RE.sub(lambda _: f"[Image {next(counter)}]", body))
        for label, body in parts
    ]
