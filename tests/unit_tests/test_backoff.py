"""The shared back-off, alone: its gate, its jitter, its limit, its reset windows."""

from __future__ import annotations

import asyncio
import time

import pytest

from langchain_dynaspark.transport import backoff, failures


def test_one_service_one_back_off() -> None:
    shared = backoff.backoff_for("http://Host:8080/api/generate_response")
    assert backoff.backoff_for("http://host:8080/generate_response") is shared
    assert backoff.backoff_for("http://me:pw@host:8080/x?y=1") is shared
    assert backoff.backoff_for("http://host:8081/api/generate_response") is not shared
    assert backoff.backoff_for("https://host:8080/api/generate_response") is not shared


def test_a_lone_caller_waits_what_was_asked() -> None:
    gate = backoff.Backoff()
    assert gate.hold(7.0) == 7.0
    # A second 429 during the wait: its caller waits until the gate opens
    # (or longer), plus jitter, since another caller waits too.
    second = gate.hold(1.0)
    assert 6.0 < second <= 7.0 + backoff.JITTER * 7.0


def test_callers_behind_one_429_wait_with_jitter() -> None:
    async def main() -> list[float]:
        gate = backoff.Backoff()
        await gate.enter()  # one request in flight
        waits = [gate.hold(1.0) for _ in range(20)]
        gate.leave(throttled=False)
        return waits

    waits = asyncio.run(main())
    assert len(set(waits)) > 1
    assert all(0.9 <= wait <= 1.0 + backoff.JITTER * 1.0 for wait in waits)


def test_a_429_with_others_in_flight_lowers_the_limit() -> None:
    async def main() -> tuple[int, int, int]:
        gate = backoff.Backoff()
        for _ in range(6):
            await gate.enter()
        gate.leave(throttled=True)  # 6 in flight: the service takes at most 5
        waiting = [asyncio.ensure_future(gate.enter()) for _ in range(2)]
        done, _ = await asyncio.wait(waiting, timeout=0.2)
        before = len(done)
        gate.leave(throttled=False)  # one ends: one queued request goes
        done, _ = await asyncio.wait(
            waiting, timeout=1.0, return_when=asyncio.FIRST_COMPLETED
        )
        first = len(done)
        done, pending = await asyncio.wait(waiting, timeout=0.2)
        for task in pending:
            task.cancel()
        return before, first, len(done)

    assert asyncio.run(main()) == (0, 1, 1)


def test_a_lone_429_sets_no_limit() -> None:
    async def main() -> bool:
        gate = backoff.Backoff()
        await gate.enter()
        gate.leave(throttled=True)
        for _ in range(50):
            await gate.enter()
        return True

    assert asyncio.run(main())


def test_a_cancelled_waiter_gives_its_place_back() -> None:
    async def main() -> bool:
        gate = backoff.Backoff()
        for _ in range(3):
            await gate.enter()
        gate.leave(throttled=True)  # limit 2, 2 in flight
        queued = asyncio.ensure_future(gate.enter())
        await asyncio.sleep(0)
        queued.cancel()
        with pytest.raises(asyncio.CancelledError):
            await queued
        gate.leave(throttled=False)
        await asyncio.wait_for(gate.enter(), 1.0)  # the place was not lost
        return True

    assert asyncio.run(main())


def test_a_kept_place_is_given_back_by_release_or_by_an_error() -> None:
    async def never_handed_on(slot: backoff.Slot) -> None:
        async with slot:
            slot.keep()
            raise RuntimeError

    async def main() -> list[object]:
        slots, gate = asyncio.Semaphore(1), backoff.Backoff()
        held: list[object] = []
        async with backoff.Slot(slots, gate) as slot:
            slot.keep()
        held.append(slots.locked())  # a stream holds it after the request
        slot.release()
        held.append(slots.locked())
        with pytest.raises(RuntimeError):
            await never_handed_on(backoff.Slot(slots, gate))
        held.append(slots.locked())
        held.append(gate._in_flight)  # no place in the limit left taken
        return held

    assert asyncio.run(main()) == [True, False, False, 0]


@pytest.mark.parametrize("unit", ["seconds", "unix", "unix-ms"])
def test_a_reset_window_ahead(unit: str) -> None:
    value = {
        "seconds": "20",
        "unix": str(time.time() + 20),
        "unix-ms": str((time.time() + 20) * 1000),
    }[unit]
    wait = failures._reset_wait(value)
    assert wait is not None
    assert 18.0 <= wait <= 20.0


@pytest.mark.parametrize(
    "value", [None, "", "soon", "nan", "inf", "-inf", "0", "-5", "past"]
)
def test_a_reset_window_not_ahead_asks_for_no_wait(value: str | None) -> None:
    if value == "past":
        value = str(time.time() - 100)
    assert failures._reset_wait(value) is None
