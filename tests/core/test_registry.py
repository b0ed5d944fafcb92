"""The registry on SQLite and on PostgreSQL: the area tree, devices keyed by probed identity,
groups, merges, bulk import and discovery — every change audited."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from tests.conftest import SAMPLE_AREAS
from ttcs.core.config import Settings
from ttcs.core.errors import Conflict, InvalidInput, NotFound
from ttcs.core.hub import Hub
from ttcs.core.store.tables import DeviceRow
from ttcs.schemas import Area, AreaType, DeviceSpec, Group
from ttcs.simulators.native_speaker import NativeSpeaker


@pytest.fixture
async def rig(settings: Settings, amqtt_url: str, database_url: str
              ) -> AsyncIterator[tuple[Hub, list[NativeSpeaker]]]:
    speakers = [NativeSpeaker(f"SPK-{n}", amqtt_url, mac=f"02:00:00:00:00:0{n}")
                for n in range(1, 4)]
    for s in speakers:
        await s.start()
    hub = Hub(settings.model_copy(update={"mqtt_url": amqtt_url, "database_url": database_url}))
    await hub.open()
    await hub.registry.import_areas(SAMPLE_AREAS, "test")
    yield hub, speakers
    await hub.stop()
    for s in speakers:
        await s.stop()


def spec(serial: str, area: str = "19900", **extra: object) -> DeviceSpec:
    return DeviceSpec.model_validate({"plugin": "native", "kind": "ip_speaker",
                                      "area_code": area, "config": {"serial": serial}, **extra})


async def test_area_tree_of_any_depth_is_queried_below_a_node(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    below = await hub.registry.subtree("46")
    assert {"46", "19900", "19900-01", "20014", "20101", "20101-01"} <= below
    assert await hub.registry.subtree("20101") == {"20101", "20101-01"}
    assert await hub.registry.ancestors("20101-01") == ["20101", "46"]


async def test_importing_areas_is_idempotent_and_updates_names(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    renamed = [a.model_copy(update={"name": "Phường Thuận An (mới)"}) if a.code == "19900"
               else a for a in SAMPLE_AREAS]
    assert await hub.registry.import_areas(renamed, "test") == (0, 1)
    assert (await hub.registry.get_area("19900")).name == "Phường Thuận An (mới)"


async def test_a_parent_cycle_is_refused(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    with pytest.raises(InvalidInput, match="cycle"):
        await hub.registry.import_areas([Area(code="46", name="Huế", type=AreaType.PROVINCE,
                                              parent_code="20101")], "test")


async def test_an_unknown_parent_is_refused_by_name(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    with pytest.raises(InvalidInput, match="parent 99 is neither in the file nor registered"):
        await hub.registry.import_areas([Area(code="1", name="x", type=AreaType.WARD,
                                              parent_code="99")], "test")


async def test_device_is_keyed_by_the_serial_it_reports_and_a_duplicate_is_refused(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    device = await hub.registry.add_device(spec("SPK-1"), "test")
    assert (device.id, device.serial, device.mac) == ("native-spk-1", "SPK-1",
                                                      "02:00:00:00:00:01")
    with pytest.raises(Conflict, match="serial SPK-1 is already registered as 'native-spk-1'"):
        await hub.registry.add_device(spec("SPK-1", area="20101"), "test")


async def test_a_device_that_does_not_answer_is_not_registered(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    with pytest.raises(Exception, match="announced nothing"):
        await hub.registry.add_device(spec("NOBODY"), "test")
    assert await hub.registry.list_devices() == []


async def test_bad_config_and_placement_are_explained(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    with pytest.raises(InvalidInput, match="config for plugin 'native': serial: is required"):
        await hub.registry.add_device(DeviceSpec(plugin="native", kind="ip_speaker",
                                                 area_code="19900", config={}), "test")
    with pytest.raises(InvalidInput, match="village 20101-01 is not inside area 19900"):
        await hub.registry.add_device(spec("SPK-1", village_code="20101-01"), "test")
    with pytest.raises(NotFound, match="no area with code '777'"):
        await hub.registry.add_device(spec("SPK-1", area="777"), "test")


async def test_secrets_are_encrypted_at_rest_and_masked_when_shown(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    url = hub.settings.mqtt_url.replace("mqtt://", "mqtt://user:s3cret-pw@")
    device = await hub.registry.add_device(spec("SPK-2", config={"serial": "SPK-2",
                                                                  "broker_url": url}), "test")
    async with hub.store.sessions() as s:
        row = (await s.execute(select(DeviceRow).where(DeviceRow.id == device.id))).scalar_one()
    assert "s3cret-pw" not in str(row.config)
    assert row.secrets is not None
    assert "s3cret-pw" not in row.secrets
    assert "s3cret-pw" not in device.model_dump_json()
    loaded = await hub.registry.get_device(device.id)
    assert loaded.config["broker_url"].get_secret_value() == url


async def test_listing_filters_by_area_subtree_group_and_kind(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    await hub.registry.create_group(Group(id="coast", name="Coastal"), "test")
    await hub.registry.add_device(spec("SPK-1", area="19900", groups=["coast"]), "test")
    await hub.registry.add_device(spec("SPK-2", area="20101",
                                       village_code="20101-01"), "test")
    ids = lambda devices: sorted(d.id for d in devices)  # noqa: E731
    assert ids(await hub.registry.list_devices(area="46")) == ["native-spk-1", "native-spk-2"]
    assert ids(await hub.registry.list_devices(area="20101")) == ["native-spk-2"]
    assert ids(await hub.registry.list_devices(group="coast")) == ["native-spk-1"]
    assert await hub.registry.list_devices(kind="led_board") == []
    assert ids(await hub.registry.list_devices(limit=1, offset=1)) == ["native-spk-2"]


async def test_merging_communes_moves_children_devices_and_groups_in_one_audited_step(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    await hub.registry.create_group(Group(id="g1", name="G", area_code="20101"), "test")
    await hub.registry.add_device(spec("SPK-1", area="20101"), "test")
    moved = await hub.registry.merge_areas(["20101"], "20014", "alice")
    assert moved == {"areas": 1, "devices": 1, "groups": 1}
    assert (await hub.registry.get_device("native-spk-1")).area_code == "20014"
    assert (await hub.registry.get_area("20101-01")).parent_code == "20014"
    assert "20101" not in {a.code for a in await hub.registry.list_areas()}
    entry = (await hub.store.audit.entries(action="area.merge"))[0]
    assert (entry.actor, entry.target, entry.detail["sources"]) == ("alice", "20014", ["20101"])


async def test_merging_an_area_into_its_own_descendant_is_refused(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    with pytest.raises(Conflict, match="cycle"):
        await hub.registry.merge_areas(["46"], "20101", "test")


async def test_bulk_import_reports_each_row_and_all_or_nothing_keeps_nothing(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    rows = [spec("SPK-1"), spec("NOBODY"), spec("SPK-3")]
    report = await hub.registry.import_devices(rows, "test", all_or_nothing=True)
    assert [r.ok for r in report.rows] == [False, False, False]
    assert "announced nothing" in (report.rows[1].error or "")
    assert report.rows[0].error == "not written (--all-or-nothing: another row failed)"
    assert await hub.registry.list_devices() == []
    report = await hub.registry.import_devices(rows, "test")
    assert [r.ok for r in report.rows] == [True, False, True]


async def test_every_change_is_in_a_verifiable_audit_chain(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    await hub.registry.add_device(spec("SPK-1"), "bob")
    await hub.registry.remove_device("native-spk-1", "bob")
    actions = [e.action for e in await hub.store.audit.entries()]
    assert actions[:3] == ["device.remove", "device.add", "area.import"]
    result = await hub.store.audit.verify()
    assert result.ok
    assert result.entries == 3


async def test_new_settings_for_a_device_are_probed_and_keep_its_identity(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    device = await hub.registry.add_device(spec("SPK-1"), "test")
    url = hub.settings.mqtt_url.replace("mqtt://", "mqtt://user:n3w-pw@")
    moved = await hub.registry.reconfigure(device.id, {"serial": "SPK-1", "broker_url": url},
                                           "integrator")
    assert (moved.id, moved.serial) == (device.id, "SPK-1")
    assert moved.config["broker_url"].get_secret_value() == url
    async with hub.store.sessions() as s:
        row = (await s.execute(select(DeviceRow).where(DeviceRow.id == device.id))).scalar_one()
    assert "n3w-pw" not in str(row.config)
    [entry] = [e for e in await hub.store.audit.entries(action="device.reconfigure")]
    assert entry.actor == "integrator"


async def test_settings_that_reach_another_device_are_refused(rig) -> None:  # type: ignore[no-untyped-def]
    hub, _ = rig
    device = await hub.registry.add_device(spec("SPK-1"), "test")
    with pytest.raises(Conflict, match="reaches TTCS reference SPK-2, not TTCS reference SPK-1"):
        await hub.registry.reconfigure(device.id, {"serial": "SPK-2"}, "integrator")
    assert (await hub.registry.get_device(device.id)).config == {"serial": "SPK-1",
                                                                 "broker_url": None}
