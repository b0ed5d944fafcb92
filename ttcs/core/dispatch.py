"""Durable dispatch: the planner turns timelines into outbox rows; the sender delivers them.

Guarantees, and how they are kept:

- **Nothing lost.** A command exists as an ``outbox`` row before anything is sent; a hub that
  dies (even by SIGKILL) finds its pending rows on restart and sends them.
- **Nothing played twice.** Every row's ``idempotency_key`` is derived from the broadcast, the
  occurrence and the device, so re-planning after a restart produces the same key (the unique
  index drops the duplicate), and a row re-sent after a crash carries the same key, which the
  device honours. Delivery is at-least-once; effect is exactly-once as the device sees it.
- **Per-device order.** A device has at most one command in flight; its rows go in queue order
  (emergencies first).
- **Retries** with exponential backoff and jitter for retryable errors, until the row
  **expires**; non-retryable errors fail the row at once.
- **Bounded fan-out.** Thousands of devices are served concurrently, at most
  ``concurrency`` at a time; results are written back in batches.
- **Approval is checked here**, in the dispatch path: a play/show of content that is not
  approved, or was altered after approval, is refused and never sent.
- **Emergency preemption and resume.** An emergency goes to every targeted device at once (the
  device cuts what it plays); when a device reports an item *interrupted*, the same item is
  queued again to start after the emergency ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import random
import time
import typing
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import structlog
from sqlalchemy import Table, Text, bindparam, cast, select, update

from ..aio import cancel_and_wait, wait_event
from ..schemas import (
    BroadcastState,
    BulletinLevel,
    Capability,
    Command,
    CommandResult,
    CommandResultEvent,
    CommandStatus,
    Content,
    ContentKind,
    Device,
    Event,
    PlayCommand,
    PlayEvent,
    PlayPhase,
    ScheduleEntry,
    ScheduleKind,
    ShowCommand,
    StopCommand,
    SyncScheduleCommand,
    new_id,
    parse_command,
)
from ..schemas.base import fast_id
from .errors import DeviceError, DeviceNotReady, TTCSError
from .schedule.content_gate import ContentGate, PlayableMedia
from .schedule.policy import Policy
from .schedule.service import (
    ACTIVE_STATES,
    AUDIO_CAPS,
    BroadcastService,
    OfferState,
    occurrence,
    occurrence_starts,
    to_broadcast,
)
from .schedule.timeline import Placement, resolve
from .store.tables import BroadcastRow, BroadcastTargetRow, DeviceRow, OfferRow, OutboxRow
from .store.writes import WritesInFlight

log = structlog.get_logger("ttcs.dispatch")

#: how long media references (signed URLs) are reused across a fan-out
MEDIA_CACHE_SECONDS = 600.0


class RowState:
    PENDING = "pending"
    RETRY = "retry"
    DONE = "done"
    REJECTED = "rejected"  # the device refused it (no retry)
    FAILED = "failed"  # non-retryable error
    EXPIRED = "expired"
    REFUSED = "refused"  # the hub refused to send it (unapproved or altered content)
    CANCELLED = "cancelled"


OPEN_STATES = (RowState.PENDING, RowState.RETRY)
#: a schedule sync in one of these never reached the device: it is sent again
UNDELIVERED_STATES = (RowState.EXPIRED, RowState.FAILED, RowState.CANCELLED)


@dataclass(slots=True)
class DueRow:
    """What the sender needs of an outbox row: read as columns, not as an ORM object (2,000
    ORM rows cost ~0.4 s of the loop in a fan-out's first batch, before anything was sent)."""

    COLUMNS: ClassVar[tuple[Any, ...]] = (
        OutboxRow.seq, OutboxRow.device_id, OutboxRow.command, OutboxRow.attempts,
        OutboxRow.expires_at, OutboxRow.content_id, OutboxRow.level_rank)

    seq: int
    device_id: str
    command: dict[str, Any]
    attempts: int
    expires_at: datetime | None
    content_id: str | None
    level_rank: int


@dataclass
class DispatchSettings:
    plan_interval: float = 1.0
    lookahead: float = 5.0  # seconds ahead that items are queued (sent when due)
    late_grace: float = 120.0  # a normal item more than this late is missed, not played
    #: an emergency is delivered as long as this after it was issued, even if the hub was
    #: down or the device away when it would have played (then it plays late, not never)
    emergency_window: float = 3600.0
    concurrency: int = 500
    batch: int = 2000
    backoff: tuple[float, float] = (0.5, 60.0)
    sync_horizon: timedelta = timedelta(hours=24)
    #: seconds between checks whether a local-schedule device's schedule changed
    sync_interval: float = 30.0
    #: seconds a schedule sync may wait for its device before it expires
    sync_expiry: float = 3600.0
    #: seconds between two tries of a schedule that expired or failed on its way
    resync_every: float = 600.0


#: refused deliveries remembered (so each is logged once); older ones are logged again at most
REFUSALS_REMEMBERED = 10_000


def backoff_delay(attempts: int, low: float, high: float) -> float:
    """Exponential backoff with full jitter in [base/2, base]."""
    base: float = min(high, low * (2 ** max(0, attempts - 1)))
    return base * random.uniform(0.5, 1.0)


class Dispatcher:
    """Planner + sender for one hub process."""

    def __init__(self, hub: Any, broadcasts: BroadcastService, content: ContentGate,
                 settings: DispatchSettings | None = None) -> None:
        self.hub = hub
        self.store = hub.store
        self.broadcasts = broadcasts
        self.content = content
        self.settings = settings or DispatchSettings()
        self._wake = asyncio.Event()
        self._send_wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._writes = WritesInFlight()  # planning and flushing finish even when stopped
        self._in_flight: set[str] = set()  # device ids with a command out
        self._unflushed: set[int] = set()  # seqs whose result is not written yet
        self._results: list[dict[str, Any]] = []
        self._slots = asyncio.Semaphore(self.settings.concurrency)
        self._outbox_lock = asyncio.Lock()  # reading due rows vs. flushing results
        self._media: dict[tuple[str, str, str], tuple[float, PlayableMedia]] = {}
        #: device -> (hash of the schedule last queued, its outbox key, delivered or refused)
        self._synced: dict[str, tuple[str, str, bool]] = {}
        #: occurrence key -> devices whose outbox row is committed; the planner sees a due
        #: item every round for as long as it is in the window (an emergency: an hour) and
        #: rebuilt every row each time. Memory only: after a restart every row is planned
        #: once more and the unique idempotency key drops the duplicates.
        self._planned: dict[str, set[str]] = {}
        self._refused: dict[str, None] = {}  # deliveries refused and recorded, oldest first
        #: broadcast -> its targets as (device, commune): written once when the broadcast is
        #: created and never changed, so read once while the broadcast is being planned
        #: rather than every round (10,000 rows a second for an emergency in its window)
        self._targets: dict[str, list[tuple[str, str]]] = {}
        self._unsubscribe = hub.bus.subscribe(self._on_event)
        self.sent = 0
        self.syncs = 0  # rounds of sync_local_schedules
        self._sending: set[asyncio.Task[None]] = set()  # commands on their way to devices

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._planner(), name="planner"),
                       asyncio.create_task(self._sender(), name="outbox-sender"),
                       asyncio.create_task(self._flusher(), name="outbox-flusher")]

    async def stop(self) -> None:
        self._unsubscribe()
        await cancel_and_wait(self._tasks, "dispatcher")
        # commands still on their way: their results are kept if they come within two
        # seconds; the others stay pending in the outbox and go again (same idempotency key)
        # after a restart, which the device answers once
        if self._sending:
            await asyncio.wait(set(self._sending), timeout=2)
        await cancel_and_wait(list(self._sending), "dispatcher sends")
        await self._writes.finish()
        await self._flush()

    def wake(self) -> None:
        self._wake.set()

    # -- planning -----------------------------------------------------------------------------

    async def _planner(self) -> None:
        synced_at = -float("inf")
        while True:
            try:
                await self._writes.run(self.plan_once(datetime.now(UTC)))
            except Exception:
                log.exception("planner.failed")
            if time.monotonic() - synced_at >= self.settings.sync_interval:
                synced_at = time.monotonic()
                try:
                    await self._writes.run(self.sync_local_schedules(datetime.now(UTC)))
                except Exception:
                    log.exception("schedule_sync.failed")
            await wait_event(self._wake, self.settings.plan_interval)
            self._wake.clear()  # woken once, planned once: not a busy loop from then on

    async def plan_once(self, now: datetime) -> int:
        """Queue every item due within the lookahead; returns how many rows were added."""
        horizon = timedelta(seconds=self.settings.lookahead)
        async with self.store.sessions() as s:
            rows = list((await s.execute(select(BroadcastRow).where(
                BroadcastRow.state.in_(ACTIVE_STATES)))).scalars())
        if not rows:
            return 0
        broadcasts = {r.id: (to_broadcast(r), r) for r in rows}
        back = timedelta(seconds=max(self.settings.emergency_window, 3600.0))
        window_start = now - back
        relevant = {bid: occurrence_starts(b, window_start, back * 2 + horizon)
                    for bid, (b, _) in broadcasts.items()}
        relevant = {bid: starts for bid, starts in relevant.items() if starts}
        await self._finish_past(broadcasts, now)
        if not relevant:
            return 0
        for gone in set(self._targets) - set(relevant):
            del self._targets[gone]
        async with self.store.sessions() as s:
            unread = [bid for bid in relevant if bid not in self._targets]
            if unread:  # (columns, not ORM objects)
                for bid in unread:
                    self._targets[bid] = []
                for bid, device_id, commune in await s.execute(select(
                        BroadcastTargetRow.broadcast_id, BroadcastTargetRow.device_id,
                        BroadcastTargetRow.commune_code).where(
                        BroadcastTargetRow.broadcast_id.in_(unread))):
                    self._targets[bid].append((device_id, commune))
            # offers change (a commune accepts or declines): read every round
            offers = {(o.broadcast_id, o.commune_code): o for o in (await s.execute(
                select(OfferRow).where(OfferRow.broadcast_id.in_(list(relevant))))).scalars()}
        accepted = {key for key, o in offers.items() if o.state == OfferState.ACCEPTED}
        by_device: dict[str, set[str]] = defaultdict(set)
        commune_of: dict[str, str] = {}
        for bid in relevant:
            for device_id, commune in self._targets[bid]:
                if (bid, commune) in accepted:
                    by_device[device_id].add(bid)
                    commune_of[device_id] = commune
        groups: dict[tuple[str, frozenset[str]], list[str]] = defaultdict(list)
        for device_id, bids in by_device.items():
            groups[(commune_of[device_id], frozenset(bids))].append(device_id)
        explicit = await self.broadcasts.policies.explicit()
        policies: dict[str, Policy] = {}
        new_rows: list[dict[str, Any]] = []
        contents: dict[str, Content] = {}  # fetched once per round, not once per device
        fresh: list[tuple[str, str]] = []  # (occurrence key, device) rows built this round
        live = {occurrence(broadcasts[bid][0], broadcasts[bid][1].seconds, at).key
                for bid, starts in relevant.items() for at in starts}
        for gone in set(self._planned) - live:  # occurrences out of the window: forget them
            del self._planned[gone]
        for (commune, group_bids), device_ids in groups.items():
            occurrences = [occurrence(broadcasts[bid][0], broadcasts[bid][1].seconds, at,
                                      offers[(bid, commune)].rank)
                           for bid in group_bids for at in relevant[bid]]
            if all(o.key in self._planned and self._planned[o.key].issuperset(device_ids)
                   for o in occurrences):
                continue  # every row of this group is in the outbox already
            policy: Policy | None = None
            if any(o.level is not BulletinLevel.EMERGENCY for o in occurrences):
                # (emergencies are exempt from policy: none is looked up for them)
                if commune not in policies:
                    policies[commune] = await self.broadcasts.policies.effective(commune,
                                                                                 explicit)
                policy = policies[commune]
            due = [p for p in resolve(occurrences, policy)
                   if p.placed and self._due(p, now, horizon)]
            for placement in due:
                b, row = broadcasts[placement.occurrence.broadcast_id]
                key = placement.occurrence.key
                planned = self._planned.setdefault(key, set())
                templates: dict[bool, dict[str, Any]] = {}  # audio device? -> outbox values
                for device_id in device_ids:
                    if device_id in planned:
                        continue  # its row exists (this process wrote or found it)
                    device = await self._device(device_id)
                    if device is None or (Capability.SCHEDULE_LOCAL in device.capabilities
                                          and not _real_time(placement.occurrence.level, b)):
                        continue  # local-schedule devices get their items by sync
                    try:
                        if b.content_id not in contents:
                            contents[b.content_id] = await self.content.get(b.content_id)
                        audio = bool(set(device.capabilities) & AUDIO_CAPS)
                        template = templates.get(audio)
                        if template is None:
                            values = await self._row(device, commune, placement, b, row,
                                                     contents[b.content_id])
                            templates[audio] = values
                        else:  # the same command for another device: its own id and key
                            values = _for_device(template, device.id, placement)
                        new_rows.append(values)
                        fresh.append((key, device_id))
                    except TTCSError as exc:  # unapproved, altered, media gone: never sent
                        refusal = self._refusal(device.id, placement, b, str(exc))
                        if refusal is not None:
                            new_rows.append(refusal)
        added = await self._insert(new_rows)
        # only once the rows are committed: a failed insert is planned again next round
        for key, device_id in fresh:
            self._planned[key].add(device_id)
        if added:
            await self._mark_active([r["broadcast_id"] for r in new_rows])
            self.wake_sender()
        return added

    def _due(self, p: Placement, now: datetime, horizon: timedelta) -> bool:
        assert p.start is not None
        assert p.end is not None
        if p.start > now + horizon:
            return False
        if p.occurrence.level is BulletinLevel.EMERGENCY:
            return p.start >= now - timedelta(seconds=self.settings.emergency_window)
        return p.start >= now - timedelta(seconds=self.settings.late_grace)

    async def _device(self, device_id: str) -> Device | None:
        sup = self.hub.supervisors.get(device_id)
        if sup is not None:
            return sup.device  # type: ignore[no-any-return]
        with contextlib.suppress(TTCSError):
            return await self.hub.registry.get_device(device_id)  # type: ignore[no-any-return]
        return None

    def _refusal(self, device_id: str, p: Placement, b: Any, reason: str
                 ) -> dict[str, Any] | None:
        """A row that records, durably and once, that this delivery was refused (None: this
        process recorded it already — the planner sees a due item again every round, so it
        is logged once, not once per round)."""
        key = f"{p.occurrence.key}/{device_id}"
        if key in self._refused:
            return None
        self._refused[key] = None
        while len(self._refused) > REFUSALS_REMEMBERED:
            self._refused.pop(next(iter(self._refused)))
        log.warning("dispatch.refused", broadcast=b.id, device=device_id, reason=reason)
        assert p.start is not None
        values = _outbox_values(StopCommand(id=new_id("cmd"), idempotency_key=key),
                                device_id, p.occurrence.level, b.id, b.content_id, None,
                                not_before=p.start, expires_at=None)
        return {**values, "state": RowState.REFUSED, "last_error": reason}

    async def _row(self, device: Device, commune: str, p: Placement, b: Any, row: BroadcastRow,
                   content: Content) -> dict[str, Any]:
        assert p.start is not None
        assert p.end is not None
        key = f"{p.occurrence.key}/{device.id}"
        level = p.occurrence.level
        expires = p.start + timedelta(seconds=self.settings.emergency_window
                                      if level is BulletinLevel.EMERGENCY
                                      else self.settings.late_grace)
        command = await self.command_for(device, content, commune, key=key, broadcast=b,
                                         expires_at=expires, seconds=row.seconds)
        return _outbox_values(command, device.id, level, b.id, content.id, row.seconds,
                              not_before=p.start, expires_at=expires)

    async def command_for(self, device: Device, content: Content, area_code: str, *, key: str,
                          broadcast: Any, expires_at: datetime | None, seconds: float
                          ) -> Command:
        """The command that presents ``content`` on ``device`` (audio or display)."""
        level = broadcast.level or content.level
        if set(device.capabilities) & AUDIO_CAPS and content.kind in (ContentKind.AUDIO,
                                                                     ContentKind.TEXT):
            playable = await self._playable(content, area_code)
            return PlayCommand(id=new_id("cmd"), idempotency_key=key, content_id=content.id,
                               broadcast_id=broadcast.id, media=playable.media, level=level,
                               volume=broadcast.volume, repeat=broadcast.repeat,
                               signature=playable.signature, expires_at=expires_at)
        media = None
        if content.kind in (ContentKind.IMAGE, ContentKind.VIDEO):
            media = (await self._playable(content, area_code)).media
        return ShowCommand(id=new_id("cmd"), idempotency_key=key, content_id=content.id,
                           broadcast_id=broadcast.id, text=content.text or (
                               None if media else content.title), media=media, level=level,
                           seconds=seconds, valid_from=broadcast.valid_from,
                           valid_until=broadcast.valid_until,
                           signature=self.content.approval_token(content),
                           expires_at=expires_at)

    async def _playable(self, content: Content, area_code: str) -> PlayableMedia:
        """Media and token per (approved revision, area), reused for a fan-out; signed URLs
        are long-lived enough for the minutes a cache entry lives."""
        signature = content.approval.signature if content.approval else ""
        key = (content.id, signature, area_code)
        now = time.monotonic()
        cached = self._media.get(key)
        if cached is None or now - cached[0] > MEDIA_CACHE_SECONDS:
            cached = (now, await self.content.playable(content, area_code))
            self._media[key] = cached
        return cached[1]

    async def _insert(self, rows: list[dict[str, Any]]) -> int:
        added: int = await self.store.insert_ignoring_duplicates(OutboxRow, rows,
                                                                 "idempotency_key")
        return added

    async def _mark_active(self, broadcast_ids: list[str]) -> None:
        async with self.store.sessions.begin() as s:
            await s.execute(update(BroadcastRow).where(
                BroadcastRow.id.in_(set(broadcast_ids)),
                BroadcastRow.state == BroadcastState.SCHEDULED.value).values(
                state=BroadcastState.ACTIVE.value))

    async def _finish_past(self, broadcasts: dict[str, Any], now: datetime) -> None:
        """Broadcasts with no occurrence left (one-off and past, or beyond validity) are done."""
        finished = []
        for bid, (b, row) in broadcasts.items():
            if b.valid_until is not None and b.valid_until < now:
                finished.append(bid)
            elif b.schedule.kind.value in ("now", "at"):
                start = b.schedule.at or b.created_at
                grace = (self.settings.emergency_window if b.level is BulletinLevel.EMERGENCY
                         else self.settings.late_grace)
                if start + timedelta(seconds=row.seconds + grace) < now:
                    finished.append(bid)
        if finished:
            async with self.store.sessions.begin() as s:
                await s.execute(update(BroadcastRow).where(BroadcastRow.id.in_(finished))
                                .values(state=BroadcastState.DONE.value))

    # -- local schedules ----------------------------------------------------------------------

    async def sync_local_schedules(self, now: datetime) -> int:
        """Send each local-schedule device its next ``sync_horizon`` when it changed."""
        self.syncs += 1
        sent = 0
        # the few devices that keep a schedule, found in SQL (building every registered
        # device as a model every sync_interval cost a province-sized hub ~1 s of its loop)
        async with self.store.sessions() as s:
            ids = list((await s.execute(select(DeviceRow.id).where(
                cast(DeviceRow.capabilities, Text).like(
                    f'%"{Capability.SCHEDULE_LOCAL.value}"%')).order_by(DeviceRow.id)
            )).scalars())
        devices = []
        for device_id in ids:
            with contextlib.suppress(TTCSError):
                device = await self.hub.registry.get_device(device_id)
                if Capability.SCHEDULE_LOCAL in device.capabilities:
                    devices.append(device)
        for device in devices:
            placements, _ = await self.broadcasts.timeline(device.id, now,
                                                           now + self.settings.sync_horizon)
            entries = []
            refusals: list[dict[str, Any]] = []
            commune = (await self.broadcasts.communes([device.area_code]))[device.area_code]
            for p in placements:
                if not p.placed:
                    continue
                b = await self.broadcasts.get(p.occurrence.broadcast_id)
                if _real_time(p.occurrence.level, b):
                    continue  # sent as a play command by the planner
                try:
                    content = await self.content.get(b.content_id)
                    # checked every time: the media cache below does not see a later edit
                    await self.content.verify_approval(content)
                    playable = await self._playable(content, commune)
                except TTCSError as exc:  # unapproved, altered, media gone: left off the
                    # device's table (recorded once), the other entries still go
                    refusal = self._refusal(device.id, p, b, str(exc))
                    if refusal is not None:
                        refusals.append(refusal)
                    continue
                assert p.start is not None
                entries.append(ScheduleEntry(
                    id=_entry_id(b.id, p.occurrence.start), content_id=content.id,
                    broadcast_id=b.id,
                    media=playable.media,
                    start=p.start, level=p.occurrence.level, volume=b.volume,
                    repeat=b.repeat, signature=playable.signature))
            # the media URL is left out: a signed URL changes as it is re-signed, the item
            # does not (the device has fetched the bytes, which the SHA-256 names)
            digest = hashlib.sha256(json.dumps(
                [e.model_dump(mode="json", exclude={"media": {"url"}}) for e in entries],
                sort_keys=True).encode()).hexdigest()[:24]
            if refusals:
                await self._insert(refusals)
            key = await self._sync_key(device.id, digest, now)
            if key is None:
                continue
            command = SyncScheduleCommand(id=new_id("cmd"), idempotency_key=key,
                                          entries=entries)
            added = await self._insert([_outbox_values(
                command, device.id, BulletinLevel.PRIORITY, None, None, None, not_before=now,
                expires_at=now + timedelta(seconds=self.settings.sync_expiry))])
            self._synced[device.id] = (digest, key, False)
            sent += added
        if sent:
            self.wake_sender()
        return sent

    async def _sync_key(self, device_id: str, digest: str, now: datetime) -> str | None:
        """The outbox key to queue the schedule ``digest`` under, or None when the device's
        latest sync is that schedule, queued, delivered or refused by the device. The key
        names the latest sync row before it (``…/{digest}/{seq}``): a schedule that comes
        back to an earlier one is a new sync, and a restart or a second round computes the
        same key (the unique key drops the repeat). A sync that expired (the device was
        away longer than ``sync_expiry``) or failed goes again, at most every
        ``resync_every``."""
        known = self._synced.get(device_id)
        if known is not None and known[0] == digest and known[2]:
            return None  # delivered or refused: nothing to do until the schedule changes
        prefix = f"sync/{device_id}/"
        async with self.store.sessions() as s:
            latest = (await s.execute(
                select(OutboxRow.seq, OutboxRow.idempotency_key, OutboxRow.state,
                       OutboxRow.created_at)
                .where(OutboxRow.device_id == device_id,
                       OutboxRow.idempotency_key.like(f"{prefix}%"))
                .order_by(OutboxRow.seq.desc()).limit(1))).first()
        if latest is None:
            return f"{prefix}{digest}/0"
        if latest.idempotency_key.removeprefix(prefix).split("/")[0] != digest:
            return f"{prefix}{digest}/{latest.seq}"  # the schedule changed
        if latest.state not in UNDELIVERED_STATES:
            self._synced[device_id] = (digest, latest.idempotency_key,
                                       latest.state not in OPEN_STATES)
            return None
        if (now - latest.created_at).total_seconds() < self.settings.resync_every:
            return None  # it failed a moment ago: not again at every round
        return f"{prefix}{digest}/{latest.seq}"

    # -- sending ------------------------------------------------------------------------------

    def wake_sender(self) -> None:
        self._send_wake.set()

    async def _sender(self) -> None:
        while True:
            try:
                started = await self._writes.run(self.send_due(datetime.now(UTC)))
            except Exception:
                log.exception("outbox.send_failed")
                started = 0
            if started == 0:
                await wait_event(self._send_wake, 0.2)
                self._send_wake.clear()
            else:
                await asyncio.sleep(0)

    async def send_due(self, now: datetime) -> int:
        """Start sending the rows that are due; returns how many were started.

        The due rows are read as (seq, device) first and only the rows picked are loaded
        whole: in a fan-out most due rows are already in flight, and loading them whole (the
        command's JSON) each round cost more than sending. Reading and picking hold the
        outbox lock, which a flush holds while it commits results and forgets them: without
        it a read begun before a flush could pick a row the flush had just completed, and
        send it again.
        """
        async with self._outbox_lock:
            async with self.store.sessions() as s:
                due = (await s.execute(
                    select(OutboxRow.seq, OutboxRow.device_id).where(
                        OutboxRow.state.in_(OPEN_STATES), OutboxRow.not_before <= now,
                        OutboxRow.next_attempt_at <= now)
                    .order_by(OutboxRow.level_rank.desc(), OutboxRow.seq)
                    .limit(self.settings.batch))).all()
                chosen: list[int] = []
                seen: set[str] = set()
                for seq, device_id in due:
                    if seq in self._unflushed or device_id in self._in_flight \
                            or device_id in seen:
                        continue
                    seen.add(device_id)  # one per device per round keeps per-device order
                    chosen.append(seq)
                rows: list[DueRow] = []
                for start in range(0, len(chosen), 500):
                    rows += [DueRow(*r) for r in await s.execute(select(*DueRow.COLUMNS).where(
                        OutboxRow.seq.in_(chosen[start:start + 500])))]
            rows.sort(key=lambda r: (-r.level_rank, r.seq))
            for row in rows:  # theirs until their result is flushed
                self._in_flight.add(row.device_id)
                self._unflushed.add(row.seq)
        picked: list[DueRow] = []
        for row in rows:
            if row.expires_at is not None and row.expires_at < now:
                self._record(row, RowState.EXPIRED, error="expired before it could be delivered")
            else:
                picked.append(row)
        refused = await self._refuse_unapproved(picked)
        for row in picked:
            if row.seq in refused:
                continue
            task = asyncio.create_task(self._send(row))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
            task.add_done_callback(_log_crash)
        return len(picked) - len(refused)

    async def _refuse_unapproved(self, rows: list[DueRow]) -> set[int]:
        """Check approval once per content item in the batch; refuse rows that fail."""
        verdict: dict[str, str | None] = {}
        for content_id in {r.content_id for r in rows if r.content_id}:
            try:
                await self.content.verify_approval(await self.content.get(content_id))
                verdict[content_id] = None
            except TTCSError as exc:
                verdict[content_id] = str(exc)
                log.warning("dispatch.refused", content=content_id, reason=str(exc))
        refused = set()
        for row in rows:
            reason = verdict.get(row.content_id or "")
            if reason:
                refused.add(row.seq)
                self._record(row, RowState.REFUSED, error=reason)
        return refused

    async def _send(self, row: DueRow) -> None:
        async with self._slots:
            command = parse_command(row.command)
            try:
                device = await self._device(row.device_id)
                if device is None:
                    self._record(row, RowState.FAILED, error="device no longer registered")
                    return
                result = await self.hub.dispatch(device, command)
            except DeviceError as exc:
                self._failed(row, command, exc)
                return
            except Exception as exc:  # a driver bug must not stop the queue
                log.exception("outbox.driver_crashed", device=row.device_id)
                self._failed(row, command, DeviceError(f"driver crashed: {exc!r}"))
                return
            self.sent += 1
            if result.status is CommandStatus.FAILED:  # the device tried and may succeed later
                self._failed(row, command, DeviceNotReady(
                    f"device answered failed ({result.code}): {result.detail or ''}"[:500]),
                    publish=False)
                return
            state = RowState.REJECTED if result.status is CommandStatus.REJECTED else (
                RowState.DONE)
            self._record(row, state, result=result)

    def _failed(self, row: DueRow, command: Command, exc: DeviceError, *,
                publish: bool = True) -> None:
        attempts = row.attempts + 1
        retry_at = datetime.now(UTC) + timedelta(seconds=backoff_delay(
            attempts, *self.settings.backoff))
        retry = exc.retryable and (row.expires_at is None or retry_at < row.expires_at)
        if publish:  # (a device's own "failed" answer was published by the hub already)
            result = CommandResult(command_id=command.id, status=CommandStatus.FAILED,
                                   code=type(exc).__name__, detail=str(exc)[:2000])
            self.hub.bus.publish(CommandResultEvent(device_id=row.device_id, result=result))
        if retry:
            self._record(row, RowState.RETRY, error=str(exc), attempts=attempts,
                         next_attempt_at=retry_at)
        else:
            self._record(row, RowState.FAILED if not exc.retryable else RowState.EXPIRED,
                         error=str(exc), attempts=attempts)

    def _record(self, row: DueRow, state: str, *, result: CommandResult | None = None,
                error: str | None = None, attempts: int | None = None,
                next_attempt_at: datetime | None = None) -> None:
        self._unflushed.add(row.seq)
        values: dict[str, Any] = {"seq": row.seq, "state": state,
                                  "attempts": row.attempts if attempts is None else attempts,
                                  "last_error": error, "device_id": row.device_id}
        if result is not None:
            values["result"] = result.model_dump(mode="json")
            values["sent_at"] = datetime.now(UTC)
        if next_attempt_at is not None:
            values["next_attempt_at"] = next_attempt_at
        self._results.append(values)

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            try:
                await self._writes.run(self._flush())
            except Exception:
                log.exception("outbox.flush_failed")

    async def _flush(self) -> None:
        if not self._results:
            return
        batch, self._results = self._results, []
        by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for values in batch:
            clean = {k: v for k, v in values.items() if k != "device_id"}
            by_shape[tuple(sorted(clean))].append(clean)
        async with self._outbox_lock:
            try:
                async with self.store.sessions.begin() as s:
                    for shape, items in by_shape.items():
                        # one UPDATE statement executed for all rows of a shape (the ORM's
                        # bulk update by primary key did the same with far more Python)
                        await s.execute(_update_for(shape), [
                            {f"b_{k}": v for k, v in item.items()} for item in items])
            except BaseException:
                # not written: kept (before anything recorded since) for the next flush, so
                # a row is neither lost nor sent again while its result waits
                self._results[:0] = batch
                raise
            for values in batch:
                self._unflushed.discard(values["seq"])
                self._in_flight.discard(values["device_id"])
        self.wake_sender()

    # -- emergency resume ---------------------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, PlayEvent) and event.phase is PlayPhase.INTERRUPTED \
                and event.command_id and event.device_id:
            self.hub.spawn(self._resume(event.device_id, event.command_id))

    async def _resume(self, device_id: str, command_id: str) -> None:
        async with self.store.sessions() as s:
            row = (await s.execute(select(OutboxRow).where(OutboxRow.id == command_id))
                   ).scalar_one_or_none()
            if row is None or row.level_rank >= BulletinLevel.EMERGENCY.rank \
                    or row.broadcast_id is None:
                return
            broadcast = await s.get(BroadcastRow, row.broadcast_id)
            if broadcast is None or broadcast.state not in ACTIVE_STATES:
                return
            # Only a higher-level item sent after this one makes it resume: an operator's stop
            # or the device's own cut interrupts it too, and must not bring it back.
            preempting = (await s.execute(
                select(OutboxRow).where(OutboxRow.device_id == device_id,
                                        OutboxRow.level_rank > row.level_rank,
                                        OutboxRow.seq > row.seq)
                .order_by(OutboxRow.seq.desc()).limit(1))).scalar_one_or_none()
        if preempting is None:
            return
        now = datetime.now(UTC)
        began = preempting.sent_at or max(preempting.not_before, now)
        start = max(now, began + timedelta(seconds=preempting.seconds or 0))
        command = parse_command(row.command)
        again = command.model_copy(update={"id": new_id("cmd"),
                                           "idempotency_key": f"{row.idempotency_key}/resume",
                                           "expires_at": None})
        level = BulletinLevel.PRIORITY if row.level_rank == 1 else BulletinLevel.NORMAL
        values = _outbox_values(again, device_id, level, row.broadcast_id, row.content_id,
                                row.seconds, not_before=start + timedelta(seconds=0.5),
                                expires_at=start + timedelta(seconds=(row.seconds or 0) + 600))
        if await self._insert([values]):
            log.info("dispatch.resume_queued", device=device_id, broadcast=row.broadcast_id,
                     at=start.isoformat())
            self.wake_sender()

    # -- queries ------------------------------------------------------------------------------

    async def counts(self, broadcast_id: str | None = None) -> dict[str, int]:
        from sqlalchemy import func

        query = select(OutboxRow.state, func.count()).group_by(OutboxRow.state)
        if broadcast_id:
            query = query.where(OutboxRow.broadcast_id == broadcast_id)
        async with self.store.sessions() as s:
            return {str(k): int(v) for k, v in (await s.execute(query)).all()}


