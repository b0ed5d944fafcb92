"""What reached a device, and scheduling through the hub: shared by the cases that judge
delivery (approval on the dispatch path, devices that keep their own schedule).

Ground truth read here: ``plays`` (``content_id``, ``started_at``), ``shown`` (``item_id``),
``playlists`` (``items``: ``id``) and, for devices with ``schedule.local``, ``schedules``: every
table the device installed, ``{"at", "items": [{"id", "content_id", "broadcast_id"}]}``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ...core.errors import TTCSError
from ...schemas import Broadcast, Capability, Content, Device, Schedule, Targets, new_id
from ..context import CaseContext, Truth
from ..environment import ACTOR, AREA


def received(truth: Truth, content_id: str, since: CaseContext) -> bool:
    """Whether the device got ``content_id`` at all: played it, showed it, or put it on its
    playlist or its own schedule."""
    if played(truth, content_id, since):
        return True
    if any(e.get("item_id") == content_id for e in since.since(truth.get("shown", []))):
        return True
    if any(i.get("id") == content_id for p in since.since(truth.get("playlists", []))
           for i in p.get("items", [])):
        return True
    return on_schedule(truth, content_id, since)


def played(truth: Truth, content_id: str, since: CaseContext) -> bool:
    return any(p.get("content_id") == content_id
               for p in since.since(truth.get("plays", []), key="started_at"))


def on_schedule(truth: Truth, content_id: str, since: CaseContext, *,
                latest: bool = False) -> bool:
    """Whether ``content_id`` is on a schedule table the device installed (``latest``: on
    the one it holds now)."""
    tables = since.since(truth.get("schedules", []))
    if latest:
        tables = tables[-1:]
    return any(i.get("content_id") == content_id for t in tables for i in t.get("items", []))


def schedule_lead(ctx: CaseContext, device: Device) -> float:
    """How far ahead to schedule an item so that it reaches the device before its slot: at
    once for real-time devices; a device that keeps its own schedule gets it by the
    dispatcher's next schedule syncs."""
    if Capability.SCHEDULE_LOCAL not in device.capabilities:
        return 0.3
    # two syncs, then the device fetches the media and installs the table: about a command
    return 2 * ctx.env.dispatch.sync_interval + ctx.env.hub.settings.command_timeout + 1.0


async def schedule(ctx: CaseContext, item: Content, device_id: str, in_seconds: float
                    ) -> tuple[str, str | None]:
    """Schedule ``item`` on the device; (broadcast id, refusal at scheduling or None)."""
    assert ctx.env.hub.broadcasts is not None
    broadcast = Broadcast(id=new_id("bc"), content_id=item.id,
                          targets=Targets(devices=[device_id]),
                          schedule=Schedule(kind="at", at=datetime.now(UTC)
                                            + timedelta(seconds=in_seconds)))
    try:
        await ctx.env.hub.broadcasts.create(broadcast, ACTOR, owner_area=AREA)
    except TTCSError as exc:
        return broadcast.id, str(exc)
    ctx.broadcasts.append(broadcast.id)
    if ctx.env.hub.dispatcher is not None:
        ctx.env.hub.dispatcher.wake()  # plan it now rather than at the planner's next round
    return broadcast.id, None


__all__ = ["on_schedule", "played", "received", "schedule", "schedule_lead"]
