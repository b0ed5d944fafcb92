"""Proof of play: what each device played, stored, queried, exported and reconciled.

Devices report ``started`` / ``finished`` / ``failed`` / ``interrupted`` as
:class:`~ttcs.schemas.PlayEvent` with their own clock's time. The :class:`PlayLogWriter`
takes every such event off the bus, stamps the hub's receive time, and appends it to
``play_log`` in batches (one transaction per batch; a redelivered event — MQTT QoS 1 may
deliver twice — is ignored by its id). :class:`PlayLog` answers the questions operators and
the source information system ask: what played in this area in this period, per broadcast,
per content item, and — given the devices a broadcast was dispatched to — its coverage:
which devices played it, which failed, were cut off or never said anything, and the share of
targeted devices and villages that actually heard it.

Device clocks drift (4G modules without NTP, RTC batteries gone flat). Both times are kept;
``at``, the time period queries use, is the device's time unless it differs from the receive
time by more than ``clock_skew_tolerance``, in which case the hub's clock is trusted and the
entry is flagged as skewed.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import hashlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TextIO

import structlog
from pydantic import Field
from sqlalchemy import Select, select

from ..aio import cancel_and_wait, wait_for
from ..schemas import Event, Model, PlayEvent, PlayPhase, utcnow
from ..schemas.base import AwareDatetime
from .areascope import covered_areas
from .events import EventBus
from .store import Store
from .store.retry import write_rows
from .store.tables import DeviceRow, PlayLogRow

log = structlog.get_logger("ttcs.playlog")

#: looks up the village a device serves (a snapshot is stored with each play)
VillageOf = Callable[[str], str | None]


def reconcile_time(device_time: datetime | None, received_at: datetime,
                   tolerance: float) -> tuple[datetime, float | None]:
    """When it happened, best known, and the skew (receive time minus device time, seconds).

    A positive skew within the tolerance is normal delivery latency; beyond it the device's
    clock (or a long delivery delay, which looks the same) is not trusted.
    """
    if device_time is None:
        return received_at, None
    skew = (received_at - device_time).total_seconds()
    return (device_time if abs(skew) <= tolerance else received_at), skew


# -- writing -------------------------------------------------------------------------------------


class PlayLogWriter:
    """Appends every :class:`PlayEvent` published on the bus to ``play_log``, in batches."""

    def __init__(self, store: Store, bus: EventBus, *, skew_tolerance: float = 30.0,
                 village_of: VillageOf | None = None, batch: int = 500,
                 maxsize: int = 100_000) -> None:
        self._store = store
        self._tolerance = skew_tolerance
        self._village_of = village_of or (lambda _device_id: None)
        self._batch = batch
        self._queue: asyncio.Queue[tuple[PlayEvent, datetime]] = asyncio.Queue(maxsize)
        self._task: asyncio.Task[None] | None = None
        self._unsubscribe = bus.subscribe(self._take)
        self.dropped = 0  # queue full: the store cannot keep up
        self.written = 0
        self.failed = 0  # rows lost to store errors after retries

    def _take(self, event: Event) -> None:
        if not isinstance(event, PlayEvent) or event.device_id is None:
            return
        try:  # the receive time is now, not when the batch reaches the store
            self._queue.put_nowait((event, utcnow()))
        except asyncio.QueueFull:
            self.dropped += 1

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="playlog-writer")

    async def drain(self, timeout: float = 30.0) -> None:
        """Wait until everything taken so far is in the store."""
        await wait_for(self._queue.join(), timeout)

    async def stop(self) -> None:
        """Stop taking events and write what is queued (the running writer finishes it)."""
        self._unsubscribe()
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await self.drain(10.0)
            await cancel_and_wait(self._task, "playlog")
            self._task = None

    async def _run(self) -> None:
        while True:
            items = [await self._queue.get()]
            while len(items) < self._batch:
                try:
                    items.append(self._queue.get_nowait())
                except asyncio.QueueEmpty:
                    break
            try:
                await self._write(items)
            except Exception:  # a bug here must not stop proof of play for good
                self.failed += len(items)
                log.exception("playlog.writer_crashed", count=len(items))
            finally:
                for _ in items:
                    self._queue.task_done()

    async def _write(self, items: Sequence[tuple[PlayEvent, datetime]]) -> None:
        rows = [self._row(event, received) for event, received in items]
        written, failed = await write_rows(self._insert, rows, "playlog")
        self.written += written
        self.failed += failed

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        await self._store.insert_ignoring_duplicates(PlayLogRow, rows, "event_id")

    def _row(self, event: PlayEvent, received: datetime) -> dict[str, Any]:
        assert event.device_id is not None
        at, skew = reconcile_time(event.device_time, received, self._tolerance)
        return {"event_id": _event_id(event.id), "phase": event.phase.value,
                "device_id": event.device_id,
                "area_code": event.area_code, "village_code": self._village_of(event.device_id),
                "broadcast_id": event.broadcast_id, "content_id": event.content_id,
                "command_id": event.command_id, "device_time": event.device_time,
                "received_at": received, "at": at, "clock_skew": skew,
                "detail": event.detail}


def _event_id(value: str) -> str:
    """The event's id, or a digest of it when a device sent one longer than the column."""
    if len(value) <= 64:
        return value
    return "sha256-" + hashlib.sha256(value.encode()).hexdigest()[:57]


