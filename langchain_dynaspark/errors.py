"""Typed errors raised by `ChatDynaspark`.

Every error derives from `DynasparkError`. Errors that describe a failure of the
service also derive from the matching `langchain_core.exceptions` class, so code
(and agent middleware) that handles `ModelRateLimitError`, `ModelTimeoutError`
and friends for any provider handles Dynaspark too. Bad input detected before a
request is sent is a `DynasparkInputError`, which is also a `ValueError`.

Messages say what happened and what to do. They never contain the prompt, image
data or any secret.
"""

from __future__ import annotations

from typing import Any

from langchain_core.exceptions import (
    ModelAPIError,
    ModelConnectionError,
    ModelInvalidRequestError,
    ModelNotFoundError,
    ModelRateLimitError,
    ModelTimeoutError,
)

__all__ = [
    "TRANSIENT_STATUSES",
    "DynasparkAPIError",
    "DynasparkConnectionError",
    "DynasparkError",
    "DynasparkImageError",
    "DynasparkInputError",
    "DynasparkInvalidRequestError",
    "DynasparkNotFoundError",
    "DynasparkRateLimitError",
    "DynasparkRedirectError",
    "DynasparkResponseError",
    "DynasparkResponseTooLargeError",
    "DynasparkTimeoutError",
]

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses worth retrying: rate limits and a host that is failing or waking."""


class DynasparkError(Exception):
    """Root of every error raised by `langchain-dynaspark`."""


class DynasparkInputError(DynasparkError, ValueError):
    """The input cannot be sent to Dynaspark; raised before any request is made."""


class DynasparkImageError(DynasparkInputError):
    """An image could not be read, fetched or prepared for upload."""


class DynasparkHTTPError(DynasparkError):
    """The service answered, but not with a usable reply.

    Attributes:
        status_code: The HTTP status of the answer.
        server_message: The service's own error text, shortened, if it gave one.
    """

    def __init__(
        self, message: str, *, status_code: int, server_message: str | None = None
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.server_message = server_message

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by message and attributes, so errors cross process boundaries.

        `Exception` pickles only `args` and rebuilds with `cls(*args)`, which
        would miss the keyword-only `status_code`.
        """
        return (_rebuild, (type(self), self.args), self.__dict__)


class DynasparkRateLimitError(DynasparkHTTPError, ModelRateLimitError):
    """The service answered 429 Too Many Requests.

    Attributes:
        retry_after: Seconds the service asked us to wait, if it said.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 429,
        server_message: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, server_message=server_message
        )
        self.retry_after = retry_after


class DynasparkAPIError(DynasparkHTTPError, ModelAPIError):
    """The service failed with a 5xx status (or the hosting proxy did).

    `is_retryable` is true for 500, 502, 503 and 504, not for other 5xx such as
    501 Not Implemented.
    """

    def __init__(
        self, message: str, *, status_code: int, server_message: str | None = None
    ) -> None:
        super().__init__(
            message, status_code=status_code, server_message=server_message
        )
        self.is_retryable = status_code in TRANSIENT_STATUSES


class DynasparkResponseError(DynasparkHTTPError, ModelAPIError):
    """The service answered 200 with something other than `{"response": "<text>"}`.

    This covers HTML maintenance or proxy pages, bodies that are not JSON, JSON
    `{"error": "..."}` (its text is kept in `server_message`) and a missing or
    non-string `response`. It is not retried: the body is not a transient fault.
    """

    is_retryable = False


class DynasparkResponseTooLargeError(DynasparkResponseError):
    """The answer body was larger than `max_response_bytes`; it was not read whole."""


class DynasparkInvalidRequestError(DynasparkHTTPError, ModelInvalidRequestError):
    """The service rejected the request with a 4xx status (other than 404/429)."""


class DynasparkRedirectError(DynasparkInvalidRequestError):
    """The service redirected the form where it cannot be followed.

    A 301, 302 or 303 turns a POST into a GET without the form, so it is not
    followed (nor are more than `transport.MAX_REDIRECTS` 307/308 redirects).

    Attributes:
        location: The URL the service redirected to, its credentials as `***`.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        server_message: str | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(
            message, status_code=status_code, server_message=server_message
        )
        self.location = location


class DynasparkNotFoundError(DynasparkHTTPError, ModelNotFoundError):
    """The service answered 404: the form path has most likely moved."""


class DynasparkTimeoutError(DynasparkError, ModelTimeoutError):
    """The request did not complete within the configured timeout."""


class DynasparkConnectionError(DynasparkError, ModelConnectionError):
    """The service could not be reached, or dropped the connection."""


def _rebuild(cls: type[DynasparkHTTPError], args: tuple[Any, ...]) -> Exception:
    """An unpickled `cls` with `args`; pickle then restores its attributes."""
    error = cls.__new__(cls)
    error.args = args
    return error
