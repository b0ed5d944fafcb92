"""Which store errors are worth retrying: the database was away or busy, not the data wrong."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

log = structlog.get_logger("ttcs.store")


def is_transient(exc: BaseException) -> bool:
    """True for a lost connection, a restarting server or a locked SQLite file; False for an
    error in the data (a constraint, a value too long), which retrying cannot fix."""
    if isinstance(exc, OperationalError | InterfaceError | OSError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


async def write_rows(insert: Callable[[list[dict[str, Any]]], Awaitable[None]],
                     rows: list[dict[str, Any]], what: str) -> tuple[int, int]:
    """Write ``rows`` with ``insert``; returns (written, failed).

    Transient errors are retried with backoff; an error in the data makes it fall back to one
    row at a time, so a single bad row never costs the rest of its batch.
    """
    for attempt in range(3):  # ride out a database restart or a busy SQLite
        try:
            await insert(rows)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not is_transient(exc):
                break  # something in the data: find the bad row, keep the others
            if attempt == 2:
                log.exception(f"{what}.write_failed", count=len(rows))
                return 0, len(rows)
            await asyncio.sleep(0.5 * 2**attempt)
        else:
            return len(rows), 0
    written = failed = 0
    for row in rows:
        try:
            await insert([row])
            written += 1
        except Exception as exc:
            failed += 1
            log.warning(f"{what}.row_refused", error=str(exc)[:300],
                        row={k: v for k, v in row.items() if k in ("id", "event_id",
                                                                   "device_id", "type")})
    return written, failed
