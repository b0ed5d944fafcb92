"""Approval: draft → submitted → approved/rejected, by approvers with rights at the issuing
level and over the item's area; signed with Ed25519; anything unapproved or altered since is
refused by the check the dispatch path runs (on SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text, update

from tests.core.content.conftest import approved, draft, wav_bytes
from ttcs.core.content import ContentDraft
from ttcs.core.errors import (
    ApprovalDenied,
    ContentAltered,
    ContentNotApproved,
    InvalidInput,
    InvalidTransition,
    MediaMissing,
    NotFound,
)
from ttcs.core.hub import Hub
from ttcs.core.store.tables import ContentDecisionRow, ContentRow
from ttcs.schemas import ApprovalState, IssuingLevel


async def test_an_item_moves_from_draft_through_submitted_to_approved_and_is_audited(
        content_hub: Hub) -> None:
    lib = content_hub.content
    item = await lib.add(draft(), "cli:editor")
    assert item.state is ApprovalState.DRAFT
    assert (await lib.submit(item.id, "cli:editor")).state is ApprovalState.SUBMITTED
    done = await lib.approve(item.id, "chu-tich-phu-vinh", "cli:chairman")
    assert done.state is ApprovalState.APPROVED
    assert done.approval is not None
    assert done.approval.approved_by == "chu-tich-phu-vinh"
    assert done.approval.level.value == "commune"
    await lib.verify_approval(done)
    actions = [(e.actor, e.action, e.target) for e in
               reversed(await content_hub.store.audit.entries(limit=3))]
    assert actions == [("cli:editor", "content.add", item.id),
                       ("cli:editor", "content.submit", item.id),
                       ("cli:chairman", "content.approve", item.id)]
    assert (await content_hub.store.audit.verify()).ok


# level × area: who may approve what
RIGHTS = [
    ("chu-tich-phu-vinh", "commune", "20101", None),
    ("chu-tich-phu-vinh", "commune", "19900", "approves only for area 20101"),
    ("chu-tich-thuan-an", "commune", "19900", None),
    ("chu-tich-phu-vinh", "province", "46", "approves commune-level items"),
    ("ubnd-hue", "province", "46", None),
    ("ubnd-hue", "commune", "20101", "approves province-level items"),
    ("ubnd-ha-noi", "province", "46", "approves only for area 1"),
    ("bo-tttt", "central", None, None),
    ("bo-tttt", "province", "46", "approves central-level items"),
]


@pytest.mark.parametrize(("approver", "level", "area", "refusal"), RIGHTS)
async def test_only_an_approver_at_the_issuing_level_over_the_area_approves(
        sqlite_hub: Hub, approver: str, level: str, area: str | None,
        refusal: str | None) -> None:
    lib = sqlite_hub.content
    item = await lib.add(draft(source_level=level, area_code=area), "test")
    await lib.submit(item.id, "test")
    if refusal is None:
        assert (await lib.approve(item.id, approver, "test")).state is ApprovalState.APPROVED
        return
    with pytest.raises(ApprovalDenied, match=refusal):
        await lib.approve(item.id, approver, "test")
    assert (await lib.get(item.id)).state is ApprovalState.SUBMITTED
    denied = (await sqlite_hub.store.audit.entries(limit=1))[0]
    assert (denied.action, denied.outcome) == ("content.approve", "denied")


async def test_an_approver_of_another_commune_is_refused_on_every_database(
        content_hub: Hub) -> None:
    lib = content_hub.content
    item = await lib.add(draft(), "test")
    await lib.submit(item.id, "test")
    with pytest.raises(ApprovalDenied, match="approves only for area 19900"):
        await lib.approve(item.id, "chu-tich-thuan-an", "test")
    assert (await lib.approve(item.id, "chu-tich-phu-vinh", "test")).approval is not None


async def test_a_rejection_records_the_reason_and_an_edit_starts_over(
        content_hub: Hub) -> None:
    lib = content_hub.content
    item = await lib.add(draft(), "test")
    await lib.submit(item.id, "test")
    rejected = await lib.reject(item.id, "chu-tich-phu-vinh", "sai ngày tiêm", "test")
    assert rejected.state is ApprovalState.REJECTED
    edited = await lib.edit(item.id, {"text": "Sáng thứ Bảy trạm y tế tổ chức tiêm chủng."},
                            "test")
    assert edited.state is ApprovalState.DRAFT
    await approved(content_hub, edited)
    history = [(d.revision, d.decision, d.reason) for d in await lib.history(item.id)]
    assert history == [(1, "rejected", "sai ngày tiêm"), (2, "approved", None)]


@pytest.mark.parametrize(("steps", "attempt", "message"), [
    ([], "approve", "is draft: only a submitted item can be approved; submit it first"),
    ([], "reject", "is draft: only a submitted item can be rejected"),
    (["submit"], "submit", "is submitted: only a draft can be submitted; it is waiting"),
    (["submit", "approve"], "approve", "is approved: only a submitted item can be approved"),
    (["submit", "approve"], "submit", "it is approved already; edit it to start over"),
    (["submit", "reject"], "submit", "it was rejected; edit it, then submit it again"),
])
async def test_steps_out_of_order_are_refused_saying_what_to_do(
        sqlite_hub: Hub, steps: list[str], attempt: str, message: str) -> None:
    lib = sqlite_hub.content
    item = await lib.add(draft(), "test")
    do = {"submit": lambda: lib.submit(item.id, "test"),
          "approve": lambda: lib.approve(item.id, "chu-tich-phu-vinh", "test"),
          "reject": lambda: lib.reject(item.id, "chu-tich-phu-vinh", "no", "test")}
    for step in steps:
        await do[step]()
    state = (await lib.get(item.id)).state
    with pytest.raises(InvalidTransition, match=message):
        await do[attempt]()
    assert (await lib.get(item.id)).state is state


async def test_editing_an_approved_item_withdraws_the_approval(content_hub: Hub) -> None:
    lib = content_hub.content
    item = await approved(content_hub, await lib.add(draft(), "test"))
    edited = await lib.edit(item.id, {"title": "Thông báo (đính chính)"}, "test")
    assert edited.state is ApprovalState.DRAFT and edited.approval is None
    with pytest.raises(ContentNotApproved, match="no longer approved"):
        await lib.verify_approval(item)  # the copy a scheduler may still hold
    with pytest.raises(ContentNotApproved, match="is draft, not approved"):
        await lib.playable(item.id, "20101")


async def test_an_edit_that_changes_nothing_keeps_the_approval(sqlite_hub: Hub) -> None:
    lib = sqlite_hub.content
    item = await approved(sqlite_hub, await lib.add(draft(), "test"))
    assert (await lib.edit(item.id, {"title": item.title}, "test")).state \
        is ApprovalState.APPROVED


async def test_metadata_changed_in_the_database_after_approval_is_detected(
        content_hub: Hub) -> None:
    lib = content_hub.content
    item = await approved(content_hub, await lib.add(draft(), "test"))
    async with content_hub.store.sessions.begin() as s:
        await s.execute(update(ContentRow).where(ContentRow.id == item.id)
                        .values(level="emergency", issuer="Kẻ giả mạo"))
    with pytest.raises(ContentAltered, match=r"\(issuer, level changed\)"):
        await lib.verify_approval(item.id)


async def test_text_changed_in_the_database_after_approval_is_detected(
        content_hub: Hub) -> None:
    lib = content_hub.content
    item = await approved(content_hub, await lib.add(draft(), "test"))
    async with content_hub.store.sessions.begin() as s:
        await s.execute(update(ContentRow).where(ContentRow.id == item.id)
                        .values(text="Sơ tán ngay lập tức!"))
    with pytest.raises(ContentAltered, match="text_sha256 changed"):
        await lib.playable(item.id, "20101")


async def test_media_bytes_replaced_on_disk_after_approval_are_detected(
        content_hub: Hub, tmp_path: Path) -> None:
    lib = content_hub.content
    audio = tmp_path / "ban-tin.wav"
    audio.write_bytes(wav_bytes(seconds=0.5))
    item = await lib.add(draft(text=None), "test", file=audio)
    assert item.media is not None and item.media.duration == pytest.approx(0.5)
    item = await approved(content_hub, item)
    await lib.verify_approval(item)
    path = lib.media.path(item.media.sha256)
    assert path is not None
    path.write_bytes(wav_bytes(seconds=0.5, tone=880))
    with pytest.raises(ContentAltered, match="altered on disk"):
        await lib.verify_approval(item)
    path.unlink()
    with pytest.raises(MediaMissing):
        await lib.media_for(item, "20101")


async def test_an_item_marked_approved_without_an_approval_is_not_dispatchable(
        content_hub: Hub) -> None:
    lib = content_hub.content
    item = await lib.add(draft(), "test")
    async with content_hub.store.sessions.begin() as s:
        await s.execute(update(ContentRow).where(ContentRow.id == item.id)
                        .values(state="approved"))
    forged = await lib.get(item.id)
    assert forged.state is ApprovalState.APPROVED and forged.approval is None
    with pytest.raises(ContentNotApproved):
        await lib.verify_approval(forged)


async def test_a_signature_copied_from_another_item_does_not_verify(content_hub: Hub) -> None:
    lib = content_hub.content
    good = await approved(content_hub, await lib.add(draft(), "test"))
    other = await lib.add(draft(title="Sơ tán khẩn cấp", level="emergency"), "test")
    await lib.submit(other.id, "test")
    assert good.approval is not None
    async with content_hub.store.sessions.begin() as s:
        await s.execute(update(ContentRow).where(ContentRow.id == other.id)
                        .values(state="approved"))
        s.add(ContentDecisionRow(content_id=other.id, revision=1, decision="approved",
                                 approver=good.approval.approved_by,
                                 key_id=good.approval.key_id, level="commune",
                                 at=good.approval.approved_at, statement=None,
                                 signature=good.approval.signature))
    with pytest.raises(ContentAltered, match="signature does not verify"):
        await lib.verify_approval(other.id)


async def test_approving_refuses_media_that_changed_after_it_was_added(
        sqlite_hub: Hub, tmp_path: Path) -> None:
    lib = sqlite_hub.content
    audio = tmp_path / "a.wav"
    audio.write_bytes(wav_bytes())
    item = await lib.add(draft(text=None), "test", file=audio)
    await lib.submit(item.id, "test")
    assert item.media is not None
    path = lib.media.path(item.media.sha256)
    assert path is not None
    path.write_bytes(b"RIFF....WAVE not what the editor uploaded")
    with pytest.raises(ContentAltered):
        await lib.approve(item.id, "chu-tich-phu-vinh", "test")


async def test_a_speaker_gets_the_text_spoken_in_its_areas_voice_with_a_signed_url(
        sqlite_hub: Hub) -> None:
    lib = sqlite_hub.content
    item = await approved(sqlite_hub, await lib.add(draft(), "test"))
    playable = await lib.playable(item, "20101-01")
    assert playable.voice is not None and playable.voice.voice == "vi-vn-x-central"
    assert playable.media.mime == "audio/wav"
    assert playable.media.duration and playable.media.duration > 1
    assert f"/media/{playable.media.sha256}?exp=" in str(playable.media.url)
    again = await lib.media_for(item, "20101-01")
    assert (again.sha256, again.duration) == (playable.media.sha256, playable.media.duration)


async def test_an_audio_item_is_given_as_its_own_file(sqlite_hub: Hub) -> None:
    lib = sqlite_hub.content
    item = await approved(sqlite_hub, await lib.add(draft(text=None), "test",
                                                    data=wav_bytes()))
    assert item.media is not None
    media = await lib.media_for(item, "20101")
    assert (media.sha256, media.size, media.mime) == (item.media.sha256, item.media.size,
                                                      "audio/wav")
    assert "sig=" in str(media.url)


@pytest.mark.parametrize(("fields", "message"), [
    ({"source_level": "commune", "area_code": "46"}, "which is a municipality"),
    ({"source_level": "province", "area_code": "20101"}, "which is a commune"),
    ({"source_level": "commune", "area_code": None}, "needs an area"),
    ({"area_code": "99999"}, "no area with code '99999'"),
])
async def test_an_item_must_belong_to_an_area_of_its_issuing_level(
        sqlite_hub: Hub, fields: dict[str, object], message: str) -> None:
    with pytest.raises((InvalidInput, NotFound), match=message):
        await sqlite_hub.content.add(draft(**fields), "test")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "audio"}, "an audio item needs its file"),
    ({"kind": "text", "text": None}, "a text item needs its text"),
])
async def test_an_item_without_its_body_is_refused(sqlite_hub: Hub, kwargs: dict[str, object],
                                                   message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        await sqlite_hub.content.add(draft(**kwargs), "test")


async def test_a_file_of_the_wrong_kind_is_refused(sqlite_hub: Hub) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)
    with pytest.raises(InvalidInput, match=r"does not look like audio \(detected image/png\)"):
        await sqlite_hub.content.add(ContentDraft(title="x", kind="audio", issuer="x",
                                                  area_code="20101"), "test", data=png)


async def test_an_approver_must_sit_at_an_area_of_their_level(sqlite_hub: Hub) -> None:
    with pytest.raises(InvalidInput, match="cannot belong to area 46"):
        await sqlite_hub.content.approvers.add("x", IssuingLevel.COMMUNE, "46", "test")


async def test_approver_private_keys_are_stored_sealed(content_hub: Hub) -> None:
    async with content_hub.store.sessions() as s:
        sealed = (await s.execute(text("SELECT private_key, public_key FROM approvers"))).all()
    assert sealed and all(row[0].startswith("gAAAA") for row in sealed)  # Fernet tokens


async def test_a_fan_out_verifies_once_and_renders_once_per_voice(sqlite_hub: Hub) -> None:
    lib = sqlite_hub.content
    item = await approved(sqlite_hub, await lib.add(draft(), "test"))
    before = lib.speech.syntheses
    got = await lib.playables(item, ["20101", "20101-01", "19900", "91", "26734"])
    voices = {area: p.voice.voice for area, p in got.items() if p.voice}
    assert voices == {"20101": "vi-vn-x-central", "20101-01": "vi-vn-x-central",
                      "19900": "vi-vn-x-central", "91": "vi", "26734": "vi-vn-x-south"}
    assert lib.speech.syntheses - before == 3
    assert got["20101"].media.sha256 == got["19900"].media.sha256 != got["91"].media.sha256