# -- reading -------------------------------------------------------------------------------------


class PlayLogEntry(Model):
    """One stored play event, as queried and exported."""

    at: AwareDatetime = Field(description="when it happened, best known (see clock_skew)")
    phase: PlayPhase
    device_id: str
    area_code: str | None = None
    village_code: str | None = None
    broadcast_id: str | None = None
    content_id: str | None = None
    command_id: str | None = None
    device_time: AwareDatetime | None = Field(default=None, description="by the device clock")
    received_at: AwareDatetime = Field(description="by the hub clock")
    clock_skew: float | None = Field(default=None,
                                     description="received_at - device_time, seconds")
    skewed: bool = Field(default=False, description="device clock off beyond the tolerance")
    detail: str | None = None
    event_id: str


#: CSV column order (every field of :class:`PlayLogEntry`)
CSV_COLUMNS = list(PlayLogEntry.model_fields)


@dataclass(frozen=True)
class PlayFilter:
    """What to select; every given field narrows. ``until`` is exclusive."""

    area: str | None = None  # this area, everything below it, and areas merged into those
    since: datetime | None = None
    until: datetime | None = None
    broadcast_id: str | None = None
    content_id: str | None = None
    device_id: str | None = None


class DeviceOutcome(StrEnum):
    """What became of a broadcast on one targeted device."""

    PLAYED = "played"  # the device reported it finished
    INTERRUPTED = "interrupted"  # cut off (preempted, stopped) and not finished since
    FAILED = "failed"  # the device reported it could not play it
    INCOMPLETE = "incomplete"  # started, and no end reported (still playing, or end lost)
    SILENT = "silent"  # targeted, but the device never reported anything about it


class DeviceCoverage(Model):
    device_id: str
    village: str | None = Field(default=None, description="village code, else the device's "
                                "area code; None for a device not in the registry")
    outcome: DeviceOutcome
    started_at: AwareDatetime | None = None
    ended_at: AwareDatetime | None = None
    clock_skew: float | None = Field(default=None, description="largest skew seen, seconds")
    skewed: bool = False


class Coverage(Model):
    """A broadcast reconciled against the devices it was dispatched to."""

    broadcast_id: str
    targeted: int
    played: int
    interrupted: int
    failed: int
    incomplete: int
    silent: int
    device_share: float = Field(description="share of targeted devices that played it, 0..1")
    villages_targeted: int
    villages_reached: int = Field(description="targeted villages where at least one targeted "
                                  "device played it")
    village_share: float
    devices: list[DeviceCoverage]
    untargeted: list[str] = Field(default_factory=list, description="devices that reported "
                                  "playing it without being targeted — investigate")
    skewed: list[str] = Field(default_factory=list, description="devices whose clock is off")
    unknown: list[str] = Field(default_factory=list, description="targeted ids not registered")


