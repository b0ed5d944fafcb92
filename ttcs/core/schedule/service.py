"""Broadcasts: creation (targets, levels, policy), the communes' decisions, and each device's
resolved, explainable timeline."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import structlog
from dateutil.rrule import rrulestr
from pydantic import ValidationError
from sqlalchemy import Table, delete, func, insert, select, update

from ...schemas import (
    COMMUNE_LEVEL,
    Broadcast,
    BroadcastState,
    BulletinLevel,
    Capability,
    Content,
    ContentKind,
    Device,
    DeviceKind,
    Schedule,
    ScheduleKind,
    Targets,
    new_id,
)
from ...schemas.errors import explain
from ..areascope import covered_areas
from ..errors import Conflict, InvalidInput, NotFound
from ..registry import Registry
from ..store import Store
from ..store.tables import (
    AreaRow,
    BroadcastRow,
    BroadcastTargetRow,
    DeviceRow,
    OfferRow,
    OutboxRow,
    PolicyRow,
)
from .content_gate import ContentGate
from .policy import TZ, Policy, PolicyFile, Slot, Violation, load_policy_file, violations
from .timeline import Occurrence, Placement, resolve

log = structlog.get_logger("ttcs.broadcasts")

#: how far ahead recurring broadcasts are checked against policy at creation
CHECK_HORIZON = timedelta(days=14)
#: how long a board shows an item that has no duration of its own
DEFAULT_DISPLAY_SECONDS = 60.0

AUDIO_CAPS = {Capability.AUDIO_PLAY}
DISPLAY_CAPS = {Capability.DISPLAY_TEXT, Capability.DISPLAY_MEDIA}


class PolicyViolation(InvalidInput):
    """A broadcast breaks area policy; ``violations`` names every broken rule."""

    def __init__(self, found: Sequence[Violation]) -> None:
        self.violations = list(found)
        lines = "; ".join(str(v) for v in found[:20])
        more = f" (and {len(found) - 20} more)" if len(found) > 20 else ""
        super().__init__(f"the broadcast breaks area policy: {lines}{more}")


class OfferState:
    OFFERED = "offered"
    ACCEPTED = "accepted"
    DECLINED = "declined"


@dataclass
class ExplainedItem:
    broadcast_id: str
    content_id: str
    level: str
    requested: datetime
    start: datetime | None
    end: datetime | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.astimezone(TZ).isoformat() if isinstance(v, datetime) else v)
                for k, v in self.__dict__.items()}


@dataclass
class Plan:
    """A broadcast ready to be stored: its devices by commune and one play's length."""

    broadcast: Broadcast
    content: Content
    devices: list[Device]
    commune_of: dict[str, str]  # device id -> commune code
    seconds: float
    offers: dict[str, tuple[str, int]] = field(default_factory=dict)  # commune -> (state, rank)


class PolicyBook:
    """Effective policy of each commune: type defaults, then ancestors', then its own."""

    def __init__(self, store: Store, registry: Registry, policy_file: PolicyFile) -> None:
        self.store = store
        self.registry = registry
        self.file = policy_file

    async def explicit(self) -> dict[str, Policy]:
        async with self.store.sessions() as s:
            rows = (await s.execute(select(PolicyRow))).scalars()
            return {r.area_code: Policy.model_validate(r.rules) for r in rows}

    async def effective(self, area_code: str, explicit: dict[str, Policy] | None = None
                        ) -> Policy:
        explicit = await self.explicit() if explicit is None else explicit
        area = await self.registry.get_area(area_code)
        policy = self.file.by_type.get(area.type, Policy())
        for code in [*reversed(await self.registry.ancestors(area_code)), area_code]:
            if code in explicit:
                policy = explicit[code].over(policy)
        return policy

    async def set(self, area_code: str, policy: Policy, actor: str) -> None:
        await self.registry.get_area(area_code)
        async with self.store.sessions.begin() as s:
            row = await s.get(PolicyRow, area_code)
            rules = policy.model_dump(mode="json", exclude_none=True)
            if row is None:
                s.add(PolicyRow(area_code=area_code, rules=rules, updated_by=actor))
            else:
                row.rules, row.updated_by = rules, actor
            await self.store.audit.record(actor, "policy.set", area_code, session=s,
                                          detail={"rules": rules})


