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
        """Insert ``rows`` in one transaction, silently skipping those whose unique ``key``
        exists; returns how many were added. (Redelivered events and re-planned commands rely
        on this.)

        One cached statement executed for many rows ("executemany": SQLAlchemy batches it
        into multi-row INSERTs itself) rather than a statement with a VALUES list compiled
        anew for every batch, which cost more CPU than the database took to write the rows.
        The count comes from ``RETURNING`` the keys of the rows actually inserted.
        """
        if not rows:
            return 0
        insert = pg_insert if self.dialect == "postgresql" else sqlite_insert
        core = table.__table__
        shapes: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in rows:  # one statement per set of columns given
            shapes.setdefault(tuple(row), []).append(row)
        added = 0
        async with self.sessions.begin() as s:
            for same in shapes.values():
                statement = (insert(core).on_conflict_do_nothing(index_elements=[key])
                             .returning(core.c[key]))
                result = await s.execute(statement, same)
                added += len(result.all())
        return added

    async def close(self) -> None:
        await self.engine.dispose()


__all__ = ["Store"]
