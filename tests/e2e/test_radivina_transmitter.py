"""The RadiVina FM plugin against the RV-FMT30 simulator and its decoder, over real UDP (SNMP)
and HTTP sockets: status, RF, tuning, zones, play, credentials, every fault, children."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.fm import FmRig, Station, fm_settings
from tests.support.media import MediaServer
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.errors import AuthFailed, DeviceTimeout, PermanentDeviceError, ProtocolError
from ttcs.plugins.radivina import mib
from ttcs.schemas import (
    Activity,
    CommandStatus,
    Connectivity,
    DeviceSpec,
    PowerSource,
    parse_command,
)
from ttcs.simulators.base import Fault


@pytest.fixture
async def station() -> AsyncIterator[Station]:
    s = await Station.start()
    yield s
    await s.stop()


@pytest.fixture
async def rig(settings: Settings, amqtt_url: str, station: Station) -> AsyncIterator[FmRig]:
    r = await FmRig.start(fm_settings(settings, amqtt_url), station)
    yield r
    await r.stop()


async def run(rig: FmRig, device: Any, **command: Any) -> Any:
    return await rig.hub.execute(device.id, parse_command(command))


def polled(rig: FmRig, device: Any, predicate: Any) -> Any:
    """The supervisor's latest status once it satisfies ``predicate``."""
    sup = rig.hub.supervisors[device.id]
    return sup.status if sup.status is not None and predicate(sup.status) else None


# -- registration and status --------------------------------------------------------------------


async def test_transmitter_and_receivers_are_keyed_by_serial(rig: FmRig) -> None:
    tx = rig.transmitter
    assert (tx.serial, tx.vendor, tx.model, tx.firmware, tx.kind) == (
        "RV-0001", "RadiVina", "RV-FMT30", "2.4.1", "fm_transmitter")
    assert {"fm.rf", "fm.tune", "zones.switch", "audio.play"} <= set(tx.capabilities)
    assert [(r.serial, r.kind, r.parent_id) for r in rig.receivers] == [
        ("RV-0001-Z1", "fm_receiver", tx.id), ("RV-0001-Z2", "fm_receiver", tx.id)]


async def test_a_receiver_of_a_missing_zone_is_refused(rig: FmRig) -> None:
    with pytest.raises(PermanentDeviceError, match="no zone 9"):
        await rig.hub.registry.add_device(DeviceSpec(
            plugin="radivina", kind="fm_receiver", area_code="20101",
            parent_id=rig.transmitter.id, config={"zone": 9}), "test")


async def test_polled_telemetry_matches_the_transmitter(rig: FmRig) -> None:
    truth = rig.station.transmitter.state()
    status = await eventually(lambda: polled(rig, rig.transmitter,
                                             lambda s: "vswr" in s.telemetry))
    t = status.telemetry
    assert (t["forward_power_w"], t["reflected_power_w"], t["vswr"]) == (
        truth["forward_w"], truth["reflected_w"], truth["vswr"]) == (25.0, 0.12, 1.15)
    assert t["pa_temperature"] == status.temperature == truth["pa_temperature"]
    assert 55 < status.temperature < 62  # 32 °C ambient + 25 W at 55 % efficiency
    assert (t["frequency_mhz"], t["power_setpoint_w"], t["supply_voltage"]) == (60.5, 25.0, 28.0)
    assert (t["rf_on"], status.activity, status.power_source) == (True, Activity.IDLE,
                                                                  PowerSource.MAINS)
    assert t["zone_count"] == 4 and t["zones_on"] == ""
    assert status.faults == ["audio_silent"]  # carrier on, decoder idle


async def test_receiver_status_is_its_zone_row(rig: FmRig) -> None:
    rx = rig.receivers[1]
    status = await rig.hub.read_status(rx.id)
    assert status.activity is Activity.OFF
    assert (status.telemetry["zone_code"], status.telemetry["zone_name"]) == (
        "1032", "Thôn Phú Lễ")
    assert "last_switched" not in status.telemetry  # not since the agent started


# -- RF and tuning -------------------------------------------------------------------------------


