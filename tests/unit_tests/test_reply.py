"""`reply_text`, `server_message` and `apply_stop`. Pure."""

from __future__ import annotations

import json

import pytest
from langchain_core.exceptions import ModelAPIError

from langchain_dynaspark.errors import DynasparkResponseError
from langchain_dynaspark.reply import apply_stop, reply_text, server_message

PROMPT = "Plan the quokka heist at Zanzibar pier 7731"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b'{"response": "Bonjour !"}', "Bonjour !"),
        (b'{"response": ""}', ""),
        (b'{"response": "caf\\u00e9 \\u2615"}', "café ☕"),
        (b'{"response": "  kept as is \\n"}', "  kept as is \n"),
        (b'{"response": "ok", "model": "gemini-2.0-flash"}', "ok"),
        (b'{"response": "lone \\ud800 and \\udfff"}', "lone \ufffd and \ufffd"),
        (b'{"response": "pair \\ud83d\\ude00"}', "pair \U0001f600"),
    ],
)
def test_reply_text_returns_the_response_string(body: bytes, text: str) -> None:
    assert reply_text(body) == text


def _bad(body: bytes, prompt: str | None = None) -> DynasparkResponseError:
    with pytest.raises(DynasparkResponseError) as caught:
        reply_text(body, prompt=prompt)
    error = caught.value
    assert isinstance(error, ModelAPIError)
    assert error.status_code == 200
    assert not error.is_retryable
    return error


def test_html_page() -> None:
    error = _bad(
        b"<!DOCTYPE html><html><head><title>502 Bad Gateway &amp; co</title></head>"
        b"<body><h1>Service waking up</h1></body></html>"
    )
    assert "an HTML page" in str(error)
    assert "retry" in str(error)
    assert error.server_message == "502 Bad Gateway & co"


def test_html_page_without_title_keeps_its_text() -> None:
    error = _bad(b"<html><body><h1>Under\n   maintenance</h1></body></html>")
    assert error.server_message == "Under maintenance"


def test_body_that_is_not_json() -> None:
    error = _bad(b"Service Unavailable")
    assert "not JSON" in str(error)
    assert error.server_message == "Service Unavailable"


def test_empty_body() -> None:
    error = _bad(b"")
    assert "not JSON" in str(error)
    assert error.server_message is None


def test_error_field_keeps_the_services_message() -> None:
    error = _bad(b'{"error": "Model gemini-9 is not available"}')
    assert "Model gemini-9 is not available" in str(error)
    assert error.server_message == "Model gemini-9 is not available"
    assert "Retry later" in str(error)


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"{}", "has no `response` field"),
        (b'{"text": "hi"}', "has no `response` field"),
        (b"[]", "has no `response` field"),
        (b'"just a string"', "has no `response` field"),
        (b"42", "has no `response` field"),
        (b'{"response": 42}', "non-string `response` (int)"),
        (b'{"response": ["a", "b"]}', "non-string `response` (list)"),
        (b'{"response": {"text": "hi"}}', "non-string `response` (dict)"),
    ],
)
def test_json_without_a_string_response(body: bytes, what: str) -> None:
    error = _bad(body)
    assert what in str(error)
    assert "report" in str(error)


def test_long_server_messages_are_shortened() -> None:
    error = _bad(json.dumps({"error": "x" * 5000}).encode())
    assert error.server_message is not None
    assert len(error.server_message) <= 300
    assert error.server_message.endswith("...")
    assert len(str(error)) < 500


@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"error": f"Blocked input: {PROMPT}"}).encode(),
        f"<html><title>Bad input {PROMPT}</title></html>".encode(),
        f"You said: {PROMPT}".encode(),
        json.dumps({"answer": f"{PROMPT}? Sure."}).encode(),
        json.dumps({"error": "y" * 400 + PROMPT}).encode(),
    ],
    ids=["error", "html", "text", "no-response", "after-long-text"],
)
def test_the_prompt_never_appears_in_an_error(body: bytes) -> None:
    error = _bad(body, prompt=PROMPT)
    assert PROMPT not in str(error)
    assert PROMPT not in repr(error)
    assert PROMPT not in (error.server_message or "")


def test_a_quoted_prompt_is_named_not_copied() -> None:
    error = _bad(json.dumps({"error": f"Blocked: {PROMPT}"}).encode(), prompt=PROMPT)
    assert error.server_message == "Blocked: [your prompt]"
    assert "Blocked: [your prompt]" in str(error)


def test_html_escaped_prompt_is_redacted() -> None:
    prompt = "is 3 < 4 && 5 > 2 ?"
    said = server_message(
        b"<html><title>Bad: is 3 &lt; 4 &amp;&amp; 5 &gt; 2 ?</title>"
    )
    assert said == f"Bad: {prompt}"
    assert server_message(
        b"<html><title>Bad: is 3 &lt; 4 &amp;&amp; 5 &gt; 2 ?</title>", prompt=prompt
    ) == ("Bad: [your prompt]")


def test_very_short_prompts_do_not_blank_out_words() -> None:
    assert server_message(b'{"error": "Hi there, quota exceeded"}', prompt="Hi") == (
        "Hi there, quota exceeded"
    )


def test_server_message_for_status_errors() -> None:
    assert server_message(b'{"error": "slow down"}') == "slow down"
    assert server_message(b'{"detail": "x"}') == '{"detail": "x"}'
    assert server_message(b"  \n ") is None
    assert server_message(b"busy\n\n  try later") == "busy try later"


@pytest.mark.parametrize(
    ("text", "stop", "expected"),
    [
        ("Hello world", None, ("Hello world", False)),
        ("Hello world", [], ("Hello world", False)),
        ("Hello world", ["zzz"], ("Hello world", False)),
        ("Hello world", ["o"], ("Hell", True)),
        ("Hello world", ["world", "lo"], ("Hel", True)),
        ("Hello world", ["", "w"], ("Hello ", True)),
        ("STOP at once", ["STOP"], ("", True)),
    ],
)
def test_apply_stop(
    text: str, stop: list[str] | None, expected: tuple[str, bool]
) -> None:
    assert apply_stop(text, stop) == expected


def test_a_null_response_says_the_service_gave_no_answer() -> None:
    error = _bad(b'{"response": null}')
    assert "`response: null`" in str(error)
    assert "produced no answer text" in str(error)
    assert "no `response` field" not in str(error)
