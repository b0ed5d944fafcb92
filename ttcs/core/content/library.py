"""The content library: items, their approval, and what a device is given to play or show.

States::

    draft ──submit──▶ submitted ──approve──▶ approved
      ▲                   │
      │                   └──reject───▶ rejected
      └────────── edit (from any state; an approval does not survive an edit)

Approving signs an *approval statement* (metadata, media hash and size, text hash) with the
approver's Ed25519 key. :meth:`ContentLibrary.verify_approval` rebuilds the statement from the
item and checks the signature and the media bytes; the dispatch path calls it (through
:meth:`~ContentLibrary.playable`) before anything reaches a device, so content that was never
approved, was edited since, or whose bytes or database row were altered is never played.
Every change is audited in the same transaction.
"""

from __future__ import annotations

import asyncio
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from pydantic import Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ...schemas import (
    Approval,
    ApprovalState,
    BulletinLevel,
    Content,
    ContentKind,
    IssuingLevel,
    MediaRef,
    Model,
    new_id,
)
from ...schemas.base import Identifier
from ...schemas.errors import explain
from ..config import Settings
from ..errors import (
    ApprovalDenied,
    Conflict,
    ContentAltered,
    ContentNotApproved,
    InvalidInput,
    InvalidTransition,
    NotFound,
)
from ..plugins import PluginManager
from ..registry import Registry
from ..store import Store
from ..store.tables import (
    BroadcastRow,
    BroadcastTargetRow,
    ContentDecisionRow,
    ContentRow,
    DeviceRow,
    SigningKeyRow,
)
from . import signing
from .approvers import Approver, ApproverBook, check_area_fits_level
from .media import LocalMediaStore, MediaStore, StoredMedia
from .speech import Rendered, Speech, VoiceChoice
from .tts import EspeakEngine, TtsEngine, parse_wav
from .urls import MediaUrlSigner

log = structlog.get_logger("ttcs.content")

_WAV_HEAD = 64 * 1024


class ContentDraft(Model):
    """What a person gives to create an item (the body comes as a file or ``text``)."""

    title: str = Field(min_length=1, max_length=300)
    kind: ContentKind | None = Field(default=None, description="default: from the file's "
                                     "type, or text")
    text: str | None = Field(default=None, max_length=20_000)
    language: str = "vi"
    level: BulletinLevel = BulletinLevel.NORMAL
    source_level: IssuingLevel = IssuingLevel.COMMUNE
    issuer: str = Field(min_length=1, max_length=300)
    area_code: Identifier | None = None


#: fields of an item a person may edit
EDITABLE = ("title", "text", "language", "level", "source_level", "issuer", "area_code")


@dataclass(frozen=True)
class Decision:
    """One approval decision in an item's history."""

    revision: int
    decision: str
    approver: str
    level: str
    at: datetime
    key_id: str | None
    reason: str | None


@dataclass(frozen=True)
class Playable:
    """What a device gets for an approved item: a media reference with a fresh signed URL, and
    the token it can check the media against (``PlayCommand.signature``)."""

    media: MediaRef
    signature: str
    voice: VoiceChoice | None = None


def approval_statement(content: Content, approval: Approval) -> dict[str, Any]:
    """Exactly what an approver signs: the item's metadata, media hash and size, text hash."""
    media = content.media
    return {
        "v": signing.STATEMENT_VERSION,
        "content_id": content.id,
        "title": content.title,
        "kind": content.kind.value,
        "level": content.level.value,
        "source_level": content.source_level.value,
        "issuer": content.issuer,
        "language": content.language,
        "area_code": content.area_code,
        "media": {"sha256": media.sha256, "size": media.size} if media else None,
        "text_sha256": signing.sha256_text(content.text) if content.text else None,
        "approved_by": approval.approved_by,
        "approved_at": approval.approved_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "approver_level": approval.level.value,
        "key_id": approval.key_id,
    }


def default_engines(plugins: PluginManager | None = None) -> dict[str, TtsEngine]:
    """espeak-ng plus every engine registered by a loaded plugin (a plugin cannot replace a
    built-in engine by reusing its name)."""
    engines: dict[str, TtsEngine] = {EspeakEngine.name: EspeakEngine()}
    for plugin_id, engine in (plugins.tts_engines() if plugins is not None else []):
        if engine.name in engines:
            log.warning("tts.engine_name_taken", plugin=plugin_id, engine=engine.name)
            continue
        engines[engine.name] = engine
    return engines


