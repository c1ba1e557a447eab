"""The pure server-sent-event parser, against the rules of the HTML standard."""

from __future__ import annotations

import pytest

from langchain_dynaspark.sse import EventTooLongError, ServerSentEvent, SSEDecoder

STREAM = (
    "\ufeff: a comment, then a keep-alive\n"
    ":\n"
    "\n"
    "event: delta\n"
    "id: 7\n"
    "data: first line\n"
    "data:second line, no space\n"
    "data:  two spaces keep one\n"
    "\n"
    "retry: 1500\r\n"
    'data: {"response": "héllo 🌍"}\r\n'
    "\r\n"
    "data\r"
    "\r"
    "data: [DONE]\n"
    "\n"
).encode()

EXPECTED = [
    ServerSentEvent(
        data="first line\nsecond line, no space\n two spaces keep one",
        event="delta",
        id="7",
    ),
    ServerSentEvent(data='{"response": "héllo 🌍"}', id="7", retry=1500),
    ServerSentEvent(data="", id="7"),
    ServerSentEvent(data="[DONE]", id="7"),
]


def _decode(pieces: list[bytes]) -> list[ServerSentEvent]:
    decoder = SSEDecoder()
    events = [event for piece in pieces for event in decoder.feed(piece)]
    return events + decoder.end()


def test_a_whole_stream_in_one_read() -> None:
    assert _decode([STREAM]) == EXPECTED


def test_every_split_into_two_reads_gives_the_same_events() -> None:
    for cut in range(len(STREAM) + 1):
        assert _decode([STREAM[:cut], STREAM[cut:]]) == EXPECTED, cut


def test_one_byte_per_read_gives_the_same_events() -> None:
    assert _decode([STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


def test_an_event_is_dispatched_as_soon_as_its_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: hel") == []
    assert decoder.feed(b"lo\n") == []
    assert decoder.feed(b"\n") == [ServerSentEvent("hello")]
    assert decoder.feed(b"data: next\n\n") == [ServerSentEvent("next")]


def test_crlf_split_across_reads_is_one_line_ending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    # A lone `\n` after the `\r` ends nothing more: the next `\r\n` dispatches.
    assert decoder.feed(b"\n\r\n") == [ServerSentEvent("a\nb")]


def test_bare_carriage_returns_end_lines() -> None:
    assert _decode([b"data: a\rdata: b\r\rdata: c\r\r"]) == [
        ServerSentEvent("a\nb"),
        ServerSentEvent("c"),
    ]


@pytest.mark.parametrize("cut", range(1, 4))
def test_utf8_split_inside_a_character(cut: int) -> None:
    encoded = "data: 🌍\n\n".encode()
    start = encoded.index("🌍".encode())
    pieces = [encoded[: start + cut], encoded[start + cut :]]
    assert _decode(pieces) == [ServerSentEvent("🌍")]


def test_comments_and_events_without_data_dispatch_nothing() -> None:
    assert _decode([b": ping\n\n: ping\n\nevent: x\nid: 1\n\n"]) == []


def test_event_type_resets_after_each_event_and_id_persists() -> None:
    events = _decode([b"event: a\nid: 3\ndata: 1\n\ndata: 2\n\n"])
    assert events == [
        ServerSentEvent("1", event="a", id="3"),
        ServerSentEvent("2", id="3"),
    ]


def test_unknown_fields_and_bad_retry_are_ignored() -> None:
    events = _decode([b"foo: bar\nretry: soon\ndata: x\n\n"])
    assert events == [ServerSentEvent("x")]


def test_id_with_nul_is_ignored() -> None:
    assert _decode([b"id: a\x00b\ndata: x\n\n"]) == [ServerSentEvent("x")]


def test_an_unterminated_last_event_is_dispatched_at_the_end() -> None:
    assert _decode([b"data: one\n\ndata: [DONE]"]) == [
        ServerSentEvent("one"),
        ServerSentEvent("[DONE]"),
    ]


def test_end_with_nothing_pending() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: x\n\n") == [ServerSentEvent("x")]
    assert decoder.end() == []


def test_a_bom_only_at_the_very_start_is_dropped() -> None:
    events = _decode([b"\xef\xbb\xbfdata: a\n\ndata: \xef\xbb\xbfb\n\n"])
    assert events == [ServerSentEvent("a"), ServerSentEvent("\ufeffb")]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert _decode([b"data: \xff\n\n"]) == [ServerSentEvent("\ufffd")]


def test_the_end_says_whether_the_stream_was_cut_inside_an_event() -> None:
    whole = SSEDecoder()
    whole.feed(b"data: a\n\n: trailing comment")
    assert whole.end() == []
    assert not whole.cut
    cut = SSEDecoder()
    assert cut.feed(b'data: a\n\ndata: {"cho') == [ServerSentEvent("a")]
    assert cut.end() == [ServerSentEvent('{"cho')]
    assert cut.cut


def test_a_line_arriving_in_many_reads_is_one_event() -> None:
    decoder = SSEDecoder(max_event=1 << 20)
    assert decoder.feed(b"data: ") == []
    for _ in range(1000):
        assert decoder.feed(b"x" * 1000) == []
    assert decoder.feed(b"\n\n") == [ServerSentEvent("x" * 1_000_000)]


@pytest.mark.parametrize(
    "pieces",
    [
        [b"data: " + b"x" * 101],
        [b"data: ", *[b"x" * 10] * 10],
        [b"data: " + b"x" * 60 + b"\n", b"data: " + b"x" * 60 + b"\n"],
        [b": " + b"x" * 200],
    ],
    ids=["one read", "many reads", "two data lines", "a comment line"],
)
def test_an_event_longer_than_max_event_is_refused(pieces: list[bytes]) -> None:
    decoder = SSEDecoder(max_event=100)
    for piece in pieces[:-1]:
        decoder.feed(piece)
    with pytest.raises(EventTooLongError) as caught:
        decoder.feed(pieces[-1])
    assert caught.value.max_event == 100


def test_events_under_max_event_pass() -> None:
    decoder = SSEDecoder(max_event=100)
    events = [
        e for _ in range(50) for e in decoder.feed(b"data: " + b"x" * 90 + b"\n\n")
    ]
    assert events == [ServerSentEvent("x" * 90)] * 50
