"""One poll loop for every poll-based device (Modbus, SNMP, HTTP), never a sleep per device.

Each job runs at a fixed rate: its next due time is computed from the schedule, not from when
the last run ended, so the interval does not drift; jobs are spread over the interval so a
thousand devices do not all fire in the same second. A run that is still in flight when the
next one is due is skipped (and counted), so a hanging device never piles up work, and a
bounded number of polls run at once.

A job can be *paced* (:meth:`Poller.pace`): it then runs in one slot of every ``every`` on its
grid, the others pass. The hub paces devices that are offline, so a fleet of unreachable
devices does not cost what a fleet of live ones does.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import zlib
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from ..aio import cancel_and_wait, wait_event, wait_for

log = structlog.get_logger("ttcs.poller")

PollFn = Callable[[], Awaitable[None]]

#: how many runs' lateness each job keeps (for the metrics' p50/p99 and the benchmarks)
LATENESS_KEPT = 100


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
    #: seconds late, last :data:`LATENESS_KEPT` runs (4-byte floats: at 100,000 polled devices
    #: a list of Python floats cost ~320 MB, this ~40 MB)
    lateness: array[float] = field(default_factory=lambda: array("f"))
    every: int = 1  # runs in one slot of every ``every`` (see Poller.pace)
    paced: int = 0  # slots passed because of pacing
    _turn: int = 0


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

    def pace(self, key: str, every: int) -> None:
        """Run ``key``'s job in one slot of every ``every`` from now on (1: every slot). The
        grid stays; :meth:`poll_now` still runs it at once."""
        job = self._jobs.get(key)
        if job is not None and job.every != max(1, every):
            job.every, job._turn = max(1, every), 0

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
            await cancel_and_wait(task, "poller")
        await cancel_and_wait(list(self._inflight), "polls")

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            if not self._heap:
                await self._wake.wait()
                continue
            due, _, key = self._heap[0]
            delay = due - self._clock()
            if delay > 0:
                await wait_event(self._wake, delay)
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
            if job.every > 1:
                job._turn += 1
                if job._turn < job.every:
                    job.paced += 1
                    continue
                job._turn = 0
            self._launch(job, due)

    async def _poll(self, job: PollJob, due: float) -> None:
        try:
            async with self._slots:
                job.lateness.append(self._clock() - due)
                del job.lateness[:-LATENESS_KEPT]
                job.runs += 1
                await wait_for(job.fn(), job.timeout)
        except TimeoutError:
            pass  # the poll function reports its own failures; a timeout is one of them
        except Exception:
            log.exception("poller.job_failed", job=job.key)
        finally:
            job.running = False