def _nfc(text: str | None) -> str | None:
    # Vietnamese typed on some systems arrives decomposed; one form keeps hashes stable
    return unicodedata.normalize("NFC", text).strip() if text is not None else None


class ContentLibrary:
    """Content items, approvers, media, speech — the ``hub.content`` service."""

    def __init__(self, store: Store, registry: Registry, settings: Settings,
                 plugins: PluginManager | None = None, *, media: MediaStore | None = None,
                 engines: Mapping[str, TtsEngine] | None = None) -> None:
        self.store = store
        self.registry = registry
        self.settings = settings
        self.media: MediaStore = media or LocalMediaStore(settings.home / "media")
        self.urls = MediaUrlSigner.for_home(settings.home, settings.media_base)
        if any(h in settings.media_base for h in ("//0.0.0.0", "//[::]")):
            log.warning("content.media_base_unreachable", media_base=settings.media_base,
                        hint="set media_base_url to an address devices can reach")
        self.approvers = ApproverBook(store, registry)
        self.speech = Speech(store, registry, settings, self.media,
                             engines if engines is not None else default_engines(plugins))
        self._render_key: tuple[str, bytes, bytes] | None = None

    # -- reading ------------------------------------------------------------------------------

    async def get(self, content_id: str) -> Content:
        return (await self._get(content_id))[0]

    async def list_content(self, *, state: ApprovalState | str | None = None,
                           area: str | None = None, limit: int | None = None,
                           offset: int = 0) -> list[Content]:
        """Items, newest first; ``area`` keeps those owned by that area or below it, and those
        broadcast to its devices (a province's bulletin on a commune's speakers is the
        commune's to read, as the broadcast is)."""
        query = select(ContentRow).order_by(ContentRow.created_at.desc(), ContentRow.id)
        if state is not None:
            query = query.where(ContentRow.state == ApprovalState(state).value)
        if area is not None:
            covered = await self.registry.subtree(area)
            reaching = (select(BroadcastRow.content_id)
                        .join(BroadcastTargetRow,
                              BroadcastTargetRow.broadcast_id == BroadcastRow.id)
                        .join(DeviceRow, DeviceRow.id == BroadcastTargetRow.device_id)
                        .where(DeviceRow.area_code.in_(covered)))
            query = query.where(ContentRow.area_code.in_(covered) | ContentRow.id.in_(reaching))
        query = query.offset(offset)
        if limit is not None:
            query = query.limit(limit)
        async with self.store.sessions() as s:
            rows = list((await s.execute(query)).scalars())
            approvals = await self._approvals(s, rows)
        return [self._content(r, approvals.get(r.id)) for r in rows]

    async def history(self, content_id: str) -> list[Decision]:
        await self._get(content_id)
        async with self.store.sessions() as s:
            rows = (await s.execute(select(ContentDecisionRow)
                                    .where(ContentDecisionRow.content_id == content_id)
                                    .order_by(ContentDecisionRow.id))).scalars()
            return [Decision(r.revision, r.decision, r.approver, r.level, r.at, r.key_id,
                             r.reason) for r in rows]

    async def _get(self, content_id: str) -> tuple[Content, int]:
        async with self.store.sessions() as s:
            row = await s.get(ContentRow, content_id)
            if row is None:
                raise NotFound(f"no content item '{content_id}' (see `ttcs content list`)")
            approvals = await self._approvals(s, [row])
        return self._content(row, approvals.get(row.id)), row.revision

    @staticmethod
    async def _approvals(s: AsyncSession, rows: Sequence[ContentRow]
                         ) -> dict[str, ContentDecisionRow]:
        """The approval of each approved row's current revision."""
        wanted = {r.id: r.revision for r in rows if r.state == ApprovalState.APPROVED.value}
        if not wanted:
            return {}
        found: dict[str, ContentDecisionRow] = {}
        query = (select(ContentDecisionRow)
                 .where(ContentDecisionRow.content_id.in_(wanted),
                        ContentDecisionRow.decision == ApprovalState.APPROVED.value)
                 .order_by(ContentDecisionRow.id))
        for d in (await s.execute(query)).scalars():
            if wanted[d.content_id] == d.revision:
                found[d.content_id] = d
        return found

    def _content(self, row: ContentRow, approval: ContentDecisionRow | None) -> Content:
        media = None
        if row.media_sha256 is not None:
            media = MediaRef(url=f"{self.urls.base}/media/{row.media_sha256}",
                             sha256=row.media_sha256, size=row.media_size or 0,
                             duration=row.media_duration,
                             mime=row.media_mime or "application/octet-stream")
        record = None
        if approval is not None and approval.signature and approval.key_id:
            record = Approval(approved_by=approval.approver, approved_at=approval.at,
                              level=IssuingLevel(approval.level), key_id=approval.key_id,
                              signature=approval.signature)
        state = ApprovalState(row.state)
        content = Content(
            id=row.id, title=row.title, kind=ContentKind(row.kind), media=media, text=row.text,
            language=row.language, level=BulletinLevel(row.level),
            source_level=IssuingLevel(row.source_level), issuer=row.issuer,
            area_code=row.area_code, approval=record, created_by=row.created_by,
            created_at=row.created_at,
            state=state if record is not None or state is not ApprovalState.APPROVED
            else ApprovalState.SUBMITTED)
        if state is ApprovalState.APPROVED and record is None:
            # marked approved with no approval behind it (an edited database): show the truth;
            # verify_approval refuses it
            content = content.model_copy(update={"state": ApprovalState.APPROVED})
        return content

    # -- creating and editing -----------------------------------------------------------------

    async def add(self, draft: ContentDraft, actor: str, *, file: Path | None = None,
                  data: bytes | None = None) -> Content:
        """Create a draft item; the media file (if any) goes to the media store first."""
        stored = await self._store_body(file, data)
        kind = draft.kind or (_kind_of(stored) if stored else ContentKind.TEXT)
        text = _nfc(draft.text) or None
        _check_body(kind, text, stored)
        await check_area_fits_level(self.registry, draft.source_level, draft.area_code,
                                    "content")
        duration = await self._duration(stored)
        content = self._validated(
            id=new_id("cnt"), title=draft.title.strip(), kind=kind, text=text,
            media=self._ref(stored, duration), language=draft.language, level=draft.level,
            source_level=draft.source_level, issuer=draft.issuer.strip(),
            area_code=draft.area_code, created_by=actor)
        row = ContentRow(
            id=content.id, revision=1, title=content.title, kind=kind.value, text=text,
            media_sha256=stored.sha256 if stored else None,
            media_size=stored.size if stored else None,
            media_mime=stored.mime if stored else None, media_duration=duration,
            language=content.language, level=content.level.value,
            source_level=content.source_level.value, issuer=content.issuer,
            area_code=content.area_code, state=ApprovalState.DRAFT.value, created_by=actor,
            created_at=content.created_at, updated_at=content.created_at)
        async with self.store.sessions.begin() as s:
            s.add(row)
            await s.flush()
            await self.store.audit.record(actor, "content.add", content.id, session=s, detail={
                "title": content.title, "kind": kind.value, "level": content.level.value,
                "source_level": content.source_level.value, "area_code": content.area_code,
                "media_sha256": row.media_sha256})
        log.info("content.added", id=content.id, kind=kind.value, actor=actor)
        return content

    async def edit(self, content_id: str, changes: Mapping[str, Any], actor: str, *,
                   file: Path | None = None, data: bytes | None = None) -> Content:
        """Change an item; whatever its state, it becomes a draft again (audited)."""
        if unknown := set(changes) - set(EDITABLE):
            raise InvalidInput(f"cannot edit {', '.join(sorted(unknown))} (editable: "
                               f"{', '.join(EDITABLE)})")
        current, revision = await self._get(content_id)
        stored = await self._store_body(file, data)
        values = {k: current.model_dump()[k] for k in EDITABLE} | dict(changes)
        if "text" in changes:
            values["text"] = _nfc(changes["text"]) or None
        media = current.media
        duration = media.duration if media else None
        if stored is not None:
            duration = await self._duration(stored)
            media = self._ref(stored, duration)
        _check_body(current.kind, values["text"],
                    stored or (StoredMedia(media.sha256, media.size, media.mime)
                               if media else None))
        level = IssuingLevel(values["source_level"])
        await check_area_fits_level(self.registry, level, values["area_code"], "content")
        edited = self._validated(**(current.model_dump(exclude={"approval", "state", "media"})
                                    | values), media=media)
        changed = sorted(k for k in (*EDITABLE, "media")
                         if getattr(edited, k) != getattr(current, k))
        if not changed:
            return current
        async with self.store.sessions.begin() as s:
            result = await s.execute(
                update(ContentRow)
                .where(ContentRow.id == content_id, ContentRow.revision == revision)
                .values(title=edited.title, text=edited.text, language=edited.language,
                        level=edited.level.value, source_level=edited.source_level.value,
                        issuer=edited.issuer, area_code=edited.area_code,
                        media_sha256=media.sha256 if media else None,
                        media_size=media.size if media else None,
                        media_mime=media.mime if media else None, media_duration=duration,
                        revision=revision + 1, state=ApprovalState.DRAFT.value,
                        updated_at=datetime.now(UTC)))
            _one(result, content_id)
            await self.store.audit.record(actor, "content.edit", content_id, session=s, detail={
                "changed": changed, "previous_state": current.state.value,
                "revision": revision + 1})
        if current.state is ApprovalState.APPROVED:
            log.info("content.approval_withdrawn_by_edit", id=content_id, changed=changed)
        return await self.get(content_id)

    async def _store_body(self, file: Path | None, data: bytes | None) -> StoredMedia | None:
        if file is not None and data is not None:
            raise InvalidInput("give the media as a file or as bytes, not both")
        if file is not None:
            return await self.media.put_file(file)
        if data is not None:
            return await self.media.put(data)
        return None

    async def _duration(self, stored: StoredMedia | None) -> float | None:
        if stored is None or stored.mime != "audio/wav":
            return None  # other formats: the device reports the length when it plays
        head = await asyncio.to_thread(self._head, stored.sha256)
        try:
            return round(parse_wav(head, stored.size).duration, 3)
        except Exception as exc:
            raise InvalidInput(f"the WAV file is damaged: {exc}") from exc

    def _head(self, sha256: str) -> bytes:
        with self.media.open(sha256) as fh:
            return fh.read(_WAV_HEAD)

    def _ref(self, stored: StoredMedia | None, duration: float | None) -> MediaRef | None:
        if stored is None:
            return None
        return MediaRef(url=f"{self.urls.base}/media/{stored.sha256}", sha256=stored.sha256,
                        size=stored.size, duration=duration, mime=stored.mime)

    @staticmethod
    def _validated(**fields: Any) -> Content:
        try:
            return Content.model_validate(fields)
        except ValidationError as exc:
            raise InvalidInput(explain(exc)) from exc

    # -- approval -----------------------------------------------------------------------------

    async def submit(self, content_id: str, actor: str) -> Content:
        """draft → submitted: ready for an approver."""
        content, revision = await self._get(content_id)
        _require(content, ApprovalState.DRAFT, "submitted")
        await self._move(content_id, revision, ApprovalState.DRAFT, ApprovalState.SUBMITTED,
                         actor, "content.submit", {"revision": revision})
        return await self.get(content_id)

    async def approve(self, content_id: str, approver_name: str, actor: str) -> Content:
        """submitted → approved: check the approver's rights and the media, sign, record."""
        content, revision = await self._get(content_id)
        _require(content, ApprovalState.SUBMITTED, "approved")
        approver = await self.approvers.get(approver_name)
        await self._check_rights(approver, content, actor, "content.approve")
        if content.media is not None:
            await self._check_media(content)
        approval = Approval(approved_by=approver.name,
                            approved_at=datetime.now(UTC).replace(microsecond=0),
                            level=approver.level, key_id=approver.key_id, signature="-")
        statement = approval_statement(content, approval)
        async with self.store.sessions.begin() as s:
            private = await self.approvers.private_key(approver.name, s)
            signature = signing.sign(statement, private, approver.key_id,
                                     signing.APPROVAL_TYPE)
            await self._transition(s, content_id, revision, ApprovalState.SUBMITTED,
                                   ApprovalState.APPROVED)
            s.add(ContentDecisionRow(
                content_id=content_id, revision=revision, decision="approved",
                approver=approver.name, key_id=approver.key_id, level=approver.level.value,
                at=approval.approved_at, statement=statement, signature=signature))
            await self.store.audit.record(actor, "content.approve", content_id, session=s,
                                          detail={"approver": approver.name,
                                                  "key_id": approver.key_id,
                                                  "revision": revision})
        log.info("content.approved", id=content_id, approver=approver.name)
        return await self.get(content_id)

    async def reject(self, content_id: str, approver_name: str, reason: str,
                     actor: str) -> Content:
        """submitted → rejected, with the reason recorded."""
        if not reason.strip():
            raise InvalidInput("say why the item is rejected (--reason)")
        content, revision = await self._get(content_id)
        _require(content, ApprovalState.SUBMITTED, "rejected")
        approver = await self.approvers.get(approver_name)
        await self._check_rights(approver, content, actor, "content.reject")
        async with self.store.sessions.begin() as s:
            await self._transition(s, content_id, revision, ApprovalState.SUBMITTED,
                                   ApprovalState.REJECTED)
            s.add(ContentDecisionRow(
                content_id=content_id, revision=revision, decision="rejected",
                approver=approver.name, key_id=approver.key_id, level=approver.level.value,
                at=datetime.now(UTC), reason=reason.strip()))
            await self.store.audit.record(actor, "content.reject", content_id, session=s,
                                          detail={"approver": approver.name,
                                                  "reason": reason.strip(),
                                                  "revision": revision})
        return await self.get(content_id)

    async def _check_rights(self, approver: Approver, content: Content, actor: str,
                            action: str) -> None:
        if reason := await self.approvers.refusal(approver, content):
            await self.store.audit.record(actor, action, content.id, outcome="denied",
                                          detail={"approver": approver.name, "reason": reason})
            raise ApprovalDenied(reason)

    async def _check_media(self, content: Content) -> None:
        assert content.media is not None
        digest = await self.media.digest(content.media.sha256)
        if digest != content.media.sha256:
            raise ContentAltered(f"the media file of {content.id} was altered on disk: its "
                                 f"bytes hash to {digest[:16]}…, not {content.media.sha256[:16]}…")

    async def _move(self, content_id: str, revision: int, old: ApprovalState,
                    new: ApprovalState, actor: str, action: str, detail: dict[str, Any]) -> None:
        async with self.store.sessions.begin() as s:
            await self._transition(s, content_id, revision, old, new)
            await self.store.audit.record(actor, action, content_id, session=s, detail=detail)

    @staticmethod
    async def _transition(s: AsyncSession, content_id: str, revision: int,
                          old: ApprovalState, new: ApprovalState) -> None:
        # conditional on revision and state, so a concurrent edit or decision loses cleanly
        result = await s.execute(
            update(ContentRow)
            .where(ContentRow.id == content_id, ContentRow.revision == revision,
                   ContentRow.state == old.value)
            .values(state=new.value, updated_at=datetime.now(UTC)))
        _one(result, content_id)

    # -- the dispatch-time check --------------------------------------------------------------

    async def verify_approval(self, content: Content | str) -> None:
        """Raise unless ``content`` may go to devices: approved, still the approved revision,
        signature valid for its metadata, media bytes unchanged.

        Raises :class:`ContentNotApproved`, :class:`ContentAltered` or
        :class:`~ttcs.core.errors.MediaMissing` (all :class:`ContentNotDispatchable`).
        """
        if isinstance(content, str):
            content = await self.get(content)
        approval = content.approval
        if content.state is not ApprovalState.APPROVED or approval is None:
            raise ContentNotApproved(f"content {content.id} is {content.state.value}, not "
                                     "approved; only approved content is dispatched")
        current, _ = await self._get(content.id)
        if current.approval is None or current.approval.signature != approval.signature:
            raise ContentNotApproved(
                f"content {content.id} is no longer approved in this form (now "
                f"{current.state.value}: edited or decided again since)")
        approver = await self.approvers.by_key(approval.key_id)
        if approver is None:
            raise ContentAltered(f"content {content.id}: the approval was signed with key "
                                 f"{approval.key_id}, which belongs to no approver")
        if approver.name != approval.approved_by or approver.level is not content.source_level:
            raise ContentAltered(f"content {content.id}: the approval record does not match "
                                 f"approver {approver.name} ({approver.level.value} level)")
        statement = approval_statement(content, approval)
        if not signing.signature_valid(statement, signing.b64u_decode(approver.public_key),
                                       approval.key_id, signing.APPROVAL_TYPE,
                                       approval.signature):
            changed = await self._changed_since_approval(content.id, approval.signature,
                                                         statement)
            what = f" ({', '.join(changed)} changed)" if changed else ""
            raise ContentAltered(f"content {content.id} differs from what {approver.name} "
                                 f"approved{what}; the signature does not verify")
        if content.media is not None:
            await self._check_media(content)

    async def _changed_since_approval(self, content_id: str, signature: str,
                                      statement: dict[str, Any]) -> list[str]:
        async with self.store.sessions() as s:
            signed = (await s.execute(
                select(ContentDecisionRow.statement)
                .where(ContentDecisionRow.content_id == content_id,
                       ContentDecisionRow.signature == signature))).scalar()
        if not isinstance(signed, dict):
            return []
        return sorted(k for k in statement.keys() | signed.keys()
                      if statement.get(k) != signed.get(k))

    def approval_token(self, content: Content) -> str:
        """The approval as a compact JWS a device can verify (for ``ShowCommand.signature``
        and audio ``PlayCommand.signature``). Call :meth:`verify_approval` first."""
        if content.approval is None:
            raise ContentNotApproved(f"content {content.id} is not approved")
        a = content.approval
        return signing.token(approval_statement(content, a), a.key_id, signing.APPROVAL_TYPE,
                             a.signature)

    # -- media for devices --------------------------------------------------------------------

    def signed_url(self, sha256: str, ttl: float | None = None) -> str:
        """A URL of the media file that the hub serves until ``ttl`` seconds from now."""
        return self.urls.sign(sha256, ttl if ttl is not None else self.settings.media_url_ttl)

    async def speak(self, content: Content, area_code: str) -> tuple[Rendered, VoiceChoice]:
        """The item's text rendered in the area's voice — a preview: no approval needed."""
        if not content.text:
            raise InvalidInput(f"content {content.id} has no text to speak")
        choice = await self.speech.voice_for(area_code, content.language)
        return await self.speech.render(content.text, choice.engine, choice.voice), choice

    async def playable(self, content: Content | str, area_code: str) -> Playable:
        """Verify the approval, then the media a device in ``area_code`` plays or shows, with a
        fresh signed URL and the token that proves it approved. A text item becomes speech in
        the area's voice, signed by the hub's render key over the approval."""
        return (await self.playables(content, [area_code]))[area_code]

    async def playables(self, content: Content | str, area_codes: Iterable[str]
                        ) -> dict[str, Playable]:
        """:meth:`playable` for many areas at once — for a fan-out: the approval is verified
        once and the text rendered once per distinct voice."""
        if isinstance(content, str):
            content = await self.get(content)
        await self.verify_approval(content)
        approval_token = self.approval_token(content)
        areas = list(dict.fromkeys(area_codes))
        if content.media is not None:
            m = content.media
            same = Playable(MediaRef(url=self.signed_url(m.sha256), sha256=m.sha256,
                                     size=m.size, duration=m.duration, mime=m.mime),
                            approval_token)
            return dict.fromkeys(areas, same)
        if not content.text:
            raise InvalidInput(f"content {content.id} has neither media nor text")
        spoken: dict[tuple[str, str], Playable] = {}
        result: dict[str, Playable] = {}
        for area in areas:
            choice = await self.speech.voice_for(area, content.language)
            key = (choice.engine, choice.voice)
            if key not in spoken:
                spoken[key] = await self._spoken(content, content.text, choice, approval_token)
            result[area] = replace(spoken[key], voice=choice)
        return result

    async def _spoken(self, content: Content, text: str, choice: VoiceChoice,
                      approval_token: str) -> Playable:
        rendered = await self.speech.render(text, choice.engine, choice.voice)
        payload = {"v": signing.STATEMENT_VERSION, "content_id": content.id,
                   "approval": approval_token, "text_sha256": signing.sha256_text(text),
                   "engine": rendered.engine, "voice": rendered.voice,
                   "media": {"sha256": rendered.sha256, "size": rendered.size}}
        kid, private, _ = await self.render_key()
        token = signing.token(payload, kid, signing.RENDER_TYPE,
                              signing.sign(payload, private, kid, signing.RENDER_TYPE))
        media = MediaRef(url=self.signed_url(rendered.sha256), sha256=rendered.sha256,
                         size=rendered.size, duration=round(rendered.duration, 3),
                         mime=rendered.mime)
        return Playable(media, token, choice)

    async def media_for(self, content: Content | str, area_code: str) -> MediaRef:
        """The media a device in ``area_code`` gets for an approved item (see :meth:`playable`)."""
        return (await self.playable(content, area_code)).media

    # -- keys ---------------------------------------------------------------------------------

    async def render_key(self) -> tuple[str, bytes, bytes]:
        """(key id, private, public) of the hub's render key, made on first use."""
        if self._render_key is not None:
            return self._render_key
        async with self.store.sessions() as s:
            row = (await s.execute(select(SigningKeyRow)
                                   .where(SigningKeyRow.purpose == "render"))).scalar()
        if row is None:
            private, public = signing.new_keypair()
            row = SigningKeyRow(key_id=signing.key_id(public), purpose="render",
                                public_key=signing.b64u(public),
                                private_key=self.store.secrets.seal(
                                    {"ed25519": signing.b64u(private)}))
            try:
                async with self.store.sessions.begin() as s:
                    s.add(row)
                    await s.flush()
                    await self.store.audit.record("hub", "key.create", row.key_id, session=s,
                                                  detail={"purpose": "render"})
            except IntegrityError:  # another worker made it first
                return await self.render_key()
        private = signing.b64u_decode(self.store.secrets.open(row.private_key)["ed25519"])
        self._render_key = (row.key_id, private, signing.b64u_decode(row.public_key))
        return self._render_key

    async def jwks(self) -> dict[str, Any]:
        """Public keys devices verify tokens with: approvers' and the hub's render key."""
        kid, _, public = await self.render_key()
        return {"keys": [*await self.approvers.jwks(),
                         signing.jwk(public, kid, ttcs_role="render")]}


