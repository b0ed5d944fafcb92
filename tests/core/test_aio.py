"""Cancellation is never lost: the helpers in ttcs.aio, and the hub's loops that use them.

On Python 3.11 ``asyncio.wait_for`` returns the result when a cancellation arrives in the same
loop iteration as the awaited thing completes, and the cancelled task goes on. A hub's stop
hung in CI that way (its planner was woken by a result as the dispatcher cancelled it).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Coroutine
from typing import Any

import pytest
import structlog

from tests.support.wait import eventually
from ttcs import aio
from ttcs.core.config import Settings
from ttcs.core.dispatch import DispatchSettings
from ttcs.core.hub import Hub
from ttcs.core.poller import Poller


async def _ends(stop: Coroutine[Any, Any, None], within: float) -> bool:
    """Whether ``stop`` returns in time (not asyncio.wait_for: a stop that swallows the
    cancellation at the deadline would pass for one that returned)."""
    task = asyncio.create_task(stop)
    done, _ = await asyncio.wait({task}, timeout=within)
    return task in done


async def _waits_on(event: asyncio.Event) -> None:
    while True:  # the shape of every planner, poller and bus loop
        await aio.wait_event(event, 0.2)
        event.clear()


async def test_a_loop_cancelled_as_its_event_is_set_ends() -> None:
    event = asyncio.Event()
    task = asyncio.create_task(_waits_on(event))
    await eventually(lambda: event._waiters)  # (the task is in its wait)
    event.set()
    task.cancel()  # in the same iteration: asyncio.wait_for would lose this
    done, _ = await asyncio.wait({task}, timeout=2)
    assert task in done and task.cancelled()


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="fixed in asyncio from 3.12 on")
async def test_the_race_is_real_with_asyncio_wait_for() -> None:
    """The control: the same loop on asyncio.wait_for does not end (why ruff bans it)."""
    event = asyncio.Event()

    async def loop() -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), 0.2)
            event.clear()

    task = asyncio.create_task(loop())
    await eventually(lambda: event._waiters)
    event.set()
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=1)
    assert not done
    task.cancel()  # (now that it waits again, it ends)
    await asyncio.wait({task}, timeout=2)
    assert task.cancelled()


async def test_wait_for_keeps_a_cancellation_that_meets_the_result() -> None:
    ready = asyncio.get_running_loop().create_future()

    async def waiter() -> str:
        value: str = await aio.wait_for(ready, 5)
        await asyncio.sleep(10)  # not reached when the cancellation is kept
        return value

    task = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    ready.set_result("x")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_wait_for_and_wait_event_time_out() -> None:
    with pytest.raises(TimeoutError):
        await aio.wait_for(asyncio.sleep(5), 0.05)
    assert await aio.wait_event(asyncio.Event(), 0.05) is False
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.02, event.set)
    assert await aio.wait_event(event, 5) is True


async def test_cancel_and_wait_cancels_again_a_task_that_swallows_once() -> None:
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                swallowed += 1
                if swallowed == 1:
                    continue  # a broad except somewhere in a library
                raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    assert await aio.cancel_and_wait(task, "test", patience=5) is True
    assert task.cancelled() and swallowed == 2


async def test_cancel_and_wait_gives_up_on_a_task_that_never_ends() -> None:
    released = False

    async def immortal() -> None:
        while True:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                if released:
                    raise

    task = asyncio.create_task(immortal())
    await asyncio.sleep(0)
    with structlog.testing.capture_logs() as logs:
        assert await aio.cancel_and_wait([task], "test", patience=0.6) is False
    assert [e["tasks"] for e in logs if e["event"] == "tasks.would_not_stop"] \
        == [[task.get_name()]]
    assert not task.done()
    released = True  # (end it for good)
    assert await aio.cancel_and_wait([task], "test") is True


async def test_cancel_and_wait_reports_a_task_that_failed() -> None:
    async def broken() -> None:
        raise ValueError("boom")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with structlog.testing.capture_logs() as logs:
        assert await aio.cancel_and_wait([task], "test") is True
    assert [e["error"] for e in logs if e["event"] == "tasks.ended_with_error"] \
        == ["ValueError('boom')"]


async def test_a_cancelled_caller_of_cancel_and_wait_is_cancelled() -> None:
    async def slow_to_end() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(0.3)  # tidies up for a while
            raise

    inner = asyncio.create_task(slow_to_end())
    await asyncio.sleep(0)
    outer = asyncio.create_task(aio.cancel_and_wait(inner, "test"))
    await asyncio.sleep(0.05)
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer
    await asyncio.wait({inner}, timeout=2)


async def test_a_dispatcher_woken_as_the_hub_stops_lets_it_stop(settings: Settings,
                                                                 amqtt_url: str) -> None:
    hub = Hub(settings.model_copy(update={"mqtt_url": amqtt_url}),
              dispatch=DispatchSettings(plan_interval=30))
    await hub.start()
    try:
        dispatcher = hub.dispatcher
        assert dispatcher is not None
        await eventually(lambda: dispatcher._wake._waiters, timeout=20)  # planner idle
        dispatcher.wake()  # a result or a new broadcast, in the iteration the stop begins
        assert await _ends(dispatcher.stop(), 15)
        hub.dispatcher = None
    finally:
        await asyncio.wait_for(hub.stop(), 30)


async def test_a_poller_woken_as_it_stops_stops() -> None:
    poller = Poller()

    async def job() -> None:
        pass

    poller.add("a", 60, job, first_in=60)
    poller.start()
    await eventually(lambda: poller._wake._waiters)  # waiting for the job's slot
    poller.add("b", 60, job, first_in=60)  # wakes it, in the iteration the stop begins
    assert await _ends(poller.stop(), 5)
