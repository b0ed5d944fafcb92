"""Store writes that a stopping hub lets finish rather than cancel half-way.

A background loop that writes to the store is stopped by cancelling its task. Cancelled in the
middle of a transaction, the write may lose its batch and — with SQLite — leave the database
write lock held by a pooled connection until the connection is closed, so the final flush of
the same writer then waits out the whole busy timeout. Loops therefore run each write through
:meth:`WritesInFlight.run` (shielded from the cancellation), and their ``stop()`` cancels the
loop, then awaits :meth:`WritesInFlight.finish` before writing what is left.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class WritesInFlight:
    """The store writes a loop has started and not finished."""

    def __init__(self) -> None:
        self._running: set[asyncio.Task[Any]] = set()

    async def run(self, write: Coroutine[Any, Any, T]) -> T:
        """Run ``write``; cancelling the caller does not cancel the write."""
        task = asyncio.ensure_future(write)
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return await asyncio.shield(task)

    async def finish(self, timeout: float = 30.0) -> None:
        """Wait (up to ``timeout``) for every write started so far; their errors were the
        loop's to log and are not raised here."""
        if self._running:
            await asyncio.wait(set(self._running), timeout=timeout)
