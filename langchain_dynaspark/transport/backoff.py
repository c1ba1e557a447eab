"""One back-off per service, shared by every caller in the process.

Every request to one service (its scheme, host and port), from any event loop
or thread, passes the same `Backoff`:

- A gate. After a 429, no attempt starts until the wait the service asked for
  has passed. The caller that got the 429 waits it out; when others wait too,
  each wakes a random part of the wait later (`JITTER`), so they do not all
  come back at once. Waiting at the gate costs a caller none of its retries.
- A limit on requests in flight. A 429 that comes while others are in flight
  says the service takes fewer at once: the limit drops to one below what was
  in flight, and requests over it queue, in order, until one ends. The limit
  is forgotten `FORGET_AFTER` seconds after the last 429.

A request holds its pool's slot and its place in the limit from sending until
its answer has been read (a stream: until it ends): `Slot`.
"""

from __future__ import annotations

import asyncio
import os
import random
import threading
from collections import deque
from time import monotonic
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from langchain_dynaspark.errors import DynasparkRateLimitError
from langchain_dynaspark.transport.failures import Refused

if TYPE_CHECKING:
    from types import TracebackType

__all__ = ["FORGET_AFTER", "JITTER", "Backoff", "Slot", "backoff_for", "reset"]

JITTER = 0.5
"""Callers waiting behind one 429 wake within this fraction of its wait after it."""
FORGET_AFTER = 60.0
"""Seconds after the last 429 when the limit on requests in flight is dropped."""
_MIN_SPREAD = 0.25
"""Seconds callers spread over behind a 429 that asked for no wait at all."""


class Backoff:
    """The gate and the limit on requests in flight of one service."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._resume_at = 0.0
        self._spread = 0.0
        self._limit: int | None = None
        self._throttled_at = 0.0
        self._in_flight = 0
        self._queue: deque[asyncio.Future[None]] = deque()

    def hold(self, wait: float) -> float:
        """Close the gate for `wait` seconds after a 429; how long its caller waits.

        A caller alone waits `wait`, or until the gate opens if another 429
        closed it for longer; with others waiting or in flight, a random part
        of the wait more.
        """
        with self._lock:
            now = monotonic()
            shared = self._resume_at > now or self._in_flight > 0 or bool(self._queue)
            if self._resume_at > now + wait:
                wait = self._resume_at - now
            else:
                self._resume_at = now + wait
            spread = self._spread = JITTER * max(wait, _MIN_SPREAD)
        return wait + random.uniform(0.0, spread) if shared else wait

    def closed(self) -> bool:
        """Whether the gate is closed now (read without the lock: one float)."""
        return self._resume_at > monotonic()

    def try_enter(self) -> bool:
        """Take a place if the gate is open and the limit has room, without waiting.

        The path of nearly every request: one lock, no coroutine.
        """
        with self._lock:
            if self._queue or self._resume_at > monotonic() or not self._has_room():
                return False
            self._in_flight += 1
            return True

    async def enter(self) -> None:
        """Wait until the gate is open and the limit has room; take a place."""
        while True:
            await self.pass_gate()
            waiter: asyncio.Future[None] | None = None
            with self._lock:
                if self._queue or not self._has_room():
                    waiter = asyncio.get_running_loop().create_future()
                    self._queue.append(waiter)
                else:
                    self._in_flight += 1
            if waiter is not None:
                try:
                    await waiter
                except BaseException:
                    self._withdraw(waiter)
                    raise
            with self._lock:
                if self._resume_at <= monotonic():
                    return
            self.leave(throttled=False)  # a 429 closed the gate meanwhile

    async def pass_gate(self) -> None:
        """Wait until the gate is open, and a random part of its wait more."""
        while True:
            with self._lock:
                closed_for = self._resume_at - monotonic()
                spread = self._spread
            if closed_for <= 0:
                return
            await asyncio.sleep(closed_for + random.uniform(0.0, spread))

    def leave(self, *, throttled: bool) -> None:
        """Give the place back; `throttled`: its answer was a 429."""
        with self._lock:
            if throttled:
                self._throttled_at = monotonic()
                if self._in_flight > 1:
                    ceiling = min(self._limit or self._in_flight, self._in_flight)
                    self._limit = max(1, ceiling - 1)
            self._in_flight -= 1
            granted = []
            while self._queue and self._has_room():
                self._in_flight += 1
                granted.append(self._queue.popleft())
        for waiter in granted:
            try:
                waiter.get_loop().call_soon_threadsafe(_grant, waiter)
            except RuntimeError:  # its loop is closed: nobody takes the place
                self.leave(throttled=False)

    def _has_room(self) -> bool:
        """Whether one more request may be in flight; hold the lock."""
        if self._limit is not None and (
            monotonic() - self._throttled_at >= FORGET_AFTER
        ):
            self._limit = None
        return self._limit is None or self._in_flight < self._limit

    def _withdraw(self, waiter: asyncio.Future[None]) -> None:
        """A queued caller gave up: leave the queue, or the place it was given."""
        with self._lock:
            if waiter in self._queue:
                self._queue.remove(waiter)
                return
        self.leave(throttled=False)


def _grant(waiter: asyncio.Future[None]) -> None:
    """On the waiter's loop: it has a place (unless it gave up meanwhile)."""
    if not waiter.done():
        waiter.set_result(None)


