"""``/events``: server-sent events — device status, connectivity, command results, proof of
play and alarms — limited to the caller's area (and vendors to their own devices).

Each client gets its own bounded queue on the hub's event bus. A client that falls behind
by a whole queue is disconnected (it reconnects and reads the current state); the hub never
waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Literal

from aiohttp import web
from pydantic import Field

from ....aio import wait_for
from ....schemas import Event, Model
from ....schemas.base import Identifier
from ...access.policy import Action, Principal
from ..replay import missed
from ..routing import Call, endpoint
from .common import query_area

StreamType = Literal["device.status", "device.connectivity", "command.result", "play",
                     "alarm"]
STREAM_TYPES: frozenset[str] = frozenset(StreamType.__args__)  # type: ignore[attr-defined]
KEEPALIVE = 15.0  # seconds between comments on an idle stream (keeps proxies from timing out)
WRITE_TIMEOUT = 30.0  # a client that takes longer to accept one event is gone


class EventQuery(Model):
    types: list[StreamType] = Field(default_factory=list, description="only these event "
                                    "types (repeat the parameter); default all")
    area: Identifier | None = Field(default=None, description="only events of this area "
                                    "and below")
    device_id: Identifier | None = None
    last_event_id: str | None = Field(default=None, max_length=64, description="resume after "
                                      "this event (as the Last-Event-ID header does)")


class _Filter:
    """Whether an event may go to this client, given its scope and filters."""

    def __init__(self, call: Call, q: EventQuery) -> None:
        self.call = call
        self.device_id = q.device_id
        area = q.area if q.area is not None else call.scope.area
        # the scope as a principal: the same rule as every other check ("within")
        self.scope = Principal(name=call.principal.name, role=call.principal.role,
                               area_code=area)
        self.plugins = call.scope.plugins

    async def allows(self, event: Event) -> bool:
        if self.device_id is not None and event.device_id != self.device_id:
            return False
        if self.plugins is not None:
            sup = self.call.hub.supervisors.get(event.device_id or "")
            if sup is None or sup.device.plugin not in self.plugins:
                return False
        if self.scope.area_code is None:
            return True
        return await self.call.policy.in_scope(self.scope, event.area_code)


def frame(event: Event) -> bytes:
    data = json.dumps(event.model_dump(mode="json"), ensure_ascii=False)
    return f"id: {event.id}\nevent: {event.type}\ndata: {data}\n\n".encode()


@endpoint("GET", "/events", tag="events", action=Action.EVENT_READ, produces="text/event-stream",
          summary="Server-sent events of the caller's area", query=EventQuery,
          target=query_area)
async def stream_events(call: Call) -> web.StreamResponse:
    """``event:`` is the event type, ``data:`` the event as JSON (see the event schema).
    A client that cannot keep up is disconnected after one ``event: overflow``. A client
    that reconnects with ``Last-Event-ID`` first gets what it missed (``event: reset``
    when that cannot be told: read the current state again)."""
    q: EventQuery = call.query
    keep = _Filter(call, q)
    types: set[str] = set(q.types) or set(STREAM_TYPES)
    last_id = call.request.headers.get("Last-Event-ID") or q.last_event_id
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                           "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(call.request)
    overflowed = asyncio.Event()
    api = call.api
    api.stream_clients += 1
    try:
        await response.write(b": connected\n\n")
        async with call.hub.bus.stream(types=types, maxsize=call.hub.settings.api.stream_queue,
                                       overflow=overflowed.set) as queue:
            sent: set[str] = set()  # replayed, and maybe queued live as well
            if last_id:
                backlog, reset = await missed(api.recent, call.hub.store, last_id[:64], types,
                                              call.hub.settings.api.stream_queue)
                if reset:
                    await wait_for(response.write(b"event: reset\ndata: {}\n\n"),
                                           WRITE_TIMEOUT)
                for event in backlog:
                    sent.add(event.id)
                    if await keep.allows(event):
                        await wait_for(response.write(frame(event)), WRITE_TIMEOUT)
            closing = api.closing
            while not closing.is_set():
                getter = asyncio.ensure_future(queue.get())
                stop = asyncio.ensure_future(closing.wait())
                lag = asyncio.ensure_future(overflowed.wait())
                done, pending = await asyncio.wait({getter, stop, lag}, timeout=KEEPALIVE,
                                                   return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                if lag in done or overflowed.is_set():
                    await wait_for(response.write(
                        b"event: overflow\ndata: {}\n\n"), WRITE_TIMEOUT)
                    break
                if getter in done:
                    event = getter.result()
                    if sent and event.id in sent:
                        sent.discard(event.id)
                    elif await keep.allows(event):
                        await wait_for(response.write(frame(event)), WRITE_TIMEOUT)
                elif not done:
                    await wait_for(response.write(b": keepalive\n\n"), WRITE_TIMEOUT)
    except (ConnectionResetError, TimeoutError):
        pass
    finally:
        api.stream_clients -= 1
    with contextlib.suppress(ConnectionResetError, RuntimeError):
        await response.write_eof()
    return response


