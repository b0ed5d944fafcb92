"""A scratch PostgreSQL database per test session (created and dropped by the tests)."""

from __future__ import annotations

import os
from pathlib import Path

from ttcs.testing import databases as scratch


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
    return await scratch.create_scratch(ADMIN_URL, "ttcs_test")


async def drop_scratch(name: str) -> None:
    await scratch.drop_scratch(ADMIN_URL, name)
