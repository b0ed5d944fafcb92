"""Proof of play (list, export), alarms, plugins and health."""

from __future__ import annotations

import io
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from ....schemas import DeviceKind, Model
from ....schemas.api import Page
from ....schemas.base import AwareDatetime, Identifier
from ...access.policy import Action
from ...health import Alarm, AlarmLog
from ...playlog import PlayFilter, PlayLog, PlayLogEntry, export_csv, export_json
from ..routing import Call, endpoint
from .common import PageQuery, query_area


class PlayQuery(PageQuery):
    area: Identifier | None = Field(default=None, description="this area, below it, and "
                                    "areas merged into it")
    since: AwareDatetime | None = Field(default=None, description="from (inclusive)")
    until: AwareDatetime | None = Field(default=None, description="to (exclusive)")
    broadcast_id: Identifier | None = None
    content_id: Identifier | None = None
    device_id: Identifier | None = None


class PlayExportQuery(Model):
    area: Identifier | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    broadcast_id: Identifier | None = None
    content_id: Identifier | None = None
    device_id: Identifier | None = None
    format: Literal["csv", "json"] = "csv"


class AlarmQuery(PageQuery):
    active: bool = Field(default=False, description="only alarms not cleared")
    area: Identifier | None = None
    device_id: Identifier | None = None
    code: str | None = Field(default=None, max_length=100)


class PluginQuery(PageQuery):
    kind: DeviceKind | None = Field(default=None, description="plugins that drive this kind")
    state: Literal["loaded", "refused"] | None = None


class PluginInfo(Model):
    id: str
    name: str | None = None
    vendor: str | None = None
    version: str | None = None
    kinds: list[str]
    protocols: list[str]
    iot_class: str | None = None
    state: str
    reason: str | None = None
    source: str | None = None
    distribution: str | None = None


class Health(Model):
    status: str = Field(description="'ok' when the hub runs, else 'starting'")
    devices: dict[str, int] = Field(description="total and by connectivity")
    plugins: dict[str, str] = Field(description="plugin id -> loaded/refused")
    events_published: int
    events_dropped: int = Field(description="events slow subscribers missed")
    stream_clients: int = Field(description="open event-stream connections")


async def _filter(call: Call, q: PlayQuery | PlayExportQuery) -> PlayFilter:
    return PlayFilter(area=await call.area_filter(q.area), since=q.since, until=q.until,
                      broadcast_id=q.broadcast_id, content_id=q.content_id,
                      device_id=q.device_id)


def _playlog(call: Call) -> PlayLog:
    return PlayLog(call.hub.store, skew_tolerance=call.hub.settings.clock_skew_tolerance)


@endpoint("GET", "/playlog", tag="reports", action=Action.REPORT_READ,
          summary="Proof of play: what played where and when", query=PlayQuery,
          response=Page[PlayLogEntry], target=query_area)
async def list_plays(call: Call) -> Page[PlayLogEntry]:
    q: PlayQuery = call.query
    entries = await _playlog(call).entries(await _filter(call, q), limit=q.limit + 1,
                                           offset=q.offset)
    return call.page(entries, q.limit, q.offset)


@endpoint("GET", "/playlog/export", tag="reports", action=Action.REPORT_READ,
          summary="Export proof of play as CSV or JSON (every matching row)",
          query=PlayExportQuery, produces="text/csv", also_produces=("application/json",),
          target=query_area)
async def export_plays(call: Call) -> web.StreamResponse:
    q: PlayExportQuery = call.query
    where = await _filter(call, q)
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8" if q.format == "csv"
        else "application/json",
        "Content-Disposition": f'attachment; filename="playlog.{q.format}"'})
    await response.prepare(call.request)
    writer = export_csv if q.format == "csv" else export_json
    buffer = _Chunks(response)
    await writer(_flushing(_playlog(call).stream(where), buffer), buffer)
    await buffer.send()
    await response.write_eof()
    return response


class _Chunks(io.StringIO):
    """A text sink the exporters write to, sent to the client in chunks."""

    def __init__(self, response: web.StreamResponse) -> None:
        super().__init__()
        self.response = response

    async def send(self) -> None:
        data = self.getvalue()
        if data:
            await self.response.write(data.encode())
            self.seek(0)
            self.truncate()


async def _flushing(entries: Any, sink: _Chunks) -> Any:
    count = 0
    async for entry in entries:
        yield entry
        count += 1
        if count % 500 == 0:
            await sink.send()


@endpoint("GET", "/alarms", tag="monitoring", action=Action.ALARM_READ,
          summary="Alarms, newest first", query=AlarmQuery, response=Page[Alarm],
          target=query_area)
async def list_alarms(call: Call) -> Page[Alarm]:
    q: AlarmQuery = call.query
    alarms = await AlarmLog(call.hub.store).list(
        active=q.active, area=await call.area_filter(q.area), device_id=q.device_id,
        code=q.code, limit=q.limit + 1, offset=q.offset)
    return call.page(alarms, q.limit, q.offset)


@endpoint("GET", "/plugins", tag="monitoring", action=Action.PLUGIN_READ,
          summary="Installed plugins, loaded or refused with the reason", query=PluginQuery,
          response=Page[PluginInfo])
async def list_plugins(call: Call) -> Page[PluginInfo]:
    q: PluginQuery = call.query
    found = [PluginInfo(**p.summary()) for p in sorted(call.hub.plugins.all(),
                                                       key=lambda p: p.id)]
    found = [p for p in found if (q.kind is None or q.kind.value in p.kinds)
             and (q.state is None or p.state == q.state)]
    return call.page(found[q.offset:q.offset + q.limit + 1], q.limit, q.offset)


@endpoint("GET", "/health", tag="monitoring", action=Action.HEALTH_READ,
          summary="The hub's state and the fleet's connectivity", response=Health)
async def health(call: Call) -> Health:
    hub = call.hub
    counts: dict[str, int] = {}
    for sup in hub.supervisors.values():
        counts[sup.connectivity.value] = counts.get(sup.connectivity.value, 0) + 1
    return Health(status="ok" if hub.started else "starting",
                  devices={"total": len(hub.supervisors), **counts},
                  plugins={p.id: p.state.value for p in hub.plugins.all()},
                  events_published=hub.bus.published, events_dropped=hub.bus.dropped,
                  stream_clients=call.api.stream_clients)
