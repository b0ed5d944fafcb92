"""``/devices``: register, update, remove, status, command, timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from datetime import date as Day

from pydantic import Field, TypeAdapter

from ....schemas import (
    COMMAND_ADAPTER,
    CommandResult,
    Connectivity,
    Device,
    DeviceChanges,
    DeviceKind,
    DeviceSpec,
    DeviceStatus,
    Model,
)
from ....schemas.api import Page
from ....schemas.base import Identifier
from ...access.policy import Action, Target
from ...schedule.policy import TZ
from ..routing import Call, endpoint
from .common import PageQuery, device_target, query_area


class DeviceQuery(PageQuery):
    area: Identifier | None = Field(default=None, description="this area and below")
    kind: DeviceKind | None = None
    plugin: Identifier | None = None
    group: Identifier | None = None
    connectivity: Connectivity | None = None
    search: str | None = Field(default=None, max_length=100, description="in name or serial")


class TimelineQuery(Model):
    date: Day | None = Field(default=None, description="local day (Asia/Ho_Chi_Minh); "
                              "default today")


class TimelineItem(Model):
    """One item on a device's day: where it was placed, or why it is not played."""

    broadcast_id: str
    content_id: str
    level: str
    requested: str = Field(description="requested start, local time")
    start: str | None = Field(default=None, description="placed start, local time")
    end: str | None = None
    reason: str


async def _listed(call: Call) -> Target:
    q: DeviceQuery = call.query
    base = await query_area(call)
    return Target.of(base.areas, [q.plugin] if q.plugin else [])


@endpoint("GET", "/devices", tag="devices", action=Action.DEVICE_READ, summary="List devices",
          query=DeviceQuery, response=Page[Device], target=_listed)
async def list_devices(call: Call) -> Page[Device]:
    q: DeviceQuery = call.query
    devices = await call.hub.registry.list_devices(
        area=await call.area_filter(q.area), kind=q.kind, plugin=q.plugin, group=q.group,
        connectivity=q.connectivity, search=q.search, limit=q.limit + 1, offset=q.offset,
        plugins=call.scope.plugins)
    return call.page(devices, q.limit, q.offset)


async def _placed(call: Call) -> Target:
    spec: DeviceSpec | DeviceChanges = call.body
    areas: set[str | None] = {spec.area_code, spec.village_code} - {None}
    plugins: set[str] = set()
    if isinstance(spec, DeviceSpec):
        plugins.add(spec.plugin)
        if spec.parent_id:
            areas |= (await device_target(call, spec.parent_id)).areas
    if "id" in call.path:
        current = await device_target(call)
        areas |= current.areas
        plugins |= current.plugins
    return Target.of(areas, plugins)


@endpoint("POST", "/devices", tag="devices", action=Action.DEVICE_WRITE, status=201,
          summary="Probe and register a device (keyed by the serial it reports)",
          body=DeviceSpec, response=Device, target=_placed, errors=(502, 504))
async def add_device(call: Call) -> Device:
    return await call.hub.register_device(call.body, call.actor)


@endpoint("GET", "/devices/{id}", tag="devices", action=Action.DEVICE_READ,
          summary="One device", response=Device, target=device_target)
async def get_device(call: Call) -> Device:
    return await call.hub.registry.get_device(call.path["id"])


@endpoint("PATCH", "/devices/{id}", tag="devices", action=Action.DEVICE_WRITE,
          summary="Rename, move or reconfigure a device", body=DeviceChanges,
          response=Device, target=_placed)
async def update_device(call: Call) -> Device:
    return await call.hub.update_device(call.path["id"], call.body, call.actor)


@endpoint("DELETE", "/devices/{id}", tag="devices", action=Action.DEVICE_WRITE, status=204,
          summary="Remove a device", target=device_target)
async def remove_device(call: Call) -> None:
    await call.hub.remove_device(call.path["id"], call.actor)


@endpoint("GET", "/devices/{id}/status", tag="devices", action=Action.DEVICE_READ,
          summary="The device's last reported status", response=DeviceStatus,
          target=device_target)
async def device_status(call: Call) -> DeviceStatus:
    return await call.hub.registry.get_status(call.path["id"])


@endpoint("POST", "/devices/{id}/status", tag="devices", action=Action.DEVICE_STATUS,
          summary="Read the device's status now (asks the device)", response=DeviceStatus,
          target=device_target, errors=(502, 504))
async def read_device_status(call: Call) -> DeviceStatus:
    return await call.hub.read_status(call.path["id"])


@endpoint("POST", "/devices/{id}/commands", tag="devices", action=Action.DEVICE_COMMAND,
          summary="Send a command (volume, power, stop, ...) and wait for its result",
          body=COMMAND_ADAPTER, response=CommandResult, target=device_target,
          errors=(502, 504))
async def command_device(call: Call) -> CommandResult:
    """Content is never sent this way: play, show and sync_schedule are refused (422);
    approved content reaches devices through broadcasts."""
    return await call.hub.execute_direct(call.path["id"], call.body, actor=call.actor)


@endpoint("GET", "/devices/{id}/timeline", tag="broadcasts", action=Action.BROADCAST_READ,
          summary="A device's day: what plays when, and why (explain)", query=TimelineQuery,
          response=TypeAdapter(list[TimelineItem]), target=device_target)
async def device_timeline(call: Call) -> list[TimelineItem]:
    q: TimelineQuery = call.query
    day = (datetime.combine(q.date, datetime.min.time(), TZ) if q.date
           else datetime.now(UTC))
    items = await call.api.broadcasts.explain(call.path["id"], day)
    return [TimelineItem(**i.as_dict()) for i in items]
