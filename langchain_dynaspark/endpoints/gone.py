"""Surfaces that answered as gone, remembered for the whole process.

The operator has moved the form's path before. A surface that answers 404, 405
or 410 (or an HTML "not found" page where JSON was expected) is remembered as
gone, by its URL, for `GONE_FOR` seconds: every model, thread and event loop of
the process then skips it under `endpoint="auto"`, so a dead surface costs one
failed request, not one per call. After that it is tried again, so a service
that comes back is used again.

That holds for calls made at once, too: until a surface has answered once
(`first_contact`), one call asks it and the others wait for its answer, then
go there or, if it is gone, elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator

from langchain_dynaspark.errors import DynasparkNotFoundError

__all__ = [
    "GONE_FOR",
    "first_contact",
    "forget",
    "gone_for",
    "is_gone",
    "mark_gone",
]

GONE_FOR = 300.0
"""Seconds a surface that answered as gone is skipped before it is tried again."""

_WAIT_STEP = 0.01
"""Seconds between looks, for a call waiting on another's first contact."""

_gone: dict[str, float] = {}
"""Surface URL -> the `time.monotonic()` until which it is skipped."""
_contacted: set[str] = set()
"""Surface URLs that have answered (anything but gone) since they were last
remembered as gone."""
_contacting: set[str] = set()
"""Surface URLs a call is asking for the first time, right now."""
_lock = threading.Lock()


def is_gone(error: BaseException) -> bool:
    """Whether `error` says that the surface itself is not there."""
    return isinstance(error, DynasparkNotFoundError)


def mark_gone(url: str) -> None:
    """Remember the surface at `url` as gone for `GONE_FOR` seconds."""
    with _lock:
        _gone[url] = time.monotonic() + GONE_FOR
        _contacted.discard(url)


def gone_for(url: str) -> float | None:
    """Seconds the surface at `url` is still skipped for, or `None`."""
    until = _gone.get(url)  # read without the lock: one dict lookup per call
    if until is None:
        return None
    left = until - time.monotonic()
    if left > 0:
        return left
    with _lock:
        if _gone.get(url) == until:
            del _gone[url]
    return None


@contextlib.asynccontextmanager
async def first_contact(url: str) -> AsyncIterator[None]:
    """Send to the surface at `url`, one call at a time until it has answered.

    Once the surface has answered, this costs a set lookup. Until then, the
    first call goes ahead and the others wait (on any event loop or thread)
    for its outcome.

    Raises:
        DynasparkNotFoundError: If, while this call waited, the surface
            answered another as gone.
    """
    if url in _contacted or not await _turn(url):
        yield
        return
    answered = False
    try:
        yield
        answered = True
    except Exception as error:
        answered = not is_gone(error)
        if not answered:
            mark_gone(url)
        raise
    finally:
        with _lock:
            _contacting.discard(url)
            if answered:
                _contacted.add(url)


async def _turn(url: str) -> bool:
    """Wait until the surface at `url` has answered, or it is this call's turn.

    Returns:
        Whether this call is the one to contact it first.

    Raises:
        DynasparkNotFoundError: If it answered another call as gone.
    """
    while True:
        left = gone_for(url)
        if left is not None:
            msg = (
                f"Dynaspark answered as gone at {url} a moment ago (to another "
                f"call); it is tried again in {left:.0f} s."
            )
            raise DynasparkNotFoundError(msg, status_code=404)
        with _lock:
            if url in _contacted:
                return False
            if url not in _contacting:
                _contacting.add(url)
                return True
        await asyncio.sleep(_WAIT_STEP)


def forget() -> None:
    """Forget every surface remembered as gone or as answered (for tests)."""
    with _lock:
        _gone.clear()
        _contacted.clear()
        _contacting.clear()
