"""The documented API's query, reply and events, without any network. Pure."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from multidict import CIMultiDict

from langchain_dynaspark import DynasparkInputError, DynasparkResponseError
from langchain_dynaspark.endpoints.api import (
    build_query,
    check_request_line,
    event_reply,
    parse_reply,
    rate_limit,
    split_system,
    usage_metadata,
)
from langchain_dynaspark.reply import Reply, StopScanner
from langchain_dynaspark.sse import ServerSentEvent
from langchain_dynaspark.transport import Answer

URL = "http://127.0.0.1:8765/api/generate_response"


def _answer(
    body: Any, content_type: str = "application/json", **headers: str
) -> Answer:
    data = json.dumps(body).encode() if not isinstance(body, bytes) else body
    return Answer(CIMultiDict(headers), content_type, data)


# --- system split ----------------------------------------------------------------


def test_leading_system_messages_are_split_off_and_joined() -> None:
    messages = [
        SystemMessage("Be brief."),
        SystemMessage("Answer in French."),
        HumanMessage("Hi"),
        SystemMessage("A later rule."),
        AIMessage("Salut"),
    ]
    system, rest = split_system(messages)
    assert system == "Be brief.\n\nAnswer in French."
    assert rest == messages[2:]


def test_no_leading_system_message() -> None:
    messages = [HumanMessage("Hi"), SystemMessage("later")]
    assert split_system(messages) == (None, messages)


def test_only_system_messages_stay_in_the_transcript() -> None:
    messages = [SystemMessage("Say hi.")]
    assert split_system(messages) == (None, messages)


def test_a_system_message_with_an_image_is_not_split_off() -> None:
    image = {"type": "image", "url": "https://example.com/a.png"}
    messages = [
        SystemMessage([{"type": "text", "text": "x"}, image]),
        HumanMessage("y"),
    ]
    assert split_system(messages) == (None, messages)


# --- the query -------------------------------------------------------------------


def test_every_parameter_reaches_the_query_exactly() -> None:
    query = build_query(
        user_input="Hi",
        system="Be brief.",
        model="openai-large",
        sampling={
            "temperature": 0.7,
            "top_p": 1,
            "presence_penalty": -0.5,
            "frequency_penalty": 2.0,
            "seed": 42,
        },
        json_mode=True,
        stream=True,
        private=True,
        api_key="sk-1",
    )
    assert query == {
        "user_input": "Hi",
        "system": "Be brief.",
        "model": "openai-large",
        "temperature": "0.7",
        "top_p": "1",
        "presence_penalty": "-0.5",
        "frequency_penalty": "2.0",
        "seed": "42",
        "json": "true",
        "stream": "true",
        "private": "true",
        "api_key": "sk-1",
    }


def test_unset_parameters_are_not_sent() -> None:
    assert build_query(user_input="Hi", private=False) == {"user_input": "Hi"}


def test_request_line_is_measured_as_sent() -> None:
    query = {"user_input": "a b&c=d/é"}
    line = "GET /api/generate_response?user_input=a+b%26c%3Dd/%C3%A9 HTTP/1.1"
    check_request_line(URL, query, len(line))
    with pytest.raises(DynasparkInputError, match=f"{len(line)}-byte request line"):
        check_request_line(URL, query, len(line) - 1)


def test_request_line_error_says_what_to_do_and_never_quotes_the_query() -> None:
    query = {"user_input": "secret plan " * 500, "api_key": "sk-very-secret"}
    with pytest.raises(DynasparkInputError) as caught:
        check_request_line(URL, query, 4094)
    message = str(caught.value)
    assert "endpoint='form'" in message
    assert "max_request_line=4094" in message
    assert "secret plan" not in message
    assert "sk-very-secret" not in message


# --- the reply -------------------------------------------------------------------


def test_json_reply_gives_text_model_usage_and_rate_limit() -> None:
    answer = _answer(
        {
            "response": "Bonjour",
            "model": "openai-large",
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        },
        **{
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "99",
            "X-RateLimit-Reset": "1764460800",
        },
    )
    assert parse_reply(answer) == Reply(
        "Bonjour",
        model="openai-large",
        usage={"input_tokens": 5, "output_tokens": 2, "total_tokens": 7},
        rate_limit={"limit": 100, "remaining": 99, "reset": 1764460800},
        done=True,
    )


def test_text_plain_200_is_the_reply() -> None:
    answer = _answer(b'{"not": "parsed"} as JSON', "text/plain")
    assert parse_reply(answer).text == '{"not": "parsed"} as JSON'


def test_a_json_object_response_is_kept_as_json_text() -> None:
    reply = parse_reply(_answer({"response": {"a": 1}, "model": "m"}))
    assert json.loads(reply.text) == {"a": 1}


@pytest.mark.parametrize(
    "body",
    [
        b'{"response": "a\\ud800b"}',
        b'{"choices": [{"message": {"content": "a\\ud800b"}}]}',
    ],
)
def test_lone_surrogates_in_a_reply_become_replacement_characters(
    body: bytes,
) -> None:
    text = parse_reply(_answer(body)).text
    assert text == "a\ufffdb"
    text.encode("utf-8")


def test_lone_surrogates_in_an_event_become_replacement_characters() -> None:
    event = ServerSentEvent(data='{"choices": [{"delta": {"content": "\\udc80!"}}]}')
    assert event_reply(event).text == "\ufffd!"


def test_an_openai_style_reply_is_accepted() -> None:
    body = {
        "model": "gpt",
        "choices": [{"message": {"content": "Hi"}, "finish_reason": "length"}],
    }
    reply = parse_reply(_answer(body))
    assert (reply.text, reply.model, reply.finish_reason) == ("Hi", "gpt", "length")


@pytest.mark.parametrize(
    ("body", "content_type", "said"),
    [
        ({"error": "Invalid temperature"}, "application/json", "Invalid temperature"),
        (b"<html><title>Down</title></html>", "text/plain", "Down"),
        (b"<!DOCTYPE html><title>Maintenance</title>", "text/html", "Maintenance"),
        ({"result": "x"}, "application/json", None),
    ],
)
def test_bodies_that_are_not_a_reply_raise(
    body: Any, content_type: str, said: str | None
) -> None:
    with pytest.raises(DynasparkResponseError) as caught:
        parse_reply(_answer(body, content_type))
    if said:
        assert said in str(caught.value.server_message)


def test_usage_is_the_services_own_numbers_or_nothing() -> None:
    assert usage_metadata({"input_tokens": 3, "output_tokens": 4}) == {
        "input_tokens": 3,
        "output_tokens": 4,
        "total_tokens": 7,
    }
    assert usage_metadata({"prompt_tokens": 3}) is None
    assert usage_metadata({"prompt_tokens": True, "completion_tokens": 1}) is None
    assert usage_metadata("12 tokens") is None
    assert usage_metadata(None) is None


def test_rate_limit_headers_are_read_case_insensitively_and_leniently() -> None:
    headers = CIMultiDict({"x-ratelimit-limit": "10", "X-RATELIMIT-RESET": "1.5"})
    headers["X-RateLimit-Remaining"] = "soon"
    assert rate_limit(headers) == {"limit": 10, "reset": 1.5}
    assert rate_limit(CIMultiDict()) is None


# --- events ----------------------------------------------------------------------


def _event(data: Any, event: str = "message") -> ServerSentEvent:
    return ServerSentEvent(data if isinstance(data, str) else json.dumps(data), event)


def test_openai_delta_event() -> None:
    piece = event_reply(
        _event({"model": "m", "choices": [{"delta": {"content": "Hel"}}]})
    )
    assert piece == Reply("Hel", model="m")


def test_openai_last_event_with_usage_and_finish_reason() -> None:
    data = {
        "choices": [{"delta": {}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 2, "completion_tokens": 9, "total_tokens": 11},
    }
    piece = event_reply(_event(data))
    assert piece.text == ""
    assert piece.finish_reason == "length"
    assert piece.usage == {"input_tokens": 2, "output_tokens": 9, "total_tokens": 11}


def test_usage_only_event_with_no_choices() -> None:
    data = {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}
    assert event_reply(_event(data)).usage == {
        "input_tokens": 1,
        "output_tokens": 1,
        "total_tokens": 2,
    }


def test_response_object_event() -> None:
    assert event_reply(_event({"response": "lo"})) == Reply("lo")


@pytest.mark.parametrize(
    "data", ["plain words", "42", '"quoted"', '{"a": 1}', "{not json", "[1, 2]"]
)
def test_anything_else_is_plain_text(data: str) -> None:
    assert event_reply(_event(data)) == Reply(data)


@pytest.mark.parametrize("data", ["[DONE]", " [DONE] "])
def test_done(data: str) -> None:
    assert event_reply(_event(data)) == Reply(done=True)


@pytest.mark.parametrize(
    "event",
    [_event({"error": "quota exhausted"}), _event("quota exhausted", event="error")],
)
def test_error_events_raise(event: ServerSentEvent) -> None:
    with pytest.raises(DynasparkResponseError, match="quota exhausted"):
        event_reply(event)


# --- stop sequences across pieces --------------------------------------------------


def _scan(pieces: list[str], stop: list[str]) -> tuple[list[str], bool]:
    scanner = StopScanner(stop)
    released = [scanner.feed(piece) for piece in pieces]
    released.append(scanner.flush())
    return released, scanner.matched


def test_a_stop_split_across_pieces_cuts_the_reply() -> None:
    released, matched = _scan(["Paris.\nUs", "er: and", " Rome?"], ["\nUser:"])
    assert "".join(released) == "Paris."
    assert matched


def test_only_what_could_start_a_stop_is_held_back() -> None:
    scanner = StopScanner(["END"])
    assert scanner.feed("The E") == "The "
    assert scanner.feed("ND") == ""
    assert scanner.matched
    assert scanner.feed("more") == ""
    assert scanner.flush() == ""


def test_held_text_is_released_when_it_can_no_longer_match() -> None:
    scanner = StopScanner(["END"])
    assert scanner.feed("EN") == ""
    assert scanner.feed("TER") == "ENTER"
    assert scanner.feed("E") == ""
    assert scanner.flush() == "E"
    assert not scanner.matched


def test_earliest_stop_wins_across_pieces() -> None:
    released, _ = _scan(["a b", "c d"], ["d", "bc", " b"])
    assert "".join(released) == "a"


def test_no_stop_releases_everything_at_once() -> None:
    assert _scan(["a", "b"], []) == (["a", "b", ""], False)


@pytest.mark.parametrize("cut", range(1, 20))
def test_any_split_matches_the_whole_reply(cut: int) -> None:
    text = "one STOP two STOP three"
    released, matched = _scan([text[:cut], text[cut:]], ["STOP", "ST0"])
    assert "".join(released) == "one "
    assert matched


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_rate_limit_headers_that_are_not_finite_are_left_out(value: str) -> None:
    headers = CIMultiDict(
        {
            "X-RateLimit-Limit": "10",
            "X-RateLimit-Remaining": value,
            "X-RateLimit-Reset": value,
        }
    )
    assert rate_limit(headers) == {"limit": 10}


@pytest.mark.parametrize(
    "event",
    [
        _event({}),
        _event({"type": "ping"}),
        _event({"error": None}),
        _event({"choices": [{"delta": {}}]}),
        _event("ping", event="ping"),
        _event(""),
    ],
    ids=["empty object", "typed ping", "null error", "empty delta", "named", "empty"],
)
def test_events_without_text_carry_nothing(event: ServerSentEvent) -> None:
    assert event_reply(event) is None


def test_a_null_error_beside_text_is_no_error() -> None:
    data = {"choices": [{"delta": {"content": "Hi"}}], "error": None}
    assert event_reply(_event(data)) == Reply("Hi")


@pytest.mark.parametrize(
    ("data", "structured"),
    [
        ('{"choices": [{"delta": {"content": "X"}}', False),
        ('{"response": "X"', False),
        ("{not json", True),
    ],
)
def test_broken_json_is_an_error_never_text(data: str, structured: bool) -> None:
    with pytest.raises(DynasparkResponseError, match="not valid JSON"):
        event_reply(_event(data), structured=structured)
