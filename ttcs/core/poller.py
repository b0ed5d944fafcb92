"""One poll loop for every poll-based device (Modbus, SNMP, HTTP), never a sleep per device.

Each job runs at a fixed rate: its next due time is computed from the schedule, not from when
the last run ended, so the interval does not drift; jobs are spread over the interval so a
thousand devices do not all fire in the same second. A run that is still in flight when the
next one is due is skipped (and counted), so a hanging device never piles up work, and a
bounded number of polls run at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

log = structlog.get_logger("ttcs.poller")

PollFn = Callable[[], Awaitable[None]]


@dataclass
class PollJob:
    key: str
    interval: float
    fn: PollFn
    timeout: float
    next_due: float = 0.0
    running: bool = False
    runs: int = 0
    skipped: int = 0
    lateness: list[float] = field(default_factory=list)  # seconds late, last 100 runs


class Poller:
    def __init__(self, *, concurrency: int = 200, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self._jobs: dict[str, PollJob] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()

    def add(self, key: str, interval: float, fn: PollFn, *, timeout: float | None = None,
            first_in: float | None = None) -> None:
        """Poll ``fn`` every ``interval`` s. The first run is spread over the interval by key."""
        offset = first_in if first_in is not None else (
            (zlib.crc32(key.encode()) % 1000) / 1000 * interval)
        job = PollJob(key, interval, fn, timeout or min(interval, 10.0),
                      next_due=self._clock() + offset)
        self._jobs[key] = job
        heapq.heappush(self._heap, (job.next_due, next(self._seq), key))
        self._wake.set()

    def remove(self, key: str) -> None:
        self._jobs.pop(key, None)  # its heap entries are skipped lazily

    def job(self, key: str) -> PollJob | None:
        return self._jobs.get(key)

    def poll_now(self, key: str) -> bool:
        """Run ``key``'s job at once, off its grid (which stays as it was), unless it is
        already running. Returns whether a run was started."""
        job = self._jobs.get(key)
        if job is None or job.running or self._task is None:
            return False
        self._launch(job, self._clock())
        return True

    def _launch(self, job: PollJob, due: float) -> None:
        job.running = True
        task = asyncio.create_task(self._poll(job, due))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="poller")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for t in list(self._inflight):
            t.cancel()
        await asyncio.gather(*self._inflight, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            if not self._heap:
                await self._wake.wait()
                continue
            due, _, key = self._heap[0]
            delay = due - self._clock()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            heapq.heappop(self._heap)
            job = self._jobs.get(key)
            if job is None or job.next_due != due:
                continue  # removed or re-added
            now = self._clock()
            # Fixed rate: the next slot after now, on the job's own grid.
            missed = int((now - due) // job.interval)
            job.next_due = due + (missed + 1) * job.interval
            heapq.heappush(self._heap, (job.next_due, next(self._seq), key))
            if job.running:
                job.skipped += 1
                continue
            self._launch(job, due)

    async def _poll(self, job: PollJob, due: float) -> None:
        try:
            async with self._slots:
                job.lateness.append(self._clock() - due)
                del job.lateness[:-100]
                job.runs += 1
                await asyncio.wait_for(job.fn(), job.timeout)
        except TimeoutError:
            pass  # the poll function reports its own failures; a timeout is one of them
        except Exception:
            log.exception("poller.job_failed", job=job.key)
        finally:
            job.running = False
