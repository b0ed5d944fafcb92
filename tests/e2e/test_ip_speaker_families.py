"""One behavioural suite for every IP speaker family: play, volume, stop, status, levels,
offline detection and identity mean the same whoever made the speaker.

Each family (``speaker_families.FAMILIES``) runs its own plugin against its own simulator over
real sockets (Mosquitto for the MQTT families); the assertions read the simulator's ground
truth and the hub's view, never the plugin's internals.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.conftest import SAMPLE_AREAS
from tests.e2e.speaker_families import FAMILIES, SpeakerFamily, stream_play
from tests.support.brokers import Mosquitto
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.errors import DeviceError
from ttcs.core.hub import Hub
from ttcs.schemas import Activity, CommandResult, CommandStatus, Connectivity, Device, parse_command
from ttcs.simulators.base import Fault, SimulatedDevice


@dataclass
class FamilyRig:
    family: SpeakerFamily
    hub: Hub
    sim: SimulatedDevice
    device: Device

    @property
    def connectivity(self) -> Connectivity:
        return self.hub.supervisors[self.device.id].connectivity

    async def run(self, **command: object) -> CommandResult:
        return await self.hub.execute(self.device.id, parse_command(command))


async def _start(family: SpeakerFamily, settings: Settings, serial: str,
                 play_seconds: float) -> FamilyRig:
    await family.setup()
    hub = Hub(family.hub_settings(settings))
    await hub.start()
    await hub.registry.import_areas(SAMPLE_AREAS, "test")
    sim, spec = await family.device(serial, play_seconds=play_seconds)
    device = await hub.registry.add_device(spec, "test")
    await hub.supervise(device)
    rig = FamilyRig(family, hub, sim, device)
    await eventually(lambda: rig.connectivity is Connectivity.ONLINE, timeout=10)
    return rig


@pytest.fixture(params=sorted(FAMILIES))
async def rig(request: pytest.FixtureRequest, settings: Settings,
              mosquitto: Mosquitto) -> AsyncIterator[FamilyRig]:
    family = FAMILIES[request.param](mosquitto.url())
    serial = f"FAM-{request.param.upper()}-{uuid.uuid4().hex[:8].upper()}"
    rig = await _start(family, settings, serial, play_seconds=30.0)
    yield rig
    await rig.hub.stop()
    await family.teardown()


async def test_registration_keys_the_device_by_the_serial_it_reports(rig: FamilyRig) -> None:
    assert rig.device.serial == rig.sim.serial
    assert rig.device.firmware
    assert rig.device.capabilities  # the hub knows what it may ask of this device


async def test_play_reaches_the_device_with_its_content_level_and_volume(
        rig: FamilyRig) -> None:
    result = await rig.run(**stream_play(content_id="ct-family", broadcast_id="bc-family",
                                         volume=55))
    assert result.status in (CommandStatus.ACCEPTED, CommandStatus.DONE)
    play = await eventually(lambda: next((p for p in rig.sim.truth.plays
                                          if p.content_id == "ct-family"), None))
    assert play.volume == 55 and play.level == "normal"
    assert play.outcome == "playing"
    status = await eventually(lambda: _status_is(rig, Activity.PLAYING))
    assert status.connectivity is Connectivity.ONLINE


async def test_set_volume_changes_the_device_and_the_hub_reads_it_back(rig: FamilyRig) -> None:
    result = await rig.run(type="set_volume", volume=35)
    assert result.ok
    assert rig.family.volume(rig.sim) == 35
    status = await rig.hub.read_status(rig.device.id)
    assert status.volume == 35


async def test_stop_ends_what_plays_and_the_device_goes_idle(rig: FamilyRig) -> None:
    await rig.run(**stream_play(content_id="ct-long"))
    play = await eventually(lambda: next((p for p in rig.sim.truth.plays
                                          if p.content_id == "ct-long"), None))
    result = await rig.run(type="stop")
    assert result.ok
    await eventually(lambda: play.ended_at is not None)
    assert play.outcome == "stopped"
    await eventually(lambda: _status_is(rig, Activity.IDLE))


async def test_an_emergency_interrupts_a_normal_item_and_a_normal_one_cannot_interrupt_it(
        rig: FamilyRig) -> None:
    await rig.run(**stream_play(content_id="ct-normal"))
    normal = await eventually(lambda: next((p for p in rig.sim.truth.plays
                                            if p.content_id == "ct-normal"), None))
    await rig.run(**stream_play(content_id="ct-alert", level="emergency"))
    alert = await eventually(lambda: next((p for p in rig.sim.truth.plays
                                           if p.content_id == "ct-alert"), None))
    await eventually(lambda: normal.ended_at is not None)
    assert normal.outcome == "interrupted" and alert.level == "emergency"
    assert normal.ended_at <= alert.started_at  # type: ignore[operator]
    try:
        late = await rig.run(**stream_play(content_id="ct-late"))
    except DeviceError:
        late = None  # refusing it loudly is as good as refusing it with a result
    if late is not None:
        assert late.status is CommandStatus.REJECTED
    assert alert.outcome == "playing"
    assert not any(p.content_id == "ct-late" for p in rig.sim.truth.plays)


async def test_a_repeated_idempotency_key_is_acted_on_once(rig: FamilyRig) -> None:
    for _ in range(2):
        result = await rig.run(type="set_volume", volume=21, idempotency_key="fam-key-1")
        assert result.ok
    assert [v for _, v in rig.sim.truth.volume_changes].count(21) == 1


async def test_a_device_that_vanishes_goes_offline_refuses_commands_and_comes_back(
        rig: FamilyRig) -> None:
    await rig.sim.inject(rig.family.vanish)
    await eventually(lambda: rig.connectivity is Connectivity.OFFLINE, timeout=20)
    with pytest.raises(DeviceError):
        await rig.run(type="set_volume", volume=12)
    await rig.sim.clear(rig.family.vanish)
    await eventually(lambda: rig.connectivity is Connectivity.ONLINE, timeout=20)
    assert (await rig.run(type="set_volume", volume=13)).ok
    assert rig.family.volume(rig.sim) == 13


async def test_a_firmware_upgrade_keeps_the_devices_identity(rig: FamilyRig) -> None:
    await rig.sim.inject(Fault.REBOOT, firmware="9.9.9")
    await eventually(lambda: rig.hub.supervisors[rig.device.id].device.firmware == "9.9.9",
                     timeout=20)
    stored = await eventually(lambda: _stored_firmware(rig, "9.9.9"), timeout=10)
    assert (stored.id, stored.serial) == (rig.device.id, rig.device.serial)


def _status_is(rig: FamilyRig, activity: Activity) -> object:
    async def check() -> object:
        status = await rig.hub.read_status(rig.device.id)
        return status if status.activity is activity else None
    return check()


async def _stored_firmware(rig: FamilyRig, wanted: str) -> Device | None:
    device = await rig.hub.registry.get_device(rig.device.id)
    return device if device.firmware == wanted else None
