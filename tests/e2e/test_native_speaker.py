"""The native plugin against the native speaker simulator, over real brokers."""

from __future__ import annotations

import pytest

from tests.conftest import SAMPLE_AREAS
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.errors import DeviceTimeout, DeviceUnreachable, UnsupportedCommand
from ttcs.core.hub import Hub
from ttcs.schemas import Connectivity, DeviceSpec, parse_command
from ttcs.simulators.base import Fault
from ttcs.simulators.native_speaker import NativeSpeaker


@pytest.fixture
async def rig(settings: Settings, broker_url: str):  # type: ignore[no-untyped-def]
    speaker = NativeSpeaker("SPK-0001", broker_url, heartbeat=30)
    await speaker.start()
    hub = Hub(settings.model_copy(update={"mqtt_url": broker_url}))
    await hub.start()
    await hub.registry.import_areas(SAMPLE_AREAS, "test")
    device = await hub.registry.add_device(DeviceSpec(
        plugin="native", kind="ip_speaker", area_code="19900",
        config={"serial": "SPK-0001"}), "test")
    await hub.supervise(device)
    yield hub, speaker, device
    await hub.stop()
    await speaker.stop()


async def test_registration_keys_device_by_probed_serial_and_firmware(rig):  # type: ignore[no-untyped-def]
    hub, speaker, device = rig
    assert (device.serial, device.firmware, device.vendor) == ("SPK-0001", "1.4.2",
                                                               "TTCS reference")
    assert device.mac == speaker.mac


async def test_set_volume_changes_the_device_and_status_reports_it(rig):  # type: ignore[no-untyped-def]
    hub, speaker, device = rig
    result = await hub.execute(device.id, parse_command({"type": "set_volume", "volume": 35}))
    assert result.ok and speaker.volume == 35
    status = await eventually(lambda: hub.supervisors[device.id].status
                              if hub.supervisors[device.id].status
                              and hub.supervisors[device.id].status.volume == 35 else None)
    assert status.connectivity is Connectivity.ONLINE


async def test_repeated_idempotency_key_is_acted_on_once(rig):  # type: ignore[no-untyped-def]
    hub, speaker, device = rig
    first = parse_command({"type": "set_volume", "volume": 20, "idempotency_key": "k-1"})
    again = parse_command({"type": "set_volume", "volume": 20, "idempotency_key": "k-1"})
    assert (await hub.execute(device.id, first)).ok
    assert (await hub.execute(device.id, again)).ok
    assert [v for _, v in speaker.truth.volume_changes] == [20]


async def test_command_needing_missing_capability_is_refused_before_the_device(rig):  # type: ignore[no-untyped-def]
    hub, speaker, device = rig
    with pytest.raises(UnsupportedCommand, match="display.brightness"):
        await hub.execute(device.id, parse_command({"type": "set_brightness",
                                                    "brightness": 10}))
    assert speaker.truth.commands == []


async def test_power_loss_fires_last_will_and_device_goes_offline_then_back(rig):  # type: ignore[no-untyped-def]
    hub, speaker, device = rig
    sup = hub.supervisors[device.id]
    await eventually(lambda: sup.connectivity is Connectivity.ONLINE)
    await speaker.inject(Fault.POWER_LOSS)
    await eventually(lambda: sup.connectivity is Connectivity.OFFLINE)
    with pytest.raises(DeviceUnreachable):
        await hub.execute(device.id, parse_command({"type": "set_volume", "volume": 10}))
    await speaker.clear(Fault.POWER_LOSS)
    await eventually(lambda: sup.connectivity is Connectivity.ONLINE)


async def test_hung_device_times_out_without_blocking_others(rig):  # type: ignore[no-untyped-def]
    hub, speaker, device = rig
    await speaker.inject(Fault.HANG)
    with pytest.raises(DeviceTimeout):
        await hub.execute(device.id, parse_command({"type": "set_volume", "volume": 10}))
    assert speaker.volume != 10


async def test_reboot_with_new_firmware_keeps_identity_and_updates_firmware(rig):  # type: ignore[no-untyped-def]
    hub, speaker, device = rig
    await speaker.inject(Fault.REBOOT, firmware="2.0.0")
    await eventually(lambda: hub.supervisors[device.id].device.firmware == "2.0.0")
    stored = await eventually(lambda: _firmware(hub, device.id, "2.0.0"))
    assert stored.serial == "SPK-0001" and stored.id == device.id


async def _firmware(hub: Hub, device_id: str, wanted: str):  # type: ignore[no-untyped-def]
    d = await hub.registry.get_device(device_id)
    return d if d.firmware == wanted else None


async def test_garbage_from_device_is_ignored_and_counted(rig):  # type: ignore[no-untyped-def]
    hub, speaker, device = rig
    await speaker.inject(Fault.GARBAGE)
    await speaker.publish_status()
    from ttcs.plugins.native.driver import BUS_KEY

    bus = hub.transports._shared[BUS_KEY + hub.settings.mqtt_url]
    await eventually(lambda: bus.channel("SPK-0001").bad_payloads > 0)
    await speaker.clear(Fault.GARBAGE)
    assert (await hub.execute(device.id, parse_command({"type": "set_volume",
                                                        "volume": 44}))).ok