async def test_rf_off_takes_the_carrier_off_the_air_and_on_again(rig: FmRig) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    assert (await run(rig, tx, type="set_rf", on=False)).status is CommandStatus.DONE
    assert not sim.carrier and sim.state()["forward_w"] == 0
    status = await rig.hub.read_status(tx.id)
    assert status.activity is Activity.OFF and status.telemetry["forward_power_w"] == 0
    assert "vswr" not in status.telemetry  # nothing to measure it with
    await run(rig, tx, type="set_rf", on=True)
    assert [(r["on"], r["cause"]) for r in sim.truth.rf] == [
        (True, "power_on"), (False, "snmp_set"), (True, "snmp_set")]


async def test_tune_sets_the_frequency_and_off_raster_is_refused(rig: FmRig) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    result = await run(rig, tx, type="tune", frequency_mhz=57.8)
    assert result.status is CommandStatus.DONE and sim.frequency_khz == 57_800
    refused = await run(rig, tx, type="tune", frequency_mhz=57.805)
    assert (refused.status, refused.code) == (CommandStatus.REJECTED, "snmp_wrongValue")
    assert sim.frequency_khz == 57_800
    assert (await rig.hub.read_status(tx.id)).telemetry["frequency_mhz"] == 57.8


async def test_a_repeated_command_acts_once(rig: FmRig) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    for _ in range(2):
        await run(rig, tx, type="set_rf", on=False, idempotency_key="maintenance-1")
    assert [c["object"] for c in sim.truth.commands] == ["rvFmRfEnable"]


# -- zones ---------------------------------------------------------------------------------------


async def test_switch_zones_keys_the_in_band_codes(rig: FmRig) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    result = await run(rig, tx, type="switch_zones", zones={"1": True, "Chợ Phú Vinh": True})
    assert result.status is CommandStatus.DONE and result.data["zones"] == {"1": True,
                                                                           "3": True}
    assert [(s["zone"], s["sent"]) for s in sim.truth.zone_switches] == [
        (1, "*10311#"), (3, "*10331#")]
    await run(rig, tx, type="switch_zones", zones={"3": False})
    assert sim.truth.zone_switches[-1]["sent"] == "*10330#"
    assert [z["on"] for z in sim.state()["zones"]] == [True, False, False, False]
    status = await rig.hub.read_status(tx.id)
    assert status.telemetry["zones_on"] == "1"


async def test_unknown_zone_is_refused_and_nothing_is_switched(rig: FmRig) -> None:
    result = await run(rig, rig.transmitter, type="switch_zones", zones={"1": True, "9": True})
    assert (result.status, result.code) == (CommandStatus.REJECTED, "unknown_zone")
    assert "Thôn Lương Viện" in (result.detail or "")
    assert rig.station.transmitter.truth.zone_switches == []


async def test_zones_cannot_be_switched_without_the_carrier(rig: FmRig) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    await run(rig, tx, type="set_rf", on=False)
    result = await run(rig, tx, type="switch_zones", zones={"2": True})
    assert (result.status, result.code) == (CommandStatus.REJECTED, "rf_off")
    assert sim.truth.zone_switches == []


async def test_receiver_power_switches_its_own_zone(rig: FmRig) -> None:
    rx, sim = rig.receivers[0], rig.station.transmitter
    assert (await run(rig, rx, type="power", on=True)).status is CommandStatus.DONE
    assert sim.zones[1].on and not sim.zones[2].on
    status = await rig.hub.read_status(rx.id)
    assert status.activity is Activity.IDLE  # on, but nothing is playing
    assert status.telemetry["switch_count"] == 1 and "last_switched" in status.telemetry
    await run(rig, rx, type="power", on=False)
    assert (await rig.hub.read_status(rx.id)).activity is Activity.OFF


# -- play ----------------------------------------------------------------------------------------


