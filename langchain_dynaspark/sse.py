r"""Server-sent events: bytes as they arrive -> events. Pure: no I/O.

Follows the parsing rules of the HTML standard's `text/event-stream`
(https://html.spec.whatwg.org/multipage/server-sent-events.html):

- lines end in `\r\n`, `\n` or `\r`, and a line ending may be split across two
  network reads (a `\r` at the end of one read and a `\n` at the start of the
  next are one line ending);
- a line starting with `:` is a comment; `field: value` (one space after the
  colon is dropped) sets `event`, `data`, `id` or `retry`; other fields are
  ignored;
- several `data:` lines in one event are joined with `\n`;
- a blank line dispatches the event; an event without data is not dispatched;
- UTF-8 split across reads is decoded correctly, and a leading byte-order mark
  is dropped.

One liberty is taken: at the end of the stream, a last event that has data but
lacks its closing blank line is dispatched rather than dropped, because servers
that end with `data: [DONE]\n` exist; `SSEDecoder.cut` then says that the
stream ended inside that event, for the caller to judge.

Each read is scanned once, so a long line arriving in many reads costs time in
proportion to its length; `max_event` bounds how much of one event is held.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = ["EventTooLongError", "SSEDecoder", "ServerSentEvent"]

_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class ServerSentEvent:
    r"""One dispatched event.

    Attributes:
        data: The event's data lines, joined with `\n`.
        event: The event type (`"message"` unless the server named one).
        id: The last event id seen on the stream, if any.
        retry: The reconnection time the event set, in milliseconds, if any.
    """

    data: str
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class EventTooLongError(ValueError):
    """An event (its data and the line being read) grew past `max_event`."""

    def __init__(self, max_event: int) -> None:
        super().__init__(f"an event is longer than {max_event} characters")
        self.max_event = max_event


class SSEDecoder:
    r"""Turn the bytes of an event stream, in reads of any size, into events.

    Args:
        max_event: Most characters one event may hold (its data lines and the
            line being read); `None` for no limit.

    Raises:
        EventTooLongError: From `feed` or `end`, once an event grows past
            `max_event`.

    Example:
        ```python
        decoder = SSEDecoder()
        events = decoder.feed(b"data: hel")  # []
        events = decoder.feed(b"lo\r\n\r\n")  # [ServerSentEvent(data="hello")]
        events = decoder.end()  # []
        ```
    """

    def __init__(self, max_event: int | None = None) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._max_event = max_event
        self._partial: list[str] = []
        """The start of a line whose end has not arrived, read by read."""
        self._partial_size = 0
        self._held = 0
        """Characters held: in `_partial` and in `_data`."""
        self._started = False
        self._after_cr = False
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self.cut = False
        """Set by `end`: whether the stream ended inside an event with data."""

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Take the next read of the stream; return the events it completes."""
        text = self._decoder.decode(chunk)
        if not text:
            return []
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        if self._after_cr:
            self._after_cr = False
            text = text.removeprefix("\n")
        return self._lines(text)

    def end(self) -> list[ServerSentEvent]:
        """The stream has ended: return a last, unterminated event, if any."""
        events = self._lines(self._decoder.decode(b"", final=True))
        if self._partial:
            line = "".join(self._partial)
            self._partial = []
            self._held -= self._partial_size
            self._partial_size = 0
            self._line(line)
        self.cut = bool(self._data)
        if self._data:
            events.append(self._dispatch())
        return events

    def _lines(self, text: str) -> list[ServerSentEvent]:
        """The events `text` completes; only `text` is scanned, never the past."""
        events: list[ServerSentEvent] = []
        start = 0
        for match in _LINE_END.finditer(text):
            line = text[start : match.start()]
            start = match.end()
            if self._partial:
                self._partial.append(line)
                line = "".join(self._partial)
                self._partial = []
                self._held -= self._partial_size
                self._partial_size = 0
            if line:
                self._line(line)
            elif self._data:
                events.append(self._dispatch())
            else:
                self._event = ""
        # Maybe the first half of a `\r\n` split across two reads.
        self._after_cr = text[-1:] == "\r"
        if start < len(text):
            rest = text[start:]
            self._partial.append(rest)
            self._partial_size += len(rest)
            self._grow(len(rest))
        return events

    def _grow(self, size: int) -> None:
        self._held += size
        if self._max_event is not None and self._held > self._max_event:
            raise EventTooLongError(self._max_event)

    def _line(self, line: str) -> None:
        if line[0] == ":":
            return
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._grow(len(value))
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> ServerSentEvent:
        event = ServerSentEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self._id,
            retry=self._retry,
        )
        self._data = []
        self._held = 0
        self._event = ""
        self._retry = None
        return event
