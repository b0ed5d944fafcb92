"""The fan-out and ingest hot paths keep their guarantees: batched status writes apply every
status and lose none when a write fails, and write a heartbeat that changes nothing once per
interval; executemany inserts count and skip duplicates; the
planner commits an emergency's rows once (cloned commands are valid and per device) and a
restarted planner adds nothing; a broadcast created in the hub's process is planned without
waiting for the planner's round; the MQTT connection sends without Nagle's delay."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text

from tests.conftest import SAMPLE_AREAS
from tests.support.brokers import Mosquitto
from tests.support.content import TestContentGate
from tests.support.wait import eventually
from ttcs.adapters.mqtt import MqttConnection, MqttEndpoint
from ttcs.core.config import Settings
from ttcs.core.dispatch import Dispatcher, RowState
from ttcs.core.hub import Hub
from ttcs.core.recorder import StatusWriter
from ttcs.core.store.tables import DeviceStateRow, EventRow, OutboxRow
from ttcs.schemas import (
    Broadcast,
    Connectivity,
    Device,
    DeviceInfo,
    DeviceKind,
    DeviceSpec,
    DeviceStatus,
    Schedule,
    Targets,
    new_id,
    parse_command,
)


@pytest.fixture
async def opened(settings: Settings, database_url: str) -> AsyncIterator[Hub]:
    """A hub with its store open (SQLite or PostgreSQL) and the sample areas."""
    hub = Hub(settings.model_copy(update={"database_url": database_url}))
    await hub.open()
    await hub.registry.import_areas(SAMPLE_AREAS, "test")
    yield hub
    await hub.stop()


async def _register(hub: Hub, count: int, prefix: str = "HOT") -> list[Device]:
    devices = []
    for n in range(count):
        serial = f"{prefix}-{n:03d}"
        info = DeviceInfo(serial=serial, vendor="TTCS reference", model="TTCS-SPK-30W",
                          firmware="1.4.2", kind=DeviceKind.IP_SPEAKER)
        devices.append(await hub.registry.add_device(DeviceSpec(
            plugin="native", kind="ip_speaker", area_code="20101", config={"serial": serial}),
            "test", info=info))
    return devices


async def _states(hub: Hub) -> dict[str, tuple[str, dict[str, Any]]]:
    async with hub.store.sessions() as s:
        rows = (await s.execute(select(DeviceStateRow))).scalars()
        return {r.device_id: (r.connectivity, r.status) for r in rows}


async def test_a_batched_status_flush_writes_the_latest_status_of_every_device(
        opened: Hub) -> None:
    devices = await _register(opened, 30)
    writer = StatusWriter(opened.registry)
    for round_ in range(3):  # three heartbeats each; the last one must be what is stored
        for n, device in enumerate(devices):
            writer.put(device.id, DeviceStatus(connectivity=Connectivity.ONLINE,
                                               volume=(n + round_ * 7) % 100))
    writer.put("native-GONE-1", DeviceStatus(volume=5))  # a device removed meanwhile
    await writer.flush()
    states = await _states(opened)
    for n, device in enumerate(devices):
        connectivity, status = states[device.id]
        assert connectivity == "online"
        assert status["volume"] == (n + 14) % 100
    assert "native-GONE-1" not in states
    assert writer.writes == 31


async def test_a_failed_status_flush_keeps_its_batch_under_newer_statuses(
        opened: Hub) -> None:
    devices = await _register(opened, 10)
    writer = StatusWriter(opened.registry)
    for n, device in enumerate(devices):
        writer.put(device.id, DeviceStatus(connectivity=Connectivity.ONLINE, volume=n))
    async with opened.store.sessions.begin() as s:  # the table is away: the write fails
        await s.execute(text("ALTER TABLE device_state RENAME TO device_state_away"))
    with pytest.raises(Exception, match="device_state"):
        await writer.flush()
    writer.put(devices[0].id, DeviceStatus(connectivity=Connectivity.OFFLINE, volume=99))
    async with opened.store.sessions.begin() as s:
        await s.execute(text("ALTER TABLE device_state_away RENAME TO device_state"))
    await writer.flush()
    states = await _states(opened)
    assert states[devices[0].id] == ("offline", states[devices[0].id][1])
    assert states[devices[0].id][1]["volume"] == 99  # the newer status, not the failed one
    for n, device in enumerate(devices[1:], start=1):
        assert states[device.id][0] == "online"
        assert states[device.id][1]["volume"] == n
    assert writer.writes == 10


async def test_a_heartbeat_that_changes_nothing_is_written_once_per_interval(
        opened: Hub) -> None:
    """A change reaches the store at the next flush; a status that differs from the last
    only by its time waits for the unchanged interval, and a stop writes it regardless."""
    devices = await _register(opened, 3)
    writer = StatusWriter(opened.registry, unchanged_interval=0.5)
    first = DeviceStatus(connectivity=Connectivity.ONLINE, volume=10)
    for device in devices:
        writer.put(device.id, first)
    await writer.flush()
    stored = await opened.registry.get_status(devices[0].id)
    assert stored.reported_at == first.reported_at and writer.writes == 3

    same = first.model_copy(update={"reported_at": first.reported_at + timedelta(seconds=5)})
    changed = first.model_copy(update={"volume": 20, "reported_at": same.reported_at})
    writer.put(devices[0].id, same, changed=False)
    writer.put(devices[1].id, changed)
    writer.put(devices[2].id, changed, changed=True)
    writer.put(devices[2].id, same, changed=False)  # the latest status of a pending device
    await writer.flush()
    assert (await opened.registry.get_status(devices[0].id)).reported_at == first.reported_at
    assert (await opened.registry.get_status(devices[1].id)).volume == 20
    assert (await opened.registry.get_status(devices[2].id)).volume == 10  # newest wins
    assert writer.writes == 5

    await asyncio.sleep(0.6)  # the interval has passed: the unchanged heartbeat goes too
    await writer.flush()
    assert (await opened.registry.get_status(devices[0].id)).reported_at == same.reported_at
    assert writer.writes == 6

    later = same.model_copy(update={"reported_at": same.reported_at + timedelta(seconds=5)})
    writer.put(devices[0].id, later, changed=False)
    await writer.flush()  # just written: waits
    assert (await opened.registry.get_status(devices[0].id)).reported_at == same.reported_at
    await writer.stop()  # a stop writes what waits
    assert (await opened.registry.get_status(devices[0].id)).reported_at == later.reported_at
    assert writer.writes == 7


async def test_insert_ignoring_duplicates_counts_only_new_rows_of_any_shape(
        opened: Hub) -> None:
    now = datetime.now(UTC)

    def row(n: int) -> dict[str, Any]:
        values: dict[str, Any] = {"id": f"evt-hot-{n}", "type": "test", "at": now,
                                  "device_id": None, "payload": {"n": n}}
        if n % 3 == 0:
            values["area_code"] = "20101"  # another set of columns
        return values

    store = opened.store
    assert await store.insert_ignoring_duplicates(EventRow, [row(n) for n in range(1500)],
                                                  "id") == 1500
    again = [row(n) for n in range(1000, 2000)]  # 500 known, 500 new
    assert await store.insert_ignoring_duplicates(EventRow, again, "id") == 500
    assert await store.insert_ignoring_duplicates(EventRow, [], "id") == 0
    async with store.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(EventRow))).scalar() == 2000
        stored = (await s.execute(select(EventRow).where(EventRow.id == "evt-hot-1200"))
                  ).scalar_one()
    assert stored.payload == {"n": 1200}
    assert stored.area_code == "20101"


@pytest.fixture
async def gated(settings: Settings, database_url: str) -> AsyncIterator[tuple[Hub, Any]]:
    gate = await TestContentGate().start()
    hub = Hub(settings.model_copy(update={"database_url": database_url}), content=gate)
    await hub.open()
    await hub.registry.import_areas(SAMPLE_AREAS, "test")
    yield hub, gate
    await hub.stop()
    await gate.stop()


async def test_the_planner_commits_an_emergency_once_with_a_valid_command_per_device(
        gated: tuple[Hub, Any]) -> None:
    hub, gate = gated
    devices = await _register(hub, 40)
    gate.add_audio("alert", 20.0, level="emergency")
    assert hub.broadcasts is not None
    plan = await hub.broadcasts.create(Broadcast(
        id=new_id("bc"), content_id="alert", targets=Targets(areas=["46"]),
        schedule=Schedule(kind="now")), "duty")
    dispatcher = Dispatcher(hub, hub.broadcasts, gate)
    built: list[str] = []
    command_for = dispatcher.command_for

    async def counted(device: Device, *args: Any, **kwargs: Any) -> Any:
        built.append(device.id)
        return await command_for(device, *args, **kwargs)

    dispatcher.command_for = counted  # type: ignore[method-assign]
    now = datetime.now(UTC)
    assert await dispatcher.plan_once(now) == 40
    async with hub.store.sessions() as s:
        rows = list((await s.execute(select(OutboxRow).where(
            OutboxRow.broadcast_id == plan.broadcast.id))).scalars())
    assert {r.device_id for r in rows} == {d.id for d in devices}
    commands = [parse_command(r.command) for r in rows]  # every cloned command validates
    for row, command in zip(rows, commands, strict=True):
        assert command.id == row.id
        assert command.idempotency_key == row.idempotency_key
        assert row.idempotency_key.endswith(f"/{row.device_id}")
        assert row.state == RowState.PENDING
    assert len({r.idempotency_key for r in rows}) == 40
    shared = [c.model_dump(exclude={"id", "idempotency_key"}) for c in commands]
    assert all(c == shared[0] for c in shared)  # the same play for everyone
    assert shared[0]["level"] == "emergency"

    assert await dispatcher.plan_once(now + timedelta(seconds=1)) == 0
    assert len(built) == 1  # one command built for the commune; not rebuilt next round

    restarted = Dispatcher(hub, hub.broadcasts, gate)  # a new process: plans, adds nothing
    assert await restarted.plan_once(now + timedelta(seconds=2)) == 0
    async with hub.store.sessions() as s:
        assert (await s.execute(select(func.count()).select_from(OutboxRow))).scalar() == 40
    dispatcher._unsubscribe()
    restarted._unsubscribe()


async def test_a_broadcast_created_in_the_hub_is_planned_without_waiting_for_a_round(
        idle_planner: tuple[Hub, TestContentGate]) -> None:
    hub, gate = idle_planner
    await hub.registry.import_areas(SAMPLE_AREAS, "test")
    await _register(hub, 3, prefix="WAKE")
    gate.add_audio("alert", 5.0, level="emergency")
    await asyncio.sleep(0.5)  # the planner's first round is over: the next is in an hour
    assert hub.broadcasts is not None
    plan = await hub.broadcasts.create(Broadcast(
        id=new_id("bc"), content_id="alert", targets=Targets(areas=["20101"]),
        schedule=Schedule(kind="now")), "duty")

    async def queued() -> bool:
        assert hub.broadcasts is not None
        counts = await hub.broadcasts.deliveries(plan.broadcast.id)
        return sum(counts.values()) == 3

    await eventually(queued, timeout=20)


async def test_the_mqtt_connection_sends_without_nagle_and_delivers_a_burst(
        mosquitto: Mosquitto) -> None:
    endpoint = MqttEndpoint.from_url(mosquitto.url())
    received: list[bytes] = []
    listener = MqttConnection(endpoint)
    await listener.subscribe("hot/burst/#", lambda m: received.append(bytes(m.payload)))
    await listener.start(wait=10)
    sender = MqttConnection(endpoint)
    await sender.start(wait=10)
    try:
        sock = sender.socket()
        assert sock is not None
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        await asyncio.gather(*(sender.publish(f"hot/burst/{n}", f"{n}", qos=1)
                               for n in range(3000)))  # each waits for its PUBACK
        await eventually(lambda: len(received) == 3000, timeout=30)
        assert sorted(int(p) for p in received) == list(range(3000))
    finally:
        await sender.stop()
        await listener.stop()
