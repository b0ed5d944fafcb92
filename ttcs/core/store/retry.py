"""Which store errors are worth retrying: the database was away or busy, not the data wrong."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError


def is_transient(exc: BaseException) -> bool:
    """True for a lost connection, a restarting server or a locked SQLite file; False for an
    error in the data (a constraint, a value too long), which retrying cannot fix."""
    if isinstance(exc, OperationalError | InterfaceError | OSError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)