class PlayLog:
    """Queries over the stored proof of play. Needs only the store, not a running hub."""

    def __init__(self, store: Store, *, skew_tolerance: float = 30.0) -> None:
        self._store = store
        self._tolerance = skew_tolerance

    def _select(self, where: PlayFilter) -> Select[Any]:
        # plain rows, not ORM objects: an export of a province's month is a million rows
        query = select(*PlayLogRow.__table__.c).order_by(PlayLogRow.at, PlayLogRow.seq)
        if where.area is not None:
            query = query.where(PlayLogRow.area_code.in_(covered_areas(where.area)))
        if where.since is not None:
            query = query.where(PlayLogRow.at >= where.since)
        if where.until is not None:
            query = query.where(PlayLogRow.at < where.until)
        for column, value in ((PlayLogRow.broadcast_id, where.broadcast_id),
                              (PlayLogRow.content_id, where.content_id),
                              (PlayLogRow.device_id, where.device_id)):
            if value is not None:
                query = query.where(column == value)
        return query

    def _entry(self, row: Any) -> PlayLogEntry:
        return PlayLogEntry(
            at=row.at, phase=PlayPhase(row.phase), device_id=row.device_id,
            area_code=row.area_code, village_code=row.village_code,
            broadcast_id=row.broadcast_id, content_id=row.content_id,
            command_id=row.command_id, device_time=row.device_time,
            received_at=row.received_at, clock_skew=row.clock_skew,
            skewed=row.clock_skew is not None and abs(row.clock_skew) > self._tolerance,
            detail=row.detail, event_id=row.event_id)

    async def entries(self, where: PlayFilter | None = None, *, limit: int | None = None,
                      offset: int = 0) -> list[PlayLogEntry]:
        """Matching entries in time order (at most ``limit``, after skipping ``offset``)."""
        query = self._select(where or PlayFilter()).offset(offset)
        if limit is not None:
            query = query.limit(limit)
        async with self._store.sessions() as s:
            return [self._entry(r) for r in (await s.execute(query)).all()]

    async def stream(self, where: PlayFilter | None = None) -> AsyncIterator[PlayLogEntry]:
        """Matching entries in time order, read in chunks (for exports of any size)."""
        query = self._select(where or PlayFilter()).execution_options(yield_per=1000)
        async with self._store.sessions() as s:
            result = await s.stream(query)
            async for row in result:
                yield self._entry(row)

    async def coverage(self, broadcast_id: str, targeted_device_ids: Iterable[str]
                       ) -> Coverage:
        """Reconcile what devices reported for ``broadcast_id`` against where it was sent.

        ``targeted_device_ids`` are the devices the dispatcher sent it to. A device *played*
        the broadcast when it reported it finished (a lost ``started`` does not unmake a
        play); otherwise its last report decides. A village counts as reached when at least
        one targeted device serving it played.
        """
        targeted = sorted(set(targeted_device_ids))
        villages = await self._villages(targeted)
        reports: dict[str, list[Any]] = {}
        query = (select(PlayLogRow.device_id, PlayLogRow.phase, PlayLogRow.at,
                        PlayLogRow.clock_skew)
                 .where(PlayLogRow.broadcast_id == broadcast_id).order_by(PlayLogRow.seq)
                 .execution_options(yield_per=1000))
        async with self._store.sessions() as s:
            async for row in await s.stream(query):
                reports.setdefault(row.device_id, []).append(row)
        devices = [self._device_coverage(d, villages.get(d), reports.get(d, []))
                   for d in targeted]
        counts = {o: 0 for o in DeviceOutcome}
        for d in devices:
            counts[d.outcome] += 1
        village_set = {d.village for d in devices if d.village is not None}
        reached = {d.village for d in devices
                   if d.village is not None and d.outcome is DeviceOutcome.PLAYED}
        return Coverage(
            broadcast_id=broadcast_id, targeted=len(targeted),
            played=counts[DeviceOutcome.PLAYED], interrupted=counts[DeviceOutcome.INTERRUPTED],
            failed=counts[DeviceOutcome.FAILED], incomplete=counts[DeviceOutcome.INCOMPLETE],
            silent=counts[DeviceOutcome.SILENT],
            device_share=_share(counts[DeviceOutcome.PLAYED], len(targeted)),
            villages_targeted=len(village_set), villages_reached=len(reached),
            village_share=_share(len(reached), len(village_set)), devices=devices,
            untargeted=sorted(set(reports) - set(targeted)),
            skewed=[d.device_id for d in devices if d.skewed],
            unknown=[d for d in targeted if d not in villages])

    def _device_coverage(self, device_id: str, village: str | None,
                         rows: Sequence[Any]) -> DeviceCoverage:
        if not rows:
            return DeviceCoverage(device_id=device_id, village=village,
                                  outcome=DeviceOutcome.SILENT)
        finished = [r for r in rows if r.phase == PlayPhase.FINISHED]
        deciding = finished[-1] if finished else rows[-1]
        outcome = {PlayPhase.FINISHED: DeviceOutcome.PLAYED,
                   PlayPhase.STARTED: DeviceOutcome.INCOMPLETE,
                   PlayPhase.INTERRUPTED: DeviceOutcome.INTERRUPTED,
                   PlayPhase.FAILED: DeviceOutcome.FAILED}[PlayPhase(deciding.phase)]
        started = [r.at for r in rows if r.phase == PlayPhase.STARTED]
        skews = [r.clock_skew for r in rows if r.clock_skew is not None]
        worst = max(skews, key=abs) if skews else None
        return DeviceCoverage(
            device_id=device_id, village=village, outcome=outcome,
            started_at=started[0] if started else None,
            ended_at=None if outcome is DeviceOutcome.INCOMPLETE else deciding.at,
            clock_skew=worst, skewed=worst is not None and abs(worst) > self._tolerance)

    async def _villages(self, device_ids: Sequence[str]) -> dict[str, str]:
        """Village (else area) of each registered device, looked up in chunks."""
        found: dict[str, str] = {}
        async with self._store.sessions() as s:
            for start in range(0, len(device_ids), 500):  # stay far below bind-parameter limits
                chunk = device_ids[start:start + 500]
                rows = await s.execute(select(DeviceRow.id, DeviceRow.village_code,
                                              DeviceRow.area_code)
                                       .where(DeviceRow.id.in_(chunk)))
                for device_id, village, area in rows.all():
                    found[device_id] = village or area
        return found


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


# -- export --------------------------------------------------------------------------------------


async def export_csv(entries: AsyncIterable[PlayLogEntry], out: TextIO) -> int:
    """Write ``entries`` as CSV (header + one row each, ISO 8601 times); returns the count."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    count = 0
    async for entry in entries:
        data = entry.model_dump(mode="json")
        writer.writerow([_csv_cell(data[c]) for c in CSV_COLUMNS])
        count += 1
    return count


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(_FORMULA):
        # free text from a device must not become a formula in the spreadsheet it is opened in
        return "'" + value
    return value


_FORMULA = ("=", "+", "-", "@", "\t", "\r")


async def export_json(entries: AsyncIterable[PlayLogEntry], out: TextIO) -> int:
    """Write ``entries`` as one JSON array, streamed; returns the count."""
    count = 0
    out.write("[")
    async for entry in entries:
        out.write(",\n" if count else "\n")
        out.write(json.dumps(entry.model_dump(mode="json"), ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
