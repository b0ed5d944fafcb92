"""Broadcasts reach Sao Khuê stations through their own schedule: the hub's planner and
schedule sync, the station simulator's clock, and the play log, over a real broker."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import select

from tests.conftest import SAMPLE_AREAS
from tests.support.brokers import Mosquitto
from tests.support.content import TestContentGate
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.dispatch import DispatchSettings
from ttcs.core.hub import Hub
from ttcs.core.playlog import PlayFilter, PlayLog
from ttcs.core.store.tables import OutboxRow
from ttcs.plugins.saokhue.schedule import slots
from ttcs.schemas import (
    Broadcast,
    Connectivity,
    Device,
    DeviceSpec,
    PlayPhase,
    Schedule,
    Targets,
    new_id,
)
from ttcs.simulators.base import Fault
from ttcs.simulators.saokhue_station import SaoKhueStation

OPEN_POLICY = "name: open\nby_type: {}\n"  # no rules: tests run at any hour


@dataclass
class Rig:
    hub: Hub
    gate: TestContentGate
    sim: SaoKhueStation
    device: Device

    async def create(self, content_id: str, **fields: object) -> Broadcast:
        assert self.hub.broadcasts is not None
        b = Broadcast(id=new_id("bc"), content_id=content_id,
                      targets=Targets(areas=["19900"]), **fields)  # type: ignore[arg-type]
        await self.hub.broadcasts.create(b, "operator", owner_area="19900")
        return b

    def rows_of(self, broadcast: Broadcast) -> list[object]:
        return [r for r in self.sim.schedule if r.ma_ct == broadcast.id]


@pytest.fixture
async def rig(settings: Settings, mosquitto: Mosquitto, tmp_path: Path) -> AsyncIterator[Rig]:
    policy = tmp_path / "open.yaml"
    policy.write_text(OPEN_POLICY)
    gate = await TestContentGate().start()
    sim = SaoKhueStation(f"SKR-BC-{uuid.uuid4().hex[:8].upper()}", mosquitto.url(),
                         heartbeat=30)
    await sim.start()
    hub = Hub(settings.model_copy(update={"mqtt_url": mosquitto.url(), "policy_file": policy}),
              content=gate, dispatch=DispatchSettings(plan_interval=0.2, sync_interval=0.2,
                                                      backoff=(0.2, 1.0)))
    await hub.start()
    await hub.registry.import_areas(SAMPLE_AREAS, "test")
    registration = sim.registration()
    device = await hub.registry.add_device(DeviceSpec(
        plugin="saokhue", kind="ip_speaker", area_code="19900",
        config=registration["config"]), "test")
    await hub.supervise(device)
    await eventually(lambda: hub.supervisors[device.id].connectivity is Connectivity.ONLINE)
    yield Rig(hub, gate, sim, device)
    await hub.stop()
    await sim.stop()
    await gate.stop()


async def test_a_scheduled_broadcast_is_stored_on_the_station_and_played_by_it(
        rig: Rig) -> None:
    rig.gate.add_audio("ban-tin-chieu", 0.4, area="19900")
    start = (datetime.now(UTC) + timedelta(seconds=4)).replace(microsecond=0)
    b = await rig.create("ban-tin-chieu", schedule=Schedule(kind="at", at=start))
    (row,) = await eventually(lambda: rig.rows_of(b), timeout=10)
    assert row.ma_nd == "ban-tin-chieu"  # type: ignore[attr-defined]
    play = await eventually(lambda: next((p for p in rig.sim.truth.plays
                                          if p.outcome == "finished"), None), timeout=15)
    assert play.broadcast_id == b.id and play.started_at >= start
    # it played from the station's table: the hub sent a schedule, never a play command
    assert "phat" not in [c["type"] for c in rig.sim.truth.commands]
    coverage = await eventually(lambda: _played(rig, b), timeout=10)
    assert (coverage.targeted, coverage.played, coverage.device_share) == (1, 1, 1.0)


async def _played(rig: Rig, b: Broadcast) -> object:
    coverage = await PlayLog(rig.hub.store).coverage(b.id, [rig.device.id])
    return coverage if coverage.played else None


async def test_a_recurring_broadcast_becomes_rows_whose_slots_are_the_hubs_timeline(
        rig: Rig) -> None:
    rig.gate.add_audio("the-duc", 60, area="19900")
    b = await rig.create("the-duc", schedule=Schedule(
        kind="recurring", rrule="FREQ=DAILY;BYHOUR=5,11,17;BYMINUTE=30;BYSECOND=0"))
    rows = await eventually(lambda: rig.rows_of(b), timeout=10)
    assert rig.hub.broadcasts is not None
    now = datetime.now(UTC)
    placements, _ = await rig.hub.broadcasts.timeline(rig.device.id, now, now + timedelta(
        hours=24))
    wanted = sorted(p.start for p in placements if p.placed and p.start is not None)
    on_device = sorted(at for row in rows for at in slots(row))  # type: ignore[arg-type]
    assert on_device == wanted and len(wanted) == 3


async def test_a_now_broadcast_goes_to_the_station_as_a_real_time_play(rig: Rig) -> None:
    rig.gate.add_audio("loa-khan", 0.3, area="19900")
    b = await rig.create("loa-khan")
    play = await eventually(lambda: next(iter(rig.sim.truth.plays), None), timeout=10)
    assert play.broadcast_id == b.id
    assert [c["type"] for c in rig.sim.truth.commands].count("phat") == 1
    assert rig.rows_of(b) == []
    entries = await eventually(lambda: _finished(rig, b), timeout=10)
    assert entries[0].command_id is not None  # a real-time play names its command


async def _finished(rig: Rig, b: Broadcast) -> list[object]:
    entries = await PlayLog(rig.hub.store).entries(PlayFilter(broadcast_id=b.id))
    return [e for e in entries if e.phase is PlayPhase.FINISHED]


async def test_a_schedule_that_expired_on_its_way_is_sent_again_when_the_station_is_back(
        rig: Rig) -> None:
    dispatcher = rig.hub.dispatcher
    assert dispatcher is not None
    dispatcher.settings.sync_expiry = 1.0  # (an hour in production)
    dispatcher.settings.resync_every = 1.0
    await rig.sim.inject(Fault.OFFLINE)  # the station is away when its schedule changes
    rig.gate.add_audio("ban-tin-vang", 0.4, area="19900")
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    b = await rig.create("ban-tin-vang", schedule=Schedule(kind="at", at=at))
    await eventually(lambda: _sync_states(rig, "expired"), timeout=30)
    assert rig.rows_of(b) == []
    await rig.sim.clear(Fault.OFFLINE)
    (row,) = await eventually(lambda: rig.rows_of(b), timeout=30)
    assert row.ma_nd == "ban-tin-vang"  # type: ignore[attr-defined]
    await eventually(lambda: _sync_states(rig, "done"), timeout=30)
    rounds = dispatcher.syncs
    await eventually(lambda: dispatcher.syncs >= rounds + 3)
    assert (await _sync_states(rig, "done")) == 1  # delivered once, not again every round


async def _sync_states(rig: Rig, state: str) -> int:
    async with rig.hub.store.sessions() as s:
        keys = (await s.execute(select(OutboxRow.idempotency_key).where(
            OutboxRow.device_id == rig.device.id, OutboxRow.state == state,
            OutboxRow.idempotency_key.like("sync/%")))).scalars().all()
    return len(keys)


async def test_an_item_altered_after_it_reached_the_station_is_taken_off_its_table_alone(
        rig: Rig) -> None:
    rig.gate.add_audio("ban-tin-sang", 0.4, area="19900")
    rig.gate.add_audio("ban-tin-sua", 0.4, area="19900")
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    kept = await rig.create("ban-tin-sang", schedule=Schedule(kind="at", at=at))
    altered = await rig.create("ban-tin-sua", schedule=Schedule(
        kind="at", at=at + timedelta(minutes=5)))
    await eventually(lambda: rig.rows_of(kept) and rig.rows_of(altered), timeout=30)
    dispatcher = rig.hub.dispatcher
    assert dispatcher is not None
    with structlog.testing.capture_logs() as logs:
        rig.gate.alter("ban-tin-sua", title="ban-tin-sua (đã bị sửa)")
        await eventually(lambda: not rig.rows_of(altered), timeout=30)
        assert rig.rows_of(kept)  # the rest of the table still goes
        syncs = dispatcher.syncs
        await eventually(lambda: dispatcher.syncs >= syncs + 3)  # more rounds see it again
    assert (await dispatcher.counts(altered.id)) == {"refused": 1}  # recorded once
    assert [e["broadcast"] for e in logs if e["event"] == "dispatch.refused"] == [altered.id]
