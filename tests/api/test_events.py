"""The event stream (SSE) and outgoing webhooks: scoped by area, signed, retried, durable."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.api.conftest import FOREIGN, OWN, api_settings, make_users, seed
from tests.support.wait import eventually
from ttcs.core.api.webhooks import WebhookService, verify
from ttcs.core.config import ApiSettings, Settings
from ttcs.core.http import start_http
from ttcs.core.hub import Hub
from ttcs.schemas import AlarmEvent, PlayEvent


@dataclass
class Started:
    hub: Hub
    url: str
    tokens: dict[str, str]
    runner: web.AppRunner


@pytest.fixture
async def started(tmp_path: Path, amqtt_url: str) -> AsyncIterator[Started]:
    settings = api_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
                            stream_queue=5, webhook_backoff=0.05, webhook_attempts=4)
    hub = Hub(settings.model_copy(update={"mqtt_url": amqtt_url}))
    await hub.start()
    await seed(hub)
    tokens = await make_users(hub)
    runner, url = await start_http(hub)
    yield Started(hub, url, tokens, runner)
    await runner.cleanup()
    await hub.stop()


def _alarm(area: str, code: str = "on_battery") -> AlarmEvent:
    return AlarmEvent(device_id=f"dev-{area}", area_code=area, code=code, raised=True)


async def _read_events(response: aiohttp.ClientResponse, count: int) -> list[tuple[str, Any]]:
    events: list[tuple[str, Any]] = []
    kind, data = None, None
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and kind is not None:
            events.append((kind, data))
            kind = None
            if len(events) >= count:
                break
    return events


async def test_the_stream_shows_only_the_callers_area(started: Started) -> None:
    headers = {"Authorization": f"Bearer {started.tokens['operator']}"}
    async with aiohttp.ClientSession(headers=headers) as http, http.get(
            f"{started.url}/api/v1/events", params={"types": "alarm"}) as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        await stream.content.readline()  # ": connected": the subscription exists now
        await stream.content.readline()
        started.hub.bus.publish(_alarm(FOREIGN, "foreign_alarm"))
        started.hub.bus.publish(PlayEvent(device_id="dev-x", area_code=OWN, phase="started"))
        started.hub.bus.publish(_alarm(f"{OWN}-01", "child_alarm"))
        started.hub.bus.publish(_alarm(OWN, "own_alarm"))
        events = await asyncio.wait_for(_read_events(stream, 2), 10)
    assert [(k, d["code"]) for k, d in events] == [("alarm", "child_alarm"),
                                                   ("alarm", "own_alarm")]


async def test_a_client_that_does_not_read_is_dropped_and_the_hub_does_not_wait(
        started: Started) -> None:
    headers = {"Authorization": f"Bearer {started.tokens['root']}"}
    bus = started.hub.bus
    async with aiohttp.ClientSession(headers=headers) as http, http.get(
            f"{started.url}/api/v1/events") as stream:
        await stream.content.readline()
        await eventually(lambda: bus.streams)
        before = bus.dropped
        for n in range(2000):  # far more than the client's queue of 5
            bus.publish(_alarm(OWN, f"burst_{n}"))
        assert bus.dropped > before  # the publisher went on; the stream lost events
        text = await asyncio.wait_for(stream.content.read(), 10)  # the server ended it
    assert b"event: overflow" in text
    await eventually(lambda: not bus.streams)


async def test_a_client_that_reconnects_gets_what_it_missed_then_the_live_stream(
        started: Started) -> None:
    headers = {"Authorization": f"Bearer {started.tokens['operator']}"}
    bus = started.hub.bus
    url = f"{started.url}/api/v1/events"
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.get(url, params={"types": "alarm"}) as stream:
            await stream.content.readline()
            await eventually(lambda: bus.streams)
            bus.publish(_alarm(OWN, "seen"))
            [(_, seen)] = await asyncio.wait_for(_read_events(stream, 1), 10)
        for code, area in (("missed_1", OWN), ("not_ours", FOREIGN), ("missed_2", OWN)):
            bus.publish(_alarm(area, code))
        before = list(bus.streams)  # the old one lingers until the hub writes to it
        async with http.get(url, params={"types": "alarm"},
                            headers={"Last-Event-ID": seen["id"]}) as stream:
            await stream.content.readline()
            await eventually(lambda: any(all(x is not y for y in before)
                                         for x in bus.streams))
            bus.publish(_alarm(OWN, "live"))
            events = await asyncio.wait_for(_read_events(stream, 3), 10)
        assert [d["code"] for _, d in events] == ["missed_1", "missed_2", "live"]
        async with http.get(url, params={"types": "alarm", "last_event_id": "ev-unknown"}
                            ) as stream:
            await stream.content.readline()
            [(kind, _)] = await asyncio.wait_for(_read_events(stream, 1), 10)
        assert kind == "reset"  # the hub cannot tell what was missed: read the state again


async def test_a_longer_gap_is_replayed_from_the_store(started: Started) -> None:
    from sqlalchemy import func, select

    from ttcs.core.api.replay import RecentEvents, missed
    from ttcs.core.store.tables import EventRow

    hub = started.hub
    recent = RecentEvents(hub.bus, frozenset({"alarm"}), size=2)  # memory holds 2 only
    try:
        alarms = [_alarm(OWN, f"gap_{n}") for n in range(6)]
        for alarm in alarms:
            hub.bus.publish(alarm)

        async def stored() -> int:
            async with hub.store.sessions() as s:
                return int((await s.execute(select(func.count()).select_from(EventRow).where(
                    EventRow.id.in_([a.id for a in alarms])))).scalar_one())

        for _ in range(100):
            if await stored() == len(alarms):
                break
            await asyncio.sleep(0.05)
        found, reset = await missed(recent, hub.store, alarms[0].id, {"alarm"}, limit=100)
        assert [e.id for e in found] == [a.id for a in alarms[1:]] and not reset
        found, reset = await missed(recent, hub.store, alarms[0].id, {"alarm"}, limit=2)
        assert [e.id for e in found] == [a.id for a in alarms[-2:]] and reset
        found, _ = await missed(recent, hub.store, alarms[0].id, {"play"}, limit=100)
        assert found == []
    finally:
        recent.close()


@dataclass
class Receiver:
    """A source information system's endpoint: fails the first ``failures`` requests."""

    failures: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 0
    url: str = ""
    runner: web.AppRunner | None = None

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def _hook(self, request: web.Request) -> web.Response:
        self.attempts += 1
        if self.attempts <= self.failures:
            return web.Response(status=503)
        body = await request.read()
        self.received.append({"headers": dict(request.headers), "body": body})
        return web.json_response({"ok": True})

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


