"""The registry with more devices than one statement can name: lookups by a list of device ids
(group memberships of a listing, stored connectivity) stay under the database's bind-parameter
limit (asyncpg: 32767; SQLite: 32766 unless built with more) on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from tests.conftest import SAMPLE_AREAS
from ttcs.core.config import Settings
from ttcs.core.hub import Hub
from ttcs.schemas import Connectivity, Group
from ttcs.testing.bulk import BulkDevice, insert_devices

MANY = 33_000  # more ids than one statement may carry


@pytest.fixture
async def hub(settings: Settings, database_url: str) -> Hub:
    hub = Hub(settings.model_copy(update={"database_url": database_url}))
    await hub.open()
    await hub.registry.import_areas(SAMPLE_AREAS, "test")
    await hub.registry.create_group(Group(id="all", name="Everyone"), "test")
    await hub.registry.create_group(Group(id="odd", name="Odd ones"), "test")
    await insert_devices(hub.store, (BulkDevice(
        id=f"native-n{n:05d}", plugin="native", kind="ip_speaker", serial=f"N{n:05d}",
        area_code="19900", config={"serial": f"N{n:05d}"},
        groups=["all", "odd"] if n % 2 else ["all"],
        connectivity=Connectivity.OFFLINE if n % 3 == 0 else Connectivity.UNKNOWN)
        for n in range(MANY)))
    yield hub  # type: ignore[misc]
    await hub.stop()


async def test_listing_every_device_names_their_groups(hub: Hub) -> None:
    devices = await hub.registry.list_devices()
    assert len(devices) == MANY
    assert devices[0].groups == ["all"]
    assert devices[1].groups == ["all", "odd"]
    assert devices[-1].groups == (["all", "odd"] if (MANY - 1) % 2 else ["all"])
    members = await hub.registry.list_devices(group="odd")
    assert len(members) == MANY // 2
    assert all(d.groups == ["all", "odd"] for d in members)


async def test_stored_connectivity_of_every_device(hub: Hub) -> None:
    ids = [f"native-n{n:05d}" for n in range(MANY)]
    states = await hub.registry.connectivity_of(ids)
    assert len(states) == MANY
    assert states["native-n00000"] == "offline"
    assert states["native-n00001"] == "unknown"
    assert sum(v == "offline" for v in states.values()) == -(-MANY // 3)