def _outbox_values(command: Command, device_id: str, level: BulletinLevel | None,
                   broadcast_id: str | None, content_id: str | None, seconds: float | None, *,
                   not_before: datetime, expires_at: datetime | None) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"id": command.id, "idempotency_key": command.idempotency_key, "device_id": device_id,
            "command": command.model_dump(mode="json"),
            "level_rank": (level or BulletinLevel.NORMAL).rank, "broadcast_id": broadcast_id,
            "content_id": content_id, "seconds": seconds, "not_before": not_before,
            "expires_at": expires_at, "state": RowState.PENDING, "attempts": 0,
            "next_attempt_at": now, "created_at": now}


_OUTBOX = typing.cast("Table", OutboxRow.__table__)


@functools.lru_cache(maxsize=32)
def _update_for(shape: tuple[str, ...]) -> Any:
    """``UPDATE outbox SET <shape> WHERE seq = :b_seq`` (one statement per set of columns)."""
    return (update(_OUTBOX).where(_OUTBOX.c.seq == bindparam("b_seq"))
            .values({k: bindparam(f"b_{k}") for k in shape if k != "seq"}))


def _for_device(template: dict[str, Any], device_id: str, p: Placement) -> dict[str, Any]:
    """Outbox values of ``template``'s command for another device of the same commune and
    kind: the same validated command with the device's own id and idempotency key (what
    :meth:`Dispatcher._row` would build, without validating and dumping it once more)."""
    command_id = fast_id("cmd")
    key = f"{p.occurrence.key}/{device_id}"
    return {**template, "id": command_id, "idempotency_key": key, "device_id": device_id,
            "command": {**template["command"], "id": command_id, "idempotency_key": key}}


def _entry_id(broadcast_id: str, start: datetime) -> str:
    """A schedule entry's id: its occurrence, spelled as an identifier (an occurrence key
    has '@' and '+', which identifiers exclude)."""
    return f"{broadcast_id}.{start.astimezone(UTC):%Y%m%dT%H%M%S%fZ}"


def _real_time(level: BulletinLevel, b: Any) -> bool:
    """Whether an item goes to local-schedule devices as a play command rather than in their
    schedule: emergencies (they preempt at once) and "now" broadcasts (no slot to keep)."""
    return bool(level is BulletinLevel.EMERGENCY or b.schedule.kind is ScheduleKind.NOW)


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("outbox.task_crashed", error=repr(task.exception()))


__all__ = ["DispatchSettings", "Dispatcher", "RowState"]