class BroadcastService:
    def __init__(self, store: Store, registry: Registry, content: ContentGate,
                 policy_file: Path | None = None) -> None:
        self.store = store
        self.registry = registry
        self.content = content
        self.policies = PolicyBook(store, registry, load_policy_file(policy_file))
        registry.merge_hooks.append(self.retarget_merged)
        #: called with each plan once its broadcast is committed (the running hub's
        #: dispatcher plans it at once instead of at its next round)
        self.created: list[Callable[[Plan], None]] = []

    # -- creation -----------------------------------------------------------------------------

    async def plan(self, broadcast: Broadcast) -> Plan:
        """Check a broadcast and resolve what it means, without storing anything."""
        content = await self.content.get(broadcast.content_id)
        await self.content.verify_approval(content)
        level = broadcast.level or content.level
        broadcast = broadcast.model_copy(update={"level": level})
        if level is BulletinLevel.EMERGENCY and broadcast.schedule.kind is not ScheduleKind.NOW:
            raise InvalidInput("an emergency plays at once: its schedule must be 'now'")
        devices = await self.resolve_targets(broadcast.targets, content)
        if not devices:
            raise InvalidInput("the targets match no device that can carry this content "
                               f"({content.kind.value}); check areas, groups, kinds")
        communes = await self.communes([d.area_code for d in devices])
        commune_of = {d.id: communes[d.area_code] for d in devices}
        seconds = await self._seconds(content, broadcast, next(iter(commune_of.values())))
        plan = Plan(broadcast, content, devices, commune_of, seconds)
        if level is not BulletinLevel.EMERGENCY:
            await self._check_policy(plan)
        return plan

    async def create(self, broadcast: Broadcast, actor: str, *,
                     owner_area: str | None = None) -> Plan:
        """Validate, plan and store a broadcast (refused with every broken rule named).

        ``owner_area`` is the area of whoever creates it: a normal item created by a commune
        for itself needs no decision from that commune.
        """
        if broadcast.state is not BroadcastState.SCHEDULED:
            raise InvalidInput("a new broadcast starts in state 'scheduled'")
        plan = await self.plan(broadcast)
        level = plan.broadcast.level
        async with self.store.sessions.begin() as s:
            if await s.get(BroadcastRow, broadcast.id) is not None:
                raise Conflict(f"broadcast {broadcast.id} exists already")
            for commune in sorted(set(plan.commune_of.values())):
                if level is BulletinLevel.NORMAL and commune != owner_area:
                    state, rank = OfferState.OFFERED, 0
                else:
                    state = OfferState.ACCEPTED
                    rank = await self._next_rank(s, commune) if level is \
                        BulletinLevel.PRIORITY else 0
                plan.offers[commune] = (state, rank)
            s.add(BroadcastRow(
                id=broadcast.id, content_id=broadcast.content_id, level=level.value,  # type: ignore[union-attr]
                targets=broadcast.targets.model_dump(mode="json"),
                schedule=broadcast.schedule.model_dump(mode="json"), volume=broadcast.volume,
                repeat=broadcast.repeat, seconds=plan.seconds, valid_from=broadcast.valid_from,
                valid_until=broadcast.valid_until, state=BroadcastState.SCHEDULED.value,
                area_code=owner_area, created_by=actor, created_at=broadcast.created_at))
            await s.flush()
            # one statement executed for every target (a province-wide emergency has
            # thousands): ORM objects cost more than the database took to write the rows
            await s.execute(insert(cast("Table", BroadcastTargetRow.__table__)), [
                {"broadcast_id": broadcast.id, "device_id": d.id,
                 "commune_code": plan.commune_of[d.id]} for d in plan.devices])
            s.add_all(OfferRow(broadcast_id=broadcast.id, commune_code=c, state=st, rank=r,
                               decided_by=actor if st == OfferState.ACCEPTED else None)
                      for c, (st, r) in plan.offers.items())
            await self.store.audit.record(actor, "broadcast.create", broadcast.id, session=s,
                                          detail={"content": broadcast.content_id,
                                                  "level": level.value,  # type: ignore[union-attr]
                                                  "devices": len(plan.devices),
                                                  "communes": sorted(plan.offers)})
        log.info("broadcast.created", broadcast=broadcast.id, level=level,
                 devices=len(plan.devices))
        for callback in list(self.created):
            try:
                callback(plan)
            except Exception:  # the broadcast is stored: the planner's next round finds it
                log.exception("broadcast.created_hook_failed", broadcast=broadcast.id)
        return plan

    async def _next_rank(self, s: Any, commune: str) -> int:
        top = (await s.execute(select(func.max(OfferRow.rank)).where(
            OfferRow.commune_code == commune))).scalar()
        return int(top or 0) + 1

    async def resolve_targets(self, targets: Targets, content: Content | None = None
                              ) -> list[Device]:
        """Devices in any targeted area (and below), group or id, narrowed by kinds and by
        what can carry the content (speakers audio, boards text and pictures)."""
        found: dict[str, Device] = {}
        for area in targets.areas:
            await self.registry.get_area(area)
            found.update((d.id, d) for d in await self.registry.list_devices(area=area))
        for group in targets.groups:
            members = await self.registry.list_devices(group=group)
            if not members and not any(g.id == group for g, _ in
                                       await self.registry.list_groups()):
                raise NotFound(f"no group '{group}'")
            found.update((d.id, d) for d in members)
        for device_id in targets.devices:
            found[device_id] = await self.registry.get_device(device_id)
        devices = [d for d in found.values() if not targets.kinds or d.kind in targets.kinds]
        if content is not None:
            devices = [d for d in devices if carries(d, content)]
        return sorted(devices, key=lambda d: d.id)

    async def communes(self, area_codes: Iterable[str]) -> dict[str, str]:
        """The commune-level area above (or at) each area code."""
        async with self.store.sessions() as s:
            rows = {r.code: r for r in (await s.execute(select(AreaRow))).scalars()}
        result: dict[str, str] = {}
        for code in set(area_codes):
            chosen, current = code, rows.get(code)
            while current is not None:
                if current.type in COMMUNE_LEVEL:
                    chosen = current.code
                    break
                current = rows.get(current.parent_code) if current.parent_code else None
            result[code] = chosen
        return result

    async def _seconds(self, content: Content, broadcast: Broadcast, area_code: str) -> float:
        one: float | None = None
        if content.media is not None and content.media.duration is not None:
            one = content.media.duration
        elif content.kind is ContentKind.TEXT:
            one = (await self.content.media_for(content, area_code)).duration
        return (one or DEFAULT_DISPLAY_SECONDS) * broadcast.repeat

    async def _check_policy(self, plan: Plan) -> None:
        b = plan.broadcast
        since = min(datetime.now(UTC), b.created_at)
        first = b.schedule.at or b.valid_from
        if first is not None and first > since:  # check its first weeks, however far ahead
            since = first - timedelta(seconds=1)
        starts = occurrence_starts(b, since, CHECK_HORIZON)
        if not starts:
            raise InvalidInput("the schedule has no occurrence inside the validity window")
        explicit = await self.policies.explicit()
        existing = await self._slots_by_commune(set(plan.commune_of.values()), starts)
        found: list[Violation] = []
        for commune in sorted(set(plan.commune_of.values())):
            policy = await self.policies.effective(commune, explicit)
            for start in starts:
                found += violations(policy, commune, start, plan.seconds,
                                    existing.get(commune, []))
        if found:
            unique = list(dict.fromkeys(found))
            raise PolicyViolation(unique)

    async def _slots_by_commune(self, communes: set[str], starts: list[datetime]
                                ) -> dict[str, list[Slot]]:
        """Non-emergency items already accepted in these communes around these days."""
        if not starts:
            return {}
        low, high = min(starts) - timedelta(days=1), max(starts) + timedelta(days=1)
        result: dict[str, list[Slot]] = defaultdict(list)
        async with self.store.sessions() as s:
            rows = await s.execute(
                select(BroadcastRow, OfferRow.commune_code).join(
                    OfferRow, OfferRow.broadcast_id == BroadcastRow.id).where(
                    OfferRow.commune_code.in_(communes),
                    OfferRow.state == OfferState.ACCEPTED,
                    BroadcastRow.state.in_(ACTIVE_STATES),
                    BroadcastRow.level != BulletinLevel.EMERGENCY.value))
            for row, commune in rows.all():
                b = to_broadcast(row)
                for start in occurrence_starts(b, low, high - low):
                    result[commune].append(Slot(start, start + timedelta(seconds=row.seconds),
                                                row.id))
        return result

    # -- decisions ----------------------------------------------------------------------------

    async def decide(self, broadcast_id: str, commune: str, accept: bool, actor: str) -> None:
        """A commune takes a normal item into its schedule, or declines it."""
        async with self.store.sessions.begin() as s:
            offer = await s.get(OfferRow, (broadcast_id, commune))
            if offer is None:
                raise NotFound(f"broadcast {broadcast_id} was not offered to commune {commune}")
            row = await s.get(BroadcastRow, broadcast_id)
            assert row is not None
            if row.level != BulletinLevel.NORMAL.value:
                raise Conflict(f"broadcast {broadcast_id} is {row.level}: it must be played; "
                               "only normal items are the commune's choice")
            offer.state = OfferState.ACCEPTED if accept else OfferState.DECLINED
            offer.decided_by, offer.decided_at = actor, datetime.now(UTC)
            await self.store.audit.record(actor, "broadcast.accept" if accept
                                          else "broadcast.decline", broadcast_id, session=s,
                                          detail={"commune": commune})

    async def order_priority(self, commune: str, broadcast_ids: Sequence[str],
                             actor: str) -> None:
        """Set the order in which a commune's priority items play when they collide."""
        async with self.store.sessions.begin() as s:
            for rank, broadcast_id in enumerate(broadcast_ids, start=1):
                offer = await s.get(OfferRow, (broadcast_id, commune))
                row = await s.get(BroadcastRow, broadcast_id)
                if offer is None or row is None:
                    raise NotFound(f"broadcast {broadcast_id} is not in commune {commune}")
                if row.level != BulletinLevel.PRIORITY.value:
                    raise Conflict(f"broadcast {broadcast_id} is {row.level}, not priority")
                offer.rank = rank
            await self.store.audit.record(actor, "broadcast.order", commune, session=s,
                                          detail={"order": list(broadcast_ids)})

    async def cancel(self, broadcast_id: str, actor: str) -> None:
        async with self.store.sessions.begin() as s:
            row = await s.get(BroadcastRow, broadcast_id)
            if row is None:
                raise NotFound(f"no broadcast {broadcast_id}")
            if row.state in (BroadcastState.CANCELLED.value, BroadcastState.DONE.value):
                raise Conflict(f"broadcast {broadcast_id} is already {row.state}")
            row.state = BroadcastState.CANCELLED.value
            await self.store.audit.record(actor, "broadcast.cancel", broadcast_id, session=s)

    # -- reading ------------------------------------------------------------------------------

    async def get(self, broadcast_id: str) -> Broadcast:
        async with self.store.sessions() as s:
            row = await s.get(BroadcastRow, broadcast_id)
        if row is None:
            raise NotFound(f"no broadcast {broadcast_id}")
        return to_broadcast(row)

    async def list_broadcasts(self, *, state: str | None = None, limit: int = 100,
                              offset: int = 0, area: str | None = None) -> list[Broadcast]:
        """Newest first; ``area`` keeps broadcasts issued in that area (or below) or sent to
        a device there."""
        query = select(BroadcastRow).order_by(BroadcastRow.created_at.desc(),
                                              BroadcastRow.id).limit(limit).offset(offset)
        if state:
            query = query.where(BroadcastRow.state == state)
        if area is not None:
            covered = covered_areas(area)
            query = query.where(BroadcastRow.area_code.in_(covered) | BroadcastRow.id.in_(
                select(BroadcastTargetRow.broadcast_id).join(
                    DeviceRow, DeviceRow.id == BroadcastTargetRow.device_id).where(
                    DeviceRow.area_code.in_(covered))))
        async with self.store.sessions() as s:
            return [to_broadcast(r) for r in (await s.execute(query)).scalars()]

    async def owner_area(self, broadcast_id: str) -> str | None:
        """The area of whoever issued the broadcast (None: issued hub-wide)."""
        async with self.store.sessions() as s:
            row = await s.get(BroadcastRow, broadcast_id)
        if row is None:
            raise NotFound(f"no broadcast {broadcast_id}")
        return row.area_code

    async def deliveries(self, broadcast_id: str, devices: Iterable[str] | None = None
                         ) -> dict[str, int]:
        """How many of the broadcast's device commands are in each outbox state (of the
        given ``devices`` only, when named)."""
        async with self.store.sessions() as s:
            if devices is None:
                rows = await s.execute(select(OutboxRow.state, func.count()).where(
                    OutboxRow.broadcast_id == broadcast_id).group_by(OutboxRow.state))
                return {str(k): int(v) for k, v in rows.all()}
            wanted = set(devices)
            counts: dict[str, int] = defaultdict(int)
            for device_id, state in (await s.execute(select(
                    OutboxRow.device_id, OutboxRow.state).where(
                    OutboxRow.broadcast_id == broadcast_id))).all():
                if device_id in wanted:
                    counts[str(state)] += 1
            return dict(counts)

    async def device_areas(self, broadcast_id: str) -> dict[str, str | None]:
        """The devices a broadcast was sent to, each with its area now (None: removed since)."""
        async with self.store.sessions() as s:
            rows = await s.execute(select(BroadcastTargetRow.device_id, DeviceRow.area_code)
                                   .outerjoin(DeviceRow,
                                              DeviceRow.id == BroadcastTargetRow.device_id)
                                   .where(BroadcastTargetRow.broadcast_id == broadcast_id))
            return {str(d): a for d, a in rows.all()}

    async def content_reach(self, content_id: str) -> set[str | None]:
        """Every area the broadcasts of a content item were sent to: their target areas and
        the areas of their devices."""
        async with self.store.sessions() as s:
            broadcasts = (await s.execute(select(BroadcastRow.id, BroadcastRow.targets).where(
                BroadcastRow.content_id == content_id))).all()
            reach: set[str | None] = set()
            for _, targets in broadcasts:
                reach.update((targets or {}).get("areas") or [])
            reach.update((await s.execute(select(DeviceRow.area_code).distinct().join(
                BroadcastTargetRow, BroadcastTargetRow.device_id == DeviceRow.id).join(
                BroadcastRow, BroadcastRow.id == BroadcastTargetRow.broadcast_id).where(
                BroadcastRow.content_id == content_id))).scalars())
            return reach

    async def targeted_devices(self, broadcast_id: str) -> list[str]:
        async with self.store.sessions() as s:
            return list((await s.execute(select(BroadcastTargetRow.device_id).where(
                BroadcastTargetRow.broadcast_id == broadcast_id))).scalars())

    async def timeline(self, device_id: str, start: datetime, end: datetime
                       ) -> tuple[list[Placement], list[ExplainedItem]]:
        """A device's resolved timeline in [start, end), and the items not in it (with why)."""
        device = await self.registry.get_device(device_id)
        commune = (await self.communes([device.area_code]))[device.area_code]
        policy = await self.policies.effective(commune)
        async with self.store.sessions() as s:
            rows = (await s.execute(
                select(BroadcastRow, OfferRow).join(
                    BroadcastTargetRow, BroadcastTargetRow.broadcast_id == BroadcastRow.id).join(
                    OfferRow, (OfferRow.broadcast_id == BroadcastRow.id)
                    & (OfferRow.commune_code == BroadcastTargetRow.commune_code)).where(
                    BroadcastTargetRow.device_id == device_id,
                    BroadcastRow.state.in_(ACTIVE_STATES)))).all()
        occurrences: list[Occurrence] = []
        skipped: list[ExplainedItem] = []
        for row, offer in rows:
            b = to_broadcast(row)
            for at in occurrence_starts(b, start - timedelta(seconds=row.seconds), end - start):
                if offer.state != OfferState.ACCEPTED:
                    why = ("offered to the commune, not yet accepted" if offer.state ==
                           OfferState.OFFERED else f"declined by the commune ({offer.decided_by})")
                    skipped.append(ExplainedItem(b.id, b.content_id, row.level, at, None, None,
                                                 f"not in the schedule: {why}"))
                    continue
                occurrences.append(occurrence(b, row.seconds, at, offer.rank))
        return resolve(occurrences, policy), skipped

    async def explain(self, device_id: str, day: datetime) -> list[ExplainedItem]:
        """Every item that concerns the device on ``day`` (local), placed or not, with why."""
        local = day.astimezone(TZ).replace(hour=0, minute=0, second=0, microsecond=0)
        placements, skipped = await self.timeline(device_id, local, local + timedelta(days=1))
        items = [ExplainedItem(p.occurrence.broadcast_id, p.occurrence.label,
                               p.occurrence.level.value, p.occurrence.start, p.start, p.end,
                               p.reason) for p in placements]
        return sorted(items + skipped, key=lambda i: (i.start or i.requested, i.broadcast_id))

    async def retarget_merged(self, sources: Sequence[str], into: str, session: Any) -> None:
        """Carry broadcasts, offers and policies of merged areas over to the area they joined."""
        rows = (await session.execute(select(BroadcastRow))).scalars()
        for row in rows:
            areas = row.targets.get("areas", [])
            if any(a in sources for a in areas):
                row.targets = {**row.targets, "areas": sorted({into if a in sources else a
                                                               for a in areas})}
        for code in sources:
            await session.execute(update(BroadcastTargetRow).where(
                BroadcastTargetRow.commune_code == code).values(commune_code=into))
            for offer in (await session.execute(select(OfferRow).where(
                    OfferRow.commune_code == code))).scalars():
                if await session.get(OfferRow, (offer.broadcast_id, into)) is None:
                    session.add(OfferRow(broadcast_id=offer.broadcast_id, commune_code=into,
                                         state=offer.state, rank=offer.rank,
                                         decided_by=offer.decided_by,
                                         decided_at=offer.decided_at))
                await session.delete(offer)
            policy = await session.get(PolicyRow, code)
            if policy is not None:
                if await session.get(PolicyRow, into) is None:
                    session.add(PolicyRow(area_code=into, rules=policy.rules,
                                          updated_by=policy.updated_by))
                await session.execute(delete(PolicyRow).where(PolicyRow.area_code == code))


