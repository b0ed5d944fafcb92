"""A running hub follows registry changes made by another process (the CLI on the same
machine opens the store itself): new devices are supervised, re-configured ones restarted,
removed ones let go — over a real broker with native speaker simulators."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import SAMPLE_AREAS
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.hub import Hub
from ttcs.schemas import Connectivity, DeviceChanges, DeviceSpec
from ttcs.simulators.native_speaker import NativeSpeaker


@pytest.fixture
async def hubs(settings: Settings, amqtt_url: str) -> AsyncIterator[tuple[Hub, Hub]]:
    shared = settings.model_copy(update={"mqtt_url": amqtt_url})
    running = Hub(shared)
    running.registry_watch_interval = 0.1
    await running.start()
    await running.registry.import_areas(SAMPLE_AREAS, "test")
    cli = await Hub(shared).open()  # what `ttcs devices add` does: the store, no supervision
    yield running, cli
    await cli.stop()
    await running.stop()


async def test_a_device_the_cli_adds_is_supervised_by_the_running_hub(
        hubs: tuple[Hub, Hub], amqtt_url: str) -> None:
    running, cli = hubs
    speaker = NativeSpeaker("WATCH-1", amqtt_url)
    await speaker.start()
    try:
        device = await cli.registry.add_device(DeviceSpec(
            plugin="native", kind="ip_speaker", area_code="19900",
            config={"serial": "WATCH-1"}), "cli")
        await eventually(lambda: device.id in running.supervisors
                         and running.supervisors[device.id].connectivity
                         is Connectivity.ONLINE, timeout=10)

        driver = running.supervisors[device.id].driver
        await cli.registry.update_device(device.id, DeviceChanges(area_code="20101"), "cli")
        await eventually(lambda: running.supervisors[device.id].device.area_code == "20101",
                         timeout=10)
        assert running.supervisors[device.id].driver is driver  # a move needs no new driver

        await cli.registry.update_device(device.id, DeviceChanges(
            config={"broker_url": amqtt_url}), "cli")
        await eventually(lambda: running.supervisors[device.id].driver is not driver,
                         timeout=10)
        await eventually(lambda: running.supervisors[device.id].connectivity
                         is Connectivity.ONLINE, timeout=10)

        await cli.registry.remove_device(device.id, "cli")
        await eventually(lambda: device.id not in running.supervisors, timeout=10)
    finally:
        await speaker.stop()


async def test_an_unchanged_registry_leaves_supervision_alone(hubs: tuple[Hub, Hub]) -> None:
    running, _ = hubs
    assert await running.reconcile() == (0, 0, 0)
    assert await running.reconcile() == (0, 0, 0)
