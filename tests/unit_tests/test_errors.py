"""The error hierarchy, retry decisions, `Retry-After` and error messages. Pure."""

from __future__ import annotations

import pickle
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
from langchain_core.exceptions import (
    ModelAPIError,
    ModelConnectionError,
    ModelError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelRateLimitError,
    ModelTimeoutError,
)

import langchain_dynaspark
from langchain_dynaspark.endpoints import form
from langchain_dynaspark.errors import (
    DynasparkAPIError,
    DynasparkConnectionError,
    DynasparkError,
    DynasparkHTTPError,
    DynasparkImageError,
    DynasparkInputError,
    DynasparkInvalidRequestError,
    DynasparkNotFoundError,
    DynasparkRateLimitError,
    DynasparkResponseError,
    DynasparkTimeoutError,
)
from langchain_dynaspark.transport import TransportSettings, failures, retries

SETTINGS = TransportSettings(
    url="http://127.0.0.1:9/generate_response",
    timeout=120.0,
    connect_timeout=15.0,
    max_retries=2,
    not_found_hint=form.NOT_FOUND_HINT,
)


def _errors() -> list[tuple[DynasparkError, type[ModelError] | None, bool]]:
    """One instance of each error, its `langchain_core` base, and retryability."""
    return [
        (DynasparkRateLimitError("m", retry_after=3.0), ModelRateLimitError, True),
        (DynasparkAPIError("m", status_code=503), ModelAPIError, True),
        (DynasparkResponseError("m", status_code=200), ModelAPIError, False),
        (
            DynasparkInvalidRequestError("m", status_code=400),
            ModelInvalidRequestError,
            False,
        ),
        (DynasparkNotFoundError("m", status_code=404), ModelNotFoundError, False),
        (DynasparkTimeoutError("m"), ModelTimeoutError, True),
        (DynasparkConnectionError("m"), ModelConnectionError, True),
        (DynasparkInputError("m"), None, False),
        (DynasparkImageError("m"), None, False),
    ]


@pytest.mark.parametrize(
    ("error", "core_base", "retryable"),
    _errors(),
    ids=[type(error).__name__ for error, _, _ in _errors()],
)
def test_each_error_is_a_dynaspark_error_and_its_langchain_core_kind(
    error: DynasparkError, core_base: type[ModelError] | None, retryable: bool
) -> None:
    assert isinstance(error, DynasparkError)
    if core_base is None:
        assert not isinstance(error, ModelError)
        assert isinstance(error, ValueError)
    else:
        assert isinstance(error, core_base)
        assert error.is_retryable is retryable
    assert retries._retryable(error) is retryable


def test_core_kinds_do_not_overlap() -> None:
    """Each error matches one `langchain_core` kind, so handlers are not confused."""
    kinds = (
        ModelRateLimitError,
        ModelAPIError,
        ModelInvalidRequestError,
        ModelNotFoundError,
        ModelTimeoutError,
        ModelConnectionError,
    )
    for error, core_base, _ in _errors():
        matching = [kind for kind in kinds if isinstance(error, kind)]
        assert matching == ([core_base] if core_base else [])


def test_package_exports_every_error() -> None:
    for error, _, _ in _errors():
        name = type(error).__name__
        assert getattr(langchain_dynaspark, name) is type(error)
        assert name in langchain_dynaspark.__all__


@pytest.mark.parametrize(
    ("status", "retryable"),
    [(500, True), (502, True), (503, True), (504, True), (501, False), (505, False)],
)
def test_server_errors_are_retryable_only_when_transient(
    status: int, retryable: bool
) -> None:
    error = DynasparkAPIError("m", status_code=status)
    assert error.is_retryable is retryable
    assert retries._retryable(error) is retryable


def test_http_errors_keep_status_server_message_and_retry_after() -> None:
    error = DynasparkRateLimitError("m", server_message="slow down", retry_after=2.5)
    assert (error.status_code, error.server_message, error.retry_after) == (
        429,
        "slow down",
        2.5,
    )
    assert DynasparkRateLimitError("m").retry_after is None
    assert isinstance(error, DynasparkHTTPError)


