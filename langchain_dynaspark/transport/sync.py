"""The sync bridge: coroutines and async generators run from sync code.

Sync calls run on one private background event loop (a daemon thread), never
through `asyncio.run` and never on the caller's loop, so a sync `invoke` also
works from code already running inside an event loop, such as a notebook cell.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import contextlib
import os
import queue
import threading
from collections.abc import AsyncGenerator, Coroutine, Iterator
from typing import Any, TypeVar

__all__ = ["HANDOVER_WINDOW", "iterate_sync", "run_sync"]

HANDOVER_WINDOW = 1024
"""Most items of a sync stream produced and not yet taken by its consumer."""
T = TypeVar("T")
_SHUTDOWN_TIMEOUT = 5.0
_DONE = object()


class _BackgroundLoop:
    """A private event loop on a daemon thread, started on first use."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is not None:
            return self._loop
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="langchain-dynaspark", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
        return self._loop

    def shutdown(self) -> None:
        """Close the loop's sessions, then stop and close the loop.

        Used at interpreter exit. A loop that does not stop within
        `_SHUTDOWN_TIMEOUT` is left to die with its daemon thread.
        """
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None or not thread.is_alive():
            return
        closing = asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop)
        with contextlib.suppress(concurrent.futures.TimeoutError):
            closing.result(timeout=_SHUTDOWN_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=_SHUTDOWN_TIMEOUT)
        if not thread.is_alive():
            loop.close()

    def forget(self) -> None:
        """Drop the loop inherited across `fork`: its thread did not come along."""
        self._loop = self._thread = None
        self._lock = threading.Lock()


_background = _BackgroundLoop()
atexit.register(_background.shutdown)
os.register_at_fork(after_in_child=_background.forget)


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on the private background loop and wait for its result.

    Safe to call from any thread, including one whose event loop is running.
    If the wait is interrupted (e.g. `KeyboardInterrupt`), the coroutine is
    cancelled.
    """
    loop = _background.loop()
    # The future exists before anything is scheduled, so an interrupt at any
    # point below (even inside the scheduling call) can still cancel the work.
    result: concurrent.futures.Future[T] = concurrent.futures.Future()
    try:
        loop.call_soon_threadsafe(_start, coro, result)
        return result.result()
    except BaseException:
        result.cancel()
        raise


def iterate_sync(stream: AsyncGenerator[T, None]) -> Iterator[T]:
    """Iterate `stream` from sync code: it runs on the private background loop.

    Each item is handed over as soon as it is produced, and at most
    `HANDOVER_WINDOW` items wait for the consumer: a consumer that pauses
    pauses the stream (and so its reads) too. Closing the iterator early, an
    interrupt while waiting, or dropping the iterator (garbage collection
    closes it) cancels the stream, which releases its connection.
    """
    items: queue.SimpleQueue[Any] = queue.SimpleQueue()
    result: concurrent.futures.Future[None] = concurrent.futures.Future()
    loop = _background.loop()
    window = _Window(loop)

    async def pump() -> None:
        async with contextlib.aclosing(stream):
            async for item in stream:
                items.put(item)
                window.handed += 1
                if window.handed - window.taken >= HANDOVER_WINDOW:
                    await window.room()

    result.add_done_callback(lambda _: items.put(_DONE))
    try:
        loop.call_soon_threadsafe(_start, pump(), result)
        while (item := items.get()) is not _DONE:
            window.taken += 1
            if window.waiting is not None:
                window.wake()
            yield item
        result.result()
    finally:
        result.cancel()


class _Window:
    """How many items of a sync stream wait for its consumer.

    Only the producer (on the loop) writes `handed` and only the consumer (on
    its thread) writes `taken`, so counting needs no lock. A producer `HANDOVER_WINDOW`
    items ahead waits until the consumer has taken half of them, so a steady
    stream crosses threads once per half window, not once per item.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.handed = 0
        self.taken = 0
        self.waiting: asyncio.Event | None = None
        """What the producer waits on, while it waits."""

    async def room(self) -> None:
        """On the loop: wait until the consumer has taken half the window."""
        self.waiting = room = asyncio.Event()
        # Checked again once `waiting` is visible: `wake` may have just missed it.
        if self.handed - self.taken > HANDOVER_WINDOW // 2:
            await room.wait()
        self.waiting = None

    def wake(self) -> None:
        """On the consumer's thread: let a waiting producer on, if there is room."""
        room = self.waiting
        if room is not None and self.handed - self.taken <= HANDOVER_WINDOW // 2:
            self.waiting = None
            self._loop.call_soon_threadsafe(room.set)


def _start(coro: Coroutine[Any, Any, T], result: concurrent.futures.Future[T]) -> None:
    """On the background loop: run `coro` as a task that reports to `result`.

    Cancelling `result` (from any thread) cancels the task; a `result`
    cancelled before this runs means the coroutine never starts.
    """
    if result.cancelled():
        coro.close()
        return
    task = asyncio.ensure_future(coro)
    loop = task.get_loop()

    def cancel_task(done: concurrent.futures.Future[T]) -> None:
        if done.cancelled():
            loop.call_soon_threadsafe(task.cancel)

    def report(task: asyncio.Future[T]) -> None:
        if task.cancelled():
            result.cancel()
            return
        error = task.exception()
        if not result.set_running_or_notify_cancel():
            return
        if error is None:
            result.set_result(task.result())
        else:
            result.set_exception(error)

    result.add_done_callback(cancel_task)
    task.add_done_callback(report)
