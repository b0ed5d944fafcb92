"""The ZoneTech wired station end to end: the plugin against the ZA controller simulator
(pymodbus server, real TCP) and its VietCast decoder (real HTTP), through a running hub."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import SAMPLE_AREAS
from tests.support.media import MediaServer
from tests.support.wait import eventually
from ttcs.core.config import AlarmSettings, Settings
from ttcs.core.errors import DeviceTimeout, ProtocolError
from ttcs.core.hub import Hub
from ttcs.schemas import (
    Activity,
    AlarmEvent,
    CommandResult,
    CommandStatus,
    Connectivity,
    ConnectivityEvent,
    Device,
    DeviceSpec,
    DeviceStatusEvent,
    Event,
    PlayEvent,
    PlayPhase,
    PowerSource,
    parse_command,
)
from ttcs.simulators.audio_decoder import AudioDecoder
from ttcs.simulators.base import Fault
from ttcs.simulators.zonetech_controller import ZoneController

KEY = "vc-station-key"
POLL = 0.15


@dataclass
class Station:
    sim: ZoneController
    decoder: AudioDecoder
    controller: Device
    zones: dict[int, Device] = field(default_factory=dict)


@dataclass
class Rig:
    hub: Hub
    media: MediaServer
    events: list[Event] = field(default_factory=list)

    async def station(self, serial: str, *, lines: int = 4, zones: tuple[int, ...] = (1, 2, 3),
                      **config: Any) -> Station:
        decoder = AudioDecoder(f"VC-{serial}", api_key=KEY)
        await decoder.start()
        sim = ZoneController(serial, decoder=decoder, lines=lines)
        await sim.start()
        registration = sim.registration()
        controller = await self.hub.registry.add_device(DeviceSpec(
            plugin=registration["plugin"], kind=registration["kind"], area_code="20101",
            config={**registration["config"], "timeout": 0.5, "decoder_timeout": 0.5,
                    "poll_interval": POLL, **config}), "test")
        await self.hub.supervise(controller)
        station = Station(sim, decoder, controller)
        for reg in sim.children(controller.id):
            if reg["config"]["line"] in zones:
                zone = await self.hub.registry.add_device(DeviceSpec(
                    plugin=reg["plugin"], kind=reg["kind"], area_code="20101",
                    village_code="20101-01", parent_id=reg["parent_id"],
                    config={**reg["config"], "poll_interval": POLL}), "test")
                await self.hub.supervise(zone)
                station.zones[reg["config"]["line"]] = zone
        for device in [controller, *station.zones.values()]:
            await eventually(lambda d=device: self.connectivity(d) is Connectivity.ONLINE)
        self._stations.append(station)
        return station

    def __post_init__(self) -> None:
        self._stations: list[Station] = []

    def connectivity(self, device: Device) -> Connectivity:
        return self.hub.supervisors[device.id].connectivity

    def status(self, device: Device) -> Any:
        return self.hub.supervisors[device.id].status

    async def run(self, device: Device, **command: Any) -> CommandResult:
        return await self.hub.execute(device.id, parse_command(command))

    def alarms(self, code: str) -> list[tuple[str | None, bool]]:
        return [(e.device_id, e.raised) for e in self.events
                if isinstance(e, AlarmEvent) and e.code == code]

    def plays(self, phase: PlayPhase) -> list[PlayEvent]:
        return [e for e in self.events if isinstance(e, PlayEvent) and e.phase is phase]

    async def fresh_status(self, device: Device) -> Any:
        """A status polled after this call (not one already on its way)."""
        seen = len(self.events)
        await eventually(lambda: any(
            isinstance(e, DeviceStatusEvent) and e.device_id == device.id
            for e in self.events[seen:]) or self._poll_count(device, seen) >= 2)
        return self.status(device)

    def _poll_count(self, device: Device, since: int) -> int:
        job = self.hub.poller.job(device.id)
        return job.runs if job else 0

    async def close(self) -> None:
        for station in self._stations:
            await station.sim.stop()
            await station.decoder.stop()


@pytest.fixture
async def rig(settings: Settings, amqtt_url: str) -> AsyncIterator[Rig]:
    settings = settings.model_copy(update={
        "mqtt_url": amqtt_url,
        "alarms": AlarmSettings(debounce=0, check_interval=0.05, offline_after=3600)})
    hub = Hub(settings)
    media = await MediaServer().start()
    r = Rig(hub, media)
    hub.bus.subscribe(r.events.append)
    await hub.start()
    await hub.registry.import_areas(SAMPLE_AREAS, "test")
    yield r
    await hub.stop()
    await r.close()
    await media.stop()


@pytest.fixture
async def station(rig: Rig) -> Station:
    return await rig.station("ZT-0001")


# -- registration and identity ----------------------------------------------------------------


async def test_controller_and_lines_are_registered_by_serial(rig: Rig, station: Station
                                                             ) -> None:
    c = station.controller
    assert (c.serial, c.vendor, c.model, c.firmware, c.kind) == (
        "ZT-0001", "ZoneTech", "ZA-4", "2.4.17", "wired_zone_controller")
    zone = station.zones[2]
    assert (zone.serial, zone.model, zone.kind, zone.parent_id) == (
        "ZT-0001-L2", "ZA-4 line", "wired_zone", c.id)
    assert {d.id for d in await rig.hub.registry.list_devices()} == {
        c.id, *(z.id for z in station.zones.values())}


async def test_a_line_the_controller_does_not_have_is_refused(rig: Rig, station: Station
                                                              ) -> None:
    with pytest.raises(Exception, match="lines 1-4, not 6"):
        await rig.hub.registry.add_device(DeviceSpec(
            plugin="zonetech", kind="wired_zone", area_code="20101",
            parent_id=station.controller.id, config={"line": 6}), "test")


async def test_a_wrong_decoder_key_is_refused_at_registration(rig: Rig) -> None:
    decoder = AudioDecoder("VC-X", api_key=KEY)
    await decoder.start()
    sim = ZoneController("ZT-0009", decoder=decoder)
    await sim.start()
    try:
        config = {**sim.registration()["config"], "decoder_api_key": "wrong"}
        with pytest.raises(Exception, match="refused credentials"):
            await rig.hub.registry.add_device(DeviceSpec(
                plugin="zonetech", kind="wired_zone_controller", area_code="20101",
                config=config), "test")
    finally:
        await sim.stop()
        await decoder.stop()


# -- telemetry --------------------------------------------------------------------------------


async def test_telemetry_through_the_hub_matches_the_simulator(rig: Rig, station: Station
                                                               ) -> None:
    await rig.run(station.controller, type="switch_zones", zones={"2": True})
    status = await rig.hub.read_status(station.controller.id)
    truth = station.sim.telemetry()
    assert status.temperature == truth["temperature"]
    assert status.telemetry["supply_voltage_v"] == truth["supply_voltage"] == 230.4
    assert status.telemetry["output_current_a"] == truth["output_current"] > 0
    assert status.telemetry["uptime_s"] == pytest.approx(truth["uptime"], abs=1)
    assert status.telemetry["lines_on"] == "2"
    assert (status.power_source, status.battery, status.firmware) == (
        PowerSource.MAINS, 100, "2.4.17")
    assert status.volume == station.sim.master == 80
    zone = await rig.hub.read_status(station.zones[2].id)
    assert zone.telemetry["relay_on"] is True
    assert zone.telemetry["line_current_a"] == truth["line_currents"][1]
    assert zone.volume == station.sim.volumes[1] and zone.activity is Activity.IDLE
    off = await rig.hub.read_status(station.zones[1].id)
    assert off.activity is Activity.OFF and off.telemetry["line_current_a"] == 0


# -- commands ---------------------------------------------------------------------------------


async def test_switch_zones_sets_the_relays_in_one_write(rig: Rig, station: Station) -> None:
    result = await rig.run(station.controller, type="switch_zones",
                           zones={"1": True, "3": True})
    assert result.status is CommandStatus.DONE and result.data["lines_on"] == [1, 3]
    assert station.sim.relays == [True, False, True, False]
    result = await rig.run(station.controller, type="switch_zones", zones={"all": False})
    assert station.sim.relays == [False] * 4
    assert [(r["line"], r["on"]) for r in station.sim.truth.relays] == [
        (1, True), (3, True), (1, False), (3, False)]
    bad = await rig.run(station.controller, type="switch_zones", zones={"9": True})
    assert (bad.status, bad.code) == (CommandStatus.REJECTED, "unknown_zone")


async def test_play_on_the_controller_calls_every_line_and_streams(rig: Rig,
                                                                   station: Station) -> None:
    url = rig.media.live("vov1")
    result = await rig.run(station.controller, type="play", stream_url=url,
                           content_id="ct-news", broadcast_id="bc-1", volume=65)
    assert result.status is CommandStatus.DONE and result.data["lines_on"] == [1, 2, 3, 4]
    assert station.sim.relays == [True] * 4 and station.sim.master == 65
    [play] = station.decoder.truth.plays
    assert (play.source, play.content_id) == (url, "ct-news")
    assert sorted(a["line"] for a in station.sim.truth.zone_audio) == [1, 2, 3, 4]
    await eventually(lambda: rig.status(station.controller).activity is Activity.PLAYING)
    assert rig.status(station.controller).current_item == "ct-news"
    await eventually(lambda: all(rig.status(z).activity is Activity.PLAYING
                                 for z in station.zones.values()))
    [started] = rig.plays(PlayPhase.STARTED)
    assert (started.device_id, started.broadcast_id) == (station.controller.id, "bc-1")


async def test_an_emergency_cuts_a_bulletin_and_a_normal_one_does_not_cut_the_emergency(
        rig: Rig, station: Station) -> None:
    await rig.run(station.controller, type="play", stream_url=rig.media.live("thoi-su"),
                  content_id="ct-normal")
    cut = await rig.run(station.controller, type="play", stream_url=rig.media.live("bao"),
                        content_id="ct-storm", level="emergency")
    assert cut.status is CommandStatus.DONE
    later = await rig.run(station.controller, type="play", stream_url=rig.media.live(),
                          content_id="ct-later", level="normal")
    assert (later.status, later.code) == (CommandStatus.REJECTED, "busy")
    assert [(p.content_id, p.outcome) for p in station.decoder.truth.plays] == [
        ("ct-normal", "interrupted"), ("ct-storm", "playing")]
    after = await rig.run(station.controller, type="play", stream_url=rig.media.live("lu"),
                          content_id="ct-flood", level="emergency")
    assert after.status is CommandStatus.DONE  # an equal level cuts what plays


async def test_a_poll_that_asked_the_decoder_before_a_play_does_not_end_that_play(
        rig: Rig, station: Station) -> None:
    # slow Modbus answers: each poll reads the decoder first, then the controller for a
    # while, so plays start between a poll's decoder answer and the end of that poll
    await station.sim.inject(Fault.SLOW, delay=0.06)
    cut = await rig.run(station.controller, type="play", stream_url=rig.media.live("bao"),
                        content_id="ct-storm", level="emergency")
    assert cut.status is CommandStatus.DONE
    for n in range(4):
        later = await rig.run(station.controller, type="play", stream_url=rig.media.live(),
                              content_id=f"ct-later-{n}", level="normal")
        assert (later.status, later.code) == (CommandStatus.REJECTED, "busy")
        await asyncio.sleep(0.2)
    # the emergency is still on air, on every line, and no poll said it ended
    assert [(p.content_id, p.outcome) for p in station.decoder.truth.plays] == [
        ("ct-storm", "playing")]
    assert station.sim.relays == [True, True, True, True]
    assert [e.content_id for e in rig.plays(PlayPhase.INTERRUPTED)] == []


async def test_each_line_is_a_zone_reading_of_the_controller(rig: Rig, station: Station
                                                             ) -> None:
    await rig.run(station.controller, type="switch_zones", zones={"2": True, "4": True})
    status = await rig.hub.read_status(station.controller.id)
    assert {k: v for k, v in status.telemetry.items() if k.startswith("zone.")} == {
        "zone.1": False, "zone.2": True, "zone.3": False, "zone.4": True}
    assert station.sim.truth.zone_changes[-1]["zones"] == {"1": False, "2": True,
                                                           "3": False, "4": True}


async def test_play_on_a_zone_switches_only_that_line(rig: Rig, station: Station) -> None:
    result = await rig.run(station.zones[2], type="play", stream_url=rig.media.live(),
                           content_id="ct-village")
    assert result.status is CommandStatus.DONE
    assert station.sim.relays == [False, True, False, False]
    [audio] = station.sim.truth.zone_audio
    assert (audio["line"], audio["label"], audio["outcome"]) == (2, "ct-village", "playing")
    await eventually(lambda: rig.status(station.zones[2]).activity is Activity.PLAYING)
    assert rig.status(station.zones[1]).activity is Activity.OFF
    assert rig.status(station.zones[2]).current_item == "ct-village"


async def test_the_same_play_twice_plays_once(rig: Rig, station: Station) -> None:
    command = {"type": "play", "stream_url": rig.media.live(), "idempotency_key": "k-1"}
    first = await rig.run(station.controller, **command)
    again = await rig.run(station.controller, **command)
    assert first.data == again.data
    assert len(station.decoder.truth.plays) == 1


async def test_stop_on_the_controller_stops_audio_and_releases_lines(rig: Rig,
                                                                     station: Station) -> None:
    await rig.run(station.controller, type="play", stream_url=rig.media.live(),
                  content_id="ct-1")
    result = await rig.run(station.controller, type="stop")
    assert result.data == {"stopped": True, "lines_on": []}
    assert station.sim.relays == [False] * 4 and station.decoder.current is None
    assert {a["outcome"] for a in station.sim.truth.zone_audio} == {"ended"}
    [ended] = await eventually(lambda: rig.plays(PlayPhase.INTERRUPTED))
    assert (ended.content_id, ended.detail) == ("ct-1", "stopped")


async def test_stop_on_a_zone_stops_the_decoder_with_the_last_line(rig: Rig,
                                                                   station: Station) -> None:
    await rig.run(station.controller, type="switch_zones", zones={"1": True})
    await rig.run(station.zones[2], type="play", stream_url=rig.media.live())
    first = await rig.run(station.zones[2], type="stop")
    assert first.data == {"lines_on": [1], "decoder_stopped": False}
    assert station.decoder.current is not None
    last = await rig.run(station.zones[1], type="stop")
    assert last.data == {"lines_on": [], "decoder_stopped": True}
    assert station.decoder.current is None


async def test_volumes_per_line_and_master(rig: Rig, station: Station) -> None:
    await rig.run(station.zones[3], type="set_volume", volume=35)
    await rig.run(station.controller, type="set_volume", volume=90)
    assert station.sim.volumes[2] == 35 and station.sim.master == 90
    assert (await rig.hub.read_status(station.zones[3].id)).volume == 35
    await rig.run(station.zones[3], type="power", on=True)
    assert station.sim.relays[2] is True


async def test_a_file_that_plays_to_its_end_is_proof_of_play(rig: Rig, station: Station
                                                             ) -> None:
    ref = rig.media.ref("bulletin.mp3", b"\xff\xfb" + bytes(20000), "audio/mpeg")
    ref["duration"] = 0.3
    await rig.run(station.controller, type="play", media=ref, content_id="ct-file")
    [finished] = await eventually(lambda: rig.plays(PlayPhase.FINISHED))
    assert (finished.content_id, finished.device_id) == ("ct-file", station.controller.id)


async def test_lines_a_bulletin_switched_on_drop_when_it_ends(rig: Rig, station: Station
                                                             ) -> None:
    """No line hums between broadcasts: when a play ends by itself the lines it switched on
    drop (as on a stop); a line the operator had on before stays on."""
    await rig.run(station.zones[1], type="power", on=True)
    ref = rig.media.ref("bulletin.mp3", b"\xff\xfb" + bytes(20000), "audio/mpeg")
    ref["duration"] = 0.3
    await rig.run(station.zones[3], type="play", media=ref, content_id="ct-lines")
    assert station.sim.relays == [True, False, True, False]
    await eventually(lambda: rig.plays(PlayPhase.FINISHED))
    await eventually(lambda: station.sim.relays == [True, False, False, False])


async def test_altered_media_is_never_played(rig: Rig, station: Station) -> None:
    ref = rig.media.ref("swapped.mp3", b"evil", "audio/mpeg", claimed=b"approved")
    result = await rig.run(station.controller, type="play", media=ref)
    assert (result.status, result.code) == (CommandStatus.REJECTED, "checksum_mismatch")
    assert station.decoder.truth.plays == [] and station.sim.relays == [False] * 4


# -- faults and children following their parent ------------------------------------------------


async def test_lines_follow_their_controller_offline_and_back(rig: Rig, station: Station
                                                              ) -> None:
    await station.sim.inject(Fault.OFFLINE)
    await eventually(lambda: rig.connectivity(station.controller) is Connectivity.OFFLINE)
    for zone in station.zones.values():
        await eventually(lambda z=zone: rig.connectivity(z) is Connectivity.OFFLINE)
    # a line may have failed its own polls first; once the controller is offline the hub
    # stops asking the lines and names the controller as the reason
    for zone in station.zones.values():
        await eventually(lambda z=zone: station.controller.id in (
            rig.hub.supervisors[z.id].last_error or ""))
    reasons = [e.reason for e in rig.events if isinstance(e, ConnectivityEvent)
               and e.current is Connectivity.OFFLINE and e.device_id in
               {z.id for z in station.zones.values()}]
    assert len(reasons) == len(station.zones)  # each line went offline once
    await station.sim.clear(Fault.OFFLINE)
    await eventually(lambda: rig.connectivity(station.controller) is Connectivity.ONLINE)
    for zone in station.zones.values():
        await eventually(lambda z=zone: rig.connectivity(z) is Connectivity.ONLINE)


async def test_power_loss_drops_the_relays_and_the_station(rig: Rig, station: Station) -> None:
    await rig.run(station.controller, type="play", stream_url=rig.media.live())
    await station.sim.inject(Fault.POWER_LOSS)
    await eventually(lambda: rig.connectivity(station.zones[1]) is Connectivity.OFFLINE)
    assert station.sim.relays == [False] * 4
    assert {a["outcome"] for a in station.sim.truth.zone_audio} == {"power_lost"}
    await station.sim.clear(Fault.POWER_LOSS)
    await eventually(lambda: rig.connectivity(station.zones[1]) is Connectivity.ONLINE)
    assert rig.status(station.zones[1]).activity is Activity.OFF


async def test_on_battery_raises_the_hub_alarm_and_clears_it(rig: Rig, station: Station
                                                             ) -> None:
    await station.sim.inject(Fault.POWER_LOSS_BATTERY)
    await eventually(lambda: (station.controller.id, True) in rig.alarms("on_battery"))
    status = rig.status(station.controller)
    assert status.telemetry["supply_voltage_v"] == 24.6 and "on_battery" in status.faults
    await station.sim.clear(Fault.POWER_LOSS_BATTERY)
    await eventually(lambda: (station.controller.id, False) in rig.alarms("on_battery"))


async def test_amplifier_protection_fails_the_play_and_raises_alarms(rig: Rig,
                                                                     station: Station) -> None:
    await station.sim.inject(Fault.PLAYBACK_ERROR, after=0.1)
    await rig.run(station.controller, type="play", stream_url=rig.media.live())
    cid = station.controller.id
    await eventually(lambda: (cid, True) in rig.alarms("amplifier_protection"))
    await eventually(lambda: (cid, True) in rig.alarms("high_temperature"))
    assert (cid, True) in rig.alarms("amplifier_overtemperature")
    assert rig.status(station.controller).activity is Activity.FAULT
    assert {a["outcome"] for a in station.sim.truth.zone_audio} == {"failed"}
    await station.sim.clear(Fault.PLAYBACK_ERROR)
    await eventually(lambda: (cid, False) in rig.alarms("amplifier_protection"))
    assert rig.alarms("amplifier_protection") == [(cid, True), (cid, False)]


async def test_open_cabinet_is_a_tamper_alarm(rig: Rig, station: Station) -> None:
    await station.sim.inject(Fault.TAMPER)
    await eventually(lambda: (station.controller.id, True) in rig.alarms("tamper"))


async def test_garbage_frames_and_modbus_exceptions_are_protocol_errors(
        rig: Rig, station: Station) -> None:
    for mode in ("frame", "exception"):
        await station.sim.inject(Fault.GARBAGE, mode=mode)
        with pytest.raises(ProtocolError):
            await rig.hub.read_status(station.controller.id)
        await eventually(lambda: rig.connectivity(station.controller) is not
                         Connectivity.ONLINE)
        await station.sim.clear(Fault.GARBAGE)
        await eventually(lambda: rig.connectivity(station.controller) is Connectivity.ONLINE)


async def test_slow_controller_times_out(rig: Rig, station: Station) -> None:
    await station.sim.inject(Fault.SLOW, delay=1.5)
    with pytest.raises(DeviceTimeout):
        await rig.hub.read_status(station.controller.id)


async def test_a_dropped_connection_is_reconnected(rig: Rig, station: Station) -> None:
    endpoint = rig.hub.transports.modbus("127.0.0.1", station.sim.port)
    connects = endpoint.stats.connects
    await station.sim.inject(Fault.DROP_CONNECTION)
    await eventually(lambda: station.sim.dropped == 1)
    await eventually(lambda: endpoint.stats.connects > connects)
    result = await rig.run(station.controller, type="switch_zones", zones={"4": True})
    assert result.status is CommandStatus.DONE and station.sim.relays[3]


async def test_reboot_with_new_firmware_updates_the_registry(rig: Rig, station: Station
                                                             ) -> None:
    await rig.run(station.controller, type="switch_zones", zones={"all": True})
    await station.sim.inject(Fault.REBOOT, firmware="2.5.0")
    await eventually(lambda: rig.status(station.controller).firmware == "2.5.0")
    device = await eventually(lambda: _firmware(rig.hub, station.controller.id, "2.5.0"))
    assert device.serial == "ZT-0001"
    assert station.sim.relays == [False] * 4


async def _firmware(hub: Hub, device_id: str, firmware: str) -> Device | None:
    device = await hub.registry.get_device(device_id)
    return device if device.firmware == firmware else None


async def test_decoder_down_degrades_the_station(rig: Rig, station: Station) -> None:
    await station.decoder.inject(Fault.OFFLINE)
    await eventually(lambda: rig.connectivity(station.controller) is Connectivity.DEGRADED)
    assert "decoder_unreachable" in rig.status(station.controller).faults
    assert rig.connectivity(station.zones[1]) is Connectivity.ONLINE  # the relays still work
    await station.decoder.clear(Fault.OFFLINE)
    await eventually(lambda: rig.connectivity(station.controller) is Connectivity.ONLINE)


async def test_decoder_playback_error_is_a_failed_play(rig: Rig, station: Station) -> None:
    await station.decoder.inject(Fault.PLAYBACK_ERROR, after=0.1)
    await rig.run(station.controller, type="play", stream_url=rig.media.live(),
                  content_id="ct-broken")
    [failed] = await eventually(lambda: rig.plays(PlayPhase.FAILED))
    assert failed.content_id == "ct-broken" and "decoding error" in (failed.detail or "")
    await eventually(lambda: "decoder_error" in rig.status(station.controller).faults)


async def test_one_hung_controller_does_not_delay_another(rig: Rig, station: Station) -> None:
    other = await rig.station("ZT-0002", zones=(1,))
    await station.sim.inject(Fault.HANG)
    await eventually(lambda: rig.connectivity(station.controller) is Connectivity.OFFLINE)
    # while the first hangs, the second keeps being polled and obeys commands
    job = rig.hub.poller.job(other.controller.id)
    assert job is not None
    runs = job.runs
    await eventually(lambda: job.runs >= runs + 5)
    assert rig.connectivity(other.controller) is Connectivity.ONLINE
    result = await rig.run(other.zones[1], type="power", on=True)
    assert result.status is CommandStatus.DONE and other.sim.relays[0]
    assert rig.connectivity(station.zones[1]) is Connectivity.OFFLINE
    await station.sim.clear(Fault.HANG)
    await eventually(lambda: rig.connectivity(station.zones[1]) is Connectivity.ONLINE,
                     timeout=10)