@pytest.mark.parametrize(
    "error",
    [
        DynasparkRateLimitError("limited", server_message="s", retry_after=2.0),
        DynasparkAPIError("down", status_code=501, server_message="s"),
        DynasparkResponseError("html", status_code=200, server_message="title"),
        DynasparkInvalidRequestError("bad", status_code=413),
        DynasparkNotFoundError("moved", status_code=404),
        DynasparkTimeoutError("slow"),
        DynasparkConnectionError("gone"),
        DynasparkImageError("bad image"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_errors_survive_pickling(error: DynasparkError) -> None:
    """Errors raised in a worker process must reach the parent intact."""
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.__dict__ == error.__dict__
    assert getattr(copy, "is_retryable", None) == getattr(error, "is_retryable", None)


def _http_date(delta: float) -> str:
    return format_datetime(
        datetime.now(timezone.utc) + timedelta(seconds=delta), usegmt=True
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("5", 5.0),
        ("0", 0.0),
        ("1.5", 1.5),
        (" 7 ", 7.0),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("Mon, 99 Foo 2015 99:99:99 GMT", None),
        ("inf", None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert failures.parse_retry_after(value) == expected


def test_parse_retry_after_http_date_in_the_future() -> None:
    seconds = failures.parse_retry_after(_http_date(30))
    assert seconds is not None
    assert 28.0 <= seconds <= 30.0


def test_retry_after_is_honoured_but_capped() -> None:
    assert retries._wait_before_retry(0.0, 1) == 0.0
    assert retries._wait_before_retry(7.0, 3) == 7.0
    assert retries._wait_before_retry(3600.0, 1) == retries.MAX_RETRY_AFTER


def test_backoff_grows_exponentially_with_jitter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base, cap = retries.BACKOFF_BASE, retries.BACKOFF_MAX
    for jitter in (0.5, 1.0):
        monkeypatch.setattr(retries.random, "uniform", lambda lo, hi, j=jitter: j)
        waits = [retries._wait_before_retry(None, attempt) for attempt in (1, 2, 3)]
        assert waits == [base * jitter, 2 * base * jitter, 4 * base * jitter]
        assert retries._wait_before_retry(None, 100) == cap * jitter
        # Absurd retry counts neither overflow nor exceed the cap.
        assert retries._wait_before_retry(None, 5000) == cap * jitter


def test_backoff_jitter_is_random_within_bounds() -> None:
    waits = {retries._wait_before_retry(None, 2) for _ in range(50)}
    assert len(waits) > 1
    base = 2 * retries.BACKOFF_BASE
    assert all(0.5 * base <= wait <= base for wait in waits)


def _status_message(status: int, retry_after: float | None = None) -> str:
    return str(failures.status_error(status, retry_after, "it broke", SETTINGS, 3))


def test_rate_limit_message_says_what_happened_and_what_to_do() -> None:
    error = failures.status_error(429, 12.0, "too many", SETTINGS, 3)
    assert isinstance(error, DynasparkRateLimitError)
    assert error.retry_after == 12.0
    assert error.server_message == "too many"
    message = str(error)
    for part in ("429", "after 3 attempts", "too many", "Wait 12 s", "rate_limiter"):
        assert part in message


@pytest.mark.parametrize(("status", "wait"), [(503, None), (502, 30.0)])
def test_server_error_message(status: int, wait: float | None) -> None:
    error = failures.status_error(status, wait, "it broke", SETTINGS, 1)
    assert isinstance(error, DynasparkAPIError)
    assert error.status_code == status
    message = str(error)
    assert f"HTTP {status}" in message
    assert "after 1 attempt." in message
    assert "it broke" in message
    assert ("retry in 30 s" if wait else "retry in a minute") in message
    assert "max_retries" in message


def test_not_found_message_points_at_path() -> None:
    error = failures.status_error(404, None, None, SETTINGS, 1)
    assert isinstance(error, DynasparkNotFoundError)
    assert "/generate_response" in str(error)
    assert "path=" in str(error)
    assert "The service said" not in str(error)


@pytest.mark.parametrize(
    ("status", "hint"), [(400, "model name"), (413, "smaller image"), (422, "input")]
)
def test_other_client_errors_are_invalid_requests(status: int, hint: str) -> None:
    error = failures.status_error(status, None, "nope", SETTINGS, 1)
    assert isinstance(error, DynasparkInvalidRequestError)
    assert not retries._retryable(error)
    assert f"HTTP {status}" in str(error)
    assert "nope" in str(error)
    assert hint in str(error)


def test_connection_and_timeout_messages_hide_credentials() -> None:
    settings = TransportSettings(
        url="http://alice:s3cr%40t@127.0.0.1:9/generate_response",
        timeout=0.5,
        connect_timeout=0.25,
        max_retries=0,
        proxy="http://bob:hunter2@127.0.0.1:3128",
    )
    leaky = OSError("talking to alice:s3cr%40t@127.0.0.1, bob:hunter2, s3cr@t")
    error = failures.connection_error(
        failures.aiohttp.ClientOSError(*leaky.args), settings, 2
    )
    message = str(error)
    assert isinstance(error, DynasparkConnectionError)
    for secret in ("s3cr%40t", "s3cr@t", "hunter2"):
        assert secret not in message
    assert "127.0.0.1:9" in message
    assert "after 2 attempts" in message

    connect = failures.timeout_error(
        failures.aiohttp.ConnectionTimeoutError(), settings, 1
    )
    assert "connect_timeout=0.25 s" in str(connect)
    assert "s3cr" not in str(connect)
    answer = failures.timeout_error(TimeoutError(), settings, 1)
    assert "timeout=0.5 s" in str(answer)
    assert "raise `timeout`" in str(answer)
