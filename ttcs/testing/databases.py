"""Scratch PostgreSQL databases for tests and benchmarks: created under a random name from an
administrative URL, dropped (connections and all) afterwards."""

from __future__ import annotations

import uuid


async def create_scratch(admin_url: str, prefix: str = "ttcs_test") -> tuple[str, str]:
    """Create ``<prefix>_<random>`` through ``admin_url``; returns (SQLAlchemy URL, name)."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}", name


async def drop_scratch(admin_url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
