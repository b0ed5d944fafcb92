"""``/content``: the content library — upload, edit, submit, approve, reject."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ....schemas import ApprovalState, BulletinLevel, Content, ContentKind, IssuingLevel, Model
from ....schemas.api import Page
from ....schemas.base import Identifier
from ...access.policy import Action, Target
from ...content.library import ContentDraft
from ...errors import ContentNotDispatchable, InvalidInput
from ..routing import Call, endpoint
from .common import PageQuery, query_area


class ContentQuery(PageQuery):
    state: ApprovalState | None = None
    area: Identifier | None = Field(default=None, description="owned by this area or below")


class FileDraft(Model):
    """The metadata of an uploaded file (the body is the file itself)."""

    title: str = Field(min_length=1, max_length=300)
    kind: ContentKind | None = Field(default=None, description="default: from the bytes")
    language: str = "vi"
    level: BulletinLevel = BulletinLevel.NORMAL
    source_level: IssuingLevel = IssuingLevel.COMMUNE
    issuer: str = Field(min_length=1, max_length=300)
    area_code: Identifier | None = None


class ContentEdit(Model):
    """Fields to change; the item becomes a draft again."""

    title: str | None = Field(default=None, min_length=1, max_length=300)
    text: str | None = Field(default=None, min_length=1, max_length=20_000)
    language: str | None = None
    level: BulletinLevel | None = None
    source_level: IssuingLevel | None = None
    issuer: str | None = Field(default=None, min_length=1, max_length=300)
    area_code: Identifier | None = None


class Rejection(Model):
    reason: str = Field(min_length=1, max_length=2000)


class DecisionRecord(Model):
    revision: int
    decision: str
    approver: str
    level: str
    at: str
    key_id: str | None = None
    reason: str | None = None


class ContentDetail(Model):
    content: Content
    dispatchable: bool = Field(description="passes the dispatcher's check now")
    reason: str | None = Field(default=None, description="why not, if not")
    history: list[DecisionRecord]


@endpoint("GET", "/content", tag="content", action=Action.CONTENT_READ,
          summary="List content items, newest first", query=ContentQuery,
          response=Page[Content], target=query_area)
async def list_content(call: Call) -> Page[Content]:
    q: ContentQuery = call.query
    items = await call.hub.content.list_content(state=q.state, area=await call.area_filter(
        q.area), limit=q.limit + 1, offset=q.offset)
    return call.page(items, q.limit, q.offset)


async def _drafted(call: Call) -> Target:
    return Target.of([call.query.area_code if call.body is None or isinstance(
        call.body, bytes) else call.body.area_code])


@endpoint("POST", "/content", tag="content", action=Action.CONTENT_WRITE, status=201,
          summary="Add a text bulletin (a draft)", body=ContentDraft, response=Content,
          target=_drafted)
async def add_text(call: Call) -> Content:
    draft: ContentDraft = call.body
    if draft.text is None:
        raise InvalidInput("a text bulletin needs 'text'; upload files with POST "
                           "/api/v1/content/files")
    return await call.hub.content.add(draft, call.actor)


@endpoint("POST", "/content/files", tag="content", action=Action.CONTENT_WRITE, status=201,
          summary="Upload an audio, image or video file as a draft item (metadata in the "
          "query)", query=FileDraft, raw_body="application/octet-stream", response=Content,
          target=_drafted)
async def add_file(call: Call) -> Content:
    meta: FileDraft = call.query
    data: bytes = call.body
    if not data:
        raise InvalidInput("the body must be the file (audio, image or video)")
    draft = ContentDraft(**meta.model_dump())
    return await call.hub.content.add(draft, call.actor, data=data)


async def _item(call: Call) -> Target:
    item = await call.hub.content.get(call.path["id"])
    areas: set[str | None] = {item.area_code}
    if isinstance(call.body, ContentEdit) and "area_code" in call.body.model_fields_set:
        areas.add(call.body.area_code)
    return Target.of(areas)


async def _readable(call: Call) -> Target:
    """An item is read from its own area, or from any area its broadcasts were sent to (a
    commune hears what the province is putting on its speakers)."""
    item = await call.hub.content.get(call.path["id"])
    return Target.of([item.area_code], reaches=await call.api.broadcasts.content_reach(item.id))


@endpoint("GET", "/content/{id}", tag="content", action=Action.CONTENT_READ,
          summary="One item, its approval history, and whether it may be dispatched",
          response=ContentDetail, target=_readable)
async def get_content(call: Call) -> ContentDetail:
    library = call.hub.content
    item = await library.get(call.path["id"])
    reason = None
    try:
        await library.verify_approval(item)
    except ContentNotDispatchable as exc:
        reason = str(exc)
    history = [DecisionRecord(revision=d.revision, decision=d.decision, approver=d.approver,
                              level=d.level, at=d.at.isoformat(), key_id=d.key_id,
                              reason=d.reason) for d in await library.history(item.id)]
    return ContentDetail(content=item, dispatchable=reason is None, reason=reason,
                         history=history)


@endpoint("PATCH", "/content/{id}", tag="content", action=Action.CONTENT_WRITE,
          summary="Edit an item (it becomes a draft again)", body=ContentEdit,
          response=Content, target=_item)
async def edit_content(call: Call) -> Content:
    changes: dict[str, Any] = call.body.model_dump(exclude_unset=True)
    return await call.hub.content.edit(call.path["id"], changes, call.actor)


@endpoint("POST", "/content/{id}/submit", tag="content", action=Action.CONTENT_WRITE,
          summary="Submit a draft for approval", response=Content, target=_item)
async def submit_content(call: Call) -> Content:
    return await call.hub.content.submit(call.path["id"], call.actor)


def _approver(call: Call) -> str:
    if call.principal.approver is None:
        raise InvalidInput(f"user {call.principal.name} is not linked to an approver record "
                           "(its signing key); see `ttcs users add --approver`")
    return call.principal.approver


@endpoint("POST", "/content/{id}/approve", tag="content", action=Action.CONTENT_APPROVE,
          summary="Approve and sign a submitted item", response=Content, target=_item)
async def approve_content(call: Call) -> Content:
    return await call.hub.content.approve(call.path["id"], _approver(call), call.actor)


@endpoint("POST", "/content/{id}/reject", tag="content", action=Action.CONTENT_APPROVE,
          summary="Reject a submitted item, saying why", body=Rejection, response=Content,
          target=_item)
async def reject_content(call: Call) -> Content:
    return await call.hub.content.reject(call.path["id"], _approver(call), call.body.reason,
                                         call.actor)
