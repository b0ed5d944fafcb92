"""Writers that move high-rate state from memory to the store in batches.

Status arrives far more often than it needs to be written (heartbeats, telemetry): the
:class:`StatusWriter` keeps only the latest status per device and writes them once a second in
one transaction — a status that changed something within that second, a heartbeat that only
says "still here, still the same" once in :data:`UNCHANGED_WRITE_INTERVAL`. The
:class:`EventRecorder` appends events (except raw status updates, which live in
``device_state``) in batches as well.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import Table, bindparam, update

from ..aio import cancel_and_wait
from ..schemas import DeviceStatus, Event
from .events import EventBus
from .store import Store
from .store.retry import write_rows
from .store.tables import DeviceStateRow, EventRow
from .store.writes import WritesInFlight

if TYPE_CHECKING:
    from .registry import Registry

log = structlog.get_logger("ttcs.recorder")

#: seconds: how stale the stored ``reported_at`` of a device that keeps reporting the same
#: status may get. Writing every heartbeat of 10,000 devices each second was the largest
#: share of the ingest path after parsing; connectivity and content changes still go to the
#: store within a second, and the hub's own state (health, events) never waits on the store.
UNCHANGED_WRITE_INTERVAL = 30.0


class StatusWriter:
    def __init__(self, registry: Registry, interval: float = 1.0,
                 unchanged_interval: float = UNCHANGED_WRITE_INTERVAL) -> None:
        self._registry = registry
        self._interval = interval
        self._unchanged_interval = unchanged_interval
        self._pending: dict[str, DeviceStatus] = {}
        #: latest status of devices whose status changed nothing but its time
        self._unchanged: dict[str, DeviceStatus] = {}
        #: when (monotonic) each device's status was last taken for a write, oldest first, for
        #: the devices written within the unchanged interval: the stale ones are a prefix, so
        #: a flush looks at those only, not at every quiet device of the fleet
        self._taken_at: OrderedDict[str, float] = OrderedDict()
        self._task: asyncio.Task[None] | None = None
        self._writes = WritesInFlight()
        self.writes = 0

    def put(self, device_id: str, status: DeviceStatus, *, changed: bool = True) -> None:
        """Queue ``status`` for the store; ``changed=False`` when it differs from the last
        one only by ``reported_at`` (then it is written within the unchanged interval)."""
        if changed or device_id in self._pending or device_id not in self._taken_at:
            self._pending[device_id] = status  # (not written for a while: due now)
            self._unchanged.pop(device_id, None)
        else:
            self._unchanged[device_id] = status

    def forget(self, device_id: str) -> None:
        """A removed device: nothing more to write for it."""
        self._pending.pop(device_id, None)
        self._unchanged.pop(device_id, None)
        self._taken_at.pop(device_id, None)

    def _take_stale(self) -> None:
        """Move to the pending batch the unchanged statuses not written for a while."""
        limit = time.monotonic() - self._unchanged_interval
        taken_at = self._taken_at
        while taken_at:
            device_id = next(iter(taken_at))
            if taken_at[device_id] > limit:
                return
            del taken_at[device_id]  # its next status, changed or not, is due at once
            status = self._unchanged.pop(device_id, None)
            if status is not None:
                self._pending[device_id] = status

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="status-writer")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task, "status writer")
        await self._writes.finish()
        await self.flush(everything=True)  # the store then has every device's latest time

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self._writes.run(self.flush())
            except Exception:
                log.exception("status_writer.flush_failed")

    async def flush(self, *, everything: bool = False) -> None:
        """Write the pending statuses (``everything``: the unchanged ones too, however
        recently written): one UPDATE executed for the whole batch.

        If the write fails (the database is away), the batch goes back to the pending
        statuses, under any newer status a device reported meanwhile, so the next flush
        writes it: nothing is lost, and an old status never overwrites a newer one.
        """
        if everything:
            self._pending.update(self._unchanged)
            self._unchanged.clear()
        else:
            self._take_stale()
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        now = time.monotonic()
        for device_id in batch:
            self._taken_at[device_id] = now
            self._taken_at.move_to_end(device_id)
        # in device order: workers writing overlapping devices at once then wait for each
        # other's row locks instead of deadlocking
        rows = [{"b_device": device_id, "b_connectivity": status.connectivity.value,
                 "b_status": status.model_dump(mode="json"), "b_at": status.reported_at}
                for device_id, status in sorted(batch.items())]
        try:
            async with self._registry.store.sessions.begin() as s:
                await s.execute(_UPDATE_STATE, rows)  # a removed device's row is just gone
        except BaseException:
            for device_id, status in batch.items():
                self._pending.setdefault(device_id, status)
            raise
        self.writes += len(batch)


_STATE = cast("Table", DeviceStateRow.__table__)
_UPDATE_STATE = (update(_STATE).where(_STATE.c.device_id == bindparam("b_device"))
                 .values(connectivity=bindparam("b_connectivity"),
                         status=bindparam("b_status"), updated_at=bindparam("b_at")))


class EventRecorder:
    """Persists bus events (all but ``device.status``) in batches."""

    SKIP = frozenset({"device.status"})

    def __init__(self, store: Store, bus: EventBus, *, batch: int = 500) -> None:
        self._store = store
        self._bus = bus
        self._batch = batch
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=100_000)
        self._unsubscribe = bus.subscribe(self._take)
        self._task: asyncio.Task[None] | None = None
        self._writes = WritesInFlight()
        self.dropped = 0
        self.written = 0

    def _take(self, event: Event) -> None:
        if event.type in self.SKIP:
            return
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-recorder")

    async def stop(self) -> None:
        self._unsubscribe()
        if self._task is not None:
            await cancel_and_wait(self._task, "event recorder")
        await self._writes.finish()
        await self._drain()

    async def _run(self) -> None:
        while True:
            first = await self._queue.get()
            await self._writes.run(self._write([first, *self._take_ready()]))

    def _take_ready(self) -> list[Event]:
        items: list[Event] = []
        while len(items) < self._batch - 1:
            try:
                items.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return items

    async def _drain(self) -> None:
        while not self._queue.empty():
            await self._write(self._take_ready() or [self._queue.get_nowait()])

    async def _write(self, events: list[Event]) -> None:
        rows = [{"id": e.id, "type": e.type, "at": e.at, "device_id": e.device_id,
                 "area_code": e.area_code, "payload": e.model_dump(mode="json")} for e in events]
        written, _ = await write_rows(self._insert, rows, "event_recorder")
        self.written += written

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        # an event delivered twice (MQTT QoS 1 may) is stored once
        await self._store.insert_ignoring_duplicates(EventRow, rows, "id")