async def test_play_feeds_the_stream_into_the_transmitter(media: MediaServer, rig: FmRig
                                                          ) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    await run(rig, tx, type="switch_zones", zones={"2": True})
    result = await run(rig, tx, type="play", stream_url=media.live("fm"), content_id="ct-fm")
    assert result.status is CommandStatus.ACCEPTED
    await eventually(lambda: media.listeners == 1)
    assert sim.state()["audio_source"] == media.live("fm")
    # A poll taken before the decoder reached the stream may still say silent; the first
    # poll after it must not.
    status = await eventually(lambda: polled(
        rig, tx, lambda s: s.current_item == "ct-fm" and "audio_silent" not in s.faults))
    assert status.activity is Activity.PLAYING
    [aired] = sim.on_air()
    assert (aired["source"], aired["zones"], aired["frequency_khz"]) == (
        media.live("fm"), [2], 60_500)
    await run(rig, tx, type="stop")
    await eventually(lambda: rig.plays(tx) == [("started", "ct-fm"), ("interrupted", "ct-fm")])


async def test_play_switches_the_carrier_on_when_it_is_off(media: MediaServer, rig: FmRig
                                                           ) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    await run(rig, tx, type="set_rf", on=False)
    await run(rig, tx, type="play", stream_url=media.live(), content_id="ct-on")
    assert sim.carrier and sim.truth.rf[-1]["cause"] == "snmp_set"
    assert sim.on_air()[0]["label"] == "ct-on"


async def test_approved_media_plays_to_its_end_with_proof_of_play(media: MediaServer,
                                                                  rig: FmRig) -> None:
    tx = rig.transmitter
    ref = media.ref("ban-tin.mp3", b"\xff\xfb" + bytes(4000), "audio/mpeg")
    ref["duration"] = 0.3
    result = await run(rig, tx, type="play", media=ref, content_id="ct-news")
    assert result.status is CommandStatus.ACCEPTED
    await eventually(lambda: rig.plays(tx) == [("started", "ct-news"), ("finished", "ct-news")])
    assert rig.station.decoder.truth.plays[0].outcome == "finished"


async def test_zones_a_bulletin_opened_close_when_it_ends(media: MediaServer, rig: FmRig
                                                          ) -> None:
    """Receivers do not stay open between bulletins: the zone the play switched on goes off
    when the play ends; a zone that was already on (an operator's) stays on."""
    sim = rig.station.transmitter
    first, second = rig.receivers
    await run(rig, first, type="power", on=True)  # zone 1 on before the bulletin
    assert sim.zones[1].on and not sim.zones[2].on
    ref = media.ref("ban-tin.mp3", b"\xff\xfb" + bytes(4000), "audio/mpeg")
    ref["duration"] = 0.3
    for rx in (first, second):
        result = await run(rig, rx, type="play", media=ref, broadcast_id="bc-close",
                           content_id="ct-close")
        assert result.status is CommandStatus.ACCEPTED
    assert sim.zones[1].on and sim.zones[2].on
    await eventually(lambda: rig.plays(second) == [("started", "ct-close"),
                                                    ("finished", "ct-close")])
    await eventually(lambda: not sim.zones[2].on)
    assert sim.zones[1].on
    [aired] = sim.on_air()
    assert aired["zones"] == [1, 2]


async def test_altered_media_is_refused_and_never_played(media: MediaServer, rig: FmRig
                                                         ) -> None:
    ref = media.ref("swapped.mp3", b"tampered", "audio/mpeg", claimed=b"approved")
    result = await run(rig, rig.transmitter, type="play", media=ref)
    assert (result.status, result.code) == (CommandStatus.REJECTED, "checksum_mismatch")
    assert rig.station.decoder.truth.plays == []


async def test_receivers_of_one_broadcast_share_one_play(media: MediaServer, rig: FmRig
                                                         ) -> None:
    sim = rig.station.transmitter
    for rx in rig.receivers:
        result = await run(rig, rx, type="play", stream_url=media.live("bc"),
                           broadcast_id="bc-7", content_id="ct-bc")
        assert result.status is CommandStatus.ACCEPTED
    assert len(rig.station.decoder.truth.plays) == 1
    assert [z for z, zone in sim.zones.items() if zone.on] == [1, 2]
    await eventually(lambda: sim.on_air() and sim.on_air()[0]["zones"] == [1, 2])
    for rx in rig.receivers:  # proof of play per receiver cluster
        assert rig.plays(rx) == [("started", "ct-bc")]
    status = await eventually(lambda: polled(rig, rig.receivers[0],
                                             lambda s: s.activity is Activity.PLAYING))
    assert status.telemetry["zone_on"] is True
    await run(rig, rig.receivers[0], type="stop")  # that cluster off; the other listens on
    assert not sim.zones[1].on and sim.zones[2].on and rig.station.decoder.current is not None


