"""Broadcasts end to end over real sockets: native speakers on a real broker, the hub's
planner and outbox, the simulators' ground truth as the judge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import SAMPLE_AREAS
from tests.support.content import TestContentGate
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.dispatch import DispatchSettings
from ttcs.core.errors import InvalidInput
from ttcs.core.hub import Hub
from ttcs.core.schedule.policy import TZ
from ttcs.core.schedule.service import PolicyViolation
from ttcs.schemas import Broadcast, DeviceSpec, Schedule, Targets, new_id, parse_command
from ttcs.simulators.base import Fault
from ttcs.simulators.native_speaker import NativeSpeaker

OPEN_POLICY = "name: open\nby_type: {}\n"  # no rules: tests run at any hour


@dataclass
class Rig:
    hub: Hub
    gate: TestContentGate
    speakers: dict[str, NativeSpeaker]  # device id -> simulator


@pytest.fixture
async def rig(settings: Settings, amqtt_url: str, tmp_path: Path) -> AsyncIterator[Rig]:
    policy = tmp_path / "open.yaml"
    policy.write_text(OPEN_POLICY)
    gate = await TestContentGate().start()
    placement = {"SPK-A1": "19900", "SPK-A2": "19900-01", "SPK-B1": "20101",
                 "SPK-C1": "20014"}
    sims = {serial: NativeSpeaker(serial, amqtt_url) for serial in placement}
    for sim in sims.values():
        await sim.start()
    hub = Hub(settings.model_copy(update={"mqtt_url": amqtt_url, "policy_file": policy}),
              content=gate, dispatch=DispatchSettings(plan_interval=0.2, backoff=(0.2, 1.0)))
    await hub.start()
    await hub.registry.import_areas(SAMPLE_AREAS, "test")
    speakers = {}
    for serial, area in placement.items():
        commune, village = (area.split("-")[0], area) if "-" in area else (area, None)
        device = await hub.registry.add_device(DeviceSpec(
            plugin="native", kind="ip_speaker", area_code=commune, village_code=village,
            config={"serial": serial}), "test")
        await hub.supervise(device)
        speakers[device.id] = sims[serial]
    yield Rig(hub, gate, speakers)
    await hub.stop()
    for sim in sims.values():
        await sim.stop()
    await gate.stop()


def plays(sim: NativeSpeaker, content_id: str) -> list[object]:
    return [p for p in sim.truth.plays if p.content_id == content_id]


async def create(rig: Rig, content_id: str, targets: dict[str, list[str]], *,
                 owner: str | None = None, **fields: object) -> Broadcast:
    assert rig.hub.broadcasts is not None
    b = Broadcast(id=new_id("bc"), content_id=content_id, targets=Targets(**targets), **fields)
    await rig.hub.broadcasts.create(b, "operator", owner_area=owner)
    return b


async def test_a_communes_own_bulletin_plays_on_exactly_its_devices(rig: Rig) -> None:
    rig.gate.add_audio("news", 0.5, area="19900")
    await create(rig, "news", {"areas": ["19900"]}, owner="19900")
    targeted = {"native-spk-a1", "native-spk-a2"}
    await eventually(lambda: all(plays(rig.speakers[d], "news") for d in targeted))
    for device_id, sim in rig.speakers.items():
        expected = 1 if device_id in targeted else 0
        assert len(plays(sim, "news")) == expected, device_id
    await eventually(lambda: all(p.outcome == "finished" for d in targeted
                                 for p in plays(rig.speakers[d], "news")))


async def test_a_normal_item_from_above_waits_for_the_communes_decision(rig: Rig) -> None:
    rig.gate.add_audio("province-news", 0.3)
    b = await create(rig, "province-news", {"areas": ["46"]}, owner="46")
    assert rig.hub.broadcasts is not None
    explained = await rig.hub.broadcasts.explain("native-spk-b1", datetime.now(UTC))
    assert [i.reason for i in explained] == [
        "not in the schedule: offered to the commune, not yet accepted"]
    await rig.hub.broadcasts.decide(b.id, "20101", True, "commune-20101")
    sim = rig.speakers["native-spk-b1"]
    await eventually(lambda: plays(sim, "province-news"))
    assert not plays(rig.speakers["native-spk-c1"], "province-news")  # 20014 did not accept


async def test_an_emergency_preempts_normal_items_everywhere_and_they_resume(rig: Rig) -> None:
    for commune in ("19900", "20101", "20014"):
        rig.gate.add_audio(f"daily-{commune}", 3.0, area=commune)
        await create(rig, f"daily-{commune}", {"areas": [commune]}, owner=commune)
    await eventually(lambda: all(s.current is not None for s in rig.speakers.values()))
    rig.gate.add_audio("flood", 1.0, level="emergency")
    await create(rig, "flood", {"areas": ["46"]}, level="emergency")
    await eventually(lambda: all(plays(s, "flood") for s in rig.speakers.values()))
    for sim in rig.speakers.values():
        normal = next(p for p in sim.truth.plays if p.content_id.startswith("daily"))
        assert normal.outcome == "interrupted"
        assert normal.ended_at <= plays(sim, "flood")[0].started_at
    # after the emergency, each interrupted item plays again, once
    await eventually(lambda: all(
        sum(p.content_id.startswith("daily") for p in s.truth.plays) == 2
        for s in rig.speakers.values()), timeout=10)
    for sim in rig.speakers.values():
        flood = plays(sim, "flood")[0]
        again = [p for p in sim.truth.plays if p.content_id.startswith("daily")][1]
        assert flood.ended_at is not None
        assert again.started_at >= flood.ended_at
        assert len(plays(sim, "flood")) == 1


async def test_an_operator_stop_ends_a_bulletin_for_good(rig: Rig) -> None:
    rig.gate.add_audio("long-news", 3.0, area="20101")
    await create(rig, "long-news", {"areas": ["20101"]}, owner="20101")
    sim = rig.speakers["native-spk-b1"]
    await eventually(lambda: sim.current is not None)
    assert (await rig.hub.execute("native-spk-b1", parse_command({"type": "stop"}))).ok
    await eventually(lambda: plays(sim, "long-news")[0].outcome == "stopped")
    await asyncio.sleep(1.5)  # a resume would be queued 0.5 s after the cut
    assert len(plays(sim, "long-news")) == 1
    assert sim.current is None


async def test_unapproved_content_cannot_be_scheduled(rig: Rig) -> None:
    rig.gate.add_audio("draft", 0.3, approved=False)
    with pytest.raises(InvalidInput, match="not approved"):
        await create(rig, "draft", {"areas": ["19900"]}, owner="19900")


async def test_content_altered_after_scheduling_is_never_dispatched(rig: Rig) -> None:
    rig.gate.add_audio("later", 0.3, area="19900")
    start = datetime.now(UTC) + timedelta(seconds=2)
    b = await create(rig, "later", {"devices": ["native-spk-a1"]}, owner="19900",
                     schedule=Schedule(kind="at", at=start))
    rig.gate.alter("later", title="edited after approval")
    dispatcher = rig.hub.dispatcher
    assert dispatcher is not None
    await eventually(lambda: _counts(dispatcher, b.id), timeout=8)
    assert await dispatcher.counts(b.id) == {"refused": 1}
    assert rig.speakers["native-spk-a1"].truth.commands == []


async def _counts(dispatcher: object, broadcast_id: str) -> bool:
    counts = await dispatcher.counts(broadcast_id)  # type: ignore[attr-defined]
    return bool(counts) and "pending" not in counts


async def test_a_device_offline_at_dispatch_gets_the_command_once_when_back(rig: Rig) -> None:
    sim = rig.speakers["native-spk-c1"]
    await sim.inject(Fault.POWER_LOSS)
    rig.gate.add_audio("notice", 0.3, area="20014")
    await create(rig, "notice", {"areas": ["20014"]}, owner="20014")
    dispatcher = rig.hub.dispatcher
    assert dispatcher is not None
    await eventually(lambda: _has_retry(dispatcher))
    await sim.clear(Fault.POWER_LOSS)
    await eventually(lambda: plays(sim, "notice"), timeout=10)
    assert len(plays(sim, "notice")) == 1


async def _has_retry(dispatcher: object) -> bool:
    return "retry" in await dispatcher.counts()  # type: ignore[attr-defined]


async def test_a_broadcast_breaking_policy_is_refused_naming_every_rule(
        rig: Rig, tmp_path: Path) -> None:
    from ttcs.core.schedule.service import BroadcastService

    hanoi = BroadcastService(rig.hub.store, rig.hub.registry, rig.gate)  # the shipped sample
    rig.gate.add_audio("long", 20 * 60, area="19900")
    saturday_noon = datetime(2030, 6, 1, 12, 0, tzinfo=TZ)
    b = Broadcast(id="bc-long", content_id="long", targets=Targets(areas=["19900"]),
                  schedule=Schedule(kind="at", at=saturday_noon))
    with pytest.raises(PolicyViolation) as info:
        await hanoi.create(b, "operator", owner_area="19900")
    rules = {v.rule for v in info.value.violations}
    assert rules == {"weekdays", "session_windows", "max_minutes_per_session"}
    message = str(info.value)
    assert "Saturday 2030-06-01 is not an allowed day" in message
    assert "more than the 15 min a session may last" in message


async def test_explain_shows_where_each_item_went_and_why(rig: Rig) -> None:
    rig.gate.add_audio("p1", 60, level="priority", area="19900")
    rig.gate.add_audio("n1", 60, area="19900")
    at = datetime.now(UTC) + timedelta(hours=2)
    await create(rig, "n1", {"areas": ["19900"]}, owner="19900",
                 schedule=Schedule(kind="at", at=at))
    await create(rig, "p1", {"areas": ["19900"]}, owner="19900",
                 schedule=Schedule(kind="at", at=at))
    assert rig.hub.broadcasts is not None
    items = await rig.hub.broadcasts.explain("native-spk-a1", at)
    assert [(i.content_id, i.level) for i in items] == [("p1", "priority"), ("n1", "normal")]
    assert items[0].reason == "priority: at the requested time"
    assert items[1].reason.startswith("normal: moved")
    assert "after priority item p1" in items[1].reason


async def test_merging_communes_carries_their_policy_and_schedules(rig: Rig) -> None:
    from ttcs.core.schedule.policy import Policy

    assert rig.hub.broadcasts is not None
    rig.gate.add_audio("weekly", 60, area="20101")
    at = datetime.now(UTC) + timedelta(days=1)
    b = await create(rig, "weekly", {"areas": ["20101"]}, owner="20101",
                     schedule=Schedule(kind="at", at=at))
    await rig.hub.broadcasts.policies.set("20101", Policy(max_minutes_per_session=30), "t")
    await rig.hub.registry.merge_areas(["20101"], "20014", "province")
    assert (await rig.hub.broadcasts.get(b.id)).targets.areas == ["20014"]
    assert (await rig.hub.broadcasts.policies.explicit())["20014"].max_minutes_per_session == 30
    items = await rig.hub.broadcasts.explain("native-spk-b1", at)  # its device moved too
    assert [i.broadcast_id for i in items] == [b.id]
    assert items[0].start is not None
