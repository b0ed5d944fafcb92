"""The native protocol over a broker that wants TLS and passwords (as in production)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from tests.conftest import SAMPLE_AREAS
from tests.support.wait import eventually
from ttcs.core.config import Settings
from ttcs.core.errors import AuthFailed
from ttcs.core.hub import Hub
from ttcs.schemas import Connectivity, DeviceSpec, parse_command
from ttcs.simulators.native_speaker import NativeSpeaker
from ttcs.testing import Mosquitto

HUB_PASSWORD = "hub-Pa55-word"
DEVICE_PASSWORD = "dev-Pa55-word"


@pytest.fixture(scope="module")
def secure_broker() -> Iterator[Mosquitto]:
    broker = Mosquitto(users={"hub": HUB_PASSWORD, "SPK-TLS-1": DEVICE_PASSWORD},
                       tls=True).start()
    yield broker
    broker.stop()


async def test_hub_and_speaker_talk_over_tls_with_their_own_passwords(
        settings: Settings, secure_broker: Mosquitto) -> None:
    speaker = NativeSpeaker("SPK-TLS-1", secure_broker.url("SPK-TLS-1", DEVICE_PASSWORD))
    await speaker.start()
    hub = Hub(settings.model_copy(update={"mqtt_url": secure_broker.url("hub", HUB_PASSWORD)}))
    await hub.start()
    try:
        await hub.registry.import_areas(SAMPLE_AREAS, "test")
        device = await hub.registry.add_device(DeviceSpec(
            plugin="native", kind="ip_speaker", area_code="19900",
            config={"serial": "SPK-TLS-1"}), "test")
        await hub.supervise(device)
        await eventually(lambda: hub.supervisors[device.id].connectivity
                         is Connectivity.ONLINE, timeout=10)
        result = await hub.execute(device.id, parse_command({"type": "set_volume",
                                                            "volume": 61}))
        assert result.ok and speaker.volume == 61
    finally:
        await hub.stop()
        await speaker.stop()


async def test_a_wrong_broker_password_is_an_error_that_names_no_secret(
        settings: Settings, secure_broker: Mosquitto) -> None:
    url = secure_broker.url("hub", "not-the-password")
    hub = Hub(settings.model_copy(update={"mqtt_url": url, "probe_timeout": 2.0}))
    await hub.start()  # the hub runs even when the broker refuses it
    try:
        await hub.registry.import_areas(SAMPLE_AREAS, "test")
        with structlog.testing.capture_logs() as logs, \
                pytest.raises(AuthFailed, match="refused the credentials") as refused:
            await hub.registry.add_device(DeviceSpec(
                plugin="native", kind="ip_speaker", area_code="19900",
                config={"serial": "SPK-TLS-1"}), "test")
        assert "not-the-password" not in str(refused.value)
        assert "not-the-password" not in repr(logs)
        assert await hub.registry.list_devices() == []  # nothing registered on a failed probe
    finally:
        await hub.stop()