async def test_an_emergency_on_air_is_not_cut_by_a_normal_bulletin(media: MediaServer,
                                                                    rig: FmRig) -> None:
    tx = rig.transmitter
    await run(rig, tx, type="play", stream_url=media.live("a"), content_id="ct-normal")
    cut = await run(rig, tx, type="play", stream_url=media.live("b"), content_id="ct-storm",
                    level="emergency")
    assert cut.status is CommandStatus.ACCEPTED
    later = await run(rig, tx, type="play", stream_url=media.live("c"), content_id="ct-later")
    assert (later.status, later.code) == (CommandStatus.REJECTED, "busy")
    assert [(p.content_id, p.outcome) for p in rig.station.decoder.truth.plays] == [
        ("ct-normal", "interrupted"), ("ct-storm", "playing")]


async def test_zones_are_zone_readings_and_kit_ground_truth(rig: FmRig) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    await run(rig, tx, type="switch_zones", zones={"1": False, "3": True})
    status = await rig.hub.read_status(tx.id)
    zones = {k: v for k, v in status.telemetry.items() if k.startswith("zone.")}
    assert zones == {f"zone.{i}": z.on for i, z in sim.zones.items()}
    assert zones["zone.3"] is True and sim.truth.zone_changes[-1]["zones"]["3"] is True
    await run(rig, tx, type="tune", frequency_mhz=57.5)
    assert sim.truth.tunes[-1]["frequency_mhz"] == 57.5
    await run(rig, tx, type="set_rf", on=False)
    assert sim.truth.rf_changes[-1]["on"] is False


async def test_volume_goes_to_the_decoder(rig: FmRig) -> None:
    result = await run(rig, rig.transmitter, type="set_volume", volume=40)
    assert result.status is CommandStatus.DONE and rig.station.decoder.volume == 40
    assert (await rig.hub.read_status(rig.transmitter.id)).volume == 40


# -- credentials ---------------------------------------------------------------------------------


async def test_read_only_community_cannot_set(settings: Settings, amqtt_url: str,
                                              station: Station) -> None:
    rig = await FmRig.start(fm_settings(settings, amqtt_url), station, receivers=0,
                            write_community="public")
    try:
        result = await run(rig, rig.transmitter, type="set_rf", on=False)
        assert (result.status, result.code) == (CommandStatus.REJECTED, "snmp_no_access")
        sim = station.transmitter
        assert sim.carrier
        [refused] = sim.truth.rejections
        assert (refused.command, refused.code) == ("SET rvFmRfEnable", "noAccess")
        assert refused.reason.endswith("-ro")  # the read-only community's index
    finally:
        await rig.stop()


async def test_snmpv3_authpriv_reads_and_writes(settings: Settings, amqtt_url: str,
                                                station: Station) -> None:
    rig = await FmRig.start(fm_settings(settings, amqtt_url), station, receivers=1,
                            **{k: v for k, v in station.v3_config().items()
                               if k not in station.config()
                               or k in ("snmp_version",)},
                            community=None, write_community=None)
    try:
        status = await rig.hub.read_status(rig.transmitter.id)
        assert status.telemetry["forward_power_w"] == 25.0
        await run(rig, rig.receivers[0], type="power", on=True)
        [switch] = [c for c in station.transmitter.truth.commands if c["outcome"] == "ok"]
        assert switch["principal"] == "ttcs" and switch["object"] == "rvFmZoneState"
    finally:
        await rig.stop()


async def test_snmpv3_read_only_user_cannot_set(settings: Settings, amqtt_url: str,
                                                station: Station) -> None:
    config = station.v3_config("monitor")
    rig = await FmRig.start(fm_settings(settings, amqtt_url), station, receivers=0,
                            **{k: v for k, v in config.items() if k not in station.config()
                               or k == "snmp_version"}, community=None, write_community=None)
    try:
        assert (await rig.hub.read_status(rig.transmitter.id)).telemetry["rf_on"] is True
        result = await run(rig, rig.transmitter, type="set_rf", on=False)
        assert (result.status, result.code) == (CommandStatus.REJECTED, "snmp_no_access")
        assert station.transmitter.carrier
    finally:
        await rig.stop()


