"""A bulletin issued above a commune and sent to its speakers may be read from the commune —
the broadcast (with the commune's own part of the figures) and its content, both also in the
commune's listings — but not changed from there; a commune it does not reach still sees
nothing of it."""

from __future__ import annotations

from tests.api.conftest import FOREIGN, OWN, ApiRig
from tests.core.content.conftest import wav_bytes
from ttcs.core.access.policy import Action, Principal, Target, decide
from ttcs.core.content import ContentDraft
from ttcs.schemas import Broadcast, IssuingLevel, Targets, new_id
from ttcs.schemas.access import Role

PROVINCE = "46"


async def province_bulletin(rig: ApiRig, devices: list[str]) -> tuple[str, str]:
    hub = rig.hub
    await hub.content.approvers.add("chu-tich-hue", IssuingLevel.PROVINCE, PROVINCE, "test")
    item = await hub.content.add(ContentDraft(title="Cảnh báo bão", issuer="UBND tỉnh",
                                              area_code=PROVINCE, source_level="province",
                                              level="emergency"), "test", data=wav_bytes())
    await hub.content.submit(item.id, "test")
    await hub.content.approve(item.id, "chu-tich-hue", "test")
    assert hub.broadcasts is not None
    broadcast = Broadcast(id=new_id("bc"), content_id=item.id,
                          targets=Targets(devices=devices))
    await hub.broadcasts.create(broadcast, "test", owner_area=PROVINCE)
    return broadcast.id, item.id


async def test_a_commune_reads_the_provinces_bulletin_on_its_speakers_and_only_its_part(
        rig: ApiRig) -> None:
    seeded = rig.seeded
    broadcast_id, content_id = await province_bulletin(
        rig, [seeded.devices["own"], seeded.devices["foreign"]])
    operator = rig.as_("operator")  # scoped to the own ward

    status, listed, _ = await operator.get("/broadcasts")
    assert status == 200 and broadcast_id in [b["id"] for b in listed["items"]]
    status, detail, _ = await operator.get(f"/broadcasts/{broadcast_id}")
    assert status == 200, detail
    assert detail["devices"] == 1  # its own speaker, not the other commune's
    assert sum(detail["deliveries"].values()) <= 1
    status, whole, _ = await rig.as_("root").get(f"/broadcasts/{broadcast_id}")
    assert status == 200 and whole["devices"] == 2

    status, content, _ = await operator.get(f"/content/{content_id}")
    assert status == 200, content
    assert content["content"]["id"] == content_id and content["dispatchable"] is True
    status, items, _ = await operator.get("/content")
    assert status == 200
    listed_ids = [c["id"] for c in items["items"]]
    assert content_id in listed_ids and seeded.content["own"] in listed_ids
    assert seeded.content["foreign"] not in listed_ids  # another commune's own bulletin

    status, coverage, _ = await operator.get(f"/broadcasts/{broadcast_id}/coverage")
    assert status == 200, coverage

    # reading is not changing: the province's broadcast is not the ward's to cancel
    status, problem, _ = await operator.post(f"/broadcasts/{broadcast_id}/cancel")
    assert status == 403 and PROVINCE in problem["detail"]


async def test_a_commune_the_bulletin_does_not_reach_is_refused_it(rig: ApiRig) -> None:
    broadcast_id, content_id = await province_bulletin(rig, [rig.seeded.devices["foreign"]])
    operator = rig.as_("operator")
    for path in (f"/broadcasts/{broadcast_id}", f"/content/{content_id}",
                 f"/broadcasts/{broadcast_id}/coverage"):
        status, problem, _ = await operator.get(path)
        assert status == 403, (path, problem)
    status, listed, _ = await operator.get("/broadcasts")
    assert status == 200 and broadcast_id not in [b["id"] for b in listed["items"]]
    status, items, _ = await operator.get("/content")
    assert status == 200 and content_id not in [c["id"] for c in items["items"]]


def test_reach_opens_reads_only() -> None:
    ward = Principal(name="w", role=Role.ADMINISTRATOR, area_code=OWN)
    ancestry = {OWN: frozenset({OWN, PROVINCE}), FOREIGN: frozenset({FOREIGN, PROVINCE}),
                PROVINCE: frozenset({PROVINCE})}
    target = Target.of([PROVINCE, OWN, FOREIGN], reaches=[OWN, FOREIGN])
    assert decide(ward, Action.BROADCAST_READ, target, ancestry).allowed
    assert decide(ward, Action.CONTENT_READ, target, ancestry).allowed
    for write in (Action.BROADCAST_WRITE, Action.CONTENT_WRITE, Action.CONTENT_APPROVE):
        assert not decide(ward, write, target, ancestry).allowed
    elsewhere = Target.of([PROVINCE, FOREIGN], reaches=[FOREIGN])
    assert not decide(ward, Action.BROADCAST_READ, elsewhere, ancestry).allowed
