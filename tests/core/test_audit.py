"""The audit trail detects edited, deleted and reordered entries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, update

from ttcs.core.config import Settings
from ttcs.core.store import Store
from ttcs.core.store.tables import AuditRow


@pytest.fixture
async def store(settings: Settings, database_url: str) -> AsyncIterator[Store]:
    s = await Store.open(settings.model_copy(update={"database_url": database_url}))
    for n in range(5):
        await s.audit.record("alice", "device.command", f"dev-{n}", detail={"n": n})
    yield s
    await s.close()


async def test_an_untouched_chain_verifies(store: Store) -> None:
    result = await store.audit.verify()
    assert (result.ok, result.entries) == (True, 5)


async def test_an_edited_entry_is_detected(store: Store) -> None:
    async with store.sessions.begin() as s:
        await s.execute(update(AuditRow).where(AuditRow.seq == 3).values(actor="mallory"))
    result = await store.audit.verify()
    assert not result.ok
    assert result.first_bad_seq == 3
    assert "altered" in (result.reason or "")


async def test_a_deleted_entry_is_detected(store: Store) -> None:
    async with store.sessions.begin() as s:
        await s.execute(delete(AuditRow).where(AuditRow.seq == 2))
    result = await store.audit.verify()
    assert not result.ok
    assert result.first_bad_seq == 3


async def test_concurrent_writers_never_fork_the_chain(store: Store) -> None:
    import asyncio

    await asyncio.gather(*(store.audit.record("bob", "x", str(n)) for n in range(20)))
    result = await store.audit.verify()
    assert (result.ok, result.entries) == (True, 25)
