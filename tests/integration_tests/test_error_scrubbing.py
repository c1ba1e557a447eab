"""Errors never hold the query string, nor the prompt or the key in any encoding.

And a redirect on the API says what happened there: where it pointed, and that
a request that carries its fields in its query follows none.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from yarl import URL

from langchain_dynaspark import (
    ChatDynaspark,
    DynasparkConnectionError,
    DynasparkError,
    DynasparkInvalidRequestError,
    DynasparkRedirectError,
    DynasparkResponseError,
)
from langchain_dynaspark.testing.server import DynasparkTestServer, Reply

PROMPT = "my confidential question about the merger"
KEY = "ab/cd+ef*gh"
"""A key whose encodings differ: `quote`, `quote_plus` and a query's."""


def _forms(value: str) -> set[str]:
    """`value` in every encoding a request or an error may show it in."""
    query = URL.build(query={"v": value}).raw_query_string[2:]
    return {value, quote(value), quote(value, safe=""), quote_plus(value), query}


def _assert_concealed(error: BaseException) -> None:
    """Neither the query, nor the prompt or the key in any encoding."""
    for text in (str(error), repr(error), str(getattr(error, "server_message", ""))):
        assert "user_input=" not in text
        assert "api_key=" not in text
        for form in _forms(PROMPT) | _forms(KEY):
            assert form not in text


def _model(base_url: str, **kwargs: Any) -> ChatDynaspark:
    kwargs.setdefault("max_retries", 0)
    return ChatDynaspark(base_url=base_url, endpoint="api", api_key=KEY, **kwargs)


@pytest.fixture
def bad_header_url() -> Iterator[str]:
    """A server whose answers carry a malformed header line."""
    listener = socket.create_server(("127.0.0.1", 0))
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"X-Bad\x01Header: v\r\nContent-Length: 2\r\n\r\n{}"
    )

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the `accept` above
        listener.close()
        thread.join(timeout=5)


def test_a_malformed_header_error_holds_no_query(bad_header_url: str) -> None:
    with pytest.raises(DynasparkConnectionError) as caught:
        _model(bad_header_url).invoke(PROMPT)
    assert "ClientResponseError" in str(caught.value)  # aiohttp's words are kept
    _assert_concealed(caught.value)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, DynasparkInvalidRequestError), (200, DynasparkResponseError)],
)
@pytest.mark.parametrize("stream", [False, True])
def test_an_error_that_echoes_the_request_target_holds_no_query(
    server: DynasparkTestServer,
    status: int,
    error_type: type[DynasparkError],
    stream: bool,
) -> None:
    server.script(Reply(status=status, echo_target=True))
    model = _model(server.url)
    call: Callable[[], object] = (
        (lambda: list(model.stream(PROMPT)))
        if stream
        else (lambda: model.invoke(PROMPT))
    )
    with pytest.raises(error_type) as caught:
        call()
    assert "cannot serve GET /api/generate_response" in str(caught.value)
    _assert_concealed(caught.value)
    assert server.requests[0].fields["api_key"] == KEY  # the echo had it all


def test_a_key_quoted_in_a_message_in_any_encoding_is_hidden(
    server: DynasparkTestServer,
) -> None:
    said = " ".join(sorted(_forms(KEY)))
    server.script(Reply(status=403, body={"error": f"bad key {said}"}))
    with pytest.raises(DynasparkInvalidRequestError) as caught:
        _model(server.url).invoke(PROMPT)
    assert "bad key" in str(caught.value)
    _assert_concealed(caught.value)


# --- Redirects on the API --------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_on_the_api_says_where_and_why(
    server: DynasparkTestServer, status: int
) -> None:
    moved = f"{server.url}/v2/api/generate_response"
    server.script(Reply(status=status, headers={"Location": moved}))
    with pytest.raises(DynasparkRedirectError) as caught:
        _model(server.url, max_retries=2).invoke(PROMPT)
    message = str(caught.value)
    assert caught.value.location == moved
    assert f"redirecting the request to {moved}" in message
    assert "follows no redirect" in message
    assert "`api_path`" in message
    for wrong in ("the form", "nowhere", "More than"):
        assert wrong not in message
    assert len(server.requests) == 1
    _assert_concealed(caught.value)


def test_a_redirect_without_a_location_says_so(server: DynasparkTestServer) -> None:
    server.script(Reply(status=307))
    with pytest.raises(DynasparkRedirectError) as caught:
        _model(server.url).invoke(PROMPT)
    message = str(caught.value)
    assert "HTTP 307, without a `Location`" in message
    assert caught.value.location is None
    for wrong in ("the form", "More than"):
        assert wrong not in message


def test_a_redirect_that_carries_the_query_along_holds_none_of_it(
    server: DynasparkTestServer,
) -> None:
    moved = "https://other.example/api/generate_response"
    query = URL.build(query={"user_input": PROMPT, "api_key": KEY}).raw_query_string
    server.script(Reply(status=301, headers={"Location": f"{moved}?{query}"}))
    with pytest.raises(DynasparkRedirectError) as caught:
        _model(server.url).invoke(PROMPT)
    assert caught.value.location == f"{moved}?[query]"
    assert f"redirecting the request to {moved}?[query]" in str(caught.value)
    _assert_concealed(caught.value)
    assert caught.value.location is not None
    for form in _forms(PROMPT) | _forms(KEY):
        assert form not in caught.value.location
