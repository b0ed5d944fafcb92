"""A scratch PostgreSQL database per test session (created and dropped by the tests)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import asyncpg


def _admin_url() -> str:
    """TTCS_TEST_PG, else what scripts/ensure-system.sh set up, else trust auth as postgres."""
    if os.environ.get("TTCS_TEST_PG"):
        return os.environ["TTCS_TEST_PG"]
    written = Path(__file__).resolve().parents[2] / "var" / "test-pg-url"
    if written.exists() and written.read_text().strip():
        return written.read_text().strip()
    return "postgresql://postgres@127.0.0.1:5432/postgres"


ADMIN_URL = _admin_url()


async def create_scratch() -> tuple[str, str]:
    """Create ``ttcs_test_<random>``; returns (SQLAlchemy URL, name)."""
    name = f"ttcs_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}", name


async def drop_scratch(name: str) -> None:
    conn = await asyncpg.connect(ADMIN_URL)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
