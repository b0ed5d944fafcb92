"""Groups are renamed and deleted over the API within the caller's area, audited; a deleted
group's devices stay registered, and a broadcast made through the group keeps its devices."""

from __future__ import annotations

from tests.api.conftest import ApiRig
from ttcs.schemas import Broadcast, Targets, new_id


async def test_an_integrator_renames_and_deletes_a_group_of_its_ward_only(rig: ApiRig) -> None:
    own, foreign = rig.seeded.groups["own"], rig.seeded.groups["foreign"]
    integrator = rig.as_("integrator")

    status, group, _ = await integrator.patch(f"/groups/{own}", json={
        "name": "Loa ven biển", "description": "the coastal speakers"})
    assert status == 200, group
    assert (group["name"], group["description"]) == ("Loa ven biển", "the coastal speakers")
    status, got, _ = await integrator.get(f"/groups/{own}")
    assert status == 200 and got["group"]["name"] == "Loa ven biển"

    status, problem, _ = await integrator.patch(f"/groups/{own}", json={})
    assert status == 422 and "nothing to change" in problem["detail"]
    status, problem, _ = await integrator.patch(f"/groups/{own}", json={"name": ""})
    assert status == 422 and problem["errors"][0]["field"] == "name"
    status, problem, _ = await integrator.patch(f"/groups/{own}", json={"area_code": "20101"})
    assert status == 422  # a group's owning area decides who may use it: not changeable

    for method in ("patch", "delete"):  # another commune's group: refused, and kept
        kwargs = {"json": {"name": "x"}} if method == "patch" else {}
        status, problem, _ = await getattr(integrator, method)(f"/groups/{foreign}", **kwargs)
        assert status == 403, problem
    status, kept, _ = await rig.as_("root").get(f"/groups/{foreign}")
    assert status == 200 and kept["group"]["name"] == "foreign"

    status, _, _ = await integrator.post(f"/groups/{own}/members", json={
        "add": [rig.seeded.devices["own"]]})
    assert status == 200
    status, _, _ = await integrator.delete(f"/groups/{own}")
    assert status == 204
    status, _, _ = await integrator.get(f"/groups/{own}")
    assert status == 404
    status, device, _ = await integrator.get(f"/devices/{rig.seeded.devices['own']}")
    assert status == 200 and own not in device["groups"]
    status, _, _ = await integrator.delete(f"/groups/{own}")
    assert status == 404

    entries = [(e.actor, e.action, e.target, e.detail)
               for e in await rig.hub.store.audit.entries(limit=10_000)
               if e.action in ("group.update", "group.delete")]
    assert ("user:integrator", "group.update", own,
            {"name": "Loa ven biển", "description": "the coastal speakers"}) in entries
    assert ("user:integrator", "group.delete", own, {"devices": 1}) in entries


async def test_a_broadcast_made_through_a_group_keeps_its_devices_when_the_group_goes(
        rig: ApiRig) -> None:
    hub, own = rig.hub, rig.seeded.groups["own"]
    assert hub.broadcasts is not None
    await hub.registry.set_membership(own, [rig.seeded.devices["own"]], "test")
    broadcast = Broadcast(id=new_id("bc"), content_id=rig.seeded.content["own"],
                          targets=Targets(groups=[own]))
    await hub.broadcasts.create(broadcast, "test", owner_area="19900")
    before = await hub.broadcasts.targeted_devices(broadcast.id)
    assert before == [rig.seeded.devices["own"]]
    assert await hub.registry.delete_group(own, "test") == 1
    assert await hub.broadcasts.targeted_devices(broadcast.id) == before