async def test_wrong_snmpv3_key_is_refused_at_registration(settings: Settings, amqtt_url: str,
                                                           station: Station) -> None:
    rig = await FmRig.start(fm_settings(settings, amqtt_url), station, receivers=0)
    try:
        config = station.v3_config(auth_key="not-the-key-1234")
        del config["port"]
        with pytest.raises(AuthFailed, match="WrongDigest|Wrong SNMP PDU digest"):
            await rig.hub.registry.add_device(DeviceSpec(
                plugin="radivina", kind="fm_transmitter", area_code="20101",
                config={**config, "port": station.transmitter.port}), "test")
    finally:
        await rig.stop()


# -- faults --------------------------------------------------------------------------------------


async def test_offline_transmitter_takes_its_receivers_along_and_back(rig: FmRig) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    await sim.inject(Fault.OFFLINE)
    await eventually(lambda: rig.connectivity(tx) is Connectivity.OFFLINE, timeout=10)
    for rx in rig.receivers:
        await eventually(lambda rx=rx: rig.connectivity(rx) is Connectivity.OFFLINE)
        assert f"parent device {tx.id} is offline" in (
            rig.hub.supervisors[rx.id].last_error or "")
    await sim.clear(Fault.OFFLINE)
    await eventually(lambda: all(rig.connectivity(d) is Connectivity.ONLINE
                                 for d in [tx, *rig.receivers]), timeout=10)


async def test_children_come_back_with_the_parent_without_waiting_their_turn(
        settings: Settings, amqtt_url: str, station: Station) -> None:
    # receivers polled once an hour: only the parent coming back can make them online
    rig = await FmRig.start(fm_settings(settings, amqtt_url), station, receiver_poll=3600)
    try:
        tx, sim = rig.transmitter, station.transmitter
        # the receivers' drivers start in the background: wait until their polls are booked
        await eventually(lambda: all(rig.hub.poller.job(rx.id) for rx in rig.receivers))
        polls_before = [rig.hub.poller.job(rx.id).runs for rx in rig.receivers]  # type: ignore[union-attr]
        await sim.inject(Fault.OFFLINE)
        await eventually(lambda: all(rig.connectivity(d) is Connectivity.OFFLINE
                                     for d in [tx, *rig.receivers]), timeout=10)
        await sim.clear(Fault.OFFLINE)
        await eventually(lambda: all(rig.connectivity(d) is Connectivity.ONLINE
                                     for d in [tx, *rig.receivers]), timeout=10)
        # one poll each, asked for by the parent's return; their own turn is still far off
        assert [rig.hub.poller.job(rx.id).runs for rx in rig.receivers] == [  # type: ignore[union-attr]
            n + 1 for n in polls_before]
        now = asyncio.get_running_loop().time()
        assert all(rig.hub.poller.job(rx.id).next_due - now > 60  # type: ignore[union-attr]
                   for rx in rig.receivers)
    finally:
        await rig.stop()


async def test_slow_agent_within_the_timeout_is_served(rig: FmRig) -> None:
    sim = rig.station.transmitter
    await sim.inject(Fault.SLOW, delay=0.1)
    status = await rig.hub.read_status(rig.transmitter.id)
    assert status.telemetry["forward_power_w"] == 25.0
    assert sim.agent.faults.max_in_flight == 1  # requests to one agent never overlap


async def test_requests_to_one_agent_are_serialised(rig: FmRig) -> None:
    sim = rig.station.transmitter
    await sim.inject(Fault.SLOW, delay=0.1)
    statuses = await asyncio.gather(*(rig.hub.read_status(d.id)
                                      for d in [rig.transmitter, *rig.receivers]))
    assert len(statuses) == 3 and sim.agent.faults.max_in_flight == 1


