"""What the command line writes: replies (streamed or as JSON), the waking notice."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from time import monotonic
from types import TracebackType
from typing import TextIO

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

__all__ = [
    "WAKING_NOTICE_AFTER",
    "WakingNotice",
    "one_line",
    "reply_json",
    "stream_reply",
]

WAKING_NOTICE_AFTER = 3.0
"""Seconds without an answer before the waking-up notice appears."""


def reply_json(message: AIMessage) -> str:
    """The reply as one JSON object, for scripts. Pure.

    Args:
        message: The model's reply.

    Returns:
        One line of JSON with `content` (the reply text), `tool_calls`,
        `invalid_tool_calls`, `response_metadata` and `usage_metadata`.
    """
    return json.dumps(
        {
            "content": message.text,
            "tool_calls": message.tool_calls,
            "invalid_tool_calls": message.invalid_tool_calls,
            "response_metadata": message.response_metadata,
            "usage_metadata": message.usage_metadata,
        },
        ensure_ascii=False,
        default=str,
    )


def one_line(error: BaseException) -> str:
    """An error's message on one line. Pure."""
    return " ".join(str(error).split()) or type(error).__name__


class WakingNotice:
    """Says, on a terminal, that the service may be waking up while an answer is slow.

    The service sleeps when idle and can take a minute to answer the first
    request. Past `after` seconds, the notice shows the seconds waited on one
    line of `stream`, rewritten each second, and is erased when `stop()` is
    called (or the `with` block ends). When disabled (`stream` is not a
    terminal), it writes nothing.
    """

    def __init__(
        self, stream: TextIO, *, enabled: bool, after: float = WAKING_NOTICE_AFTER
    ) -> None:
        self._stream = stream
        self._enabled = enabled
        self._after = after
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = 0

    def __enter__(self) -> WakingNotice:
        if self._enabled:
            self._thread = threading.Thread(
                target=self._run, name="dynaspark-waking-notice", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop counting and erase the notice, if it was shown. Idempotent."""
        self._done.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._shown:
            self._stream.write("\r" + " " * self._shown + "\r")
            self._stream.flush()
            self._shown = 0

    def _run(self) -> None:
        start = monotonic()
        if self._done.wait(self._after):
            return
        while True:
            elapsed = monotonic() - start
            text = f"Waiting {elapsed:.0f} s for Dynaspark: it may be waking up..."
            self._stream.write("\r" + text)
            self._stream.flush()
            self._shown = max(self._shown, len(text))
            if self._done.wait(1.0 - elapsed % 1.0):
                return


def stream_reply(
    model: BaseChatModel,
    messages: Sequence[BaseMessage],
    out: TextIO,
    notice: WakingNotice,
) -> str:
    """Write the reply to `out` as it streams in, ending the line; return its text.

    Args:
        model: The chat model.
        messages: The conversation to answer.
        out: Where the reply is written.
        notice: The waking-up notice, stopped when the first chunk arrives.

    Returns:
        The whole reply text.
    """
    pieces: list[str] = []
    for chunk in model.stream(list(messages)):
        notice.stop()
        out.write(chunk.text)
        out.flush()
        pieces.append(chunk.text)
    notice.stop()
    out.write("\n")
    out.flush()
    return "".join(pieces)
