"""asyncio helpers that keep cancellation intact on Python 3.11.

``asyncio.wait_for`` in 3.11 loses a cancellation that arrives in the same loop iteration as
the awaited thing completes: it returns the result and the task that was cancelled goes on
(python/cpython#86296, fixed in 3.12 by building ``wait_for`` on ``asyncio.timeout``). A
``while True`` loop that waits for an event with a timeout then never stops, and whoever
cancelled it and awaits it waits forever. That is how a hub's stop hung in CI: the planner was
woken by a result in the very iteration its dispatcher cancelled it.

Code in ``ttcs`` uses :func:`wait_for` and :func:`wait_event` from here instead (ruff bans
``asyncio.wait_for``), and :func:`cancel_and_wait` to end its background tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import structlog

log = structlog.get_logger("ttcs.aio")

T = TypeVar("T")

#: how often a task that has not ended is cancelled again while :func:`cancel_and_wait` waits
#: (not sooner: a task may take a while to tidy up, a rollback on a busy database, and a second
#: cancellation would cut that short)
RECANCEL_EVERY = 2.0


async def wait_for(awaitable: Awaitable[T], timeout: float | None) -> T:
    """Await ``awaitable`` for at most ``timeout`` seconds (``None``: no limit), raising
    :class:`TimeoutError` on expiry. Runs in the calling task; a cancellation of that task is
    never lost."""
    async with asyncio.timeout(timeout):
        return await awaitable


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait until ``event`` is set or ``timeout`` passes; True if it was set."""
    try:
        async with asyncio.timeout(timeout):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]] | asyncio.Task[Any] | None,
                          what: str, patience: float = 5.0) -> bool:
    """Cancel ``tasks`` and wait until they have ended; True if they all did.

    A task that swallows its cancellation (a library's 3.11 ``wait_for``, a broad ``except``)
    is cancelled again every :data:`RECANCEL_EVERY` seconds; after ``patience`` seconds the
    ones still running are logged and left, so a stop is never stuck behind them. Their
    errors are logged here (nothing "never retrieved"); a cancellation of the caller itself
    propagates as usual.
    """
    if tasks is None:
        return True
    every = [tasks] if isinstance(tasks, asyncio.Task) else list(tasks)
    pending = {t for t in every if not t.done()}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            log.warning("tasks.would_not_stop", what=what,
                        tasks=sorted(t.get_name() for t in pending))
            break
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_EVERY, left))
    for task in every:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.warning("tasks.ended_with_error", what=what, task=task.get_name(),
                        error=repr(task.exception()))
    return not pending
