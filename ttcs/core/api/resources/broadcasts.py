"""``/broadcasts``: create (checked against area policy, rate-limited), list, cancel, decide,
and coverage."""

from __future__ import annotations

from pydantic import Field

from ....schemas import (
    Broadcast,
    BroadcastState,
    BulletinLevel,
    Model,
    Schedule,
    Targets,
    new_id,
)
from ....schemas.api import Page
from ....schemas.base import AwareDatetime, Identifier, Percent
from ...access.policy import Action, Target
from ...playlog import Coverage, PlayLog
from ..routing import Call, endpoint
from .common import PageQuery, query_area


class BroadcastQuery(PageQuery):
    state: BroadcastState | None = None
    area: Identifier | None = Field(default=None, description="issued in or sent to this "
                                    "area (or below)")


class BroadcastRequest(Model):
    """A broadcast to create: approved content, where, when."""

    content_id: Identifier
    targets: Targets
    schedule: Schedule = Field(default_factory=Schedule)
    level: BulletinLevel | None = Field(default=None, description="default: the content's")
    volume: Percent | None = None
    repeat: int = Field(default=1, ge=1, le=100)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None


class BroadcastCreated(Model):
    broadcast: Broadcast
    devices: int = Field(description="devices it goes to")
    seconds: float = Field(description="length of one occurrence")
    offers: dict[str, str] = Field(description="commune -> 'accepted' or 'offered' (normal "
                                   "items wait for the commune's decision)")


class BroadcastDetail(Model):
    broadcast: Broadcast
    devices: int
    deliveries: dict[str, int] = Field(description="outbox rows by state")


class Decision(Model):
    commune: Identifier
    accept: bool


async def _requested(call: Call) -> Target:
    """Every area the broadcast would reach: named areas, and the area of every device it
    resolves to (through groups and ids as well)."""
    body: BroadcastRequest = call.body
    devices = await call.api.broadcasts.resolve_targets(body.targets)
    return Target.of({*body.targets.areas, *(d.area_code for d in devices)})


@endpoint("GET", "/broadcasts", tag="broadcasts", action=Action.BROADCAST_READ,
          summary="List broadcasts, newest first", query=BroadcastQuery,
          response=Page[Broadcast], target=query_area)
async def list_broadcasts(call: Call) -> Page[Broadcast]:
    q: BroadcastQuery = call.query
    items = await call.api.broadcasts.list_broadcasts(
        state=q.state.value if q.state else None, area=await call.area_filter(q.area),
        limit=q.limit + 1, offset=q.offset)
    return call.page(items, q.limit, q.offset)


@endpoint("POST", "/broadcasts", tag="broadcasts", action=Action.BROADCAST_WRITE,
          status=201, summary="Create a broadcast (refused naming every broken policy rule)",
          body=BroadcastRequest, response=BroadcastCreated, target=_requested,
          errors=(429,))
async def create_broadcast(call: Call) -> BroadcastCreated:
    """Rate-limited per account and per source address (429 with Retry-After)."""
    call.api.limit([(call.api.broadcasts_by_user, call.principal.name),
                    (call.api.broadcasts_by_address, call.source)], "broadcasts")
    body: BroadcastRequest = call.body
    broadcast = Broadcast(id=new_id("bc"), **body.model_dump(), created_by=call.actor)
    plan = await call.api.broadcasts.create(broadcast, call.actor,
                                            owner_area=call.principal.area_code)
    return BroadcastCreated(broadcast=plan.broadcast, devices=len(plan.devices),
                            seconds=plan.seconds,
                            offers={c: state for c, (state, _) in plan.offers.items()})


async def _existing(call: Call) -> Target:
    """A broadcast concerns its issuing area and every device it was sent to; it reaches
    (and may be read, in part, from) the areas of those devices and its target areas."""
    broadcasts = call.api.broadcasts
    broadcast = await broadcasts.get(call.path["id"])
    areas = set((await broadcasts.device_areas(broadcast.id)).values())
    owner = await broadcasts.owner_area(broadcast.id)
    return Target.of({*areas, *([owner] if owner else []), *broadcast.targets.areas},
                     reaches={*areas, *broadcast.targets.areas})


async def _own_devices(call: Call) -> list[str]:
    """The broadcast's devices the caller may see: all of them, or for a caller reading a
    broadcast from above (a commune reading the province's), those in its own area."""
    device_areas = await call.api.broadcasts.device_areas(call.path["id"])
    return await call.policy.part_in_scope(call.principal, device_areas)


@endpoint("GET", "/broadcasts/{id}", tag="broadcasts", action=Action.BROADCAST_READ,
          summary="One broadcast with its delivery counts", response=BroadcastDetail,
          target=_existing)
async def get_broadcast(call: Call) -> BroadcastDetail:
    broadcasts = call.api.broadcasts
    broadcast = await broadcasts.get(call.path["id"])
    devices = await _own_devices(call)
    return BroadcastDetail(broadcast=broadcast, devices=len(devices),
                           deliveries=await broadcasts.deliveries(broadcast.id, devices))


@endpoint("POST", "/broadcasts/{id}/cancel", tag="broadcasts",
          action=Action.BROADCAST_WRITE, summary="Cancel a broadcast", response=Broadcast,
          target=_existing)
async def cancel_broadcast(call: Call) -> Broadcast:
    await call.api.broadcasts.cancel(call.path["id"], call.actor)
    return await call.api.broadcasts.get(call.path["id"])


async def _commune(call: Call) -> Target:
    return Target.of([call.body.commune])


@endpoint("POST", "/broadcasts/{id}/decision", tag="broadcasts",
          action=Action.BROADCAST_WRITE, status=204,
          summary="A commune accepts a normal item into its schedule, or declines it",
          body=Decision, target=_commune)
async def decide_broadcast(call: Call) -> None:
    body: Decision = call.body
    await call.api.broadcasts.decide(call.path["id"], body.commune, body.accept, call.actor)


@endpoint("GET", "/broadcasts/{id}/coverage", tag="reports", action=Action.REPORT_READ,
          summary="Proof of play reconciled against the devices it was sent to",
          response=Coverage, target=_existing)
async def broadcast_coverage(call: Call) -> Coverage:
    devices = await _own_devices(call)
    playlog = PlayLog(call.hub.store, skew_tolerance=call.hub.settings.clock_skew_tolerance)
    return await playlog.coverage(call.path["id"], devices)