# -- helpers ---------------------------------------------------------------------------------


_NEXT_STEP = {
    ApprovalState.DRAFT: "submit it first (ttcs content submit)",
    ApprovalState.SUBMITTED: "it is waiting for an approver",
    ApprovalState.APPROVED: "it is approved already; edit it to start over",
    ApprovalState.REJECTED: "it was rejected; edit it, then submit it again",
}
_FROM = {"submitted": "a draft", "approved": "a submitted item", "rejected": "a submitted item"}


def _require(content: Content, state: ApprovalState, becoming: str) -> None:
    if content.state is not state:
        raise InvalidTransition(f"content {content.id} is {content.state.value}: only "
                                f"{_FROM[becoming]} can be {becoming}; "
                                f"{_NEXT_STEP[content.state]}")


def _one(result: Any, content_id: str) -> None:
    if getattr(result, "rowcount", 1) != 1:
        raise Conflict(f"content {content_id} changed while this was being done; "
                       "look at it again (ttcs content show) and retry")


def _kind_of(stored: StoredMedia) -> ContentKind:
    major = stored.mime.split("/", 1)[0]
    try:
        return ContentKind(major)
    except ValueError:
        raise InvalidInput(f"cannot tell what the file is (detected {stored.mime}); "
                           "say --kind audio|image|video") from None


_ARTICLE = {ContentKind.AUDIO: "an", ContentKind.IMAGE: "an", ContentKind.VIDEO: "a"}
_FORMATS = {ContentKind.AUDIO: "WAV, MP3, OGG, FLAC, AAC, M4A",
            ContentKind.IMAGE: "PNG, JPEG, GIF, WebP",
            ContentKind.VIDEO: "MP4, WebM, AVI"}


def _check_body(kind: ContentKind, text: str | None, stored: StoredMedia | None) -> None:
    if kind is ContentKind.TEXT:
        if stored is not None:
            raise InvalidInput("a text item takes --text, not a file")
        if not text:
            raise InvalidInput("a text item needs its text (--text)")
        return
    if stored is None:
        raise InvalidInput(f"{_ARTICLE[kind]} {kind.value} item needs its file (--file)")
    if not stored.mime.startswith(f"{kind.value}/"):
        raise InvalidInput(f"the file does not look like {kind.value} (detected {stored.mime});"
                           f" supported: {_FORMATS[kind]}")