async def _create(started: Started, receiver: Receiver, **spec: Any) -> dict[str, Any]:
    async with aiohttp.ClientSession(headers={
            "Authorization": f"Bearer {started.tokens['integrator']}"}) as http, http.post(
            f"{started.url}/api/v1/webhooks", json={"url": receiver.url, **spec}) as r:
        assert r.status == 201, await r.text()
        return dict(await r.json())


async def test_webhooks_are_signed_retried_and_limited_to_their_area(
        started: Started) -> None:
    receiver = await Receiver(failures=2).start()
    try:
        made = await _create(started, receiver, types=["alarm"],
                             secret="a shared secret of the SIS")
        assert made["webhook"]["area_code"] == OWN  # the integrator's own scope
        started.hub.bus.publish(_alarm(FOREIGN, "foreign_alarm"))
        started.hub.bus.publish(_alarm(OWN, "own_alarm"))
        await eventually(lambda: receiver.received, timeout=10)
        delivery = receiver.received[0]
        headers = delivery["headers"]
        assert json.loads(delivery["body"])["code"] == "own_alarm"
        assert verify("a shared secret of the SIS", headers["X-TTCS-Timestamp"],
                      delivery["body"], headers["X-TTCS-Signature"])
        assert not verify("another secret", headers["X-TTCS-Timestamp"], delivery["body"],
                          headers["X-TTCS-Signature"])
        assert receiver.attempts == 3  # two refusals, then delivered
        assert len(receiver.received) == 1  # the foreign alarm was never sent
    finally:
        await receiver.stop()


async def test_a_webhook_gives_up_after_its_attempts_and_says_so(started: Started) -> None:
    receiver = await Receiver(failures=100).start()
    try:
        made = await _create(started, receiver, types=["alarm"])
        started.hub.bus.publish(_alarm(OWN))
        hook = made["webhook"]["id"]
        headers = {"Authorization": f"Bearer {started.tokens['integrator']}"}

        async def state() -> Any:
            async with aiohttp.ClientSession(headers=headers) as http, http.get(
                    f"{started.url}/api/v1/webhooks/{hook}/deliveries") as r:
                items = (await r.json())["items"]
                return items and items[0]["state"] == "failed" and items[0]

        failed = await eventually(state, timeout=15)
        assert failed["attempts"] == 4 and "503" in failed["last_error"]
    finally:
        await receiver.stop()


async def test_deliveries_survive_a_restart(tmp_path: Path, settings: Settings) -> None:
    """Accepted events wait in the store while the receiver (or the hub) is down."""
    from ttcs.core.events import EventBus
    from ttcs.core.store import Store

    store_settings = settings.model_copy(update={
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'wh.db'}"})
    receiver = Receiver()
    api = ApiSettings(webhook_backoff=0.05)
    store = await Store.open(store_settings)
    bus = EventBus()
    first = WebhookService(store, bus, api)
    made = await first.create(_spec("http://127.0.0.1:9/hook"), "sis", "test")
    first.start()
    bus.publish(_alarm(OWN))
    await eventually(lambda: first.deliveries(made.webhook.id))
    await first.stop()
    await store.close()

    await receiver.start()
    store = await Store.open(store_settings)
    try:
        from sqlalchemy import update

        from ttcs.core.store.tables import WebhookRow

        async with store.sessions.begin() as s:  # the SIS moved: point the hook at it
            await s.execute(update(WebhookRow).values(url=receiver.url))
        second = WebhookService(store, EventBus(), api)
        second.start()
        await eventually(lambda: receiver.received, timeout=10)
        rows = await second.deliveries(made.webhook.id)
        await eventually(lambda: _delivered(second, made.webhook.id), timeout=10)
        await second.stop()
        assert len(receiver.received) == 1 and len(rows) == 1
    finally:
        await store.close()
        await receiver.stop()


async def _delivered(service: WebhookService, hook: str) -> bool:
    return [d.state for d in await service.deliveries(hook)] == ["delivered"]


def _spec(url: str) -> Any:
    from ttcs.core.api.webhooks import WebhookSpec

    return WebhookSpec(url=url, types=["alarm"])