async def test_slow_agent_beyond_the_timeout_times_out(rig: FmRig) -> None:
    await rig.station.transmitter.inject(Fault.SLOW, delay=2.0)
    with pytest.raises(DeviceTimeout, match="no answer after 2 tries"):
        await rig.hub.read_status(rig.transmitter.id)


async def test_hung_agent_times_out_and_goes_offline(rig: FmRig) -> None:
    tx = rig.transmitter
    await rig.station.transmitter.inject(Fault.HANG)
    with pytest.raises(DeviceTimeout):
        await rig.hub.read_status(tx.id)
    await eventually(lambda: rig.connectivity(tx) is Connectivity.OFFLINE, timeout=10)
    await rig.station.transmitter.clear(Fault.HANG)
    await eventually(lambda: rig.connectivity(tx) is Connectivity.ONLINE, timeout=10)


async def test_garbage_bytes_are_a_protocol_error(rig: FmRig) -> None:
    await rig.station.transmitter.inject(Fault.GARBAGE)
    with pytest.raises(ProtocolError, match="not SNMP"):
        await rig.hub.read_status(rig.transmitter.id)


async def test_wrong_types_are_a_protocol_error(rig: FmRig) -> None:
    await rig.station.transmitter.inject(Fault.GARBAGE, mode="types")
    with pytest.raises(ProtocolError, match="expected an? "):
        await rig.hub.read_status(rig.transmitter.id)
    await rig.station.transmitter.clear(Fault.GARBAGE)
    assert (await rig.hub.read_status(rig.transmitter.id)).telemetry["rf_on"] is True


async def test_a_lost_request_is_retried(rig: FmRig) -> None:
    sim = rig.station.transmitter
    await sim.inject(Fault.DROP_CONNECTION)
    status = await rig.hub.read_status(rig.transmitter.id)
    assert status.telemetry["forward_power_w"] == 25.0 and sim.agent.faults.dropped == 1


async def test_power_loss_then_boot_resets_uptime_and_keeps_rf(rig: FmRig) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    before = (await rig.hub.read_status(tx.id)).telemetry["uptime_s"]
    await sim.inject(Fault.POWER_LOSS)
    assert not sim.carrier
    await eventually(lambda: rig.connectivity(tx) is Connectivity.OFFLINE, timeout=10)
    await sim.clear(Fault.POWER_LOSS)
    await eventually(lambda: rig.connectivity(tx) is Connectivity.ONLINE, timeout=10)
    status = await rig.hub.read_status(tx.id)
    assert status.telemetry["rf_on"] is True and sim.agent.boots == 2
    assert status.telemetry["uptime_s"] < max(before, 1.0) + 5
    assert [r["cause"] for r in sim.truth.rf] == ["power_on", "power_loss", "boot"]


async def test_snmpv3_survives_a_reboot(settings: Settings, amqtt_url: str,
                                        station: Station) -> None:
    config = station.v3_config()
    rig = await FmRig.start(fm_settings(settings, amqtt_url), station, receivers=0,
                            **{k: v for k, v in config.items() if k not in station.config()
                               or k == "snmp_version"}, community=None, write_community=None)
    try:
        await station.transmitter.inject(Fault.REBOOT, firmware="2.5.0")
        status = await rig.hub.read_status(rig.transmitter.id)  # new engine boots, time
        assert status.firmware == "2.5.0"
    finally:
        await rig.stop()


async def test_reboot_with_new_firmware_updates_the_registry(rig: FmRig) -> None:
    await rig.station.transmitter.inject(Fault.REBOOT, firmware="2.5.0")
    await eventually(lambda: rig.hub.supervisors[rig.transmitter.id].device.firmware == "2.5.0",
                     timeout=10)
    async def stored_firmware() -> bool:
        device = await rig.hub.registry.get_device(rig.transmitter.id)
        return device.firmware == "2.5.0" and device.serial == "RV-0001"

    await eventually(stored_firmware, timeout=5)


async def test_wrong_community_looks_like_silence(rig: FmRig) -> None:
    await rig.station.transmitter.inject(Fault.WRONG_CREDENTIALS)
    with pytest.raises(DeviceTimeout, match="wrong community looks the same"):
        await rig.hub.read_status(rig.transmitter.id)


