"""Idempotency for drivers of devices that have no notion of it.

A command's ``idempotency_key`` must not make a device act twice. Devices that deduplicate by
key themselves (the native protocol, LEDViet's ``Idempotency-Key``) need nothing more; for the
others the driver keeps :class:`RecentResults`: the first result per key for the last few
hundred keys, and a repeat that arrives while the first is still being carried out waits for
it instead of acting in parallel.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from ..schemas import Command, CommandResult, CommandStatus


def _same(result: CommandResult) -> CommandResult:
    return result


class RecentResults:
    """The first result of each of the last ``keep`` idempotency keys of one device."""

    def __init__(self, keep: int = 500) -> None:
        self.keep = keep
        self._results: OrderedDict[str, CommandResult] = OrderedDict()
        self._running: dict[str, asyncio.Future[None]] = {}

    def get(self, key: str) -> CommandResult | None:
        return self._results.get(key)

    def __len__(self) -> int:
        return len(self._results)

    async def run(self, command: Command, act: Callable[[], Awaitable[CommandResult]], *,
                  kept: Callable[[CommandResult], CommandResult] = _same) -> CommandResult:
        """The remembered result for ``command``'s key, or ``await act()`` (remembered unless
        it ``failed``: the device tried and may succeed when asked again). ``kept`` turns a
        result into the copy worth keeping (e.g. without a screenshot). Errors raised by
        ``act`` are not remembered: the caller retries with the same key."""
        key = command.idempotency_key
        while (running := self._running.get(key)) is not None:
            await asyncio.shield(running)  # the same command is under way: wait for its end
        first = self._results.get(key)
        if first is not None:
            return first.model_copy(update={"command_id": command.id})
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running[key] = done
        try:
            result = await act()
            if result.status is not CommandStatus.FAILED:
                self._results[key] = kept(result)
                while len(self._results) > self.keep:
                    self._results.popitem(last=False)
            return result
        finally:
            del self._running[key]
            done.set_result(None)


__all__ = ["RecentResults"]