ACTIVE_STATES = (BroadcastState.SCHEDULED.value, BroadcastState.ACTIVE.value)


def carries(device: Device, content: Content) -> bool:
    """Whether a device can present this content: speakers play audio (text becomes speech),
    boards show text, images and video."""
    caps = set(device.capabilities)
    if caps & AUDIO_CAPS and content.kind in (ContentKind.AUDIO, ContentKind.TEXT):
        return device.kind in (DeviceKind.IP_SPEAKER, DeviceKind.WIRED_ZONE_CONTROLLER,
                               DeviceKind.WIRED_ZONE, DeviceKind.FM_TRANSMITTER,
                               DeviceKind.FM_RECEIVER) or not caps & DISPLAY_CAPS
    if caps & DISPLAY_CAPS:
        return content.kind is not ContentKind.AUDIO
    return False


def to_broadcast(row: BroadcastRow) -> Broadcast:
    try:
        return Broadcast(id=row.id, content_id=row.content_id, level=row.level,
                         targets=Targets.model_validate(row.targets),
                         schedule=Schedule.model_validate(row.schedule), volume=row.volume,
                         repeat=row.repeat, valid_from=row.valid_from,
                         valid_until=row.valid_until, state=row.state,
                         created_by=row.created_by, created_at=row.created_at)
    except ValidationError as exc:  # pragma: no cover - rows are written validated
        raise InvalidInput(f"stored broadcast {row.id} is invalid: {explain(exc)}") from exc


