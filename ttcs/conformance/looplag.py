"""How late the event loop runs while a plugin is exercised, and where it was stuck.

A ticker task sleeps a short interval and records how much later than asked it woke up (the
loop's lag). A watchdog *thread* watches the ticker's heartbeat: when the loop has not ticked
for longer than the threshold, it takes the loop thread's current stack, so a certifier sees
the file and line that blocked (a ``time.sleep`` in a driver, a synchronous socket call).
Windows in which the kit itself does heavy set-up (restarting the hub) are excluded with
:meth:`LoopWatch.paused`.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: the loop counts as blocked when it is this late (seconds)
BLOCKED_AFTER = 0.5
#: how often the ticker wakes (seconds)
TICK = 0.02


@dataclass
class Stall:
    """One time the loop was stuck longer than the threshold."""

    seconds: float
    during: str | None  # the case that was running
    where: list[str] = field(default_factory=list)  # innermost frames, "file:line in func"

    def to_json(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 3), "during": self.during, "where": self.where}


class LoopWatch:
    """``await watch.start()`` … ``await watch.stop()``; read :attr:`lags` and :attr:`stalls`."""

    def __init__(self, threshold: float = BLOCKED_AFTER, tick: float = TICK) -> None:
        self.threshold = threshold
        self.tick = tick
        self.lags: list[float] = []
        self.stalls: list[Stall] = []
        self.label: str | None = None  # the case now running
        self._paused = 0
        self._beat = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._loop_thread = threading.get_ident()
        self._pending: Stall | None = None

    async def start(self) -> None:
        self._loop_thread = threading.get_ident()
        self._beat = time.monotonic()
        self._task = asyncio.create_task(self._ticker(), name="conformance:loop-lag")
        self._thread = threading.Thread(target=self._watchdog, name="conformance-watchdog",
                                        daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._thread is not None:
            self._thread.join(timeout=2)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Do not count what happens inside (the kit's own set-up work)."""
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1
            self._beat = time.monotonic()

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            asked = loop.time()
            await asyncio.sleep(self.tick)
            late = loop.time() - asked - self.tick
            pending, self._pending = self._pending, None
            self._beat = time.monotonic()
            if self._paused:
                continue
            self.lags.append(max(0.0, late))
            if pending is not None and late >= self.threshold:
                pending.seconds = late
                self.stalls.append(pending)

    def _watchdog(self) -> None:
        while not self._stop.wait(self.tick * 2):
            stuck = time.monotonic() - self._beat
            if stuck < self.threshold or self._paused or self._pending is not None:
                continue
            frame = sys._current_frames().get(self._loop_thread)
            where = []
            if frame is not None:
                for entry in traceback.extract_stack(frame)[-6:]:
                    where.append(f"{entry.filename}:{entry.lineno} in {entry.name}")
            self._pending = Stall(stuck, self.label, where)

    def figures(self) -> dict[str, Any]:
        """Lag statistics (seconds) for the report."""
        if not self.lags:
            return {"samples": 0}
        ordered = sorted(self.lags)
        return {"samples": len(ordered), "tick": self.tick, "threshold": self.threshold,
                "p50": round(ordered[len(ordered) // 2], 4),
                "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 4),
                "max": round(ordered[-1], 4)}


__all__ = ["BLOCKED_AFTER", "LoopWatch", "Stall"]
