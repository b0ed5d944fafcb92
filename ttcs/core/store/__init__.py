"""Persistence: SQLite by default, PostgreSQL when ``TTCS_DATABASE_URL`` says so.

Only the core touches the store; plugins never do.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ..audit import AuditLog
from ..config import Settings
from ..secrets import SecretBox
from .engine import create_engine, migrate, sessionmaker


class Store:
    """The open database: engine, session factory, audit log and the secret box."""

    def __init__(self, engine: AsyncEngine, secrets: SecretBox) -> None:
        self.engine = engine
        self.sessions: async_sessionmaker[AsyncSession] = sessionmaker(engine)
        self.audit = AuditLog(self.sessions)
        self.secrets = secrets

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @classmethod
    async def open(cls, settings: Settings, *, migrate_schema: bool = True,
                   **engine_kwargs: Any) -> Store:
        settings.ensure_home()
        engine = create_engine(settings.database, **engine_kwargs)
        if migrate_schema:
            await migrate(engine)
        return cls(engine, SecretBox.for_home(settings.home))

    async def insert_ignoring_duplicates(self, table: type[Any], rows: list[dict[str, Any]],
                                         key: str) -> int:
        """Insert ``rows``, silently skipping those whose unique ``key`` exists; returns how
        many were added. (Redelivered events and re-planned commands rely on this.)"""
        if not rows:
            return 0
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        added = 0
        async with self.sessions.begin() as s:
            for start in range(0, len(rows), 1000):
                statement = insert(table).values(rows[start:start + 1000])
                result = await s.execute(statement.on_conflict_do_nothing(index_elements=[key]))
                added += max(0, int(getattr(result, "rowcount", 0) or 0))
        return added

    async def close(self) -> None:
        await self.engine.dispose()


__all__ = ["Store"]
