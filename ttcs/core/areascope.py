"""Which area codes a query "for area X" covers.

Records (plays, alarms) keep the area code they had when they happened. Asking for an area
therefore means: the area, every area below it, and every area that was merged into one of
those (merging keeps the old area, marked ``merged_into``), so a report for a commune formed
by a 2025 merger still shows what its predecessors played.
"""

from __future__ import annotations

from sqlalchemy import Select, or_, select

from .store.tables import AreaRow


def covered_areas(code: str) -> Select[tuple[str]]:
    """A sub-query of the codes ``code`` covers (recursive; any depth, follows merges)."""
    scope = select(AreaRow.code).where(AreaRow.code == code).cte("scope", recursive=True)
    # UNION (not UNION ALL) so that even a malformed tree with a cycle terminates.
    scope = scope.union(select(AreaRow.code).where(or_(AreaRow.parent_code == scope.c.code,
                                                       AreaRow.merged_into == scope.c.code)))
    return select(scope.c.code)
