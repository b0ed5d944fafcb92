"""The audit trail: append-only and hash-chained, so an edited or deleted entry is detectable.

Each entry's hash is SHA-256 over the previous entry's hash and the entry's canonical JSON.
``prev_hash`` is unique in the table, so two writers can never fork the chain: the loser of a
race gets an integrity error and retries on the new head.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from .store.tables import AuditRow

GENESIS = "0" * 64
_CHAIN_LOCK = 0x77C5A0D1  # PostgreSQL advisory lock key for appending to the chain


async def _lock_chain(session: AsyncSession) -> None:
    """Serialise appends: the head must not move between reading it and writing after it."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})
    else:  # SQLite: a no-op write takes the database write lock (waiting on busy_timeout)
        await session.execute(text("UPDATE audit_log SET seq = seq WHERE 0"))


def entry_hash(prev_hash: str, at: datetime, actor: str, action: str, target: str | None,
               outcome: str, detail: dict[str, Any]) -> str:
    body = json.dumps({"at": at.astimezone(UTC).isoformat(), "actor": actor, "action": action,
                       "target": target, "outcome": outcome, "detail": detail},
                      sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


@dataclass
class Verification:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None


class AuditLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def record(self, actor: str, action: str, target: str | None = None, *,
                     outcome: str = "ok", detail: dict[str, Any] | None = None,
                     session: AsyncSession | None = None) -> AuditRow:
        """Append one entry. With ``session`` it joins that transaction (one audited step)."""
        detail = json.loads(json.dumps(detail or {}, default=str))
        if session is not None:
            return await self._append(session, actor, action, target, outcome, detail)
        for attempt in range(20):
            try:
                async with self._sessions.begin() as s:
                    return await self._append(s, actor, action, target, outcome, detail)
            except IntegrityError:
                if attempt == 19:
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    async def _append(session: AsyncSession, actor: str, action: str, target: str | None,
                      outcome: str, detail: dict[str, Any]) -> AuditRow:
        await _lock_chain(session)
        head = (await session.execute(
            select(AuditRow.hash).order_by(AuditRow.seq.desc()).limit(1))).scalar()
        prev = head or GENESIS
        at = datetime.now(UTC)
        row = AuditRow(at=at, actor=actor, action=action, target=target, outcome=outcome,
                       detail=detail, prev_hash=prev,
                       hash=entry_hash(prev, at, actor, action, target, outcome, detail))
        session.add(row)
        await session.flush()
        return row

    async def entries(self, *, limit: int = 100, offset: int = 0, actor: str | None = None,
                      action: str | None = None) -> list[AuditRow]:
        query = select(AuditRow).order_by(AuditRow.seq.desc()).limit(limit).offset(offset)
        if actor:
            query = query.where(AuditRow.actor == actor)
        if action:
            query = query.where(AuditRow.action == action)
        async with self._sessions() as s:
            return list((await s.execute(query)).scalars())

    async def verify(self) -> Verification:
        """Walk the chain from the start; report the first entry that does not check out."""
        prev, count = GENESIS, 0
        async with self._sessions() as s:
            result = await s.stream(select(AuditRow).order_by(AuditRow.seq))
            async for row in result.scalars():
                count += 1
                if row.prev_hash != prev:
                    return Verification(False, count, row.seq, "the chain is broken before this "
                                        "entry (an entry was deleted or reordered)")
                expected = entry_hash(prev, row.at, row.actor, row.action, row.target,
                                      row.outcome, row.detail)
                if row.hash != expected:
                    return Verification(False, count, row.seq,
                                        "this entry was altered after it was written")
                prev = row.hash
        return Verification(True, count)
