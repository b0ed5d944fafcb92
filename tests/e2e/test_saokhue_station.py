"""The Sao Khuê plugin against its station simulator over real Mosquitto brokers (anonymous,
and TLS with logins): real-time commands, the device-side schedule, proof of play and missed
slots, every fault of the simulator."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.conftest import SAMPLE_AREAS
from tests.support.brokers import Mosquitto
from tests.support.media import MediaServer
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.errors import AuthFailed, DeviceTimeout, DeviceUnreachable
from ttcs.core.hub import Hub
from ttcs.core.playlog import PlayFilter, PlayLog
from ttcs.plugins.saokhue.driver import BUS_KEY
from ttcs.schemas import (
    Activity,
    AlarmEvent,
    CommandResult,
    CommandStatus,
    Connectivity,
    ConnectivityEvent,
    Device,
    DeviceKind,
    DeviceSpec,
    Event,
    PlayEvent,
    PlayPhase,
    PowerSource,
    parse_command,
    utcnow,
)
from ttcs.simulators.base import Fault
from ttcs.simulators.saokhue_station import SaoKhueStation

AUDIO = b"RIFF-ban-tin-sang" * 64


def serial() -> str:
    return f"SKR-{uuid.uuid4().hex[:10].upper()}"


@dataclass
class Rig:
    hub: Hub
    broker_url: str
    media: MediaServer
    events: list[Event] = field(default_factory=list)
    stations: list[SaoKhueStation] = field(default_factory=list)

    async def station(self, *, heartbeat: float = 30.0, config: dict[str, Any] | None = None,
                      **options: Any) -> tuple[SaoKhueStation, Device]:
        """Start a station, register it from its own description, wait until it is online."""
        sim = SaoKhueStation(serial(), self.broker_url, heartbeat=heartbeat, **options)
        await sim.start()
        self.stations.append(sim)
        registration = sim.registration()
        device = await self.hub.registry.add_device(DeviceSpec(
            plugin=registration["plugin"], kind=registration["kind"], area_code="19900",
            config={**registration["config"], **(config or {})}), "test")
        await self.hub.supervise(device)
        await eventually(lambda: self.online(device))
        return sim, device

    def connectivity(self, device: Device) -> Connectivity:
        return self.hub.supervisors[device.id].connectivity

    def online(self, device: Device) -> bool:
        return self.connectivity(device) is Connectivity.ONLINE

    def went(self, device: Device, state: Connectivity) -> int:
        """How often the hub saw the device change to ``state`` (brief changes included)."""
        return sum(1 for e in self.events if isinstance(e, ConnectivityEvent)
                   and e.device_id == device.id and e.current is state)

    async def run(self, device: Device, **command: Any) -> CommandResult:
        return await self.hub.execute(device.id, parse_command(command))

    def plays(self, device: Device, phase: PlayPhase | None = None) -> list[PlayEvent]:
        return [e for e in self.events if isinstance(e, PlayEvent) and e.device_id == device.id
                and (phase is None or e.phase is phase)]

    def media_ref(self, name: str = "ban-tin.wav", data: bytes = AUDIO, *,
                  claimed: bytes | None = None, seconds: float = 0.3) -> dict[str, Any]:
        return {**self.media.ref(name, data, "audio/wav", claimed=claimed), "duration": seconds}

    def bus(self) -> Any:
        return self.hub.transports._shared[BUS_KEY + self.broker_url]


@pytest.fixture
async def media() -> AsyncIterator[MediaServer]:
    server = await MediaServer().start()
    yield server
    await server.stop()


async def _rig(settings: Settings, broker_url: str, media: MediaServer) -> Rig:
    hub = Hub(settings.model_copy(update={"mqtt_url": broker_url}))
    rig = Rig(hub, broker_url, media)
    hub.bus.subscribe(rig.events.append)
    await hub.start()
    await hub.registry.import_areas(SAMPLE_AREAS, "test")
    return rig


@pytest.fixture
async def rig(settings: Settings, mosquitto: Mosquitto, media: MediaServer
              ) -> AsyncIterator[Rig]:
    rig = await _rig(settings, mosquitto.url(), media)
    yield rig
    await rig.hub.stop()
    for sim in rig.stations:
        await sim.stop()


# -- identity and status ------------------------------------------------------------------------


async def test_registration_keys_the_station_by_the_serial_in_its_retained_info(
        rig: Rig) -> None:
    sim, device = await rig.station()
    assert (device.serial, device.vendor, device.model, device.firmware) == (
        sim.serial, "Sao Khuê Radio", "SKR-4G30", "SKR4G_2.3.1")
    assert device.mac == sim.mac
    assert "schedule.local" in device.capabilities and "audio.play" in device.capabilities


async def test_a_hub_that_starts_after_the_station_asks_it_for_its_state(
        settings: Settings, mosquitto: Mosquitto, media: MediaServer, rig: Rig) -> None:
    sim, device = await rig.station()
    await rig.run(device, type="set_volume", volume=44)
    await rig.hub.stop()  # the heartbeat is not retained: a new hub has not heard one
    again = await _rig(settings, mosquitto.url(), media)
    try:
        await again.hub.supervise(await again.hub.registry.get_device(device.id))
        supervisor = again.hub.supervisors[device.id]
        await eventually(lambda: supervisor.connectivity is Connectivity.ONLINE)
        status = await eventually(lambda: supervisor.status if supervisor.status
                                  and supervisor.status.volume is not None else None)
        assert status.volume == 44
        assert "hoi_tt" in [c["type"] for c in sim.truth.commands]
    finally:
        await again.hub.stop()


async def test_a_heartbeat_becomes_the_devices_status(rig: Rig) -> None:
    sim, device = await rig.station()
    status = await rig.hub.read_status(device.id)
    assert status.connectivity is Connectivity.ONLINE
    assert (status.volume, status.firmware) == (sim.volume, sim.firmware)
    assert status.signal == -113 + 2 * sim.csq
    assert status.power_source is PowerSource.MAINS and status.activity is Activity.IDLE
    assert status.telemetry["ip"] == sim.ip and status.telemetry["csq"] == sim.csq


# -- real-time commands -------------------------------------------------------------------------


async def test_media_is_fetched_checked_and_played_with_proof_of_play(rig: Rig) -> None:
    sim, device = await rig.station()
    result = await rig.run(device, type="play", media=rig.media_ref(), content_id="ct-sang",
                           broadcast_id="bc-sang", volume=64, level="priority")
    assert result.status is CommandStatus.ACCEPTED
    assert result.data["schedule_id"] == result.command_id  # the station's id for the item
    play = await eventually(lambda: next((p for p in sim.truth.plays
                                          if p.outcome == "finished"), None))
    assert (play.content_id, play.broadcast_id, play.level, play.volume) == (
        "ct-sang", "bc-sang", "priority", 64)
    await eventually(lambda: rig.plays(device, PlayPhase.FINISHED))
    started, finished = rig.plays(device)
    assert (started.phase, finished.phase) == (PlayPhase.STARTED, PlayPhase.FINISHED)
    assert {e.command_id for e in (started, finished)} == {result.command_id}
    assert {e.content_id for e in (started, finished)} == {"ct-sang"}


async def test_altered_media_is_refused_by_the_station_and_never_played(rig: Rig) -> None:
    sim, device = await rig.station()
    ref = rig.media_ref("altered.wav", b"not what was approved", claimed=AUDIO)
    result = await rig.run(device, type="play", media=ref, content_id="ct-altered")
    assert (result.status, result.code) == (CommandStatus.REJECTED, "checksum_mismatch")
    assert sim.truth.plays == []
    assert [r.code for r in sim.truth.rejections] == ["sai_ma_kiem"]


async def test_media_that_cannot_be_fetched_fails_and_the_same_key_is_tried_again(
        rig: Rig) -> None:
    sim, device = await rig.station()
    ref = rig.media_ref("later.wav")
    rig.media.files.pop("later.wav")  # not served yet
    command = {"type": "play", "media": ref, "content_id": "ct-later",
               "idempotency_key": "play-later"}
    first = await rig.run(device, **command)
    assert (first.status, first.code) == (CommandStatus.FAILED, "media_unavailable")
    rig.media.ref("later.wav", AUDIO, "audio/wav")
    again = await rig.run(device, **command)
    assert again.status is CommandStatus.ACCEPTED
    third = await rig.run(device, **command)
    assert third.status is CommandStatus.ACCEPTED
    assert [p.content_id for p in sim.truth.plays] == ["ct-later"]


async def test_stop_by_content_stops_only_that_content(rig: Rig) -> None:
    sim, device = await rig.station(stream_seconds=30)
    await rig.run(device, type="play", stream_url="http://127.0.0.1:9/live", content_id="ct-a")
    play = await eventually(lambda: sim.playing)
    assert (await rig.run(device, type="stop", content_id="ct-other")).ok
    assert sim.playing is play and play.record.outcome == "playing"
    assert (await rig.run(device, type="stop", content_id="ct-a")).ok
    assert play.record.outcome == "stopped"
    interrupted = await eventually(lambda: rig.plays(device, PlayPhase.INTERRUPTED))
    assert interrupted[0].detail == "stopped"


async def test_a_test_tone_plays_on_the_station(rig: Rig) -> None:
    sim, device = await rig.station()
    result = await rig.run(device, type="test_tone", seconds=0.2, frequency=800)
    assert result.status is CommandStatus.ACCEPTED
    tone = await eventually(lambda: next((p for p in sim.truth.plays
                                          if p.outcome == "finished"), None))
    assert tone.source == "tone:800Hz"


async def test_a_reboot_command_restarts_the_station_and_it_comes_back(rig: Rig) -> None:
    sim, device = await rig.station()
    assert (await rig.run(device, type="reboot")).status is CommandStatus.ACCEPTED
    await eventually(lambda: rig.went(device, Connectivity.OFFLINE), timeout=10)
    await eventually(lambda: rig.online(device), timeout=10)
    assert (await rig.run(device, type="set_volume", volume=33)).ok


async def test_a_command_needing_a_capability_the_station_lacks_never_reaches_it(
        rig: Rig) -> None:
    from ttcs.core.errors import UnsupportedCommand

    sim, device = await rig.station()
    with pytest.raises(UnsupportedCommand):
        await rig.run(device, type="show", text="Xin chào")
    # (the only thing the station may have heard is the hub asking for a heartbeat)
    assert {c["type"] for c in sim.truth.commands} <= {"hoi_tt"}


async def test_garbage_in_a_command_is_answered_with_sai_lenh(rig: Rig) -> None:
    from ttcs.plugins.saokhue.protocol import down_topic

    sim, _ = await rig.station()
    connection = rig.bus().connection
    await connection.publish(down_topic(sim.serial), '{"msg_id": "m-bad", "lenh": "phat"}')
    await eventually(lambda: sim.truth.rejections)
    assert sim.truth.rejections[0].code == "sai_lenh"


async def test_an_expired_command_is_refused_by_the_station_clock(rig: Rig) -> None:
    sim, device = await rig.station(clock_offset=600)  # the station's clock runs ahead
    await eventually(lambda: abs(sim.clock_offset.total_seconds()) < 2)  # the hub set it
    expired = (utcnow() - timedelta(seconds=30)).isoformat()
    result = await rig.run(device, type="set_volume", volume=5, expires_at=expired)
    assert (result.status, result.code) == (CommandStatus.REJECTED, "expired")
    assert sim.volume != 5


async def test_a_station_clock_that_is_off_is_set_from_the_hub(rig: Rig) -> None:
    sim, device = await rig.station(heartbeat=0.5, clock_offset=-300)
    await eventually(lambda: abs(sim.clock_offset.total_seconds()) < 2)
    assert [c["type"] for c in sim.truth.commands].count("dong_bo_gio") == 1


async def test_a_skew_a_probe_saw_is_corrected_though_the_probe_stopped_at_once(
        rig: Rig) -> None:
    sim = SaoKhueStation(serial(), rig.broker_url, heartbeat=30.0, clock_offset=600)
    await sim.start()
    rig.stations.append(sim)
    config = rig.hub.registry.validate_config("saokhue", DeviceKind.IP_SPEAKER,
                                              sim.registration()["config"])
    await rig.hub.probe("saokhue", DeviceKind.IP_SPEAKER, config)  # the hub meets the station
    await eventually(lambda: rig.bus().channel(sim.serial).heartbeat)
    # this probe's driver sees the skew at start and is stopped a moment later; the correction
    # it began is the bus's, so it still reaches the station
    await rig.hub.probe("saokhue", DeviceKind.IP_SPEAKER, config)
    await eventually(lambda: abs(sim.clock_offset.total_seconds()) < 2)
    assert [c["type"] for c in sim.truth.commands].count("dong_bo_gio") == 1


# -- the device-side schedule -------------------------------------------------------------------


def _entry(rig: Rig, start: datetime, *, content: str = "ct-lich", broadcast: str = "bc-lich",
           seconds: float = 0.3, data: bytes = AUDIO, claimed: bytes | None = None,
           **extra: Any) -> dict[str, Any]:
    name = f"{content}-{start.timestamp()}.wav"
    return {"id": f"{broadcast}.{start.timestamp():.0f}", "content_id": content,
            "broadcast_id": broadcast, "start": start.isoformat(),
            "media": rig.media_ref(name, data, claimed=claimed, seconds=seconds), **extra}


async def test_a_synced_schedule_is_stored_on_the_station_and_plays_at_its_slot(
        rig: Rig) -> None:
    sim, device = await rig.station()
    slot = (utcnow() + timedelta(seconds=3)).replace(microsecond=0)
    result = await rig.run(device, type="sync_schedule",
                           entries=[_entry(rig, slot, volume=45, repeat=2)])
    assert result.status is CommandStatus.DONE
    (row,) = sim.schedule
    assert result.data["schedule_ids"] == [row.ma_lich]
    local = slot.astimezone(sim_zone())
    assert (row.tu_ngay, row.den_ngay, row.thu, row.gio) == (
        local.date().isoformat(), local.date().isoformat(), [local.isoweekday() + 1],
        [local.strftime("%H:%M:%S")])
    assert (row.lap, row.vol, row.ma_ct) == (2, 45, "bc-lich")
    play = await eventually(lambda: next(iter(sim.truth.plays), None), timeout=10)
    assert play.started_at >= slot  # never before its slot, by the station's clock
    assert play.started_at - slot < timedelta(seconds=30)  # and at that slot, not another
    assert (play.content_id, play.volume) == ("ct-lich", 45)
    started = (await eventually(lambda: rig.plays(device, PlayPhase.STARTED)))[0]
    assert (started.content_id, started.broadcast_id, started.command_id) == (
        "ct-lich", "bc-lich", None)
    status = await rig.hub.read_status(device.id)
    assert status.telemetry["schedule_items"] == 1
    assert status.telemetry["schedule_version"] == result.data["schedule_version"]


def sim_zone() -> Any:
    from ttcs.plugins.saokhue.schedule import device_zone

    return device_zone(7)


async def test_a_slot_missed_without_power_is_reported_and_logged_as_failed(
        rig: Rig) -> None:
    sim, device = await rig.station()
    slot = (utcnow() + timedelta(seconds=2)).replace(microsecond=0)
    assert (await rig.run(device, type="sync_schedule",
                          entries=[_entry(rig, slot, content="ct-mat-dien")])).ok
    await sim.inject(Fault.POWER_LOSS)
    await eventually(lambda: rig.connectivity(device) is Connectivity.OFFLINE)
    await eventually(lambda: utcnow() > slot + timedelta(seconds=0.5), timeout=10)
    await sim.clear(Fault.POWER_LOSS)
    await eventually(lambda: rig.online(device))
    entries = await eventually(lambda: _log(rig, device, PlayPhase.FAILED), timeout=10)
    (missed,) = entries
    assert (missed.content_id, missed.broadcast_id) == ("ct-mat-dien", "bc-lich")
    assert missed.detail is not None and missed.detail.startswith(
        "missed: the station had no power")
    assert missed.device_time == slot
    assert sim.truth.plays == []


async def _log(rig: Rig, device: Device, phase: PlayPhase) -> list[Any]:
    entries = await PlayLog(rig.hub.store).entries(PlayFilter(device_id=device.id))
    return [e for e in entries if e.phase is phase]


async def test_a_station_cut_off_from_the_network_still_plays_its_schedule_and_reports_later(
        rig: Rig) -> None:
    sim, device = await rig.station()
    slot = (utcnow() + timedelta(seconds=2)).replace(microsecond=0)
    assert (await rig.run(device, type="sync_schedule",
                          entries=[_entry(rig, slot, content="ct-mat-song")])).ok
    await sim.inject(Fault.OFFLINE)
    await eventually(lambda: rig.connectivity(device) is Connectivity.OFFLINE)
    play = await eventually(lambda: next((p for p in sim.truth.plays
                                          if p.outcome == "finished"), None), timeout=10)
    assert rig.plays(device) == []  # nothing could be said while the link was down
    await sim.clear(Fault.OFFLINE)
    finished = await eventually(lambda: _log(rig, device, PlayPhase.FINISHED), timeout=10)
    assert finished[0].content_id == "ct-mat-song"
    assert finished[0].device_time is not None
    assert abs(finished[0].device_time - play.ended_at) < timedelta(seconds=1.5)
    assert finished[0].received_at - play.ended_at > timedelta(0)  # delivered afterwards


async def test_a_schedule_with_altered_media_is_refused_and_the_old_one_kept(rig: Rig) -> None:
    sim, device = await rig.station()
    later = utcnow() + timedelta(hours=2)
    assert (await rig.run(device, type="sync_schedule",
                          entries=[_entry(rig, later, content="ct-good")])).ok
    kept = list(sim.schedule)
    bad = _entry(rig, later + timedelta(hours=1), content="ct-bad", data=b"forged",
                 claimed=b"what the approver heard")
    result = await rig.run(device, type="sync_schedule",
                           entries=[_entry(rig, later, content="ct-good"), bad])
    assert (result.status, result.code) == (CommandStatus.REJECTED, "checksum_mismatch")
    assert sim.schedule == kept


async def test_a_repeated_sync_key_installs_the_schedule_once(rig: Rig) -> None:
    sim, device = await rig.station()
    entry = _entry(rig, utcnow() + timedelta(hours=3))
    for _ in range(2):
        result = await rig.run(device, type="sync_schedule", entries=[entry],
                               idempotency_key="sync-once")
        assert result.ok
    assert len(sim.schedule_history) == 1


async def test_daily_slots_become_one_row_with_a_date_range_and_a_time_list(rig: Rig) -> None:
    sim, device = await rig.station()
    zone = sim_zone()
    first = datetime.now(zone).replace(hour=6, minute=30, second=0, microsecond=0) + \
        timedelta(days=1)
    starts = [first + timedelta(days=d, hours=h) for d in range(5) for h in (0, 11)]
    entries = [{**_entry(rig, s), "media": _entry(rig, first)["media"]} for s in starts]
    assert (await rig.run(device, type="sync_schedule", entries=entries)).ok
    (row,) = sim.schedule
    assert (row.tu_ngay, row.den_ngay) == (first.date().isoformat(),
                                           (first + timedelta(days=4)).date().isoformat())
    assert row.gio == ["06:30:00", "17:30:00"] and len(row.thu) == 5


# -- faults -------------------------------------------------------------------------------------


async def test_a_hung_station_times_out_and_goes_offline_by_missed_heartbeats(
        rig: Rig) -> None:
    sim, device = await rig.station(heartbeat=0.5)
    await sim.inject(Fault.HANG)
    with pytest.raises(DeviceTimeout):
        await rig.run(device, type="set_volume", volume=10)
    await eventually(lambda: rig.connectivity(device) is Connectivity.OFFLINE)
    assert rig.bus().channel(sim.serial).presence.on == 1  # the broker still sees it
    with pytest.raises(DeviceUnreachable):
        await rig.run(device, type="set_volume", volume=11)
    await sim.clear(Fault.HANG)
    await eventually(lambda: rig.online(device))
    assert (await rig.run(device, type="set_volume", volume=12)).ok
    assert [v for _, v in sim.truth.volume_changes] == [12]


async def test_one_watchdog_and_one_subscription_serve_every_station_of_a_broker(
        rig: Rig) -> None:
    stations = [await rig.station(heartbeat=0.5) for _ in range(3)]
    watchdogs = [t for t in asyncio.all_tasks() if t.get_name() == "saokhue-watchdog"]
    assert len(watchdogs) == 1
    subscriptions = rig.bus().connection._subs
    assert [f for f in subscriptions if f.startswith("skr/")] == ["skr/v2/up/+/+"]
    (hung, _), (other, other_device), _ = stations
    await hung.inject(Fault.HANG)  # one station hanging leaves the others as they were
    for volume in (20, 21, 22):
        assert (await rig.run(other_device, type="set_volume", volume=volume)).ok
    assert other.volume == 22


async def test_a_dropped_connection_fires_the_will_and_the_station_comes_back(
        rig: Rig) -> None:
    sim, device = await rig.station()
    await sim.inject(Fault.DROP_CONNECTION)
    await eventually(lambda: rig.went(device, Connectivity.OFFLINE))
    await eventually(lambda: rig.online(device), timeout=10)
    assert (await rig.run(device, type="set_volume", volume=40)).ok


async def test_power_loss_with_battery_is_reported_as_battery_power(rig: Rig) -> None:
    sim, device = await rig.station(heartbeat=0.3)
    await sim.inject(Fault.POWER_LOSS_BATTERY)
    status = await eventually(lambda: _status_with(rig, device, PowerSource.BATTERY))
    assert "on_battery" in status.faults and status.battery is not None
    assert rig.online(device)
    await sim.clear(Fault.POWER_LOSS_BATTERY)
    await eventually(lambda: _status_with(rig, device, PowerSource.MAINS))


async def _status_with(rig: Rig, device: Device, source: PowerSource) -> Any:
    status = await rig.hub.read_status(device.id)
    return status if status.power_source is source else None


async def test_a_reboot_into_new_firmware_and_a_new_ip_keeps_the_identity(rig: Rig) -> None:
    sim, device = await rig.station()
    old_ip = sim.ip
    await sim.inject(Fault.REBOOT, firmware="SKR4G_3.0.0")
    stored = await eventually(lambda: _firmware(rig, device, "SKR4G_3.0.0"), timeout=10)
    assert (stored.id, stored.serial) == (device.id, device.serial)
    status = await eventually(lambda: _ip_changed(rig, device, old_ip))
    assert status.telemetry["ip"] == sim.ip


async def _firmware(rig: Rig, device: Device, wanted: str) -> Device | None:
    stored = await rig.hub.registry.get_device(device.id)
    return stored if stored.firmware == wanted else None


async def _ip_changed(rig: Rig, device: Device, old: str) -> Any:
    status = await rig.hub.read_status(device.id)
    return status if status.telemetry.get("ip") not in (None, old) else None


async def test_a_slow_station_answers_late_and_a_retry_is_not_acted_on_twice(
        rig: Rig) -> None:
    sim, device = await rig.station()
    await sim.inject(Fault.SLOW, delay=4.0)  # beyond the hub's 3 s command timeout
    with pytest.raises(DeviceTimeout):
        await rig.run(device, type="set_volume", volume=27, idempotency_key="slow-1")
    await eventually(lambda: sim.volume == 27, timeout=10)  # it did act, late
    await sim.clear(Fault.SLOW)
    assert (await rig.run(device, type="set_volume", volume=27, idempotency_key="slow-1")).ok
    assert [v for _, v in sim.truth.volume_changes] == [27]


async def test_garbage_from_the_station_is_counted_and_nothing_breaks(rig: Rig) -> None:
    sim, device = await rig.station()
    await sim.inject(Fault.GARBAGE)
    with pytest.raises(DeviceTimeout):  # the ack is garbage: no answer the hub can read
        await rig.run(device, type="set_volume", volume=31)
    assert rig.bus().channel(sim.serial).bad_payloads > 0
    await sim.clear(Fault.GARBAGE)
    assert (await rig.run(device, type="set_volume", volume=32)).ok


async def test_a_playback_error_is_reported_as_a_failed_play(rig: Rig) -> None:
    sim, device = await rig.station()
    await sim.inject(Fault.PLAYBACK_ERROR)
    await rig.run(device, type="play", media=rig.media_ref(seconds=1), content_id="ct-hong")
    failed = await eventually(lambda: rig.plays(device, PlayPhase.FAILED))
    assert failed[0].content_id == "ct-hong"
    assert sim.truth.plays[0].outcome == "failed"


async def test_an_opened_cabinet_raises_and_clears_the_tamper_alarm(rig: Rig) -> None:
    sim, device = await rig.station()
    await sim.inject(Fault.TAMPER)
    await eventually(lambda: _alarms(rig, device) == [True])
    await sim.clear(Fault.TAMPER)
    await eventually(lambda: _alarms(rig, device) == [True, False])


def _alarms(rig: Rig, device: Device) -> list[bool]:
    return [e.raised for e in rig.events if isinstance(e, AlarmEvent)
            and e.device_id == device.id and e.code == "tamper"]


async def test_an_unregistered_station_announcing_itself_is_discovered(rig: Rig) -> None:
    sim = SaoKhueStation(serial(), rig.broker_url, heartbeat=30)
    await sim.start()
    rig.stations.append(sim)
    found = await eventually(lambda: _discovered(rig, sim.serial))
    assert (found.plugin, found.info.vendor, found.config) == (
        "saokhue", "Sao Khuê Radio", {"serial": sim.serial})


async def _discovered(rig: Rig, wanted: str) -> Any:
    return next((d for d in await rig.hub.registry.list_discovered()
                 if d.info.serial == wanted), None)


# -- TLS and logins -----------------------------------------------------------------------------

HUB_LOGIN = ("hub", "hub-secret-9f2")
STATION_PASSWORD = "station-secret-41c"


@pytest.fixture(scope="module")
def secure_broker() -> Iterator[tuple[Mosquitto, str]]:
    station = serial()
    broker = Mosquitto(users={HUB_LOGIN[0]: HUB_LOGIN[1], station: STATION_PASSWORD},
                       tls=True).start()
    yield broker, station
    broker.stop()


@pytest.fixture
async def secure(settings: Settings, secure_broker: tuple[Mosquitto, str], media: MediaServer
                 ) -> AsyncIterator[tuple[Rig, SaoKhueStation]]:
    broker, station_serial = secure_broker
    rig = await _rig(settings, broker.url(*HUB_LOGIN), media)
    sim = SaoKhueStation(station_serial, broker.url(station_serial, STATION_PASSWORD),
                         heartbeat=30, hub_login=HUB_LOGIN)
    await sim.start()
    rig.stations.append(sim)
    # the serial's retained goodbye is from the previous test: wait for the hub to hear hello
    await eventually(lambda: _presence(rig, sim.serial) == 1)
    yield rig, sim
    await rig.hub.stop()
    await sim.stop()


def _presence(rig: Rig, station: str) -> int | None:
    presence = rig.bus().channel(station).presence
    return None if presence is None else presence.on


async def _register(rig: Rig, sim: SaoKhueStation, **config: Any) -> Device:
    registration = sim.registration()
    device = await rig.hub.registry.add_device(DeviceSpec(
        plugin="saokhue", kind="ip_speaker", area_code="19900",
        config={**registration["config"], **config}), "test")
    await rig.hub.supervise(device)
    return device


async def test_over_tls_with_logins_the_station_is_registered_and_commanded(
        secure: tuple[Rig, SaoKhueStation]) -> None:
    rig, sim = secure
    device = await _register(rig, sim)
    assert device.config["broker"].startswith("mqtts://")
    assert HUB_LOGIN[1] not in device.model_dump_json()  # the password serialises masked
    await eventually(lambda: rig.online(device))
    assert (await rig.run(device, type="set_volume", volume=48)).ok
    result = await rig.run(device, type="play", media=rig.media_ref(), content_id="ct-tls")
    assert result.status is CommandStatus.ACCEPTED
    assert sim.volume == 48 and sim.truth.plays[0].content_id == "ct-tls"


async def test_a_hub_login_the_broker_refuses_is_an_auth_error(
        secure: tuple[Rig, SaoKhueStation]) -> None:
    rig, sim = secure
    with pytest.raises(AuthFailed, match="refused the credentials") as info:
        await _register(rig, sim, password="not-the-password")
    assert "not-the-password" not in str(info.value)


async def test_a_station_with_a_wrong_password_is_offline_until_it_has_the_right_one(
        secure: tuple[Rig, SaoKhueStation]) -> None:
    rig, sim = secure
    device = await _register(rig, sim)
    await eventually(lambda: rig.online(device))
    await sim.inject(Fault.WRONG_CREDENTIALS)
    await eventually(lambda: rig.connectivity(device) is Connectivity.OFFLINE)
    await eventually(lambda: sim._conn is not None and sim._conn.last_error is not None)
    assert isinstance(sim._conn.last_error, AuthFailed)
    await sim.clear(Fault.WRONG_CREDENTIALS)
    await eventually(lambda: rig.online(device), timeout=10)
    assert (await rig.run(device, type="set_volume", volume=52)).ok
