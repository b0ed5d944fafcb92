"""Migration 0002 creates exactly the content tables of the ORM, and can be rolled back."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from ttcs.core.store.engine import alembic_config, create_engine, migrate
from ttcs.core.store.tables import Base

CONTENT_TABLES = {"content", "content_approvals", "approvers", "signing_keys", "tts_renders"}


def _drift(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names())


async def test_the_migrated_schema_matches_the_tables_and_downgrades_cleanly(
        database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await migrate(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(_drift) == []
            assert await conn.run_sync(_tables) >= CONTENT_TABLES
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: command.downgrade(alembic_config(c), "0001"))
        async with engine.connect() as conn:
            assert not CONTENT_TABLES & await conn.run_sync(_tables)
        await migrate(engine)
    finally:
        await engine.dispose()