class Slot:
    """A request's place: its pool's slot, and its place in the shared back-off.

    An async context manager: entering waits at the gate, then for the pool's
    slot and the back-off's limit; leaving gives both back, telling the
    back-off whether the request was refused with a 429 (`Refused`). A place
    handed on with `keep` (a stream's, which outlives the request) is given
    back by `release` instead, unless an error leaves the block: then nobody
    received it, and leaving gives it back. A place is given back once.
    """

    __slots__ = ("_backoff", "_held", "_kept", "_slots")

    def __init__(self, slots: asyncio.Semaphore, backoff: Backoff) -> None:
        self._slots = slots
        self._backoff = backoff
        self._kept = False
        self._held = False

    async def __aenter__(self) -> Slot:
        backoff = self._backoff
        if backoff.closed():
            await backoff.pass_gate()
        await self._slots.acquire()
        try:
            if not backoff.try_enter():
                await backoff.enter()
        except BaseException:
            self._slots.release()
            raise
        self._held = True
        return self

    def keep(self) -> Slot:
        """Hand the place on: leaving the block no longer gives it back."""
        self._kept = True
        return self

    def release(self, *, throttled: bool = False) -> None:
        """Give the place back, if it is still held (a kept one: its body ended)."""
        if self._held:
            self._held = False
            self._backoff.leave(throttled=throttled)
            self._slots.release()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._kept and error is None:
            return
        throttled = isinstance(error, Refused) and isinstance(
            error.error, DynasparkRateLimitError
        )
        self.release(throttled=throttled)


_backoffs: dict[str, Backoff] = {}
"""The back-off of each service (scheme, host and port), by the URLs asked."""
_backoffs_lock = threading.Lock()


def backoff_for(url: str) -> Backoff:
    """The back-off shared by every request to the service at `url`."""
    backoff = _backoffs.get(url)
    if backoff is not None:
        return backoff
    try:
        parts = urlsplit(url)
        service = f"{parts.scheme}://{parts.hostname}:{parts.port}".lower()
    except ValueError:  # not a URL a request can go to: it fails on its own
        service = url
    with _backoffs_lock:
        backoff = _backoffs.setdefault(service, Backoff())
        _backoffs[url] = backoff
    return backoff


def reset() -> None:
    """Forget every back-off: at a fork (the child shares none), and for tests."""
    global _backoffs_lock  # noqa: PLW0603
    _backoffs_lock = threading.Lock()
    _backoffs.clear()


os.register_at_fork(after_in_child=reset)
