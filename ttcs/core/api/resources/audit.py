"""``/audit``: the hash-chained audit trail (read-only, hub-wide accounts only)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ....schemas import Model
from ....schemas.api import Page
from ....schemas.base import AwareDatetime
from ...access.policy import Action
from ..routing import Call, endpoint
from .common import PageQuery


class AuditQuery(PageQuery):
    actor: str | None = Field(default=None, max_length=200, examples=["user:alice"])
    action: str | None = Field(default=None, max_length=100, examples=["device.command"])


class AuditEntry(Model):
    seq: int
    at: AwareDatetime
    actor: str
    action: str
    target: str | None = None
    outcome: str = Field(description="ok, denied or failed")
    detail: dict[str, Any]
    hash: str
    prev_hash: str


class AuditVerification(Model):
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None


@endpoint("GET", "/audit", tag="audit", action=Action.AUDIT_READ,
          summary="Audit entries, newest first", query=AuditQuery, response=Page[AuditEntry])
async def list_audit(call: Call) -> Page[AuditEntry]:
    q: AuditQuery = call.query
    rows = await call.hub.store.audit.entries(limit=q.limit + 1, offset=q.offset,
                                              actor=q.actor, action=q.action)
    entries = [AuditEntry(seq=r.seq, at=r.at, actor=r.actor, action=r.action, target=r.target,
                          outcome=r.outcome, detail=r.detail, hash=r.hash,
                          prev_hash=r.prev_hash) for r in rows]
    return call.page(entries, q.limit, q.offset)


@endpoint("GET", "/audit/verify", tag="audit", action=Action.AUDIT_READ,
          summary="Check the hash chain (an edited, deleted or reordered entry is found)",
          response=AuditVerification)
async def verify_audit(call: Call) -> AuditVerification:
    result = await call.hub.store.audit.verify()
    return AuditVerification(**result.__dict__)
