"""How late the event loop runs while a plugin is exercised, and where it was stuck.

A ticker task sleeps a short interval and records how much later than asked it woke up (the
loop's lag). A watchdog *thread* watches the ticker's heartbeat: when the loop has not ticked
for longer than the threshold, it takes the loop thread's current stack, so a certifier sees
the file and line that blocked (a ``time.sleep`` in a driver, a synchronous socket call).
Windows in which the kit itself does heavy set-up (restarting the hub) are excluded with
:meth:`LoopWatch.paused`. A stall whose stack runs through the simulator's code (a simulated
agent booting its SNMP engine, say) is recorded but *excused*: the simulator shares the kit's
loop only because it is simulated, and a real device costs the hub's loop nothing. Which code
is the simulator's is set in :attr:`LoopWatch.excused_code`. A lag during which the watchdog
thread was held up as long as the loop is excused too, as the *host*'s: the machine did not
run the process at all (a loaded CI machine), which says nothing about the plugin — the one
blind spot is code that holds the GIL throughout (a C call that never releases it). Likewise
the time the loop's thread spent runnable, waiting for a CPU the machine gave to other
processes (Linux's run-queue wait, :class:`RunQueue`), is taken out of every lag: the lags
are what the process itself made the loop wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..aio import cancel_and_wait

#: the loop counts as blocked when it is this late (seconds)
BLOCKED_AFTER = 0.5
#: how often the ticker wakes (seconds)
TICK = 0.02


class RunQueue:
    """How long a thread has waited, runnable, for a CPU (Linux ``schedstat``; 0 elsewhere).

    On a loaded machine the loop runs late because the kernel runs other processes; that
    time is not the loop's being blocked, and is taken out of the lag.
    """

    def __init__(self, native_id: int) -> None:
        try:
            self._fd: int | None = os.open(f"/proc/self/task/{native_id}/schedstat",
                                           os.O_RDONLY)
        except OSError:
            self._fd = None

    def waited(self) -> float:
        if self._fd is None:
            return 0.0
        try:
            return int(os.pread(self._fd, 128, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return 0.0

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


@dataclass
class Stall:
    """One time the loop was stuck longer than the threshold."""

    seconds: float
    during: str | None  # the case that was running
    where: list[str] = field(default_factory=list)  # innermost frames, "file:line in func"
    #: why it does not count against the plugin ("simulator", "host"), or None: it counts
    excused: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"seconds": round(self.seconds, 3), "during": self.during,
                                "where": self.where}
        if self.excused:
            data["excused"] = self.excused
        return data


class LoopWatch:
    """``await watch.start()`` … ``await watch.stop()``; read :attr:`lags` and :attr:`stalls`."""

    def __init__(self, threshold: float = BLOCKED_AFTER, tick: float = TICK) -> None:
        self.threshold = threshold
        self.tick = tick
        self.lags: list[float] = []
        self.stalls: list[Stall] = []
        self.label: str | None = None  # the case now running
        #: path prefixes of the simulator's code: a stall whose stack runs through it is
        #: excused (see the module docstring)
        self.excused_code: tuple[str, ...] = ()
        #: the worst lag that was not an excused stall
        self.worst_counted = 0.0
        #: seconds the loop's thread waited for a CPU (run queue), left out of the lags
        self.queued = 0.0
        self._paused = 0
        self._pauses_ended = 0
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
            await cancel_and_wait(self._task, "loop watch")
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
            self._pauses_ended += 1  # the tick under way overlapped the pause: not counted
            self._beat = time.monotonic()

    async def _ticker(self) -> None:
        loop = asyncio.get_running_loop()
        queue = RunQueue(threading.get_native_id())
        try:
            while True:
                asked, pauses, waited = loop.time(), self._pauses_ended, queue.waited()
                await asyncio.sleep(self.tick)
                late = loop.time() - asked - self.tick
                # time the loop's thread was ready to run but the machine ran others: a
                # loaded host's doing, not the loop's
                queued = queue.waited() - waited
                pending, self._pending = self._pending, None
                self._beat = time.monotonic()
                if self._paused or self._pauses_ended != pauses:
                    continue
                blocked = max(0.0, late - queued)
                self.lags.append(blocked)
                self.queued += queued
                if late >= self.threshold and pending is None:
                    # the watchdog, awake every two ticks, never saw the loop stuck: it was
                    # held up itself, so the machine did not run this process
                    pending = Stall(late, self.label, [], excused="host")
                elif pending is not None and blocked < self.threshold:
                    pending.excused = "host"  # stuck only while waiting for a CPU
                if pending is not None and late >= self.threshold:
                    pending.seconds = late
                    self.stalls.append(pending)
                if pending is None or pending.excused is None:
                    self.worst_counted = max(self.worst_counted, blocked)
        finally:
            queue.close()

    def _watchdog(self) -> None:
        wait = self.tick * 2
        last = time.monotonic()
        while not self._stop.wait(wait):
            now = time.monotonic()
            overslept, last = now - last - wait, now
            stuck = now - self._beat
            if stuck < self.threshold or self._paused or self._pending is not None:
                continue
            if overslept >= stuck / 2:
                # this thread was held up for most of the time the loop was: the machine (or
                # code that never lets go of the GIL) stopped the whole process, not the loop
                self._pending = Stall(stuck, self.label, [], excused="host")
                continue
            frame = sys._current_frames().get(self._loop_thread)
            stack = traceback.extract_stack(frame) if frame is not None else []
            where = [f"{e.filename}:{e.lineno} in {e.name}" for e in stack[-6:]]
            simulator = self.excused_code and any(
                e.filename.startswith(self.excused_code) for e in stack)
            self._pending = Stall(stuck, self.label, where,
                                  excused="simulator" if simulator else None)

    @property
    def counted_stalls(self) -> list[Stall]:
        """The stalls that count against the plugin (not excused)."""
        return [s for s in self.stalls if s.excused is None]

    def figures(self) -> dict[str, Any]:
        """Lag statistics (seconds) for the report."""
        if not self.lags:
            return {"samples": 0}
        ordered = sorted(self.lags)
        return {"samples": len(ordered), "tick": self.tick, "threshold": self.threshold,
                "queued_seconds": round(self.queued, 3),
                "p50": round(ordered[len(ordered) // 2], 4),
                "p99": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 4),
                "max": round(ordered[-1], 4)}


__all__ = ["BLOCKED_AFTER", "LoopWatch", "Stall"]