async def test_wrong_snmpv3_credentials_make_the_transmitter_offline_at_once(
        settings: Settings, amqtt_url: str, station: Station) -> None:
    config = station.v3_config()
    rig = await FmRig.start(fm_settings(settings, amqtt_url), station, receivers=0,
                            **{k: v for k, v in config.items() if k not in station.config()
                               or k == "snmp_version"}, community=None, write_community=None)
    try:
        await station.transmitter.inject(Fault.WRONG_CREDENTIALS)
        with pytest.raises(AuthFailed):
            await rig.hub.read_status(rig.transmitter.id)
        await eventually(lambda: rig.connectivity(rig.transmitter) is Connectivity.OFFLINE)
        await station.transmitter.clear(Fault.WRONG_CREDENTIALS)
        assert (await rig.hub.read_status(rig.transmitter.id)).telemetry["rf_on"] is True
    finally:
        await rig.stop()


async def test_antenna_fault_raises_vswr_alarm_once_and_clears_it_once(rig: FmRig) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    await sim.inject(Fault.ANTENNA, vswr=3.0)
    status = await eventually(lambda: polled(rig, tx, lambda s: s.telemetry.get("vswr") == 3.0))
    # 3:1 reflects a quarter: the transmitter folds back to keep reflected power at 3 W
    assert {"high_vswr", "rf_foldback"} <= set(status.faults)
    assert status.telemetry["forward_power_w"] == 12.0
    assert status.telemetry["reflected_power_w"] == 3.0
    await eventually(lambda: rig.alarms("high_vswr") == [(tx.id, True)])
    runs = rig.hub.poller.job(tx.id).runs  # type: ignore[union-attr]
    await eventually(lambda: rig.hub.poller.job(tx.id).runs >= runs + 3)  # type: ignore[union-attr]
    assert rig.alarms("high_vswr") == [(tx.id, True)]  # raised once, not on every poll
    await sim.clear(Fault.ANTENNA)
    await eventually(lambda: rig.alarms("high_vswr") == [(tx.id, True), (tx.id, False)])
    runs = rig.hub.poller.job(tx.id).runs  # type: ignore[union-attr]
    await eventually(lambda: rig.hub.poller.job(tx.id).runs >= runs + 3)  # type: ignore[union-attr]
    assert rig.alarms("high_vswr") == [(tx.id, True), (tx.id, False)]


async def test_hot_pa_raises_the_temperature_alarm(rig: FmRig) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    sim.ambient = 45.0  # a cabinet in the sun: 45 °C + 25 W of heat
    await eventually(lambda: rig.alarms("high_temperature") == [(tx.id, True)])
    assert sim.state()["pa_temperature"] > 70
    sim.ambient = 30.0
    await eventually(lambda: rig.alarms("high_temperature")[-1:] == [(tx.id, False)])


async def test_mains_loss_raises_on_battery_and_clears_on_return(rig: FmRig) -> None:
    tx, sim = rig.transmitter, rig.station.transmitter
    await sim.inject(Fault.POWER_LOSS_BATTERY)
    status = await eventually(lambda: polled(
        rig, tx, lambda s: s.power_source is PowerSource.BATTERY))
    assert "on_battery" in status.faults and status.telemetry["supply_voltage"] < 27
    await eventually(lambda: rig.alarms("on_battery") == [(tx.id, True)])
    assert sim.carrier  # the UPS keeps the station on the air
    await sim.clear(Fault.POWER_LOSS_BATTERY)
    await eventually(lambda: rig.alarms("on_battery") == [(tx.id, True), (tx.id, False)])


async def test_decoder_down_degrades_status_without_taking_the_transmitter_offline(
        rig: FmRig) -> None:
    await rig.station.decoder.inject(Fault.OFFLINE)
    status = await rig.hub.read_status(rig.transmitter.id)
    assert "decoder_unreachable" in status.faults and status.telemetry["rf_on"] is True


def test_the_mib_module_names_every_object_the_plugin_uses() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs/spec/RADIVINA-FM-MIB.mib").read_text()
    for name in mib.OBJECTS:
        assert f"\n{name} OBJECT-TYPE" in text, name
