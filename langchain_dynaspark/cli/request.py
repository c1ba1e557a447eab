"""The command line's input -> the messages sent: prompt, piped text, images.

Everything here is pure except `image_block`, which reads a local file. Local
images go through the package's image pipeline (`images.build_upload`) before
anything is sent, so a missing file or a bad image stops the command at once;
http(s) and `data:` URLs are handed to the model, which fetches and checks them
before its request.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from langchain_dynaspark.cli.options import UsageError
from langchain_dynaspark.images import ImageLimits, RawImage, build_upload

__all__ = ["image_block", "one_shot_messages", "request_text", "user_message"]

_URL_SCHEMES = ("http", "https", "data")


def request_text(prompt: str | None, piped: str | None) -> str:
    """The text of the request: the prompt, then any piped text.

    Args:
        prompt: The prompt argument, if given.
        piped: Text read from standard input when it is not a terminal.

    Returns:
        The prompt and the piped text, separated by a blank line; either alone
        when the other is missing or blank. Empty when both are.
    """
    parts = [part.strip() for part in (prompt, piped) if part and part.strip()]
    return "\n\n".join(parts)


def user_message(text: str, images: Sequence[dict[str, Any]] = ()) -> HumanMessage:
    """One human message: the text, followed by the images, if any.

    Args:
        text: What the user says (may be empty when images are given).
        images: Standard LangChain image blocks, from `image_block`.

    Returns:
        The message.
    """
    if not images:
        return HumanMessage(text)
    content: list[str | dict[str, Any]] = (
        [{"type": "text", "text": text}] if text else []
    )
    content.extend(images)
    return HumanMessage(content)


def one_shot_messages(
    system: str | None, text: str, images: Sequence[dict[str, Any]]
) -> list[BaseMessage]:
    """The messages of a one-shot request.

    Args:
        system: The system prompt, if any.
        text: The request text, from `request_text`.
        images: Image blocks, from `image_block`.

    Returns:
        The system message, if any, then the user's message.

    Raises:
        UsageError: If there is neither text nor an image to send.
    """
    if not text and not images:
        msg = (
            "Nothing to send: give a prompt as an argument or pipe text in "
            "(or run `langchain-dynaspark chat` for a conversation)."
        )
        raise UsageError(msg)
    messages: list[BaseMessage] = [SystemMessage(system)] if system else []
    messages.append(user_message(text, images))
    return messages


def image_block(source: str, limits: ImageLimits | None = None) -> dict[str, Any]:
    """An image block for `source`: a local file, or an http(s) or `data:` URL.

    A local file is read and prepared for upload here (scaled down, metadata
    stripped), so it is checked before anything is sent.

    Args:
        source: A file path, or a URL.
        limits: Image limits; the model's defaults when not given.

    Returns:
        A standard LangChain image block.

    Raises:
        UsageError: If the file cannot be read.
        DynasparkImageError: If the file is not an image that can be sent.
    """
    if urlsplit(source).scheme.lower() in _URL_SCHEMES:
        return {"type": "image", "url": source}
    path = Path(source).expanduser()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        msg = (
            f"Image {source}: only http(s) and data: URLs can be attached, or a "
            "local file."
            if "://" in source
            else f"Image {source}: no such file. Check the path."
        )
        raise UsageError(msg) from None
    except OSError as exc:
        msg = (
            f"Image {source} cannot be read ({exc.strerror or exc}). Check the path "
            "and its permissions."
        )
        raise UsageError(msg) from None
    upload = build_upload([RawImage(f"Image {source}", data)], limits or ImageLimits())
    return {
        "type": "image",
        "base64": base64.b64encode(upload.data).decode("ascii"),
        "mime_type": upload.content_type,
    }
