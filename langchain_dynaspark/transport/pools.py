"""One pooled `aiohttp.ClientSession` per event loop, and fork safety.

- One session per event loop (and `max_connections`), created lazily on first
  use and reused by every caller on that loop, so a run of sequential calls
  shares one keep-alive connection. It is closed when its loop shuts down
  (`asyncio.run` and `asyncio.Runner` close it through the loop's async
  generator shutdown); the session of a loop closed without that shutdown is
  dropped quietly when the next session is made, or at exit. A session is never
  used on a loop other than its own, nor closed by a forked child.
- Stateless: the session keeps no cookies, so nothing one request is told
  reaches another caller's request (or an image download).
- At most `max_connections` requests are in flight per pool: a request holds
  one of the pool's `slots` while it is sent.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import threading
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp

__all__ = ["Pool", "pool_for"]


@dataclass(frozen=True)
class Pool:
    """One loop's pooled session, and the slots that bound its requests in flight."""

    session: aiohttp.ClientSession
    slots: asyncio.Semaphore
    closer: AsyncIterator[None]


_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, Pool]] = (
    weakref.WeakKeyDictionary()
)
_sessions_lock = threading.Lock()
_inherited: list[object] = []


async def pool_for(max_connections: int) -> Pool:
    """The running loop's pool for `max_connections`, created on first use.

    The session keeps no cookies (a stateless client), and its connector and
    slots allow `max_connections` requests in flight.
    """
    loop = asyncio.get_running_loop()
    pool = _sessions.get(loop, {}).get(max_connections)
    if pool is not None and not pool.session.closed:
        return pool
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=max_connections, limit_per_host=0),
        cookie_jar=aiohttp.DummyCookieJar(),
    )
    pool = Pool(
        session,
        asyncio.Semaphore(max_connections),
        _close_at_loop_shutdown(loop, session),
    )
    with _sessions_lock:
        dropped = _drop_closed_loops()
        _sessions.setdefault(loop, {})[max_connections] = pool
    for old in dropped:
        _discard(old.session)
    await anext(pool.closer)
    return pool


def _drop_closed_loops() -> list[Pool]:
    """Forget the pools of loops closed without closing them; hold the lock."""
    closed = [loop for loop in _sessions if loop.is_closed()]
    return [pool for loop in closed for pool in _sessions.pop(loop).values()]


def _discard(session: aiohttp.ClientSession) -> None:
    """Close quietly the session of a loop that was closed under it.

    A closed loop runs nothing, so closing schedules nothing: the connector
    marks itself closed and forgets its connections, whose sockets close as
    they are collected, and the awaitable it returns completes at its first
    step. The session then counts as closed: no "Unclosed client session".
    """
    connector = session.connector
    if connector is None or connector.closed:
        return
    with contextlib.suppress(StopIteration):
        connector.close().__await__().send(None)


async def _close_at_loop_shutdown(
    loop: asyncio.AbstractEventLoop, session: aiohttp.ClientSession
) -> AsyncIterator[None]:
    """Close `session` when `loop` shuts down its async generators.

    The loop tracks this generator from its first step; `asyncio.run`,
    `asyncio.Runner` and the sync bridge's loop all finalise tracked generators
    before closing, which runs the `finally` below on the session's own loop.
    It also forgets the session: the entry refers to its loop, which would
    otherwise never be freed. (A loop closed without that shutdown cannot close
    its session; it is dropped quietly when the next session is made, or at
    exit.) A child forked from the process that made the session leaves it
    alone: its sockets, and their registration in the epoll the two processes
    share, are the parent's.
    """
    owner = os.getpid()
    try:
        yield
    finally:
        if os.getpid() == owner:
            with _sessions_lock:
                pools = _sessions.get(loop, {})
                for key, pool in list(pools.items()):
                    if pool.session is session:
                        del pools[key]
                if not pools:
                    _sessions.pop(loop, None)
            await session.close()


def _discard_closed_loops() -> None:
    """At exit: drop quietly the sessions of loops closed by hand."""
    with _sessions_lock:
        dropped = _drop_closed_loops()
    for pool in dropped:
        _discard(pool.session)


def _after_fork_in_child() -> None:
    """Never reuse (or close) the parent's sessions in a forked child.

    They share the parent's sockets; closing them here could disturb the parent's
    connections. Keep them referenced so they are not finalised with warnings.
    A lock another thread held at the fork stays held in the child: replace it.
    """
    global _sessions_lock  # noqa: PLW0603
    _sessions_lock = threading.Lock()
    _inherited.extend(_sessions.items())
    _sessions.clear()


atexit.register(_discard_closed_loops)
os.register_at_fork(after_in_child=_after_fork_in_child)