def occurrence(b: Broadcast, seconds: float, start: datetime, rank: int = 0) -> Occurrence:
    return Occurrence(key=f"{b.id}@{start.astimezone(UTC).isoformat()}", broadcast_id=b.id,
                      level=b.level or BulletinLevel.NORMAL, start=start, seconds=seconds,
                      created_at=b.created_at, rank=rank, latest_end=b.valid_until,
                      label=b.content_id)


def occurrence_starts(b: Broadcast, after: datetime, span: timedelta) -> list[datetime]:
    """Start times of ``b`` in [after, after+span) within its validity window (capped)."""
    low = max(after, b.valid_from) if b.valid_from else after
    high = after + span
    if b.valid_until is not None:
        high = min(high, b.valid_until)
    schedule = b.schedule
    if schedule.kind is ScheduleKind.NOW:
        start = b.created_at
        if b.valid_from and start < b.valid_from:
            start = b.valid_from
        return [start] if after <= start < after + span else []
    if schedule.kind is ScheduleKind.AT:
        assert schedule.at is not None
        return [schedule.at] if low <= schedule.at < high else []
    assert schedule.rrule is not None
    first = (schedule.at or b.valid_from or b.created_at).astimezone(TZ)
    try:
        rule = rrulestr(schedule.rrule, dtstart=first.replace(tzinfo=None), cache=False)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"rrule {schedule.rrule!r} is not valid RFC 5545: {exc}") from exc
    local_low = low.astimezone(TZ).replace(tzinfo=None)
    local_high = high.astimezone(TZ).replace(tzinfo=None)
    starts = []
    for naive in itertools.islice(rule.xafter(local_low, inc=True), 2000):
        if naive >= local_high:
            break
        starts.append(naive.replace(tzinfo=TZ))
    return starts


def new_broadcast_id() -> str:
    return new_id("bc")
